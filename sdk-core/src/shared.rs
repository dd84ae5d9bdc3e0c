//! State shared between capturing threads and the worker: the hand-off queue, the memory
//! accounting and the commands.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use crossbeam_queue::SegQueue;
use futures::channel::oneshot;
use tokio::sync::Notify;

use crate::{DropReason, Error, FlushOutcome, ShutdownOutcome, report::Reporter, stats::Counters};

pub(crate) enum Command {
    Flush {
        timeout: Duration,
        reply: oneshot::Sender<FlushOutcome>,
    },
    Shutdown {
        timeout: Duration,
        reply: oneshot::Sender<ShutdownOutcome>,
    },
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_events: usize,
    pub(crate) max_bytes: usize,
    /// Wake the worker when this many messages wait to be batched…
    pub(crate) wake_events: usize,
    /// …or this many bytes.
    pub(crate) wake_bytes: usize,
}

/// The capture side of the client. Capture is: two atomic adds to reserve memory, a lock-free
/// push, two atomic adds for the wake heuristic, and (once per batch) a wake-up of the worker.
pub(crate) struct Shared {
    queue: SegQueue<Vec<u8>>,
    /// Messages and bytes held in memory anywhere: queue, open batch, sealed batches.
    buffered_events: AtomicUsize,
    buffered_bytes: AtomicUsize,
    /// Messages and bytes pushed but not yet taken by the worker.
    unbatched_events: AtomicUsize,
    unbatched_bytes: AtomicUsize,
    pub(crate) wake: Notify,
    /// `None` once the worker has ended (see [`Shared::worker_ended`]).
    commands: Mutex<Option<Vec<Command>>>,
    closed: AtomicBool,
    /// Set by `Client::opt_out`: captures are accepted, counted and dropped.
    opted_out: AtomicBool,
    pub(crate) reporter: Arc<Reporter>,
    pub(crate) limits: Limits,
}

impl Shared {
    pub(crate) fn new(reporter: Arc<Reporter>, limits: Limits) -> Self {
        Shared {
            queue: SegQueue::new(),
            buffered_events: AtomicUsize::new(0),
            buffered_bytes: AtomicUsize::new(0),
            unbatched_events: AtomicUsize::new(0),
            unbatched_bytes: AtomicUsize::new(0),
            wake: Notify::new(),
            commands: Mutex::new(Some(Vec::new())),
            closed: AtomicBool::new(false),
            opted_out: AtomicBool::new(false),
            reporter,
            limits,
        }
    }

    /// Hands an encoded message (its wire bytes) to the worker, or refuses it if memory is full.
    pub(crate) fn enqueue(&self, message: Vec<u8>) -> Result<(), Error> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let len = message.len();
        if !self.reserve(1, len) {
            self.reporter.dropped(DropReason::QueueFull, 1);
            return Err(Error::QueueFull {
                max_events: self.limits.max_events,
                max_bytes: self.limits.max_bytes,
            });
        }
        // Counted before the push, so the worker's decrement after popping can never come first.
        let events = self.unbatched_events.fetch_add(1, Ordering::AcqRel) + 1;
        let bytes = self.unbatched_bytes.fetch_add(len, Ordering::AcqRel) + len;
        self.queue.push(message);
        Counters::add(&self.reporter.counters.captured, 1);
        // Wake once per batch's worth, on the crossing, not on every message: a wake-up is a
        // syscall, ten times the cost of the rest of capture. The worker's flush-interval tick
        // picks up anything below the thresholds.
        let crossed_events = events.is_multiple_of(self.limits.wake_events);
        let crossed_bytes = bytes >= self.limits.wake_bytes && bytes - len < self.limits.wake_bytes;
        if crossed_events || crossed_bytes {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Accepts a message captured while disabled or opted out: counted as captured and as
    /// dropped, never queued, so it costs no memory and reaches neither network nor disk.
    pub(crate) fn discard_opted_out(&self) -> Result<(), Error> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Counters::add(&self.reporter.counters.captured, 1);
        self.reporter.dropped(DropReason::OptedOut, 1);
        Ok(())
    }

    pub(crate) fn set_opted_out(&self, opted_out: bool) {
        self.opted_out.store(opted_out, Ordering::Release);
    }

    pub(crate) fn is_opted_out(&self) -> bool {
        self.opted_out.load(Ordering::Acquire)
    }

    /// Accounts for messages entering memory; false (and nothing reserved) if over a bound.
    pub(crate) fn reserve(&self, events: usize, bytes: usize) -> bool {
        let e = self.buffered_events.fetch_add(events, Ordering::AcqRel) + events;
        let b = self.buffered_bytes.fetch_add(bytes, Ordering::AcqRel) + bytes;
        if e > self.limits.max_events || b > self.limits.max_bytes {
            self.release(events, bytes);
            return false;
        }
        true
    }

    /// Accounts for messages coming back from disk: always succeeds, since the worker only
    /// replays when there is room, and refusing here would unbalance the later release.
    #[cfg_attr(not(feature = "disk-buffer"), allow(dead_code))]
    pub(crate) fn reserve_replayed(&self, events: usize, bytes: usize) {
        self.buffered_events.fetch_add(events, Ordering::AcqRel);
        self.buffered_bytes.fetch_add(bytes, Ordering::AcqRel);
    }

    /// Accounts for messages that left memory (delivered, dropped or moved to disk).
    pub(crate) fn release(&self, events: usize, bytes: usize) {
        self.buffered_events.fetch_sub(events, Ordering::AcqRel);
        self.buffered_bytes.fetch_sub(bytes, Ordering::AcqRel);
    }

    pub(crate) fn buffered(&self) -> (usize, usize) {
        (
            self.buffered_events.load(Ordering::Acquire),
            self.buffered_bytes.load(Ordering::Acquire),
        )
    }

    /// Pops up to `max` queued messages into `into`, returning how many.
    pub(crate) fn take(&self, max: usize, mut into: impl FnMut(Vec<u8>)) -> usize {
        let mut taken = 0;
        let mut bytes = 0;
        while taken < max {
            let Some(message) = self.queue.pop() else {
                break;
            };
            taken += 1;
            bytes += message.len();
            into(message);
        }
        self.unbatched_events.fetch_sub(taken, Ordering::AcqRel);
        self.unbatched_bytes.fetch_sub(bytes, Ordering::AcqRel);
        taken
    }

    pub(crate) fn has_queued(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Queues a command for the worker; once the worker has ended it is dropped at once, and
    /// with it the reply channel, so the caller waiting on the reply is answered.
    pub(crate) fn send_command(&self, command: Command) {
        if let Some(commands) = self
            .commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            commands.push(command);
        }
        self.wake.notify_one();
    }

    pub(crate) fn take_commands(&self) -> Vec<Command> {
        let mut commands = self.commands.lock().unwrap_or_else(|p| p.into_inner());
        commands.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Called when the worker thread ends, normally or by a panic (a bug, or a custom
    /// `Transport`/`Clock` that panicked): pending and later commands are dropped and the
    /// client is closed, so `flush`, `shutdown` and the client's drop return instead of
    /// waiting forever for a worker that is gone.
    #[cfg_attr(not(feature = "worker-thread"), allow(dead_code))]
    pub(crate) fn worker_ended(&self) {
        self.close();
        let pending = self
            .commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        drop(pending);
    }

    /// Refuses further captures. Returns whether this call closed it.
    pub(crate) fn close(&self) -> bool {
        !self.closed.swap(true, Ordering::AcqRel)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (events, bytes) = self.buffered();
        f.debug_struct("Shared")
            .field("buffered_events", &events)
            .field("buffered_bytes", &bytes)
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(max_events: usize, max_bytes: usize) -> Shared {
        Shared::new(
            Arc::default(),
            Limits {
                max_events,
                max_bytes,
                wake_events: 3,
                wake_bytes: 1_000,
            },
        )
    }

    fn msg(len: usize) -> Vec<u8> {
        vec![b'x'; len]
    }

    #[test]
    fn byte_bound_refuses_and_counts_without_leaking_reservations() {
        let s = shared(100, 250);
        s.enqueue(msg(100)).unwrap();
        s.enqueue(msg(100)).unwrap();
        assert!(matches!(
            s.enqueue(msg(51)),
            Err(Error::QueueFull { max_bytes: 250, .. })
        ));
        assert_eq!(s.buffered(), (2, 200), "a refused message reserves nothing");
        s.enqueue(msg(50)).unwrap();
        assert_eq!(s.buffered(), (3, 250));
        let snapshot = s.reporter.counters.snapshot();
        assert_eq!((snapshot.captured, snapshot.dropped.queue_full), (3, 1));
        let mut taken = Vec::new();
        assert_eq!(s.take(usize::MAX, |m| taken.push(m.len())), 3);
        assert_eq!(taken, vec![100, 100, 50]);
        s.release(3, 250);
        assert_eq!(s.buffered(), (0, 0));
        s.enqueue(msg(250)).unwrap();
    }

    #[test]
    fn event_bound_refuses() {
        let s = shared(2, usize::MAX);
        s.enqueue(msg(1)).unwrap();
        s.enqueue(msg(1)).unwrap();
        assert!(matches!(
            s.enqueue(msg(1)),
            Err(Error::QueueFull { max_events: 2, .. })
        ));
    }

    #[test]
    fn closed_refuses_captures() {
        let s = shared(10, 1_000);
        assert!(s.close());
        assert!(!s.close());
        assert!(matches!(s.enqueue(msg(1)), Err(Error::Closed)));
        assert_eq!(s.buffered(), (0, 0));
    }

    #[test]
    fn wakes_once_per_batch_worth_not_per_message() {
        let s = shared(100, 100_000);
        let woken = || {
            let n = s.wake.notified();
            futures::pin_mut!(n);
            futures::FutureExt::now_or_never(n).is_some()
        };
        s.enqueue(msg(10)).unwrap();
        s.enqueue(msg(10)).unwrap();
        assert!(!woken());
        s.enqueue(msg(10)).unwrap();
        assert!(woken(), "third message reaches wake_events");
        s.enqueue(msg(10)).unwrap();
        assert!(!woken());
        s.enqueue(msg(1_000)).unwrap();
        assert!(woken(), "crossing wake_bytes");
    }
}
