//! Domain types: inputs are parsed into these, and once one exists it is valid.

pub mod account;
pub mod key;
pub mod message;
pub mod numbers;
pub mod percentile;
pub mod rule;
pub mod sketch;

pub use key::{KeyHash, KeyKind, PlainKey};
pub use message::{Message, MessageError, MessageType};

/// A project's id.
pub type ProjectId = i64;
