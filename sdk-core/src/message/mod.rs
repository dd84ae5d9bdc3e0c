//! Typed builders for the six Segment message types, and their encoding to JSON at capture.
//!
//! Each builder is consumed by the matching [`Client`](crate::Client) method, which validates it,
//! stamps it with a `messageId` (UUIDv7) and a `timestamp`, and serializes it once. The bytes
//! produced here are exactly the bytes that reach the collector, whether the message is sent at
//! once, retried, or replayed from disk after a restart.
//!
//! [`builders`] holds the six builders and who a message is about; [`encode`] writes them,
//! field by field, into their wire bytes; [`validate`] holds the checks that mirror the
//! collector's limits, so a bad id costs one call rather than a whole batch.

mod builders;
mod encode;
mod validate;

pub use builders::{Alias, Group, Identify, MessageFields, Page, Screen, Track, User};
pub(crate) use encode::{Encoded, Encoder};

#[cfg(test)]
mod tests;
