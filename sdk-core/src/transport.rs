//! The seam between the delivery worker and the network.
//!
//! The worker builds each request body and classifies each outcome; a [`Transport`] only moves
//! bytes. That keeps retry behaviour identical across the native HTTP transport, a future browser
//! `fetch` transport, and the recording transport used in tests.

use std::{future::Future, pin::Pin};

use crate::Error;

/// A boxed future that need not be `Send`: the worker polls it on its own thread (or, in a
/// browser, on the page's event loop).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + 'static>>;

/// One `POST /v1/batch` request, fully encoded.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BatchRequest {
    /// The body: `{"batch":[…],"sentAt":"…"}`, gzip-compressed when `gzip` is set.
    pub body: Vec<u8>,
    /// Whether `body` is gzip-compressed (send `Content-Encoding: gzip`).
    pub gzip: bool,
    /// Number of messages in the batch.
    pub messages: usize,
}

/// What the collector answered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransportResponse {
    /// HTTP status code.
    pub status: u16,
    /// The raw `Retry-After` header, if any (seconds or an HTTP date).
    pub retry_after: Option<String>,
    /// The response body (the collector's JSON acknowledgement or error).
    pub body: Vec<u8>,
}

impl TransportResponse {
    /// A response with `status`, no `Retry-After` and `body`.
    ///
    /// ```
    /// let ok = pulseline::TransportResponse::new(200, br#"{"success":true}"#.to_vec());
    /// assert_eq!(ok.status, 200);
    /// ```
    pub fn new(status: u16, body: Vec<u8>) -> Self {
        TransportResponse {
            status,
            retry_after: None,
            body,
        }
    }

    /// Whether the worker is done with the batch after this answer: delivered (2xx) or refused
    /// for good (a 4xx other than 408 and 429; a 413 is re-sent as two smaller batches). A
    /// transport that keeps its own copy of a request (the browser SDK's offline buffer) drops
    /// it then, and keeps it for a later replay otherwise.
    ///
    /// ```
    /// use pulseline::TransportResponse;
    ///
    /// assert!(TransportResponse::new(200, Vec::new()).is_final());
    /// assert!(TransportResponse::new(400, Vec::new()).is_final());
    /// assert!(!TransportResponse::new(429, Vec::new()).is_final());
    /// assert!(!TransportResponse::new(503, Vec::new()).is_final());
    /// ```
    pub fn is_final(&self) -> bool {
        crate::retry::is_final_status(self.status)
    }

    /// Sets the raw `Retry-After` header.
    pub fn with_retry_after(mut self, value: impl Into<String>) -> Self {
        self.retry_after = Some(value.into());
        self
    }
}

/// Sends request bodies to the collector.
///
/// Implementations must not retry on their own (the worker does, with classification and
/// backoff) and should report failures without an HTTP response as
/// [`Error::Transport`](crate::Error::Transport) so they are classified as retryable.
///
/// ```
/// use pulseline::{BatchRequest, BoxFuture, Error, Transport, TransportResponse};
///
/// /// Accepts everything without sending it anywhere.
/// struct Discard;
///
/// impl Transport for Discard {
///     fn send(&self, request: BatchRequest) -> BoxFuture<Result<TransportResponse, Error>> {
///         let body = format!(r#"{{"success":true,"accepted":{}}}"#, request.messages);
///         Box::pin(async move { Ok(TransportResponse::new(200, body.into_bytes())) })
///     }
/// }
/// ```
pub trait Transport: Send + Sync + 'static {
    /// Sends one request. The future runs on the worker; it may take as long as the
    /// transport's own timeout allows without delaying other batches.
    fn send(&self, request: BatchRequest) -> BoxFuture<Result<TransportResponse, Error>>;
}

impl<T: Transport + ?Sized> Transport for std::sync::Arc<T> {
    fn send(&self, request: BatchRequest) -> BoxFuture<Result<TransportResponse, Error>> {
        (**self).send(request)
    }
}
