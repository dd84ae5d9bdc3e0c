//! Test doubles for code that uses the SDK (feature `test-transport`).
//!
//! [`RecordingTransport`] records every request and answers from a script (200 by default);
//! [`ManualClock`] makes backoff and flush intervals pass instantly.

use std::{
    collections::VecDeque,
    sync::{Arc, Condvar, Mutex},
    time::Duration,
};

use serde_json::Value;
#[cfg(feature = "worker-thread")]
use web_time::{Instant, SystemTime};

use crate::{BatchRequest, BoxFuture, Error, Transport, TransportResponse};
#[cfg(feature = "worker-thread")]
use crate::{Client, Clock};

/// One request the [`RecordingTransport`] saw, decoded.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// The decompressed body: `{"batch":[…],"sentAt":"…"}`.
    pub body: Value,
    /// Whether it was sent gzip-compressed.
    pub gzip: bool,
    /// Bytes on the wire.
    pub wire_bytes: usize,
    /// Bytes of the body before compression (what the collector's request limit measures).
    pub body_bytes: usize,
    /// The status the transport answered with (`None` for a scripted transport error).
    pub status: Option<u16>,
}

impl RecordedRequest {
    /// The messages in the request.
    pub fn messages(&self) -> &[Value] {
        self.body["batch"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

type Answer = Result<TransportResponse, Error>;

#[derive(Default)]
struct Recording {
    requests: Vec<RecordedRequest>,
    script: VecDeque<Answer>,
}

/// A [`Transport`] that records requests and answers from a script, then with 200.
///
/// ```
/// use pulseline::{testing::RecordingTransport, Track, TransportResponse};
/// use std::time::Duration;
///
/// let transport = RecordingTransport::new();
/// transport.push_response(Ok(TransportResponse::new(503, vec![])));
/// let client = pulseline::Client::builder("wk_test")
///     .transport(transport.clone())
///     .disk_buffer(None)
///     .retry_delays(Duration::from_millis(1), Duration::from_millis(5))
///     .build()?;
/// client.track(Track::new("user-42", "signup"))?;
/// client.flush(Duration::from_secs(5));
/// assert_eq!(transport.requests().len(), 2); // a 503, then the retry
/// assert_eq!(transport.delivered()[0]["event"], "signup");
/// # Ok::<(), pulseline::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct RecordingTransport {
    state: Arc<(Mutex<Recording>, Condvar)>,
}

impl std::fmt::Debug for RecordingTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingTransport")
            .field("requests", &self.lock().requests.len())
            .finish()
    }
}

impl RecordingTransport {
    /// A transport answering every request with 200.
    pub fn new() -> Self {
        RecordingTransport::default()
    }

    /// Queues the answer for the next unanswered request (a response or a transport error).
    pub fn push_response(&self, answer: Result<TransportResponse, Error>) {
        self.lock().script.push_back(answer);
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Messages of requests answered with 2xx, in order (including any the collector would
    /// have listed as rejected).
    pub fn delivered(&self) -> Vec<Value> {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.status.is_some_and(|s| (200..300).contains(&s)))
            .flat_map(|r| r.messages().to_vec())
            .collect()
    }

    /// Blocks until at least `n` requests were made or `timeout` passed; returns whether they
    /// were.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let guard = self.lock();
        let (guard, _) = self
            .state
            .1
            .wait_timeout_while(guard, timeout, |r| r.requests.len() < n)
            .unwrap_or_else(|p| p.into_inner());
        guard.requests.len() >= n
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recording> {
        self.state.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(feature = "gzip")]
fn gunzip(body: &[u8], out: &mut Vec<u8>) -> std::io::Result<usize> {
    use std::io::Read;
    flate2::read::GzDecoder::new(body).read_to_end(out)
}

/// Without the `gzip` feature the worker never compresses.
#[cfg(not(feature = "gzip"))]
fn gunzip(_body: &[u8], _out: &mut Vec<u8>) -> std::io::Result<usize> {
    Err(std::io::Error::other("gzip body without the gzip feature"))
}

impl Transport for RecordingTransport {
    fn send(&self, request: BatchRequest) -> BoxFuture<Result<TransportResponse, Error>> {
        let mut plain = Vec::new();
        let decoded = if request.gzip {
            gunzip(&request.body, &mut plain).map(|_| &plain[..])
        } else {
            Ok(&request.body[..])
        };
        let body_bytes = decoded.as_ref().map(|b| b.len()).unwrap_or(0);
        let body = decoded
            .ok()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        let mut state = self.lock();
        let answer = state.script.pop_front().unwrap_or_else(|| {
            let accepted = request.messages;
            Ok(TransportResponse::new(
                200,
                format!(r#"{{"success":true,"accepted":{accepted},"rejected":[]}}"#).into_bytes(),
            ))
        });
        state.requests.push(RecordedRequest {
            body,
            gzip: request.gzip,
            wire_bytes: request.body.len(),
            body_bytes,
            status: answer.as_ref().ok().map(|r| r.status),
        });
        drop(state);
        self.state.1.notify_all();
        Box::pin(async move { answer })
    }
}

/// A clock whose time only moves when the worker waits: each wait jumps straight to its
/// deadline (after a real millisecond, so an idle worker does not spin). Backoffs of minutes
/// take milliseconds, and `sentAt` stamps show the virtual times.
///
/// ```
/// use pulseline::{Clock, testing::ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let t0 = clock.now();
/// clock.advance(Duration::from_secs(30));
/// assert_eq!(clock.now() - t0, Duration::from_secs(30));
/// ```
#[cfg(feature = "worker-thread")]
#[derive(Debug, Clone)]
pub struct ManualClock {
    origin: Instant,
    wall_origin: SystemTime,
    offset: Arc<Mutex<Duration>>,
}

#[cfg(feature = "worker-thread")]
impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

#[cfg(feature = "worker-thread")]
impl ManualClock {
    /// A clock starting at the real current time.
    pub fn new() -> Self {
        ManualClock {
            origin: Instant::now(),
            wall_origin: SystemTime::now(),
            offset: Arc::default(),
        }
    }

    /// Moves time forward by `by`.
    pub fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap_or_else(|p| p.into_inner()) += by;
    }

    fn offset(&self) -> Duration {
        *self.offset.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(feature = "worker-thread")]
impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.origin + self.offset()
    }

    fn system_time(&self) -> SystemTime {
        self.wall_origin + self.offset()
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        let clock = self.clone();
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            let mut offset = clock.offset.lock().unwrap_or_else(|p| p.into_inner());
            let target = deadline.saturating_duration_since(clock.origin);
            if target > *offset {
                *offset = target;
            }
        })
    }
}

/// A client on a fresh [`RecordingTransport`], without a disk buffer: for examples and tests.
///
/// ```
/// let client = pulseline::testing::test_client();
/// client.track(pulseline::Track::new("user-42", "signup")).unwrap();
/// ```
#[cfg(feature = "worker-thread")]
pub fn test_client() -> Client {
    test_client_with(RecordingTransport::new())
}

/// A client on `transport`, without a disk buffer.
#[cfg(feature = "worker-thread")]
pub fn test_client_with(transport: RecordingTransport) -> Client {
    let builder = Client::builder("wk_test")
        .transport(transport)
        .flush_interval(Duration::from_millis(50));
    #[cfg(feature = "disk-buffer")]
    let builder = builder.disk_buffer(None);
    match builder.build() {
        Ok(client) => client,
        Err(error) => panic!("building a test client failed: {error}"),
    }
}
