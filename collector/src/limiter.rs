//! Keyed rate limiters whose memory stays bounded.
//!
//! A governor keyed limiter keeps one entry per key it has ever seen until `retain_recent`
//! drops those that are back to a fresh state. Keys come from callers (client addresses,
//! e-mail addresses, write keys, webhook URLs), so [`KeyedLimiter`] prunes itself: at most once
//! per refill time (how long a used key takes to become fresh again), on the next check. The
//! entries held are then those touched within the last two refill times, so the scan a prune
//! makes is paid for by the checks of those two refill times.

use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{InsufficientCapacity, Quota, RateLimiter};

use crate::clock::Clock;

/// governor's clock, read from the application's [`Clock`] (its monotonic time), so a test's
/// fake clock drives rate limits as it drives everything else.
#[derive(Debug, Clone)]
pub struct LimiterClock(Arc<dyn Clock>);

impl LimiterClock {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self(clock)
    }
}

impl governor::clock::Clock for LimiterClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.0.monotonic()
    }
}

/// A keyed rate limiter that prunes keys back at a fresh state, so attacker-chosen keys cost
/// memory only for as long as they are limited.
#[derive(Debug)]
pub struct KeyedLimiter<K: Hash + Eq + Clone> {
    name: &'static str,
    inner: RateLimiter<K, DashMapStateStore<K>, LimiterClock, NoOpMiddleware<Duration>>,
    clock: LimiterClock,
    refill: Duration,
    /// Monotonic nanoseconds at which the next check prunes.
    next_prune: AtomicU64,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// `name` labels the limiter in `/metrics` (`pulseline_rate_limiter_keys`).
    pub fn new(name: &'static str, quota: Quota, clock: LimiterClock) -> Self {
        let refill = quota
            .replenish_interval()
            .saturating_mul(quota.burst_size().get());
        let first = nanos(governor::clock::Clock::now(&clock).saturating_add(refill));
        Self {
            name,
            inner: RateLimiter::dashmap_with_clock(quota, clock.clone()),
            clock,
            refill,
            next_prune: AtomicU64::new(first),
        }
    }

    /// Admits one request for `key`, or says how long to wait.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        self.prune_if_due();
        self.inner
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(self.now()))
    }

    /// Admits `n` units for `key`; the outer error means `n` exceeds the burst and never fits.
    pub fn check_n(
        &self,
        key: &K,
        n: NonZeroU32,
    ) -> Result<Result<(), Duration>, InsufficientCapacity> {
        self.prune_if_due();
        self.inner
            .check_key_n(key, n)
            .map(|r| r.map_err(|not_until| not_until.wait_time_from(self.now())))
    }

    /// Keys held now (each a few dozen bytes).
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Prunes if a refill time has passed since the last prune; only one of the callers that
    /// find it due does it. Returns whether this call pruned, so callers that keep per-key
    /// state of their own (webhook pacing) prune it at the same moment.
    pub fn prune_if_due(&self) -> bool {
        let now = self.now();
        let due = self.next_prune.load(Ordering::Relaxed);
        if nanos(now) < due {
            return false;
        }
        let next = nanos(now.saturating_add(self.refill));
        if self
            .next_prune
            .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        self.inner.retain_recent();
        self.inner.shrink_to_fit();
        true
    }

    fn now(&self) -> Duration {
        governor::clock::Clock::now(&self.clock)
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The `pulseline_rate_limiter_keys` gauge for `/metrics`, read from this instance's limiters
/// (not the process-wide recorder, which several instances in one process would share).
pub fn render_sizes(sizes: &[(&str, usize)]) -> String {
    let mut out = String::from(
        "# HELP pulseline_rate_limiter_keys Keys held in memory by a keyed rate limiter.\n\
         # TYPE pulseline_rate_limiter_keys gauge\n",
    );
    for (name, n) in sizes {
        out.push_str(&format!(
            "pulseline_rate_limiter_keys{{limiter=\"{name}\"}} {n}\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use chrono::Utc;

    #[test]
    fn keys_back_at_a_fresh_state_are_pruned_on_the_next_check_after_a_refill() {
        let clock = Arc::new(FakeClock::new(Utc::now()));
        let limiter: KeyedLimiter<u32> = KeyedLimiter::new(
            "t",
            Quota::per_minute(NonZeroU32::new(2).unwrap()),
            LimiterClock::new(clock.clone()),
        );
        for k in 0..100 {
            assert!(limiter.check(&k).is_ok());
        }
        assert_eq!(limiter.len(), 100);
        clock.advance(chrono::Duration::seconds(61));
        assert!(limiter.check(&1000).is_ok());
        assert_eq!(limiter.len(), 1, "only the key just used is left");
    }
}
