//! Delivery counters, readable at any time with [`Client::stats`](crate::Client::stats).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Why messages were dropped. Every drop is counted under exactly one reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// Memory was full and the disk buffer was disabled, full or failing (drop-newest policy:
    /// the new capture is refused with [`Error::QueueFull`](crate::Error::QueueFull)).
    QueueFull,
    /// The collector accepted the batch but refused this message (listed in `rejected`).
    RejectedByServer,
    /// The collector refused the batch with a non-retryable 4xx (400, 401, 403, 415, …).
    ClientError,
    /// The collector answered 413 for a batch of one message, or a binding found a message
    /// above [`MAX_MESSAGE_BYTES`](crate::limits::MAX_MESSAGE_BYTES) after its capture call
    /// had returned (see [`Client::record_dropped`](crate::Client::record_dropped)).
    TooLarge,
    /// The retry budget ran out and there was no disk buffer to keep the batch in.
    RetriesExhausted,
    /// The batch sat in the disk buffer longer than its maximum age.
    Expired,
    /// The disk buffer's byte bound was reached while persisting a batch that could not be sent.
    DiskFull,
    /// Shutdown's timeout passed with the message neither delivered nor persisted.
    Shutdown,
    /// A binding could not serialize a message it had already accepted (a value changed
    /// between the capture call and its deferred serialization); see
    /// [`Client::record_dropped`](crate::Client::record_dropped).
    Unserializable,
    /// Captured while the client was disabled ([`ClientOptions::disabled`](crate::ClientOptions::disabled))
    /// or opted out ([`Client::opt_out`](crate::Client::opt_out)): accepted and never sent.
    OptedOut,
}

impl DropReason {
    /// Every reason, in the order bindings list them (one home, so no binding's list drifts).
    pub const ALL: [DropReason; 10] = [
        DropReason::QueueFull,
        DropReason::RejectedByServer,
        DropReason::ClientError,
        DropReason::TooLarge,
        DropReason::RetriesExhausted,
        DropReason::Expired,
        DropReason::DiskFull,
        DropReason::Shutdown,
        DropReason::Unserializable,
        DropReason::OptedOut,
    ];

    /// A stable snake_case name, e.g. for metrics labels: `rejected_by_server`.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::RejectedByServer => "rejected_by_server",
            DropReason::ClientError => "client_error",
            DropReason::TooLarge => "too_large",
            DropReason::RetriesExhausted => "retries_exhausted",
            DropReason::Expired => "expired",
            DropReason::DiskFull => "disk_full",
            DropReason::Shutdown => "shutdown",
            DropReason::Unserializable => "unserializable",
            DropReason::OptedOut => "opted_out",
        }
    }
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Dropped message counts, one field per [`DropReason`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Dropped {
    /// See [`DropReason::QueueFull`].
    pub queue_full: u64,
    /// See [`DropReason::RejectedByServer`].
    pub rejected_by_server: u64,
    /// See [`DropReason::ClientError`].
    pub client_error: u64,
    /// See [`DropReason::TooLarge`].
    pub too_large: u64,
    /// See [`DropReason::RetriesExhausted`].
    pub retries_exhausted: u64,
    /// See [`DropReason::Expired`].
    pub expired: u64,
    /// See [`DropReason::DiskFull`].
    pub disk_full: u64,
    /// See [`DropReason::Shutdown`].
    pub shutdown: u64,
    /// See [`DropReason::Unserializable`].
    pub unserializable: u64,
    /// See [`DropReason::OptedOut`].
    pub opted_out: u64,
}

impl Dropped {
    /// All dropped messages, whatever the reason.
    pub fn total(&self) -> u64 {
        self.queue_full
            + self.rejected_by_server
            + self.client_error
            + self.too_large
            + self.retries_exhausted
            + self.expired
            + self.disk_full
            + self.shutdown
            + self.unserializable
            + self.opted_out
    }

    /// The count for one reason.
    pub fn get(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::QueueFull => self.queue_full,
            DropReason::RejectedByServer => self.rejected_by_server,
            DropReason::ClientError => self.client_error,
            DropReason::TooLarge => self.too_large,
            DropReason::RetriesExhausted => self.retries_exhausted,
            DropReason::Expired => self.expired,
            DropReason::DiskFull => self.disk_full,
            DropReason::Shutdown => self.shutdown,
            DropReason::Unserializable => self.unserializable,
            DropReason::OptedOut => self.opted_out,
        }
    }
}

/// A snapshot of the client's counters since it was built.
///
/// ```
/// let client = pulseline::testing::test_client();
/// client.track(pulseline::Track::new("user-42", "signup")).unwrap();
/// client.flush(std::time::Duration::from_secs(5));
/// let stats = client.stats();
/// assert_eq!((stats.captured, stats.sent, stats.dropped.total()), (1, 1, 0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Messages accepted by a capture call.
    pub captured: u64,
    /// Messages the collector acknowledged as stored.
    pub sent: u64,
    /// Batch attempts that were retries (a batch retried twice counts 2).
    pub retried: u64,
    /// Messages moved out of memory into the disk buffer (overflow, or retries exhausted).
    pub buffered_on_disk: u64,
    /// Messages read back from the disk buffer to be sent (this process's or an earlier one's).
    pub replayed_from_disk: u64,
    /// Dropped messages by reason.
    pub dropped: Dropped,
    /// Request body bytes the collector acknowledged (after compression).
    pub bytes_sent: u64,
    /// Requests the collector acknowledged.
    pub batches_sent: u64,
    /// Disk-buffer records that failed their checksum and were skipped (torn or corrupted
    /// writes; the number of messages in them is unknowable).
    pub corrupt_records: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) captured: AtomicU64,
    pub(crate) sent: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) buffered_on_disk: AtomicU64,
    pub(crate) replayed_from_disk: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) batches_sent: AtomicU64,
    pub(crate) corrupt_records: AtomicU64,
    dropped: [AtomicU64; DropReason::ALL.len()],
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub(crate) fn add_dropped(&self, reason: DropReason, n: u64) {
        self.dropped[reason as usize].fetch_add(n, Relaxed);
    }

    /// Messages dropped so far, for every reason: what a flush compares before and after.
    pub(crate) fn dropped_total(&self) -> u64 {
        self.dropped.iter().map(|c| c.load(Relaxed)).sum()
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let d = |r: DropReason| self.dropped[r as usize].load(Relaxed);
        Stats {
            captured: self.captured.load(Relaxed),
            sent: self.sent.load(Relaxed),
            retried: self.retried.load(Relaxed),
            buffered_on_disk: self.buffered_on_disk.load(Relaxed),
            replayed_from_disk: self.replayed_from_disk.load(Relaxed),
            bytes_sent: self.bytes_sent.load(Relaxed),
            batches_sent: self.batches_sent.load(Relaxed),
            corrupt_records: self.corrupt_records.load(Relaxed),
            dropped: Dropped {
                queue_full: d(DropReason::QueueFull),
                rejected_by_server: d(DropReason::RejectedByServer),
                client_error: d(DropReason::ClientError),
                too_large: d(DropReason::TooLarge),
                retries_exhausted: d(DropReason::RetriesExhausted),
                expired: d(DropReason::Expired),
                disk_full: d(DropReason::DiskFull),
                shutdown: d(DropReason::Shutdown),
                unserializable: d(DropReason::Unserializable),
                opted_out: d(DropReason::OptedOut),
            },
        }
    }
}
