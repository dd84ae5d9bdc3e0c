//! The collector's ingest limits, mirrored here so the SDK never builds a request it would refuse.
//!
//! These match the collector's defaults. The SDK validates [`MAX_MESSAGE_BYTES`] at capture time
//! (an oversized message is an [`Error::MessageTooLarge`](crate::Error::MessageTooLarge) returned
//! to the caller at once) and never seals a batch above [`MAX_BATCH_MESSAGES`] messages or
//! [`MAX_REQUEST_BYTES`] bytes of uncompressed body.

/// Largest accepted serialized message (one element of `batch`), in bytes: 32 KiB.
///
/// ```
/// assert_eq!(pulseline::limits::MAX_MESSAGE_BYTES, 32 * 1024);
/// ```
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;

/// Largest accepted request body after decompression, in bytes: 512 KiB.
///
/// ```
/// assert_eq!(pulseline::limits::MAX_REQUEST_BYTES, 512 * 1024);
/// ```
pub const MAX_REQUEST_BYTES: usize = 512 * 1024;

/// Most messages accepted in one `POST /v1/batch`: 2,500.
///
/// ```
/// assert_eq!(pulseline::limits::MAX_BATCH_MESSAGES, 2_500);
/// ```
pub const MAX_BATCH_MESSAGES: usize = 2_500;

/// Longest id accepted, in characters (not bytes): 200. The collector's limit for every id:
/// `messageId`, `userId`, `anonymousId`, `groupId` and `previousId`. The SDK checks each at
/// capture, so an over-long id costs one call an [`Error::InvalidMessage`](crate::Error::InvalidMessage)
/// instead of being rejected by the collector after it was sent.
///
/// ```
/// assert_eq!(pulseline::limits::MAX_ID_CHARS, 200);
/// ```
pub const MAX_ID_CHARS: usize = 200;

/// Longest `messageId` accepted, in characters: [`MAX_ID_CHARS`].
pub const MAX_MESSAGE_ID_CHARS: usize = MAX_ID_CHARS;

/// Longest `event` (track) or `name` (page, screen) accepted, in characters once leading and
/// trailing whitespace is trimmed, as the collector counts them: 200. A name of only whitespace
/// is refused too.
///
/// ```
/// assert_eq!(pulseline::limits::MAX_EVENT_NAME_CHARS, 200);
/// ```
pub const MAX_EVENT_NAME_CHARS: usize = 200;

/// Deepest nesting of `properties`, `traits`, `context` or `integrations` that the Python and
/// Node bindings convert: 64 levels of arrays and objects, counted by [`crate::Depth`]. Deeper
/// input is taken for a circular reference and refused.
///
/// ```
/// assert_eq!(pulseline::limits::MAX_JSON_DEPTH, 64);
/// ```
pub const MAX_JSON_DEPTH: usize = 64;

/// Bytes of a request body that are not messages: `{"batch":[`, `],"sentAt":"…"}`.
///
/// Reserved generously (the exact figure is 48) so a batch sized by the SDK always fits
/// [`MAX_REQUEST_BYTES`].
pub(crate) const BODY_OVERHEAD_BYTES: usize = 128;
