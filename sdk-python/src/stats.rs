//! `pulseline::Stats`, `FlushOutcome` and `ShutdownOutcome` as read-only Python objects.

use pulseline::DropReason;
use pyo3::{prelude::*, types::PyDict};

/// Delivery counters since the client was created (see `Client.stats()`).
#[pyclass(module = "pulseline._native", frozen, get_all)]
#[derive(Debug)]
pub(crate) struct Stats {
    captured: u64,
    sent: u64,
    retried: u64,
    buffered_on_disk: u64,
    replayed_from_disk: u64,
    bytes_sent: u64,
    batches_sent: u64,
    corrupt_records: u64,
    /// Dropped messages by reason (`queue_full`, `rejected_by_server`, ...), every reason listed.
    dropped: Py<PyDict>,
}

impl Stats {
    pub(crate) fn new(py: Python<'_>, s: pulseline::Stats) -> PyResult<Stats> {
        let dropped = PyDict::new(py);
        for reason in DropReason::ALL {
            dropped.set_item(reason.as_str(), s.dropped.get(reason))?;
        }
        Ok(Stats {
            captured: s.captured,
            sent: s.sent,
            retried: s.retried,
            buffered_on_disk: s.buffered_on_disk,
            replayed_from_disk: s.replayed_from_disk,
            bytes_sent: s.bytes_sent,
            batches_sent: s.batches_sent,
            corrupt_records: s.corrupt_records,
            dropped: dropped.unbind(),
        })
    }
}

#[pymethods]
impl Stats {
    /// All dropped messages, whatever the reason.
    #[getter]
    fn dropped_total(&self, py: Python<'_>) -> PyResult<u64> {
        let mut total = 0;
        for (_, n) in self.dropped.bind(py).iter() {
            total += n.extract::<u64>()?;
        }
        Ok(total)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Stats(captured={}, sent={}, retried={}, buffered_on_disk={}, replayed_from_disk={}, \
             bytes_sent={}, batches_sent={}, corrupt_records={}, dropped={})",
            self.captured,
            self.sent,
            self.retried,
            self.buffered_on_disk,
            self.replayed_from_disk,
            self.bytes_sent,
            self.batches_sent,
            self.corrupt_records,
            self.dropped
                .bind(py)
                .repr()
                .map(|r| r.to_string())
                .unwrap_or_default(),
        )
    }
}

/// How a `flush()` ended. Truthy when every message was delivered or persisted to the disk
/// buffer; falsy when some were dropped (`"dropped"`), the timeout passed or the client was closed.
#[pyclass(module = "pulseline._native", frozen, get_all)]
#[derive(Debug)]
pub(crate) struct FlushOutcome {
    /// `"flushed"`, `"persisted"`, `"dropped"`, `"timed_out"` or `"closed"`.
    status: &'static str,
    /// Messages moved to the disk buffer (`persisted`), dropped (`dropped`) or still pending
    /// (`timed_out`).
    messages: u64,
}

impl From<pulseline::FlushOutcome> for FlushOutcome {
    fn from(outcome: pulseline::FlushOutcome) -> Self {
        use pulseline::FlushOutcome as F;
        let (status, messages) = match outcome {
            F::Flushed => ("flushed", 0),
            F::Persisted { messages } => ("persisted", messages),
            F::Dropped { messages } => ("dropped", messages),
            F::TimedOut { pending } => ("timed_out", pending),
            _ => ("closed", 0),
        };
        FlushOutcome { status, messages }
    }
}

impl FlushOutcome {
    pub(crate) fn timed_out(&self) -> bool {
        self.status == "timed_out"
    }
}

#[pymethods]
impl FlushOutcome {
    fn __bool__(&self) -> bool {
        matches!(self.status, "flushed" | "persisted")
    }

    fn __repr__(&self) -> String {
        format!(
            "FlushOutcome(status={:?}, messages={})",
            self.status, self.messages
        )
    }
}

/// How a `shutdown()` ended. Truthy when everything captured was delivered.
#[pyclass(module = "pulseline._native", frozen, get_all)]
#[derive(Debug)]
pub(crate) struct ShutdownOutcome {
    /// The timeout passed before everything was delivered.
    timed_out: bool,
    /// Messages this client captured that shutdown left in the disk buffer; the next client on
    /// the same directory sends them (not counted: what a flush already reported, or an earlier
    /// run left).
    persisted: u64,
    /// Messages neither delivered nor persisted (counted as dropped, reason `shutdown`).
    lost: u64,
}

impl From<pulseline::ShutdownOutcome> for ShutdownOutcome {
    fn from(o: pulseline::ShutdownOutcome) -> Self {
        ShutdownOutcome {
            timed_out: o.timed_out,
            persisted: o.persisted,
            lost: o.lost,
        }
    }
}

#[pymethods]
impl ShutdownOutcome {
    /// Nothing timed out, was persisted or was lost.
    #[getter]
    fn complete(&self) -> bool {
        !self.timed_out && self.persisted == 0 && self.lost == 0
    }

    fn __bool__(&self) -> bool {
        self.complete()
    }

    fn __repr__(&self) -> String {
        format!(
            "ShutdownOutcome(timed_out={}, persisted={}, lost={})",
            if self.timed_out { "True" } else { "False" },
            self.persisted,
            self.lost
        )
    }
}
