//! Counting and reporting drops and errors, shared by the capture path, the worker and the disk
//! buffer so every drop is counted exactly once and reaches the hooks.

#[cfg(panic = "unwind")]
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::{DropReason, Error, stats::Counters};

/// Called with the reason and the number of messages dropped.
pub type DropHook = Arc<dyn Fn(DropReason, u64) + Send + Sync>;
/// Called with each delivery error (on the worker thread; keep it quick).
pub type ErrorHook = Arc<dyn Fn(&Error) + Send + Sync>;

#[derive(Default)]
pub(crate) struct Reporter {
    pub(crate) counters: Counters,
    pub(crate) on_drop: Option<DropHook>,
    pub(crate) on_error: Option<ErrorHook>,
}

impl Reporter {
    pub(crate) fn dropped(&self, reason: DropReason, messages: u64) {
        if messages == 0 {
            return;
        }
        self.counters.add_dropped(reason, messages);
        if let Some(hook) = &self.on_drop {
            guard("on_drop", || hook(reason, messages));
        }
    }

    pub(crate) fn error(&self, error: &Error) {
        if let Some(hook) = &self.on_error {
            guard("on_error", || hook(error));
        }
    }
}

/// Runs a user hook; a panic in it is logged, not propagated: the hooks run on the worker
/// thread, and a hook's bug must not stop delivery.
#[cfg(panic = "unwind")]
fn guard(name: &str, hook: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(hook)).is_err() {
        tracing::error!("pulseline: the {name} hook panicked; delivery continues");
    }
}

/// A panic aborts (the browser SDK's wasm): there is nothing to catch, so the guard and its
/// message stay out of the binary.
#[cfg(not(panic = "unwind"))]
fn guard(_name: &str, hook: impl FnOnce()) {
    hook();
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("counters", &self.counters)
            .field("on_drop", &self.on_drop.is_some())
            .field("on_error", &self.on_error.is_some())
            .finish()
    }
}
