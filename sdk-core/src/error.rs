//! The crate's one error type.

use std::time::Duration;
#[cfg(feature = "disk-buffer")]
use std::{io, path::PathBuf};

/// Everything that can go wrong in the SDK, with the details needed to act on it.
///
/// Capture methods return it synchronously for problems with the message itself
/// ([`InvalidMessage`](Error::InvalidMessage), [`MessageTooLarge`](Error::MessageTooLarge),
/// [`Serialize`](Error::Serialize)) or with the client's capacity
/// ([`QueueFull`](Error::QueueFull), [`Closed`](Error::Closed)). Delivery problems happen later,
/// on the worker, and reach the application through
/// [`ClientOptions::on_error`](crate::ClientOptions::on_error); they never fail a capture.
///
/// ```
/// use pulseline::{Error, Track, User};
///
/// let client = pulseline::testing::test_client();
/// let err = client.track(Track::new(User::id(""), "signup")).unwrap_err();
/// assert!(matches!(err, Error::InvalidMessage { field: "userId", .. }));
/// assert_eq!(err.to_string(), "invalid message: userId must not be empty");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A required field is missing or malformed.
    #[error("invalid message: {field} {reason}")]
    InvalidMessage {
        /// The wire name of the offending field, e.g. `event` or `groupId`.
        field: &'static str,
        /// What is wrong with it, phrased to complete "`field` …".
        reason: &'static str,
    },

    /// The serialized message exceeds the collector's per-message limit.
    #[error(
        "message is at least {size} bytes, above the {limit}-byte limit; trim properties or traits"
    )]
    MessageTooLarge {
        /// Size of the serialized message. Serializing `properties` or `traits` stops as soon
        /// as the message passes the limit, so this can be where it stopped: a lower bound.
        size: usize,
        /// [`MAX_MESSAGE_BYTES`](crate::limits::MAX_MESSAGE_BYTES).
        limit: usize,
    },

    /// A caller-supplied value (properties, traits, context) could not be serialized to JSON.
    #[error("could not serialize {field} to JSON: {source}")]
    Serialize {
        /// Which field failed.
        field: &'static str,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },

    /// The in-memory buffer is full and the disk buffer could not take the overflow, so the
    /// message was dropped (counted as [`DropReason::QueueFull`](crate::DropReason::QueueFull)).
    #[error(
        "buffer full ({max_events} messages / {max_bytes} bytes held in memory); message dropped"
    )]
    QueueFull {
        /// [`ClientOptions::max_buffered_events`](crate::ClientOptions::max_buffered_events).
        max_events: usize,
        /// [`ClientOptions::max_buffered_bytes`](crate::ClientOptions::max_buffered_bytes).
        max_bytes: usize,
    },

    /// The client was shut down; nothing more can be captured.
    #[error("client is shut down")]
    Closed,

    /// The collector answered a batch with a non-success status.
    // The delay as whole seconds and milliseconds, not `Duration`'s `Debug` (which would bring
    // its float-like formatter into the browser SDK's wasm for this one message).
    #[error("collector answered {status}{}: {body}", retry_after.map(|d| format!(" (retry after {}.{:03}s)", d.as_secs(), d.subsec_millis())).unwrap_or_default())]
    Http {
        /// HTTP status code.
        status: u16,
        /// Parsed `Retry-After`, when present.
        retry_after: Option<Duration>,
        /// Start of the response body, for the humans reading logs.
        body: String,
    },

    /// The request did not produce an HTTP response.
    #[error("{kind} error sending batch: {message}")]
    Transport {
        /// Connect failure, timeout, or anything else.
        kind: TransportErrorKind,
        /// The underlying error's description.
        message: String,
    },

    /// The collector stored the batch but refused one message in it.
    #[error("collector rejected message {message_id}: {reason}")]
    Rejected {
        /// The refused message's `messageId`.
        message_id: String,
        /// The collector's explanation.
        reason: String,
    },

    /// Reading or writing the disk buffer failed; the SDK keeps working from memory.
    ///
    /// Only with the `disk-buffer` feature: without it nothing does I/O, and leaving the
    /// variant out keeps `io::Error`'s and `Path`'s formatting out of the browser SDK's wasm.
    #[cfg(feature = "disk-buffer")]
    #[error("disk buffer I/O on {}: {source}", path.display())]
    Disk {
        /// File or directory involved.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },

    /// A disk-buffer record failed its checksum (for example a write torn by a kill) and was
    /// skipped. Only with the `disk-buffer` feature.
    #[cfg(feature = "disk-buffer")]
    #[error("corrupt record skipped in {} at byte {offset}", path.display())]
    CorruptRecord {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the bad record.
        offset: u64,
    },

    /// The client could not be built from its options.
    #[error("invalid client configuration: {reason}")]
    Config {
        /// What to fix.
        reason: String,
    },
}

/// Alias kept for readability at capture call sites: capture returns the crate's [`Error`].
pub type CaptureError = Error;

/// Why a request produced no HTTP response; decides whether and how it is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The connection could not be established (refused, DNS, TLS handshake).
    Connect,
    /// The request or response did not complete in time.
    Timeout,
    /// Anything else, e.g. the connection closed before a response arrived.
    Other,
}

impl std::fmt::Display for TransportErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TransportErrorKind::Connect => "connect",
            TransportErrorKind::Timeout => "timeout",
            TransportErrorKind::Other => "transport",
        })
    }
}
