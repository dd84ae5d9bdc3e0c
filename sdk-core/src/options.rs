//! Client settings. Bindings mirror [`ClientOptions`] once and convert with one `From` impl.

use std::time::Duration;

#[cfg(feature = "disk-buffer")]
use crate::DiskBufferOptions;
use crate::{
    limits::MAX_REQUEST_BYTES,
    report::{DropHook, ErrorHook},
};

/// Everything configurable about a [`Client`](crate::Client). Every field documents its default.
///
/// Build with [`Client::builder`](crate::Client::builder), or start from `default()` and set
/// fields:
///
/// ```
/// use pulseline::ClientOptions;
/// use std::time::Duration;
///
/// let mut options = ClientOptions::default();
/// options.host = "http://127.0.0.1:8080".into();
/// options.flush_interval = Duration::from_millis(250);
/// assert!(options.gzip);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// Base URL of the collector; batches go to `{host}/v1/batch`.
    /// Default `http://localhost:8080`.
    pub host: String,
    /// `context.library.name` of every message. Default `pulseline-rust`; the Python, Node and
    /// browser bindings set their own.
    pub library_name: String,
    /// `context.library.version`. Default: this crate's version.
    pub library_version: String,
    /// Longest a captured message waits before its batch is sealed and sent. Also the bound on
    /// what a SIGKILL can lose (see the crate docs). Default 500 ms.
    pub flush_interval: Duration,
    /// Messages per request; clamped to [`MAX_BATCH_MESSAGES`](crate::limits::MAX_BATCH_MESSAGES).
    /// Default 1,000.
    pub max_batch_messages: usize,
    /// Uncompressed request body size; clamped to
    /// [`MAX_REQUEST_BYTES`](crate::limits::MAX_REQUEST_BYTES). Default 512 KiB.
    pub max_batch_bytes: usize,
    /// Messages held in memory (queued, batched, being sent) before the disk buffer takes the
    /// overflow, or, without one, new captures are refused. Default 100,000.
    pub max_buffered_events: usize,
    /// Bytes of serialized messages held in memory, as above. Default 32 MiB.
    pub max_buffered_bytes: usize,
    /// Requests in flight at once, so a slow or failing batch never holds up the others.
    /// Default 4.
    pub max_in_flight: usize,
    /// Gzip request bodies. Default `true`. Ignored when the `gzip` feature is off (the browser
    /// SDK), which sends plain JSON.
    pub gzip: bool,
    /// TCP/TLS connect timeout. Default 5 s.
    pub connect_timeout: Duration,
    /// Whole-request timeout. Default 10 s.
    pub request_timeout: Duration,
    /// Cap of the first retry's backoff (full jitter: the delay is uniform in `[0, cap]`, the
    /// cap doubling per retry). Default 100 ms.
    pub retry_min_delay: Duration,
    /// Largest backoff cap. Default 10 s.
    pub retry_max_delay: Duration,
    /// Longest `Retry-After` honoured; longer requests are clamped to it. Default 60 s.
    pub max_retry_after: Duration,
    /// A batch failing for this long stops being retried from memory: it stays in the disk
    /// buffer for a later replay, or, without one, is dropped (`retries_exhausted`). Default 30 s.
    pub max_retry_elapsed: Duration,
    /// How long dropping the last [`Client`](crate::Client) handle waits for delivery before
    /// persisting what is left. Default 5 s.
    pub shutdown_timeout: Duration,
    /// The crash-safe disk buffer. Default `Some(DiskBufferOptions::default())`; `None`
    /// keeps everything in memory.
    #[cfg(feature = "disk-buffer")]
    pub disk_buffer: Option<DiskBufferOptions>,
    /// Send nothing and write no disk buffer, while every method keeps working: captures are
    /// validated, return their `messageId` and are counted as dropped
    /// ([`DropReason::OptedOut`](crate::DropReason::OptedOut)). For tests and environments
    /// that must not send; unlike [`Client::opt_out`](crate::Client::opt_out) it cannot be
    /// undone at run time. Default `false`.
    pub disabled: bool,
    /// Called with each drop (reason, number of messages). Default `None`.
    pub on_drop: Option<DropHook>,
    /// Called with each delivery error, on the worker thread. Default `None`.
    pub on_error: Option<ErrorHook>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            host: "http://localhost:8080".into(),
            library_name: "pulseline-rust".into(),
            library_version: env!("CARGO_PKG_VERSION").into(),
            flush_interval: Duration::from_millis(500),
            max_batch_messages: 1_000,
            max_batch_bytes: MAX_REQUEST_BYTES,
            max_buffered_events: 100_000,
            max_buffered_bytes: 32 * 1024 * 1024,
            max_in_flight: 4,
            gzip: true,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            retry_min_delay: Duration::from_millis(100),
            retry_max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
            max_retry_elapsed: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(5),
            #[cfg(feature = "disk-buffer")]
            disk_buffer: Some(DiskBufferOptions::default()),
            disabled: false,
            on_drop: None,
            on_error: None,
        }
    }
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("ClientOptions");
        d.field("host", &self.host)
            .field("library_name", &self.library_name)
            .field("library_version", &self.library_version)
            .field("flush_interval", &self.flush_interval)
            .field("max_batch_messages", &self.max_batch_messages)
            .field("max_batch_bytes", &self.max_batch_bytes)
            .field("max_buffered_events", &self.max_buffered_events)
            .field("max_buffered_bytes", &self.max_buffered_bytes)
            .field("max_in_flight", &self.max_in_flight)
            .field("gzip", &self.gzip)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("retry_min_delay", &self.retry_min_delay)
            .field("retry_max_delay", &self.retry_max_delay)
            .field("max_retry_after", &self.max_retry_after)
            .field("max_retry_elapsed", &self.max_retry_elapsed)
            .field("shutdown_timeout", &self.shutdown_timeout);
        #[cfg(feature = "disk-buffer")]
        d.field("disk_buffer", &self.disk_buffer);
        d.field("disabled", &self.disabled)
            .field("on_drop", &self.on_drop.is_some())
            .field("on_error", &self.on_error.is_some())
            .finish()
    }
}
