//! The native half of the `pulseline` npm package. It converts JavaScript arguments and
//! results to and from the Rust SDK core (`sdk-core`, crate `pulseline`), which does all the
//! work; the JavaScript half (`lib/`) adds the process exit hooks and the ESM entry.

// `#[napi]` requires `pub` items; they are exported to JavaScript, not to Rust.
#![allow(unreachable_pub)]

mod background;
mod client;
mod convert;
mod error;
mod message;
mod options;
mod serialized;
mod settle;
mod stats;
