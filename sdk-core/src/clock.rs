//! Time, injected so retry and batching timing can be tested without waiting.

use web_time::{Instant, SystemTime};

use crate::transport::BoxFuture;

/// The worker's source of time: `now` for deadlines, `system_time` for `sentAt` and message
/// timestamps, and `sleep_until` for every wait (flush interval, backoff, flush deadlines).
///
/// [`SystemClock`] is the real one; `testing::ManualClock` (feature `test-transport`)
/// jumps straight to each deadline so tests of minute-long backoffs finish instantly.
pub trait Clock: Send + Sync + 'static {
    /// Monotonic now.
    fn now(&self) -> Instant;
    /// Wall-clock now.
    fn system_time(&self) -> SystemTime;
    /// Resolves once [`now`](Clock::now) has reached `deadline`.
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()>;
}

/// The real clock, sleeping on the worker's tokio runtime.
///
/// ```
/// use pulseline::{Clock, SystemClock};
///
/// let before = SystemClock.now();
/// assert!(SystemClock.now() >= before);
/// ```
#[cfg(feature = "worker-thread")]
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[cfg(feature = "worker-thread")]
impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn system_time(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }
}
