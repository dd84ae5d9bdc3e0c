//! Pulseline's SDK core: capture analytics events without blocking, deliver them at least once.
//!
//! ```no_run
//! use pulseline::{Client, Identify, Track};
//! use serde_json::json;
//! use std::time::Duration;
//!
//! let client = Client::builder("plw_YOUR_WRITE_KEY").host("http://127.0.0.1:8080").build()?;
//! client.identify(Identify::new("user-42").traits(json!({ "email": "ada@example.com" })))?;
//! client.track(Track::new("user-42", "signup").properties(json!({ "plan": "pro" })))?;
//! client.shutdown(Duration::from_secs(5));
//! # Ok::<(), pulseline::Error>(())
//! ```
//!
//! # How a message travels
//! 1. **Capture** (on the caller's thread): the message is validated (required fields, the
//!    collector's 32 KiB size limit), stamped with a UUIDv7 `messageId` and a `timestamp`, and
//!    serialized once. Invalid messages are an [`Error`] returned at once. The bytes go to a
//!    lock-free queue; memory is bounded by
//!    [`max_buffered_events`](ClientOptions::max_buffered_events) and
//!    [`max_buffered_bytes`](ClientOptions::max_buffered_bytes).
//! 2. **Batching** (worker): messages are joined into batches by count, bytes (never above
//!    [`limits`]) and time ([`flush_interval`](ClientOptions::flush_interval)).
//! 3. **Write-ahead** (feature `disk-buffer`): each sealed batch is appended to a checksummed
//!    segment file before it is sent, and acknowledged in the file once delivered.
//! 4. **Send**: up to [`max_in_flight`](ClientOptions::max_in_flight) gzip requests at once,
//!    so a slow or failing batch never holds up the others.
//! 5. **Retry**, classified: connect errors, timeouts, 5xx, 408 and 429 are retried with
//!    exponential backoff and full jitter, honouring `Retry-After` (seconds or HTTP date,
//!    clamped to [`max_retry_after`](ClientOptions::max_retry_after)); a 413 splits the batch
//!    in half (a single message is dropped as `too_large`); other 4xx are dropped as
//!    `client_error`, never retried. Messages the collector lists as `rejected` are dropped
//!    as `rejected_by_server` and reported to [`on_error`](ClientOptions::on_error). After
//!    [`max_retry_elapsed`](ClientOptions::max_retry_elapsed) a batch leaves memory and waits
//!    in the disk buffer (without one it is dropped as `retries_exhausted`).
//! 6. **Replay**: the worker sends batches left on disk (by this process under memory pressure
//!    or an outage, or by an earlier process that crashed) when it has room.
//!
//! # Delivery guarantees
//! * At least once. A message keeps its `messageId` across retries, splits and replays, and the
//!   collector stores each `messageId` once, so a duplicate send (after a lost response or a
//!   crash between send and ack) is stored once.
//! * Capture never blocks on I/O and never fails because the network is down.
//! * Overflow policy: beyond the memory bound, batches already on disk are released from memory
//!   (newest first) and replayed later, so a burst larger than memory loses nothing while the
//!   disk buffer has room. When memory is full and the disk buffer cannot take more (disabled,
//!   at [`max_bytes`](DiskBufferOptions::max_bytes), or failing), new captures are refused
//!   (*drop newest*) with [`Error::QueueFull`], counted as [`DropReason::QueueFull`] and
//!   reported to [`on_drop`](ClientOptions::on_drop).
//! * Every drop is counted under one [`DropReason`] in [`Client::stats`].
//!
//! # What a SIGKILL can lose
//! With the disk buffer on, a kill (SIGKILL, OOM kill, panic=abort) loses **only messages
//! not yet sealed into a batch**, which the worker seals at least every
//! [`flush_interval`](ClientOptions::flush_interval) (500 ms by default) and at once when a
//! batch is full. In steady state that is at most the captures of the last `flush_interval`
//! plus the time to append the batch (about a millisecond). During a burst that outruns the
//! worker it is also the messages still queued between capture and worker, which the memory
//! bound caps ([`max_buffered_events`](ClientOptions::max_buffered_events) /
//! [`max_buffered_bytes`](ClientOptions::max_buffered_bytes)). Everything older is in a segment
//! file, written before its first send, and the next client opening the same directory sends it. Batches that
//! were sent but not yet acked in the file are sent again (the collector stores them once). If
//! the disk buffer is full or failing, batches stay in memory only and a kill loses them.
//! Segment writes are not fsynced per batch, so a power loss or kernel crash can lose what the
//! OS had not yet written; shutdown fsyncs. `tests/crash.rs` checks the bound with a real child
//! process, SIGKILLed while capturing.
//!
//! # Features
//! * `worker-thread` (default): [`ClientBuilder::build`] runs the worker on its own OS thread
//!   with a private current-thread tokio runtime; the host needs no runtime (and may have one).
//! * `disk-buffer` (default): the crash-safe buffer, see [`DiskBufferOptions`].
//! * `native-http` (default): [`HttpTransport`] (reqwest + rustls).
//! * `gzip` (default): gzip request bodies (flate2); without it [`ClientOptions::gzip`] is
//!   ignored and bodies are plain JSON (the browser SDK, whose wasm stays smaller).
//! * `test-transport`: the `testing` module: a recording transport and a manual clock.
//!
//! With default features off the core (messages, batching, retry, worker future) builds for
//! any target, `wasm32-unknown-unknown` included (`cargo check -p pulseline
//! --no-default-features --target wasm32-unknown-unknown`); a binding supplies a [`Transport`]
//! and a [`Clock`] and polls the worker from [`ClientBuilder::build_with_worker`] on its own
//! event loop. Time is [`web_time`]'s `Instant`/`SystemTime`: std's own on native targets,
//! `performance.now()`/`Date.now()` in a browser (where std's panic).
//!
//! # Dependency notes
//! Backoff uses [`backon`]; the `backoff` crate named in the design card is unmaintained
//! (RUSTSEC-2025-0012) and pulls in the unmaintained `instant`. The disk buffer locks files
//! with the standard library's `File::try_lock` (Rust 1.89+) rather than `fs2`/`fs4`.

#![warn(missing_docs)]

mod ack;
mod batch;
mod client;
mod clock;
mod conversion;
#[cfg(feature = "disk-buffer")]
mod disk;
#[cfg(feature = "disk-buffer")]
mod disk_dir;
mod error;
mod fork;
#[cfg(feature = "native-http")]
mod http;
mod json_limit;
pub mod limits;
mod message;
mod message_id;
mod option_table;
mod options;
mod raw_json;
mod report;
mod retry;
mod shared;
mod stats;
#[cfg(feature = "test-transport")]
pub mod testing;
mod time;
mod transport;
mod worker;

pub use client::{Client, ClientBuilder, FlushOutcome, ShutdownOutcome, WorkerFuture};
pub use clock::Clock;
#[cfg(feature = "worker-thread")]
pub use clock::SystemClock;
pub use conversion::{ConversionFailure, Depth, JsonPath};
#[cfg(feature = "disk-buffer")]
pub use disk::DiskBufferOptions;
pub use error::{CaptureError, Error, TransportErrorKind};
#[cfg(feature = "native-http")]
pub use http::HttpTransport;
pub use json_limit::{JsonLimitError, write_json_within};
pub use message::{Alias, Group, Identify, MessageFields, Page, Screen, Track, User};
pub use message_id::MessageId;
pub use option_table::{DEFAULT_DISK_BUFFER_DIRECTORY, OptionSpec, OptionValue, option_table};
pub use options::ClientOptions;
pub use raw_json::{RawJson, ToJson};
pub use report::{DropHook, ErrorHook};
pub use stats::{DropReason, Dropped, Stats};
pub use time::iso8601_millis;
pub use transport::{BatchRequest, BoxFuture, Transport, TransportResponse};
pub use uuid::Uuid;
