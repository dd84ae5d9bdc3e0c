//! Time behind a trait, so tests can drive time-based logic without sleeping.

use std::fmt::Debug;

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync + Debug + 'static {
    fn now(&self) -> DateTime<Utc>;

    /// Time since a fixed point that never runs backwards, unlike `now` when the wall clock is
    /// stepped: rate limiters count in it.
    fn monotonic(&self) -> std::time::Duration {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed()
    }
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told: tests drive months of quota and retention in no time.
#[derive(Debug)]
pub struct FakeClock {
    now: std::sync::Mutex<DateTime<Utc>>,
    start: DateTime<Utc>,
}

impl FakeClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: std::sync::Mutex::new(start),
            start,
        }
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves with `advance`, so rate limits replenish in fake time too.
    fn monotonic(&self) -> std::time::Duration {
        (self.now() - self.start).to_std().unwrap_or_default()
    }
}
