//! Shutdowns of clients that JavaScript dropped without `shutdown()`.
//!
//! The garbage collector finalizes an abandoned client on the JavaScript thread; shutting it
//! down there would block the event loop for up to `shutdownTimeout` per client. Each one is
//! handed to a thread of its own instead, and an `atexit` handler waits for those still
//! running (each bounded by its own timeout), so a process that exits right after does not
//! cut their delivery short.
#![allow(unsafe_code)] // Registers the `atexit` handler.

use std::{
    sync::{Arc, Condvar, Mutex, Once, PoisonError},
    time::{Duration, Instant},
};

/// Running background shutdowns and the latest of their deadlines.
static RUNNING: Mutex<(usize, Option<Instant>)> = Mutex::new((0, None));
static DONE: Condvar = Condvar::new();
static AT_EXIT: Once = Once::new();

/// Margin over a shutdown's own timeout before the process stops waiting for it at exit.
const EXIT_MARGIN: Duration = Duration::from_secs(1);

unsafe extern "C" {
    fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
}

extern "C" fn wait_at_exit() {
    let mut running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
    while running.0 > 0 {
        let Some(deadline) = running.1 else { return };
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return;
        };
        running = DONE
            .wait_timeout(running, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

/// Shuts `core` down within `timeout` on a thread of its own; returns at once.
pub(crate) fn shut_down(core: Arc<pulseline::Client>, timeout: Duration) {
    AT_EXIT.call_once(|| {
        // SAFETY: registers a plain function; it only locks statics.
        unsafe { atexit(wait_at_exit) };
    });
    {
        let mut running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
        running.0 += 1;
        let deadline = Instant::now() + timeout + EXIT_MARGIN;
        running.1 = Some(running.1.map_or(deadline, |d| d.max(deadline)));
    }
    let finished = || {
        let mut running = RUNNING.lock().unwrap_or_else(PoisonError::into_inner);
        running.0 -= 1;
        DONE.notify_all();
    };
    let spawned = std::thread::Builder::new()
        .name("pulseline-shutdown".into())
        .spawn({
            let core = Arc::clone(&core);
            move || {
                core.shutdown(timeout);
                finished();
            }
        });
    if spawned.is_err() {
        // No thread to be had: ask the worker to shut down and leave it to finish alone.
        drop(core.shutdown_async(timeout));
        finished();
    }
}
