//! Bounds on what one dashboard request can hold: password checks (argon2, CPU and 19 MiB of
//! memory each) and live tails (a database poll every second for as long as they are open).
//! Anyone can ask for a login, and any logged-in user can open tails, so both are counted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::config::DashboardConfig;
use crate::error::ApiError;

/// How long a client refused for load is asked to wait.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Runs password checks on blocking threads, at most PULSELINE_PASSWORD_CHECKS at once.
#[derive(Debug)]
pub struct PasswordChecks {
    slots: Arc<Semaphore>,
    limit: usize,
    wait: Duration,
}

impl PasswordChecks {
    pub fn new(config: &DashboardConfig) -> Self {
        let limit = match config.password_checks {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        Self {
            slots: Arc::new(Semaphore::new(limit)),
            limit,
            wait: Duration::from_millis(config.password_check_wait_ms),
        }
    }

    /// Runs `check` once a slot is free within the configured wait; else 503 with Retry-After.
    pub async fn run<T: Send + 'static>(
        &self,
        check: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await
        {
            Ok(Ok(permit)) => permit,
            _ => {
                metrics::counter!("pulseline_password_checks_refused_total").increment(1);
                return Err(ApiError::Overloaded {
                    message: format!(
                        "too many logins or password changes in progress \
                         (PULSELINE_PASSWORD_CHECKS = {}): try again in a moment",
                        self.limit
                    ),
                    retry_after: RETRY_AFTER,
                });
            }
        };
        // The permit moves into the blocking task: a client that hangs up does not free the
        // slot before the check it started has finished.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            check()
        })
        .await
        .map_err(|e| ApiError::Internal(e.into()))
    }
}

/// Open live tails, per session and in all.
#[derive(Debug)]
pub struct TailSlots {
    per_session: usize,
    total: usize,
    open: Arc<Mutex<OpenTails>>,
}

#[derive(Debug, Default)]
struct OpenTails {
    by_session: HashMap<Vec<u8>, usize>,
    total: usize,
}

/// One open tail; dropping it (the stream ends or the client goes away) frees the slot.
#[derive(Debug)]
pub struct TailSlot {
    session: Vec<u8>,
    open: Arc<Mutex<OpenTails>>,
}

impl TailSlots {
    pub fn new(config: &DashboardConfig) -> Self {
        Self {
            per_session: config.tails_per_session,
            total: config.max_tails,
            open: Arc::default(),
        }
    }

    /// A slot for one more tail of the session with this token hash, or 429.
    pub fn acquire(&self, session: &[u8]) -> Result<TailSlot, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let mine = open.by_session.get(session).copied().unwrap_or(0);
        let refused = if mine >= self.per_session {
            Some(format!(
                "this login already has {mine} live tails open (PULSELINE_TAILS_PER_SESSION = \
                 {}): close another tab's live view first",
                self.per_session
            ))
        } else if open.total >= self.total {
            Some(format!(
                "this server has {} live tails open (PULSELINE_MAX_TAILS): try again later",
                self.total
            ))
        } else {
            None
        };
        if let Some(message) = refused {
            return Err(ApiError::TooManyRequests {
                message,
                retry_after: Duration::from_secs(5),
            });
        }
        *open.by_session.entry(session.to_vec()).or_default() += 1;
        open.total += 1;
        Ok(TailSlot {
            session: session.to_vec(),
            open: self.open.clone(),
        })
    }
}

impl Drop for TailSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_session.get_mut(&self.session) {
            *n -= 1;
            if *n == 0 {
                open.by_session.remove(&self.session);
            }
        }
    }
}
