//! `pulseline::Stats`, `FlushOutcome` and `ShutdownOutcome` as plain JavaScript objects.

use napi_derive::napi;

/// Dropped messages by reason (see `DropReason`).
#[napi(object)]
#[derive(Debug)]
pub struct Dropped {
    /// Memory was full and the disk buffer could not take the overflow.
    pub queue_full: i64,
    /// The collector stored the batch but refused these messages.
    pub rejected_by_server: i64,
    /// The collector refused the batch with a non-retryable 4xx.
    pub client_error: i64,
    /// A single message above the collector's request limit (413), or one that grew past
    /// 32 KiB between its capture call and the end of the tick.
    pub too_large: i64,
    /// The retry budget ran out and there was no disk buffer to keep the batch in.
    pub retries_exhausted: i64,
    /// Older than `diskBufferMaxAge` in the disk buffer.
    pub expired: i64,
    /// The disk buffer was full while persisting a batch that could not be sent.
    pub disk_full: i64,
    /// Neither delivered nor persisted when `shutdown()`'s timeout passed.
    pub shutdown: i64,
    /// Could not be serialized at the end of the tick: a value changed after the capture call
    /// (a cycle, a throwing getter or `toJSON`, a `BigInt` for `JSON.stringify`).
    pub unserializable: i64,
    /// Captured while the client was disabled or opted out (`optOut()`).
    pub opted_out: i64,
    /// All of the above.
    pub total: i64,
}

/// Delivery counters since the client was created.
#[napi(object)]
#[derive(Debug)]
pub struct Stats {
    /// Messages accepted by a capture call.
    pub captured: i64,
    /// Messages the collector acknowledged as stored.
    pub sent: i64,
    /// Batch attempts that were retries.
    pub retried: i64,
    /// Messages moved out of memory into the disk buffer.
    pub buffered_on_disk: i64,
    /// Messages read back from the disk buffer to be sent (this process's or an earlier one's).
    pub replayed_from_disk: i64,
    /// Request body bytes the collector acknowledged (after compression).
    pub bytes_sent: i64,
    /// Requests the collector acknowledged.
    pub batches_sent: i64,
    /// Disk-buffer records that failed their checksum and were skipped.
    pub corrupt_records: i64,
    /// Dropped messages by reason.
    pub dropped: Dropped,
}

fn n(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl From<pulseline::Stats> for Stats {
    fn from(s: pulseline::Stats) -> Self {
        let d = s.dropped;
        Stats {
            captured: n(s.captured),
            sent: n(s.sent),
            retried: n(s.retried),
            buffered_on_disk: n(s.buffered_on_disk),
            replayed_from_disk: n(s.replayed_from_disk),
            bytes_sent: n(s.bytes_sent),
            batches_sent: n(s.batches_sent),
            corrupt_records: n(s.corrupt_records),
            dropped: Dropped {
                queue_full: n(d.queue_full),
                rejected_by_server: n(d.rejected_by_server),
                client_error: n(d.client_error),
                too_large: n(d.too_large),
                retries_exhausted: n(d.retries_exhausted),
                expired: n(d.expired),
                disk_full: n(d.disk_full),
                shutdown: n(d.shutdown),
                unserializable: n(d.unserializable),
                opted_out: n(d.opted_out),
                total: n(d.total()),
            },
        }
    }
}

/// How `flush()` ended.
#[napi(object)]
#[derive(Debug)]
pub struct FlushResult {
    /// `flushed`: everything captured before the call was stored by the collector, and nothing
    /// was dropped meanwhile; `persisted`: what could not be delivered within the retry budget
    /// waits in the disk buffer; `dropped`: messages were dropped while the flush waited (the
    /// collector refused a batch with a 4xx or rejected messages, ...; see `stats().dropped`
    /// and `onDrop`) and will never be delivered; `timed_out`: the timeout passed, delivery
    /// continues in the background; `closed`: the client was shut down.
    #[napi(ts_type = "'flushed' | 'persisted' | 'dropped' | 'timed_out' | 'closed'")]
    pub status: String,
    /// Messages moved to the disk buffer (`persisted`), dropped (`dropped`) or not yet resolved
    /// (`timed_out`).
    pub messages: i64,
}

impl From<pulseline::FlushOutcome> for FlushResult {
    fn from(o: pulseline::FlushOutcome) -> Self {
        use pulseline::FlushOutcome as F;
        let (status, messages) = match o {
            F::Flushed => ("flushed", 0),
            F::Persisted { messages } => ("persisted", messages),
            F::Dropped { messages } => ("dropped", messages),
            F::TimedOut { pending } => ("timed_out", pending),
            _ => ("closed", 0),
        };
        FlushResult {
            status: status.into(),
            messages: n(messages),
        }
    }
}

/// How `shutdown()` ended.
#[napi(object)]
#[derive(Debug)]
pub struct ShutdownResult {
    /// Everything captured was delivered (or dropped for a counted, non-shutdown reason).
    pub complete: bool,
    /// The timeout passed before everything was delivered.
    pub timed_out: bool,
    /// Messages this client captured that shutdown left in the disk buffer; the next client on
    /// the same directory sends them (not counted: what a flush already reported, or an earlier
    /// run left).
    pub persisted: i64,
    /// Messages neither delivered nor persisted (counted as dropped `shutdown`).
    pub lost: i64,
}

impl From<pulseline::ShutdownOutcome> for ShutdownResult {
    fn from(o: pulseline::ShutdownOutcome) -> Self {
        ShutdownResult {
            complete: o.is_complete(),
            timed_out: o.timed_out,
            persisted: n(o.persisted),
            lost: n(o.lost),
        }
    }
}
