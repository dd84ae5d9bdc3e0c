//! What the dashboard's handlers share: its settings, the login rate limiter, and the bounds on
//! password checks and live tails ([`super::guards`]).

use std::num::NonZeroU32;

use chrono::Duration;

use crate::config::DashboardConfig;

/// Limits login attempts per client address and per e-mail address.
pub type LoginLimiter = crate::limiter::KeyedLimiter<String>;

/// Password attempts a shared page admits per minute, per share and per client address.
pub const SHARE_PASSWORD_ATTEMPTS_PER_MINUTE: NonZeroU32 = NonZeroU32::new(5).unwrap();

/// What the dashboard's handlers share.
#[derive(Debug)]
pub struct DashboardState {
    pub config: DashboardConfig,
    pub login_limiter: LoginLimiter,
    /// The plan of projects created in the dashboard (PULSELINE_DEFAULT_PLAN).
    pub default_plan: String,
    pub password_checks: super::guards::PasswordChecks,
    pub tails: super::guards::TailSlots,
    /// Heavy queries' slots and time budget.
    pub queries: super::query_budget::HeavyQueries,
    /// Limits password attempts on shared pages, per share and per client address
    /// (`routes::dashboard::share`).
    pub share_passwords: LoginLimiter,
    /// Weekly digest previews per member (`DIGEST_PREVIEWS_PER_HOUR`).
    pub digest_previews: crate::limiter::KeyedLimiter<i64>,
}

impl DashboardState {
    pub fn new(
        config: DashboardConfig,
        default_plan: String,
        clock: crate::limiter::LimiterClock,
    ) -> Self {
        let per_minute =
            NonZeroU32::new(config.login_attempts_per_minute).unwrap_or(NonZeroU32::MIN);
        Self {
            login_limiter: LoginLimiter::new(
                "login",
                governor::Quota::per_minute(per_minute),
                clock.clone(),
            ),
            share_passwords: LoginLimiter::new(
                "share_password",
                governor::Quota::per_minute(SHARE_PASSWORD_ATTEMPTS_PER_MINUTE),
                clock.clone(),
            ),
            digest_previews: crate::limiter::KeyedLimiter::new(
                "digest_preview",
                governor::Quota::per_hour(
                    NonZeroU32::new(crate::reports::digest::DIGEST_PREVIEWS_PER_HOUR)
                        .unwrap_or(NonZeroU32::MIN),
                ),
                clock,
            ),
            password_checks: super::guards::PasswordChecks::new(&config),
            tails: super::guards::TailSlots::new(&config),
            queries: super::query_budget::HeavyQueries::new(&config),
            config,
            default_plan,
        }
    }

    pub fn session_ttl(&self) -> Duration {
        Duration::hours(i64::from(self.config.session_ttl_hours))
    }
}
