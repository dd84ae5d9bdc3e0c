//! Delivery errors and drops, from the worker thread to Python.
//!
//! The core calls its hooks on the worker thread (drops of refused captures on the capturing
//! thread). Calling Python there would make the worker wait for the GIL, so the hooks only
//! queue a report; the package's reporting thread (`pulseline._lifecycle`) takes them with the
//! GIL released while it waits, logs them to `logging.getLogger("pulseline")` and calls the
//! user's `on_error` / `on_drop`.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
        mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel},
    },
    time::Duration,
};

use pulseline::ClientOptions;

use crate::error::OwnedError;

/// Reports waiting for the reporting thread; beyond this they are counted, not kept.
const CAPACITY: usize = 4096;

#[derive(Debug)]
pub(crate) enum Report {
    Error(OwnedError),
    Dropped { reason: &'static str, messages: u64 },
}

#[derive(Debug)]
pub(crate) struct Reports {
    sender: SyncSender<Report>,
    receiver: Mutex<Receiver<Report>>,
    /// Reports lost because the reporting thread fell behind (the drops are still counted in
    /// `stats()`).
    overflowed: AtomicU64,
}

impl Reports {
    pub(crate) fn new() -> Arc<Reports> {
        let (sender, receiver) = sync_channel(CAPACITY);
        Arc::new(Reports {
            sender,
            receiver: Mutex::new(receiver),
            overflowed: AtomicU64::new(0),
        })
    }

    /// Points the core's `on_error` and `on_drop` hooks at this queue.
    pub(crate) fn install(self: &Arc<Self>, options: &mut ClientOptions) {
        let reports = Arc::clone(self);
        options.on_error = Some(Arc::new(move |error: &pulseline::Error| {
            reports.push(Report::Error(error.into()));
        }));
        let reports = Arc::clone(self);
        options.on_drop = Some(Arc::new(move |reason: pulseline::DropReason, messages| {
            reports.push(Report::Dropped {
                reason: reason.as_str(),
                messages,
            });
        }));
    }

    fn push(&self, report: Report) {
        match self.sender.try_send(report) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.overflowed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Waits up to `timeout` for a report, then takes every report queued. Call without the GIL.
    pub(crate) fn take(&self, timeout: Duration) -> (Vec<Report>, u64) {
        let receiver = self.receiver.lock().unwrap_or_else(|p| p.into_inner());
        let mut reports = Vec::new();
        match receiver.recv_timeout(timeout) {
            Ok(report) => reports.push(report),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
        }
        reports.extend(receiver.try_iter());
        (reports, self.overflowed.swap(0, Ordering::Relaxed))
    }
}
