//! The delivery worker: batches, sends with several requests in flight, retries, spills to and
//! replays from the disk buffer, and answers flush and shutdown.
//!
//! It is one future that needs no particular runtime: the `worker-thread` feature polls it on a
//! private current-thread tokio runtime; a browser binding can poll it on the page's event loop.
//! Every wait goes through the injected [`Clock`], so tests drive minutes of backoff instantly.

use std::{
    collections::VecDeque,
    future::{Future, poll_fn},
    pin::Pin,
    sync::Arc,
    task::Poll,
    time::Duration,
};

use futures::{StreamExt, stream::FuturesUnordered};
use rand::{SeedableRng, rngs::SmallRng};
use web_time::Instant;

use crate::{
    BatchRequest, Clock, DropReason, Error, FlushOutcome, ShutdownOutcome, Transport,
    TransportResponse,
    batch::{Batch, BatchBuilder, BatchId},
    retry::{RetryPolicy, Verdict, classify},
    shared::{Command, Shared},
    stats::Counters,
};

#[cfg(feature = "disk-buffer")]
use crate::disk::{DiskBuffer, DiskRef};

/// Stand-in so the worker reads the same with the disk buffer compiled out.
#[cfg(not(feature = "disk-buffer"))]
#[derive(Debug, Clone, Copy)]
pub(crate) enum DiskRef {}

/// Settings the worker needs, resolved from [`ClientOptions`](crate::ClientOptions).
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "disk-buffer"), allow(dead_code))] // the spill and replay settings
pub(crate) struct WorkerConfig {
    pub(crate) flush_interval: Duration,
    pub(crate) max_batch_messages: usize,
    pub(crate) max_batch_bytes: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) gzip: bool,
    pub(crate) retry: RetryPolicy,
    /// Above this many buffered bytes, batches already on disk are released from memory.
    pub(crate) spill_bytes: usize,
    /// Memory a claimed segment can take: its size bound plus one record that crossed it.
    pub(crate) replay_bytes: usize,
    pub(crate) writer_id: u64,
}

/// A batch the worker holds in memory.
#[derive(Debug)]
struct Held {
    batch: Batch,
    disk: Option<DiskRef>,
    retries: u32,
    first_failure: Option<Instant>,
    ready_at: Instant,
    /// Whether a flush waits for it (false for batches replayed from another client).
    tracked: bool,
}

impl Held {
    /// Bytes and messages reserved in [`Shared`] for this batch: its messages without commas.
    fn footprint(&self) -> (usize, usize) {
        let n = self.batch.len();
        (n, self.batch.joined.len() + 1 - n)
    }
}

#[derive(Debug, Default)]
struct Pending {
    pieces: u32,
    messages: u64,
}

struct FlushWaiter {
    watermark: BatchId,
    deadline: Instant,
    parked_at_start: u64,
    dropped_at_start: u64,
    reply: futures::channel::oneshot::Sender<FlushOutcome>,
}

struct ShutdownWaiter {
    watermark: BatchId,
    deadline: Instant,
    parked_at_start: u64,
    reply: futures::channel::oneshot::Sender<ShutdownOutcome>,
}

/// A batch whose request is in flight.
struct Sending {
    slot: u64,
    held: Held,
    body_len: usize,
}

type InFlight = Pin<Box<dyn Future<Output = (u64, Result<TransportResponse, Error>)>>>;

/// Largest number of messages taken from the queue before the worker lets requests progress.
const TAKE_PER_TURN: usize = 8_192;

pub(crate) struct Worker {
    shared: Arc<Shared>,
    transport: Arc<dyn Transport>,
    clock: Arc<dyn Clock>,
    config: WorkerConfig,
    builder: BatchBuilder,
    next_batch_id: BatchId,
    next_tick: Instant,
    ready: VecDeque<Held>,
    delayed: Vec<Held>,
    in_flight: FuturesUnordered<InFlight>,
    /// Batches with a request in flight, by slot, with their body's size. A plain list: it
    /// holds at most `max_in_flight` entries, and a hash map would add its own code to the wasm.
    sending: Vec<Sending>,
    next_slot: u64,
    unresolved: Unresolved,
    parked_after_retries: u64,
    flushes: Vec<FlushWaiter>,
    shutdown: Option<ShutdownWaiter>,
    #[cfg(feature = "disk-buffer")]
    disk: Option<DiskBuffer>,
    next_replay: Instant,
    replay_backoff: Duration,
    /// The last look at the disk buffer found nothing left to replay (always true without one).
    #[cfg(feature = "disk-buffer")]
    disk_drained: bool,
    rng: SmallRng,
}

impl Worker {
    pub(crate) fn new(
        shared: Arc<Shared>,
        transport: Arc<dyn Transport>,
        clock: Arc<dyn Clock>,
        config: WorkerConfig,
        #[cfg(feature = "disk-buffer")] disk: Option<DiskBuffer>,
    ) -> Self {
        let now = clock.now();
        Worker {
            builder: BatchBuilder::new(config.max_batch_messages, config.max_batch_bytes),
            next_tick: later(now, config.flush_interval),
            next_replay: now,
            replay_backoff: config.retry.min_delay,
            #[cfg(feature = "disk-buffer")]
            disk_drained: disk.is_none(),
            rng: SmallRng::from_os_rng(),
            shared,
            transport,
            clock,
            config,
            next_batch_id: 0,
            ready: VecDeque::new(),
            delayed: Vec::new(),
            in_flight: FuturesUnordered::new(),
            sending: Vec::new(),
            next_slot: 0,
            unresolved: Unresolved::default(),
            parked_after_retries: 0,
            flushes: Vec::new(),
            shutdown: None,
            #[cfg(feature = "disk-buffer")]
            disk,
        }
    }

    fn counters(&self) -> &Counters {
        &self.shared.reporter.counters
    }

    pub(crate) async fn run(mut self) {
        loop {
            let now = self.clock.now();
            for command in self.shared.take_commands() {
                self.command(command, now);
            }
            let more_queued = self.take_queued();
            if now >= self.next_tick {
                self.take_all_queued();
                self.seal_open();
                self.next_tick = later(now, self.config.flush_interval);
            }
            self.promote_delayed(now);
            self.relieve_memory_pressure(now);
            self.replay(now);
            self.dispatch();
            self.answer_flushes(now);
            if self.finish_shutdown_if_due(now) {
                return;
            }
            if more_queued {
                // A burst is still arriving: let the runtime move requests along, then go on.
                yield_now().await;
                self.collect_completions();
                continue;
            }
            self.wait(now).await;
            self.collect_completions();
        }
    }

    /// Sleeps until a wake-up, a completed request or the next deadline.
    async fn wait(&mut self, now: Instant) {
        let mut deadline = self.next_tick;
        for held in &self.delayed {
            deadline = deadline.min(held.ready_at);
        }
        for flush in &self.flushes {
            deadline = deadline.min(flush.deadline);
        }
        if let Some(shutdown) = &self.shutdown {
            deadline = deadline.min(shutdown.deadline);
        }
        if self.replay_possible() {
            deadline = deadline.min(self.next_replay.max(now));
        }
        let shared = Arc::clone(&self.shared);
        let notified = shared.wake.notified();
        let mut notified = std::pin::pin!(notified);
        let mut sleep = self.clock.sleep_until(deadline);
        let in_flight = &mut self.in_flight;
        let mut completed = None;
        poll_fn(|cx| {
            if let Poll::Ready(Some(done)) = in_flight.poll_next_unpin(cx) {
                completed = Some(done);
                return Poll::Ready(());
            }
            if notified.as_mut().poll(cx).is_ready() || sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
            Poll::Pending
        })
        .await;
        if let Some((slot, result)) = completed {
            self.complete(slot, result);
        }
    }

    fn collect_completions(&mut self) {
        while let Some(Some((slot, result))) =
            futures::FutureExt::now_or_never(self.in_flight.next())
        {
            self.complete(slot, result);
        }
    }

    fn command(&mut self, command: Command, now: Instant) {
        self.take_all_queued();
        self.seal_open();
        match command {
            Command::Flush { timeout, reply } => self.flushes.push(FlushWaiter {
                watermark: self.next_batch_id,
                deadline: later(now, timeout),
                parked_at_start: self.parked_after_retries,
                dropped_at_start: self.counters().dropped_total(),
                reply,
            }),
            Command::Shutdown { timeout, reply } => {
                self.shutdown = Some(ShutdownWaiter {
                    watermark: self.next_batch_id,
                    deadline: later(now, timeout),
                    parked_at_start: self.parked_after_retries,
                    reply,
                });
            }
        }
    }

    /// Moves up to one turn's worth of queued messages into batches; true if more remain.
    fn take_queued(&mut self) -> bool {
        self.take_up_to(TAKE_PER_TURN);
        self.shared.has_queued()
    }

    fn take_all_queued(&mut self) {
        self.take_up_to(usize::MAX);
    }

    fn take_up_to(&mut self, max: usize) {
        let shared = Arc::clone(&self.shared);
        shared.take(max, |message| {
            if !self.builder.fits(message.len()) {
                self.seal_open();
            }
            self.builder.push(&message);
            if self.builder.is_full() {
                self.seal_open();
            }
        });
    }

    /// Seals the open batch, writes it ahead to disk, and queues it for sending.
    fn seal_open(&mut self) {
        let Some(batch) = self.builder.seal(self.next_batch_id) else {
            return;
        };
        self.next_batch_id += 1;
        self.unresolved.push(
            batch.id,
            Pending {
                pieces: 1,
                messages: batch.len() as u64,
            },
        );
        let disk = self.write_ahead(&batch);
        let now = self.clock.now();
        self.ready.push_back(Held {
            batch,
            disk,
            retries: 0,
            first_failure: None,
            ready_at: now,
            tracked: true,
        });
    }

    #[cfg(feature = "disk-buffer")]
    fn write_ahead(&mut self, batch: &Batch) -> Option<DiskRef> {
        let disk = self.disk.as_mut()?;
        match disk.append(batch, self.clock.system_time()) {
            Ok(disk_ref) => disk_ref,
            Err(error) => {
                tracing::warn!(%error, "disk buffer write failed; batch kept in memory only");
                self.shared.reporter.error(&error);
                None
            }
        }
    }

    #[cfg(not(feature = "disk-buffer"))]
    fn write_ahead(&mut self, _batch: &Batch) -> Option<DiskRef> {
        None
    }

    fn promote_delayed(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.delayed.len() {
            if self.delayed[i].ready_at <= now {
                let held = self.delayed.swap_remove(i);
                self.ready.push_back(held);
            } else {
                i += 1;
            }
        }
    }

    /// Starts requests for ready batches while there are free slots.
    fn dispatch(&mut self) {
        while self.in_flight.len() < self.config.max_in_flight {
            let Some(held) = self.ready.pop_front() else {
                break;
            };
            let gzip = self.config.gzip && cfg!(feature = "gzip");
            let body = held.batch.body(self.clock.system_time(), gzip);
            let body_len = body.len();
            let request = BatchRequest {
                body,
                gzip,
                messages: held.batch.len(),
            };
            let slot = self.next_slot;
            self.next_slot += 1;
            let send = self.transport.send(request);
            self.in_flight
                .push(Box::pin(async move { (slot, send.await) }));
            self.sending.push(Sending {
                slot,
                held,
                body_len,
            });
        }
    }

    fn complete(&mut self, slot: u64, result: Result<TransportResponse, Error>) {
        let Some(i) = self.sending.iter().position(|s| s.slot == slot) else {
            return;
        };
        let Sending {
            mut held, body_len, ..
        } = self.sending.swap_remove(i);
        let now = self.clock.now();
        let messages = held.batch.len();
        match classify(result, messages, self.clock.system_time()) {
            Verdict::Delivered { rejected } => {
                let refused = rejected.len().min(messages);
                let counters = self.counters();
                Counters::add(&counters.sent, (messages - refused) as u64);
                Counters::add(&counters.batches_sent, 1);
                Counters::add(&counters.bytes_sent, body_len as u64);
                for r in &rejected {
                    let message_id = r.message_id.clone().unwrap_or_else(|| {
                        r.index
                            .map(|i| format!("#{i} in batch"))
                            .unwrap_or_else(|| "(unknown)".into())
                    });
                    let error = Error::Rejected {
                        message_id,
                        reason: r.error.clone(),
                    };
                    tracing::warn!(%error, "message rejected by the collector");
                    self.shared.reporter.error(&error);
                }
                self.shared
                    .reporter
                    .dropped(DropReason::RejectedByServer, refused as u64);
                self.replay_backoff = self.config.retry.min_delay;
                self.resolve(held, true);
            }
            Verdict::Retry { retry_after, error } => {
                tracing::debug!(%error, retries = held.retries, "batch failed; will retry");
                self.shared.reporter.error(&error);
                let first_failure = *held.first_failure.get_or_insert(now);
                held.retries += 1;
                let delay = self.config.retry.next_delay(
                    held.retries,
                    first_failure,
                    now,
                    retry_after,
                    &mut self.rng,
                );
                match delay {
                    Some(delay) => {
                        let delay = match retry_after {
                            Some(_) => delay,
                            None => self.fit_deadline(now, delay),
                        };
                        Counters::add(&self.counters().retried, 1);
                        held.ready_at = later(now, delay);
                        self.delayed.push(held);
                    }
                    None => self.give_up(held, now),
                }
            }
            Verdict::Split { error } => {
                tracing::info!(%error, messages, "collector refused the batch as too large; splitting it");
                self.split(held);
            }
            Verdict::Drop { reason, error } => {
                tracing::warn!(%error, messages, %reason, "batch dropped");
                self.shared.reporter.error(&error);
                self.shared.reporter.dropped(reason, messages as u64);
                self.resolve(held, true);
            }
        }
    }

    /// While a flush or shutdown waits with a deadline, a backoff delay that would end after it
    /// is cut to half the time left, so a collector that comes back before the deadline still
    /// gets the batch: the attempts close in on the deadline, at most log2(timeout / min
    /// delay) of them. A collector's own `Retry-After` is never shortened (the caller checks).
    fn fit_deadline(&self, now: Instant, delay: Duration) -> Duration {
        let waiting = self.shutdown.iter().map(|s| s.deadline);
        let Some(deadline) = waiting.chain(self.flushes.iter().map(|f| f.deadline)).min() else {
            return delay;
        };
        let left = deadline.saturating_duration_since(now);
        // Saturating: the delays are the caller's options, up to `Duration::MAX`.
        if later(now, delay) <= deadline || left < self.config.retry.min_delay.saturating_mul(2) {
            delay
        } else {
            left / 2
        }
    }

    /// Replaces a batch the collector found too large by its two halves (which together hold
    /// exactly the parent's messages, so memory accounting is unchanged).
    fn split(&mut self, held: Held) {
        let tracked = held.tracked;
        let parent_disk = held.disk;
        let Some((left, right)) = held.batch.split() else {
            return;
        };
        if tracked && let Some(p) = self.unresolved.get_mut(left.id) {
            p.pieces += 1;
        }
        let now = self.clock.now();
        let mut pieces = Vec::with_capacity(2);
        for batch in [left, right] {
            let disk = self.write_ahead(&batch);
            pieces.push(Held {
                batch,
                disk,
                retries: 0,
                first_failure: None,
                ready_at: now,
                tracked,
            });
        }
        self.disk_done(parent_disk, true);
        for piece in pieces.into_iter().rev() {
            self.ready.push_front(piece);
        }
    }

    /// The retry budget ran out: keep the batch on disk for a later replay, or drop it.
    fn give_up(&mut self, held: Held, now: Instant) {
        let messages = held.batch.len() as u64;
        #[cfg(feature = "disk-buffer")]
        {
            let mut held = held;
            if held.disk.is_none() {
                held.disk = self.write_ahead(&held.batch);
            }
            if held.disk.is_some() {
                tracing::warn!(
                    messages,
                    "retry budget exhausted; batch kept in the disk buffer"
                );
                Counters::add(&self.counters().buffered_on_disk, messages);
                self.parked_after_retries += messages;
                self.resolve(held, false);
                // The collector has been failing for the whole budget: wait before replaying.
                self.next_replay = later(now, self.replay_backoff);
                self.replay_backoff = self
                    .replay_backoff
                    .saturating_mul(2)
                    .min(self.config.retry.max_delay);
                return;
            }
            let reason = if self.disk.is_some() {
                DropReason::DiskFull
            } else {
                DropReason::RetriesExhausted
            };
            tracing::warn!(messages, %reason, "retry budget exhausted; batch dropped");
            self.shared.reporter.dropped(reason, messages);
            self.resolve(held, true);
        }
        #[cfg(not(feature = "disk-buffer"))]
        {
            let _ = now;
            tracing::warn!(messages, "retry budget exhausted; batch dropped");
            self.shared
                .reporter
                .dropped(DropReason::RetriesExhausted, messages);
            self.resolve(held, true);
        }
    }

    /// The batch leaves memory for good: delivered or dropped (`done`), or parked on disk.
    fn resolve(&mut self, held: Held, done: bool) {
        let (events, bytes) = held.footprint();
        self.shared.release(events, bytes);
        self.disk_done(held.disk, done);
        if held.tracked {
            self.unresolved
                .resolve_piece(held.batch.id, held.batch.len() as u64);
        }
    }

    #[cfg(feature = "disk-buffer")]
    fn disk_done(&mut self, disk_ref: Option<DiskRef>, done: bool) {
        if let (Some(disk), Some(disk_ref)) = (self.disk.as_mut(), disk_ref) {
            if done {
                disk.ack(disk_ref)
            } else {
                disk.park(disk_ref)
            }
            if disk.take_released_parked() {
                // Parked batches just became replayable; the budget-exhausted path sets its own
                // later time after this.
                self.next_replay = self.next_replay.min(self.clock.now());
            }
        }
    }

    #[cfg(not(feature = "disk-buffer"))]
    fn disk_done(&mut self, _disk_ref: Option<DiskRef>, _done: bool) {}

    /// Above the spill mark, releases batches that are safe on disk from memory (newest first,
    /// so the oldest keep going out); the replay loop brings them back when there is room.
    #[cfg(feature = "disk-buffer")]
    fn relieve_memory_pressure(&mut self, now: Instant) {
        if self.disk.is_none() {
            return;
        }
        let mut released = false;
        while self.shared.buffered().1 > self.config.spill_bytes {
            let victim = match self.delayed.iter().rposition(|h| h.disk.is_some()) {
                Some(i) => self.delayed.swap_remove(i),
                None => match self.ready.iter().rposition(|h| h.disk.is_some()) {
                    Some(i) => match self.ready.remove(i) {
                        Some(held) => held,
                        None => break,
                    },
                    None => break,
                },
            };
            let (events, bytes) = victim.footprint();
            self.shared.release(events, bytes);
            Counters::add(&self.counters().buffered_on_disk, events as u64);
            self.disk_done(victim.disk, false);
            // Still unresolved: a flush waits for it to come back from disk and be delivered.
            released = true;
        }
        if released {
            self.next_replay = self.next_replay.min(now);
        }
    }

    #[cfg(not(feature = "disk-buffer"))]
    fn relieve_memory_pressure(&mut self, _now: Instant) {}

    /// Whether a replay could start now, time aside: a disk buffer, not shutting down, nothing
    /// else waiting to be sent, and room in memory for a whole segment. The things that change
    /// this (a completed request, a delivered batch) wake the worker by themselves, so the
    /// replay time only needs a timer while this holds.
    fn replay_possible(&self) -> bool {
        #[cfg(feature = "disk-buffer")]
        {
            if self.disk.is_none() || !self.ready.is_empty() {
                return false;
            }
            // A shutdown still replays (a short-lived program is often the only one to run
            // with the collector up), unless the collector refused batches since it began.
            if let Some(s) = &self.shutdown
                && self.parked_after_retries != s.parked_at_start
            {
                return false;
            }
            let (events, bytes) = self.shared.buffered();
            // A claimed segment comes into memory whole; it must fit below the spill mark, or
            // it would be released again at once.
            let room = self.config.spill_bytes.saturating_sub(bytes);
            room >= self.config.replay_bytes && events * 2 <= self.shared.limits.max_events
        }
        #[cfg(not(feature = "disk-buffer"))]
        {
            false
        }
    }

    /// Loads the oldest unclaimed segment's batches when there is room and nothing else to send.
    #[cfg(feature = "disk-buffer")]
    fn replay(&mut self, now: Instant) {
        if now < self.next_replay || !self.replay_possible() {
            return;
        }
        let Some(disk) = self.disk.as_mut() else {
            return;
        };
        let mut claimed = disk.claim_next(self.clock.system_time());
        if matches!(claimed, Ok(None)) && disk.active_has_parked() {
            disk.seal_active();
            claimed = disk.claim_next(self.clock.system_time());
        }
        match claimed {
            Ok(Some(batches)) => {
                self.disk_drained = false;
                let mut messages = 0u64;
                for replayed in batches {
                    let tracked = replayed.writer == self.config.writer_id
                        && self.unresolved.contains(replayed.batch.id);
                    let held = Held {
                        batch: replayed.batch,
                        disk: Some(replayed.disk),
                        retries: 0,
                        first_failure: None,
                        ready_at: now,
                        tracked,
                    };
                    let (e, b) = held.footprint();
                    self.shared.reserve_replayed(e, b);
                    messages += e as u64;
                    self.ready.push_back(held);
                }
                tracing::info!(messages, "replaying batches from the disk buffer");
                Counters::add(&self.counters().replayed_from_disk, messages);
            }
            // Nothing claimable: look again later for segments left by crashed processes.
            Ok(None) => {
                self.disk_drained = true;
                self.next_replay = now + Duration::from_secs(1);
            }
            Err(error) => {
                tracing::warn!(%error, "disk buffer scan failed");
                self.shared.reporter.error(&error);
                // Nothing a waiting flush could get from it now.
                self.disk_drained = true;
                self.next_replay = now + Duration::from_secs(5);
            }
        }
    }

    #[cfg(not(feature = "disk-buffer"))]
    fn replay(&mut self, _now: Instant) {}

    /// Whether a flush or shutdown, begun when `parked_at_start` messages were parked, still
    /// waits for replayed messages (written by an earlier run or another client), and how many
    /// of them are in memory. It waits while any are in memory, or while the disk may hold
    /// more and a replay could start, so a short-lived program delivers what earlier runs
    /// left, yet a steady stream of new captures (which keeps replays off) never holds a flush
    /// up. Once a batch was parked since it began, the collector is refusing: it stops waiting.
    #[cfg(feature = "disk-buffer")]
    fn replay_pending(&self, parked_at_start: u64) -> Option<u64> {
        if self.parked_after_retries != parked_at_start {
            return None;
        }
        let in_memory: u64 = (self.ready.iter().chain(&self.delayed))
            .chain(self.sending.iter().map(|s| &s.held))
            .filter(|h| !h.tracked)
            .map(|h| h.batch.len() as u64)
            .sum();
        let disk_may_hold_more = !self.disk_drained && self.replay_possible();
        (in_memory > 0 || disk_may_hold_more).then_some(in_memory)
    }

    /// Without a disk buffer nothing is replayed: every batch is tracked by a flush's watermark.
    #[cfg(not(feature = "disk-buffer"))]
    fn replay_pending(&self, _parked_at_start: u64) -> Option<u64> {
        None
    }

    fn answer_flushes(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.flushes.len() {
            let waiter = &self.flushes[i];
            let replay = self.replay_pending(waiter.parked_at_start);
            let pending = self.unresolved.pending_before(waiter.watermark);
            let parked = self.parked_after_retries;
            let outcome = if pending == 0 && replay.is_none() {
                // A loss outranks a delay: persisted messages are still sent later.
                let dropped = self
                    .counters()
                    .dropped_total()
                    .saturating_sub(waiter.dropped_at_start);
                match (dropped, parked - waiter.parked_at_start) {
                    (0, 0) => FlushOutcome::Flushed,
                    (0, messages) => FlushOutcome::Persisted { messages },
                    (messages, _) => FlushOutcome::Dropped { messages },
                }
            } else if now >= waiter.deadline {
                FlushOutcome::TimedOut {
                    pending: pending + replay.unwrap_or(0),
                }
            } else {
                i += 1;
                continue;
            };
            let waiter = self.flushes.swap_remove(i);
            let _ = waiter.reply.send(outcome);
        }
    }

    /// Once everything captured before shutdown is resolved, or at the deadline: persists what
    /// is left in memory, releases the disk buffer and answers. True when the worker should end.
    fn finish_shutdown_if_due(&mut self, now: Instant) -> bool {
        let Some(waiter) = &self.shutdown else {
            return false;
        };
        let replay = self.replay_pending(waiter.parked_at_start);
        let pending = self.unresolved.pending_before(waiter.watermark) + replay.unwrap_or(0);
        if (pending > 0 || replay.is_some()) && now < waiter.deadline {
            return false;
        }
        // Captures that raced with closing are taken too.
        self.take_all_queued();
        self.seal_open();
        let timed_out = pending > 0 || replay.is_some();
        let mut leftovers: Vec<Held> = self.ready.drain(..).collect();
        leftovers.append(&mut self.delayed);
        leftovers.extend(self.sending.drain(..).map(|s| s.held));
        self.in_flight = FuturesUnordered::new();
        let mut persisted = 0;
        let mut lost = 0;
        let mut tracked_in_memory = 0;
        for mut held in leftovers {
            let messages = held.batch.len() as u64;
            if held.tracked {
                tracked_in_memory += messages;
            } else if held.disk.is_some() {
                // Replayed from the disk buffer and still there: parked earlier (and reported
                // then) or left by an earlier run, so not this shutdown's to count.
                let (events, bytes) = held.footprint();
                self.shared.release(events, bytes);
                continue;
            }
            if held.disk.is_none() {
                held.disk = self.write_ahead(&held.batch);
            }
            if held.disk.is_some() {
                persisted += messages;
            } else {
                lost += messages;
                self.shared.reporter.dropped(DropReason::Shutdown, messages);
            }
            let (events, bytes) = held.footprint();
            self.shared.release(events, bytes);
        }
        // Batches released to disk under memory pressure and not replayed since.
        let unresolved_total = self.unresolved.pending_before(BatchId::MAX);
        persisted += unresolved_total.saturating_sub(tracked_in_memory);
        #[cfg(feature = "disk-buffer")]
        if let Some(disk) = self.disk.as_mut() {
            disk.close();
        }
        for flush in self.flushes.drain(..) {
            let _ = flush.reply.send(FlushOutcome::TimedOut { pending });
        }
        if let Some(waiter) = self.shutdown.take() {
            if persisted > 0 || lost > 0 {
                tracing::info!(persisted, lost, "shut down with undelivered messages");
            }
            let _ = waiter.reply.send(ShutdownOutcome {
                timed_out,
                persisted,
                lost,
            });
        }
        true
    }
}

/// `now + by`, saturating at a year from now: callers may pass `Duration::MAX` as "forever".
fn later(now: Instant, by: Duration) -> Instant {
    now.checked_add(by)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

/// The batches this client sealed that are not resolved yet (delivered, dropped or parked on
/// disk), by id: what flushes and shutdown wait for.
///
/// Ids are handed out in increasing order, so a deque kept sorted by pushing at the back does
/// what a `BTreeMap` would (lookups by binary search; batches mostly resolve oldest first, near
/// the front) without bringing the B-tree's code into the browser SDK's wasm.
#[derive(Default)]
struct Unresolved(VecDeque<(BatchId, Pending)>);

impl Unresolved {
    /// Adds a newly sealed batch; `id` is above every id held.
    fn push(&mut self, id: BatchId, pending: Pending) {
        debug_assert!(self.0.back().is_none_or(|(last, _)| *last < id));
        self.0.push_back((id, pending));
    }

    fn index(&self, id: BatchId) -> Option<usize> {
        self.0.binary_search_by_key(&id, |(k, _)| *k).ok()
    }

    #[cfg_attr(not(feature = "disk-buffer"), allow(dead_code))] // replays from disk ask
    fn contains(&self, id: BatchId) -> bool {
        self.index(id).is_some()
    }

    fn get_mut(&mut self, id: BatchId) -> Option<&mut Pending> {
        self.index(id).map(|i| &mut self.0[i].1)
    }

    /// Messages still unresolved in batches sealed before `watermark`.
    fn pending_before(&self, watermark: BatchId) -> u64 {
        self.0
            .iter()
            .take_while(|(id, _)| *id < watermark)
            .map(|(_, p)| p.messages)
            .sum()
    }

    /// One piece of batch `id` (the batch, or a half of it after a split) with `messages` is
    /// resolved; the batch is forgotten with its last piece.
    fn resolve_piece(&mut self, id: BatchId, messages: u64) {
        if let Some(i) = self.index(id) {
            let p = &mut self.0[i].1;
            p.pieces = p.pieces.saturating_sub(1);
            p.messages = p.messages.saturating_sub(messages);
            if p.pieces == 0 {
                self.0.remove(i);
            }
        }
    }
}

/// Returns `Pending` once, after scheduling its own wake-up: lets other tasks on the same
/// runtime (the HTTP connections) run between slices of a burst.
fn yield_now() -> impl Future<Output = ()> {
    let mut yielded = false;
    poll_fn(move |cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}
