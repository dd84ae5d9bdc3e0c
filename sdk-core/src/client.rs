//! The client: capture on the caller's thread, delivery on the worker.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use futures::channel::oneshot;

use crate::{
    Alias, ClientOptions, Clock, DropReason, Error, Group, Identify, MessageId, Page, Screen,
    Stats, ToJson, Track, Transport,
    limits::{MAX_BATCH_MESSAGES, MAX_REQUEST_BYTES},
    message::{Encoded, Encoder},
    report::Reporter,
    retry::RetryPolicy,
    shared::{Command, Limits, Shared},
    worker::{Worker, WorkerConfig},
};

/// How a [`Client::flush`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlushOutcome {
    /// Every message captured before the call was acknowledged by the collector, and none was
    /// dropped while the flush waited.
    Flushed,
    /// Everything was resolved, but `messages` could not be delivered within the retry budget
    /// and wait in the disk buffer for a later replay.
    Persisted {
        /// Messages moved to the disk buffer during the flush.
        messages: u64,
    },
    /// Everything was resolved, but `messages` were dropped while the flush waited (a batch the
    /// collector refused with a 4xx, messages it rejected, the retry budget spent without a
    /// disk buffer, ...): they will never be delivered. Each is counted by reason in
    /// [`Stats::dropped`] and reported to `on_drop`. Takes precedence over `Persisted`.
    Dropped {
        /// Messages dropped, for any reason, between the call and its answer (captures made
        /// meanwhile included).
        messages: u64,
    },
    /// The timeout passed first; delivery continues in the background.
    TimedOut {
        /// Messages captured before the call, or replayed from the disk buffer, not yet
        /// resolved.
        pending: u64,
    },
    /// The client was already shut down.
    Closed,
}

/// How a [`Client::shutdown`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ShutdownOutcome {
    /// The timeout passed before everything was delivered.
    pub timed_out: bool,
    /// Messages this client captured and shutdown left in the disk buffer undelivered; the
    /// next client on the same directory sends them. Batches a flush already reported as
    /// persisted, and those an earlier run left there, are not counted again.
    pub persisted: u64,
    /// Messages that could be neither delivered nor persisted (counted as
    /// [`DropReason::Shutdown`]).
    pub lost: u64,
}

impl ShutdownOutcome {
    /// Everything captured was delivered (or dropped for a counted, non-shutdown reason).
    pub fn is_complete(&self) -> bool {
        !self.timed_out && self.persisted == 0 && self.lost == 0
    }
}

/// Sends analytics events to a Pulseline (or any Segment-compatible) collector.
///
/// Capture methods (`track`, `identify`, `page`, `screen`, `group`, `alias`) validate and
/// serialize the message on the calling thread (about a microsecond), hand it to a background
/// worker without blocking, and return its `messageId`. They never perform I/O and never fail
/// because the network is down. `Client` is cheap to clone and share between threads; the last
/// handle dropped shuts the client down (see [`ClientOptions::shutdown_timeout`]).
///
/// ```no_run
/// use pulseline::{Client, ClientOptions, FlushOutcome, Track};
/// use serde_json::json;
/// use std::time::Duration;
///
/// let client = Client::builder("plw_YOUR_WRITE_KEY").host("http://127.0.0.1:8080").build()?;
/// client.track(Track::new("user-42", "signup").properties(json!({ "plan": "pro" })))?;
/// assert_eq!(client.flush(Duration::from_secs(5)), FlushOutcome::Flushed);
/// # Ok::<(), pulseline::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    encoder: Encoder,
    clock: Arc<dyn Clock>,
    shutdown_timeout: Duration,
    /// [`ClientOptions::disabled`]: fixed for the client's life, unlike the opt-out flag.
    disabled: bool,
    /// How to build this client again (in a forked child, see `fork.rs`).
    #[cfg_attr(not(feature = "worker-thread"), allow(dead_code))]
    pub(crate) recipe: crate::fork::Recipe,
    /// The worker thread, when the client owns one.
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for dyn Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn Clock")
    }
}

impl Client {
    /// A client for `write_key` with `options`, using the HTTP transport and a worker thread.
    ///
    /// ```no_run
    /// let mut options = pulseline::ClientOptions::default();
    /// options.host = "http://127.0.0.1:8080".into();
    /// let client = pulseline::Client::new("plw_YOUR_WRITE_KEY", options)?;
    /// # Ok::<(), pulseline::Error>(())
    /// ```
    #[cfg(all(feature = "worker-thread", feature = "native-http"))]
    pub fn new(write_key: impl Into<String>, options: ClientOptions) -> Result<Client, Error> {
        Client::builder(write_key).options(options).build()
    }

    /// A builder for a client sending with `write_key`.
    pub fn builder(write_key: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            write_key: write_key.into(),
            options: ClientOptions::default(),
            transport: None,
            clock: None,
        }
    }

    /// Captures a `track`; returns its `messageId`.
    ///
    /// ```
    /// use pulseline::Track;
    /// use serde::Serialize;
    ///
    /// #[derive(Serialize)]
    /// struct Checkout { amount_cents: u64, currency: &'static str }
    ///
    /// let client = pulseline::testing::test_client();
    /// let id = client.track(Track::new("user-42", "checkout").properties(Checkout { amount_cents: 4200, currency: "EUR" }))?;
    /// // A fresh UUIDv7 unless the message carries your own `message_id`.
    /// assert_eq!(pulseline::Uuid::parse_str(id.as_str()).unwrap().get_version_num(), 7);
    /// # Ok::<(), pulseline::Error>(())
    /// ```
    pub fn track<P: ToJson>(&self, message: Track<P>) -> Result<MessageId, Error> {
        self.capture(|e, now| e.track(&message, now))
    }

    /// Captures an `identify`; returns its `messageId`.
    ///
    /// ```
    /// let client = pulseline::testing::test_client();
    /// client.identify(pulseline::Identify::new("user-42").traits(serde_json::json!({ "plan": "pro" })))?;
    /// # Ok::<(), pulseline::Error>(())
    /// ```
    pub fn identify<T: ToJson>(&self, message: Identify<T>) -> Result<MessageId, Error> {
        self.capture(|e, now| e.identify(&message, now))
    }

    /// Captures a `page`; returns its `messageId`.
    ///
    /// ```
    /// let client = pulseline::testing::test_client();
    /// client.page(pulseline::Page::new("user-42").name("Pricing"))?;
    /// # Ok::<(), pulseline::Error>(())
    /// ```
    pub fn page<P: ToJson>(&self, message: Page<P>) -> Result<MessageId, Error> {
        self.capture(|e, now| e.page(&message, now))
    }

    /// Captures a `screen`; returns its `messageId`.
    ///
    /// ```
    /// let client = pulseline::testing::test_client();
    /// client.screen(pulseline::Screen::new("user-42").name("Settings"))?;
    /// # Ok::<(), pulseline::Error>(())
    /// ```
    pub fn screen<P: ToJson>(&self, message: Screen<P>) -> Result<MessageId, Error> {
        self.capture(|e, now| e.screen(&message, now))
    }

    /// Captures a `group`; returns its `messageId`.
    ///
    /// ```
    /// let client = pulseline::testing::test_client();
    /// client.group(pulseline::Group::new("user-42", "acme-inc"))?;
    /// # Ok::<(), pulseline::Error>(())
    /// ```
    pub fn group<T: ToJson>(&self, message: Group<T>) -> Result<MessageId, Error> {
        self.capture(|e, now| e.group(&message, now))
    }

    /// Captures an `alias`; returns its `messageId`.
    ///
    /// ```
    /// let client = pulseline::testing::test_client();
    /// client.alias(pulseline::Alias::new("user-42", "anon-3f1c"))?;
    /// # Ok::<(), pulseline::Error>(())
    /// ```
    pub fn alias(&self, message: Alias) -> Result<MessageId, Error> {
        self.capture(|e, now| e.alias(&message, now))
    }

    fn capture(
        &self,
        encode: impl FnOnce(&Encoder, web_time::SystemTime) -> Result<Encoded, Error>,
    ) -> Result<MessageId, Error> {
        let encoded = encode(&self.inner.encoder, self.inner.clock.system_time())?;
        let Encoded { bytes, message_id } = encoded;
        // Checked after encoding, so an invalid message is the same error whether or not the
        // client sends: code tested with a disabled client behaves the same in production.
        if self.inner.disabled || self.inner.shared.is_opted_out() {
            self.inner.shared.discard_opted_out()?;
        } else {
            self.inner.shared.enqueue(bytes)?;
        }
        Ok(message_id)
    }

    /// Stops sending from now on: later captures are validated and return their `messageId`
    /// as usual, but are dropped (counted as [`DropReason::OptedOut`]) instead of being queued,
    /// so they reach neither the network nor the disk buffer. Messages captured before the call
    /// are still delivered. Applies to every clone of this client; lasts until
    /// [`opt_in`](Client::opt_in) (the client does not persist it: store the user's choice
    /// yourself and call this at start-up).
    ///
    /// ```
    /// let client = pulseline::testing::test_client();
    /// client.opt_out();
    /// client.track(pulseline::Track::new("user-42", "signup"))?;
    /// assert_eq!(client.stats().dropped.opted_out, 1);
    /// client.opt_in();
    /// assert!(!client.is_opted_out());
    /// # Ok::<(), pulseline::Error>(())
    /// ```
    pub fn opt_out(&self) {
        self.inner.shared.set_opted_out(true);
    }

    /// Resumes sending after [`opt_out`](Client::opt_out): captures from now on are delivered.
    /// A client built with [`ClientOptions::disabled`] stays disabled.
    pub fn opt_in(&self) {
        self.inner.shared.set_opted_out(false);
    }

    /// Whether [`opt_out`](Client::opt_out) is in effect.
    pub fn is_opted_out(&self) -> bool {
        self.inner.shared.is_opted_out()
    }

    /// Whether the client was built with [`ClientOptions::disabled`].
    pub fn is_disabled(&self) -> bool {
        self.inner.disabled
    }

    /// Waits up to `timeout` until every message captured before the call is delivered,
    /// dropped, or (after its retry budget) persisted to the disk buffer.
    ///
    /// Messages an earlier run (or a crashed process) left in the disk buffer count too: the
    /// flush replays and delivers them within the same `timeout`, and stops waiting for them
    /// once the collector refuses a batch.
    ///
    /// Blocks the calling thread; from async code use [`flush_async`](Client::flush_async).
    ///
    /// ```
    /// use pulseline::FlushOutcome;
    /// use std::time::Duration;
    ///
    /// let client = pulseline::testing::test_client();
    /// client.track(pulseline::Track::new("user-42", "signup"))?;
    /// assert_eq!(client.flush(Duration::from_secs(5)), FlushOutcome::Flushed);
    /// # Ok::<(), pulseline::Error>(())
    /// ```
    pub fn flush(&self, timeout: Duration) -> FlushOutcome {
        futures::executor::block_on(self.flush_async(timeout))
    }

    /// [`flush`](Client::flush) for async callers: resolves when the flush ends, without
    /// blocking a thread. Works on any executor.
    pub fn flush_async(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = FlushOutcome> + Send + 'static {
        let receiver = if self.inner.shared.is_closed() {
            None
        } else {
            let (reply, receiver) = oneshot::channel();
            self.inner
                .shared
                .send_command(Command::Flush { timeout, reply });
            Some(receiver)
        };
        async move {
            match receiver {
                Some(receiver) => receiver.await.unwrap_or(FlushOutcome::Closed),
                None => FlushOutcome::Closed,
            }
        }
    }

    /// Stops capturing, delivers what it can within `timeout`, persists the rest to the disk
    /// buffer, and stops the worker. Later captures return [`Error::Closed`]; a second call
    /// returns a default (empty) outcome.
    ///
    /// Like [`flush`](Client::flush), it also delivers what earlier runs left in the disk
    /// buffer within `timeout`, so a short-lived program (a script, a cron job, a serverless
    /// handler) that only lives to call it still sends them.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let client = pulseline::testing::test_client();
    /// client.track(pulseline::Track::new("user-42", "signup"))?;
    /// let outcome = client.shutdown(Duration::from_secs(5));
    /// assert!(outcome.is_complete());
    /// assert!(matches!(client.track(pulseline::Track::new("user-42", "late")), Err(pulseline::Error::Closed)));
    /// # Ok::<(), pulseline::Error>(())
    /// ```
    pub fn shutdown(&self, timeout: Duration) -> ShutdownOutcome {
        self.inner.shutdown(timeout, true)
    }

    /// [`shutdown`](Client::shutdown) for async callers and for clients built with
    /// [`ClientBuilder::build_with_worker`], whose worker the caller is polling: resolves with
    /// the outcome without blocking a thread (it does not join a worker thread, which exits on
    /// its own once it has answered).
    pub fn shutdown_async(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = ShutdownOutcome> + Send + 'static {
        let receiver = self.inner.request_shutdown(timeout);
        async move {
            match receiver {
                Some(receiver) => receiver.await.unwrap_or_default(),
                None => ShutdownOutcome::default(),
            }
        }
    }

    /// Counts `messages` as dropped for `reason` and reports them to the `on_drop` hook, for
    /// bindings that drop a message after the capture call returned but before it reached the
    /// core (the Node SDK serializes at the end of the tick).
    ///
    /// ```
    /// use pulseline::DropReason;
    ///
    /// let client = pulseline::testing::test_client();
    /// client.record_dropped(DropReason::Unserializable, 2);
    /// assert_eq!(client.stats().dropped.unserializable, 2);
    /// ```
    pub fn record_dropped(&self, reason: DropReason, messages: u64) {
        self.inner.shared.reporter.dropped(reason, messages);
    }

    /// A snapshot of the delivery counters.
    pub fn stats(&self) -> Stats {
        self.inner.shared.reporter.counters.snapshot()
    }

    #[cfg_attr(not(feature = "worker-thread"), allow(dead_code))]
    pub(crate) fn recipe(&self) -> &crate::fork::Recipe {
        &self.inner.recipe
    }
}

impl Inner {
    /// Closes the client and tells the worker to shut down within `timeout`; `None` when it
    /// was closed already.
    fn request_shutdown(&self, timeout: Duration) -> Option<oneshot::Receiver<ShutdownOutcome>> {
        if !self.shared.close() {
            return None;
        }
        let (reply, receiver) = oneshot::channel();
        self.shared
            .send_command(Command::Shutdown { timeout, reply });
        Some(receiver)
    }

    fn shutdown(&self, timeout: Duration, wait: bool) -> ShutdownOutcome {
        let Some(receiver) = self.request_shutdown(timeout) else {
            return ShutdownOutcome::default();
        };
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if thread.is_none() && !wait {
            // A worker polled by the host's event loop cannot be waited for from here.
            return ShutdownOutcome::default();
        }
        let outcome = futures::executor::block_on(receiver).unwrap_or_default();
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!("pulseline worker thread panicked");
        }
        outcome
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Only a worker thread is waited for. Without the `worker-thread` feature the worker is
        // polled by the host's event loop (`build_with_worker`) and finishes on its own; not
        // reaching `shutdown`'s blocking wait here also keeps a thread-parking executor out of
        // the browser SDK's wasm.
        #[cfg(feature = "worker-thread")]
        self.shutdown(self.shutdown_timeout, false);
        #[cfg(not(feature = "worker-thread"))]
        drop(self.request_shutdown(self.shutdown_timeout));
    }
}

/// Builds a [`Client`]; every setting defaults as documented on [`ClientOptions`].
///
/// ```no_run
/// use pulseline::Client;
/// use std::time::Duration;
///
/// let client = Client::builder("plw_YOUR_WRITE_KEY")
///     .host("http://127.0.0.1:8080")
///     .flush_interval(Duration::from_millis(200))
///     .on_drop(|reason, n| eprintln!("dropped {n} events: {reason}"))
///     .build()?;
/// # Ok::<(), pulseline::Error>(())
/// ```
#[must_use]
pub struct ClientBuilder {
    write_key: String,
    options: ClientOptions,
    pub(crate) transport: Option<Arc<dyn Transport>>,
    pub(crate) clock: Option<Arc<dyn Clock>>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("options", &self.options)
            .field("transport", &self.transport.is_some())
            .field("clock", &self.clock.is_some())
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Replaces all options at once.
    pub fn options(mut self, options: ClientOptions) -> Self {
        self.options = options;
        self
    }

    /// See [`ClientOptions::host`].
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.options.host = host.into();
        self
    }

    /// See [`ClientOptions::library_name`] and [`ClientOptions::library_version`].
    pub fn library(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.options.library_name = name.into();
        self.options.library_version = version.into();
        self
    }

    /// See [`ClientOptions::flush_interval`].
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.options.flush_interval = interval;
        self
    }

    /// See [`ClientOptions::max_batch_messages`].
    pub fn max_batch_messages(mut self, messages: usize) -> Self {
        self.options.max_batch_messages = messages;
        self
    }

    /// See [`ClientOptions::max_batch_bytes`].
    pub fn max_batch_bytes(mut self, bytes: usize) -> Self {
        self.options.max_batch_bytes = bytes;
        self
    }

    /// See [`ClientOptions::max_buffered_events`] and [`ClientOptions::max_buffered_bytes`].
    pub fn max_buffered(mut self, events: usize, bytes: usize) -> Self {
        self.options.max_buffered_events = events;
        self.options.max_buffered_bytes = bytes;
        self
    }

    /// See [`ClientOptions::max_in_flight`].
    pub fn max_in_flight(mut self, requests: usize) -> Self {
        self.options.max_in_flight = requests;
        self
    }

    /// See [`ClientOptions::gzip`].
    pub fn gzip(mut self, gzip: bool) -> Self {
        self.options.gzip = gzip;
        self
    }

    /// See [`ClientOptions::request_timeout`].
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.options.request_timeout = timeout;
        self
    }

    /// See [`ClientOptions::retry_min_delay`] and [`ClientOptions::retry_max_delay`].
    pub fn retry_delays(mut self, min: Duration, max: Duration) -> Self {
        self.options.retry_min_delay = min;
        self.options.retry_max_delay = max;
        self
    }

    /// See [`ClientOptions::max_retry_elapsed`].
    pub fn max_retry_elapsed(mut self, budget: Duration) -> Self {
        self.options.max_retry_elapsed = budget;
        self
    }

    /// See [`ClientOptions::shutdown_timeout`].
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.options.shutdown_timeout = timeout;
        self
    }

    /// See [`ClientOptions::disk_buffer`]; `None` disables it.
    #[cfg(feature = "disk-buffer")]
    pub fn disk_buffer(mut self, disk: Option<crate::DiskBufferOptions>) -> Self {
        self.options.disk_buffer = disk;
        self
    }

    /// Enables the disk buffer (default settings) in `directory`.
    #[cfg(feature = "disk-buffer")]
    pub fn disk_buffer_directory(mut self, directory: impl Into<std::path::PathBuf>) -> Self {
        let mut disk = self.options.disk_buffer.take().unwrap_or_default();
        disk.directory = Some(directory.into());
        self.options.disk_buffer = Some(disk);
        self
    }

    /// See [`ClientOptions::on_drop`].
    pub fn on_drop(mut self, hook: impl Fn(DropReason, u64) + Send + Sync + 'static) -> Self {
        self.options.on_drop = Some(Arc::new(hook));
        self
    }

    /// See [`ClientOptions::on_error`].
    pub fn on_error(mut self, hook: impl Fn(&Error) + Send + Sync + 'static) -> Self {
        self.options.on_error = Some(Arc::new(hook));
        self
    }

    /// See [`ClientOptions::disabled`].
    pub fn disabled(mut self, disabled: bool) -> Self {
        self.options.disabled = disabled;
        self
    }

    /// Sends with `transport` instead of HTTP (tests, or a platform transport in a binding).
    pub fn transport(mut self, transport: impl Transport) -> Self {
        self.transport = Some(Arc::new(transport));
        self
    }

    /// Uses `clock` for every timestamp and wait (tests).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Builds the client and starts its worker thread.
    #[cfg(feature = "worker-thread")]
    pub fn build(self) -> Result<Client, Error> {
        let parts = self.into_parts()?;
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let ingredients = parts.worker;
        let thread = std::thread::Builder::new()
            .name("pulseline-worker".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(source) => {
                        let _ = ready_tx.send(Err(source));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let _ended = WorkerEnded(Arc::clone(&ingredients.shared));
                runtime.block_on(ingredients.into_worker().run());
            })
            .map_err(|e| Error::Config {
                reason: format!("cannot start the worker thread: {e}"),
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(Error::Config {
                    reason: format!("cannot start the worker runtime: {e}"),
                });
            }
            Err(_) => {
                return Err(Error::Config {
                    reason: "the worker thread exited during start-up".into(),
                });
            }
        }
        *parts
            .client
            .inner
            .thread
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(thread);
        Ok(parts.client)
    }

    /// Builds the client and returns its worker as a future for the caller to run on its own
    /// executor (e.g. `wasm_bindgen_futures::spawn_local` in a browser). The client's capture
    /// methods work at once; messages move when the future is polled.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let transport = pulseline::testing::RecordingTransport::new();
    /// let (client, worker) = pulseline::Client::builder("wk_test")
    ///     .transport(transport.clone())
    ///     .disk_buffer(None)
    ///     .build_with_worker()?;
    /// client.track(pulseline::Track::new("user-42", "signup"))?;
    /// // Any executor with a timer works; here, a current-thread tokio runtime.
    /// let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// let ((), outcome) = runtime.block_on(async {
    ///     futures::join!(worker, client.shutdown_async(Duration::from_secs(5)))
    /// });
    /// assert!(outcome.is_complete());
    /// assert_eq!(transport.delivered().len(), 1);
    /// # Ok::<(), pulseline::Error>(())
    /// ```
    pub fn build_with_worker(self) -> Result<(Client, WorkerFuture), Error> {
        let parts = self.into_parts()?;
        let worker = parts.worker.into_worker();
        Ok((parts.client, WorkerFuture(Box::pin(worker.run()))))
    }

    fn into_parts(self) -> Result<Parts, Error> {
        let recipe = crate::fork::Recipe {
            write_key: self.write_key.clone(),
            options: self.options.clone(),
            transport: self.transport.clone(),
            clock: self.clock.clone(),
        };
        let options = self.options;
        if options.flush_interval.is_zero() {
            return Err(Error::Config {
                reason: "flush_interval must be above zero".into(),
            });
        }
        if options.max_in_flight == 0 || options.max_buffered_events == 0 {
            return Err(Error::Config {
                reason: "max_in_flight and max_buffered_events must be above zero".into(),
            });
        }
        let transport: Arc<dyn Transport> = match self.transport {
            Some(transport) => transport,
            None => default_transport(&self.write_key, &options)?,
        };
        let clock: Arc<dyn Clock> = match self.clock {
            Some(clock) => clock,
            None => default_clock()?,
        };
        let reporter = Arc::new(Reporter {
            counters: Default::default(),
            on_drop: options.on_drop.clone(),
            on_error: options.on_error.clone(),
        });
        let max_batch_messages = options.max_batch_messages.clamp(1, MAX_BATCH_MESSAGES);
        let max_batch_bytes = options.max_batch_bytes.clamp(1, MAX_REQUEST_BYTES);
        let limits = Limits {
            max_events: options.max_buffered_events,
            max_bytes: options.max_buffered_bytes,
            wake_events: max_batch_messages,
            wake_bytes: max_batch_bytes,
        };
        let shared = Arc::new(Shared::new(Arc::clone(&reporter), limits));
        // From the OS, not `rand::random`'s thread-local ChaCha: same quality here, and the
        // browser build then carries no ChaCha code for this one number.
        let writer_id = {
            use rand::{Rng, SeedableRng};
            rand::rngs::SmallRng::from_os_rng().random::<u64>()
        };
        let spill_bytes = options.max_buffered_bytes / 2;
        #[cfg(feature = "disk-buffer")]
        // A disabled client must leave no trace on disk: no directory, no replay of old files.
        let disk = match options.disk_buffer.as_ref().filter(|_| !options.disabled) {
            Some(disk_options) => {
                // A replayed segment is loaded whole: keep it well within the memory bound.
                let mut disk_options = disk_options.clone();
                disk_options.segment_bytes = disk_options
                    .segment_bytes
                    .min((spill_bytes / 4).max(1) as u64);
                let directory = match &disk_options.directory {
                    Some(dir) => crate::disk_dir::prepare(dir, dir, false).map(|()| dir.clone()),
                    None => crate::disk_dir::default_directory(&options.host, &self.write_key),
                };
                let opened = directory.and_then(|directory| {
                    crate::disk::DiskBuffer::open(
                        directory,
                        disk_options,
                        writer_id,
                        Arc::clone(&reporter),
                    )
                });
                // Capture must keep working: without a usable buffer, events stay in memory.
                match opened {
                    Ok(disk) => Some(disk),
                    Err(e) => {
                        tracing::warn!(error = %e, "disk buffer unavailable; buffering in memory only");
                        reporter.error(&e);
                        None
                    }
                }
            }
            None => None,
        };
        let config = WorkerConfig {
            flush_interval: options.flush_interval,
            max_batch_messages,
            max_batch_bytes,
            max_in_flight: options.max_in_flight,
            gzip: options.gzip,
            retry: RetryPolicy {
                min_delay: options.retry_min_delay,
                max_delay: options.retry_max_delay.max(options.retry_min_delay),
                max_retry_after: options.max_retry_after,
                max_elapsed: options.max_retry_elapsed,
            },
            spill_bytes,
            replay_bytes: replay_bytes(&options, max_batch_bytes),
            writer_id,
        };
        let client = Client {
            inner: Arc::new(Inner {
                shared: Arc::clone(&shared),
                encoder: Encoder::new(&options.library_name, &options.library_version),
                clock: Arc::clone(&clock),
                shutdown_timeout: options.shutdown_timeout,
                disabled: options.disabled,
                recipe,
                thread: Mutex::new(None),
            }),
        };
        Ok(Parts {
            client,
            worker: WorkerIngredients {
                shared,
                transport,
                clock,
                config,
                #[cfg(feature = "disk-buffer")]
                disk,
            },
        })
    }
}

#[cfg(feature = "disk-buffer")]
fn replay_bytes(options: &ClientOptions, max_batch_bytes: usize) -> usize {
    let segment = options.disk_buffer.as_ref().map_or(0, |d| d.segment_bytes);
    let segment = (segment as usize).min((options.max_buffered_bytes / 8).max(1));
    segment + max_batch_bytes
}

#[cfg(not(feature = "disk-buffer"))]
fn replay_bytes(_options: &ClientOptions, max_batch_bytes: usize) -> usize {
    max_batch_bytes
}

struct Parts {
    client: Client,
    worker: WorkerIngredients,
}

/// Tells the shared state the worker thread ended, on return or while unwinding a panic.
#[cfg(feature = "worker-thread")]
struct WorkerEnded(Arc<Shared>);

#[cfg(feature = "worker-thread")]
impl Drop for WorkerEnded {
    fn drop(&mut self) {
        self.0.worker_ended();
    }
}

/// Everything the worker is made of; `Send`, so it can move to the worker thread, where the
/// (not `Send`) worker is assembled.
struct WorkerIngredients {
    shared: Arc<Shared>,
    transport: Arc<dyn Transport>,
    clock: Arc<dyn Clock>,
    config: WorkerConfig,
    #[cfg(feature = "disk-buffer")]
    disk: Option<crate::disk::DiskBuffer>,
}

impl WorkerIngredients {
    fn into_worker(self) -> Worker {
        Worker::new(
            self.shared,
            self.transport,
            self.clock,
            self.config,
            #[cfg(feature = "disk-buffer")]
            self.disk,
        )
    }
}

/// The delivery worker of a client built with [`ClientBuilder::build_with_worker`]; poll it to
/// completion (it ends after [`Client::shutdown`]).
#[must_use = "messages are only delivered while the worker is polled"]
pub struct WorkerFuture(Pin<Box<dyn Future<Output = ()>>>);

impl Future for WorkerFuture {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl std::fmt::Debug for WorkerFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkerFuture")
    }
}

#[cfg(feature = "native-http")]
fn default_transport(
    write_key: &str,
    options: &ClientOptions,
) -> Result<Arc<dyn Transport>, Error> {
    Ok(Arc::new(crate::HttpTransport::new(write_key, options)?))
}

#[cfg(not(feature = "native-http"))]
fn default_transport(
    _write_key: &str,
    _options: &ClientOptions,
) -> Result<Arc<dyn Transport>, Error> {
    Err(Error::Config {
        reason: "no transport: enable the `native-http` feature or call `transport()`".into(),
    })
}

#[cfg(feature = "worker-thread")]
fn default_clock() -> Result<Arc<dyn Clock>, Error> {
    Ok(Arc::new(crate::SystemClock))
}

#[cfg(not(feature = "worker-thread"))]
fn default_clock() -> Result<Arc<dyn Clock>, Error> {
    Err(Error::Config {
        reason: "no clock: enable the `worker-thread` feature or call `clock()`".into(),
    })
}
