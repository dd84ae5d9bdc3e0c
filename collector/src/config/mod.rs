//! Configuration: every setting has a flag, an environment variable and a documented default.

mod delivery;
mod proxy;
mod web;

pub use delivery::DeliveryConfig;
#[cfg(test)]
pub(crate) use proxy::parse_proxy;
pub use proxy::{ForwardedHeader, ProxyConfig};
use std::net::SocketAddr;
use std::path::Path;
pub use web::WebConfig;

use clap::{Args, ValueEnum};

/// Default data location: a SQLite file under `./pulseline-data/`, created on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://pulseline-data/pulseline.db";

/// Named ingest limits. Each is documented in the README's configuration table.
#[derive(Debug, Clone, Args)]
pub struct Limits {
    /// Largest single message, in bytes of JSON. Larger messages are rejected one by one.
    #[arg(long, env = "PULSELINE_MAX_MESSAGE_BYTES", default_value_t = 32 * 1024)]
    pub max_message_bytes: usize,
    /// Largest request body, in bytes after gzip decompression (and before it). Larger → 413.
    #[arg(long, env = "PULSELINE_MAX_REQUEST_BYTES", default_value_t = 512 * 1024)]
    pub max_request_bytes: usize,
    /// Most messages in one batch. More → 413.
    #[arg(long, env = "PULSELINE_MAX_BATCH_MESSAGES", default_value_t = 2_500)]
    pub max_batch_messages: usize,
    /// Events accepted but not yet committed. Beyond it ingest answers 503 with Retry-After.
    #[arg(long, env = "PULSELINE_MAX_QUEUED_EVENTS", default_value_t = 200_000)]
    pub max_queued_events: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 32 * 1024,
            max_request_bytes: 512 * 1024,
            max_batch_messages: 2_500,
            max_queued_events: 200_000,
        }
    }
}

/// How hard SQLite works to keep a commit through a power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum SqliteSynchronous {
    /// fsync the WAL on every commit: an acknowledged batch survives power loss. Group commit
    /// amortises the fsync over every request waiting at that moment.
    #[default]
    Full,
    /// fsync at checkpoints only: survives a crash or kill of the collector, not a power loss.
    Normal,
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "PULSELINE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where data lives: `sqlite://path/to/file.db` (the default) or
    /// `postgres://user:pass@host:5432/db` (for several replicas).
    #[arg(long, env = "PULSELINE_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// SQLite durability of each commit.
    #[arg(
        long,
        env = "PULSELINE_SQLITE_SYNCHRONOUS",
        value_enum,
        default_value_t
    )]
    pub sqlite_synchronous: SqliteSynchronous,
    /// Plan of projects created without one (`unlimited`, `free`, `pro`, `agency`, or your own).
    #[arg(long, env = "PULSELINE_DEFAULT_PLAN", default_value = "unlimited")]
    pub default_plan: String,
    /// Events per second one write key may send, sustained (0: no limit). Per replica.
    #[arg(long, env = "PULSELINE_RATE_LIMIT_EVENTS_PER_SEC", default_value_t = 0)]
    pub rate_limit_events_per_sec: u32,
    /// Events one write key may send at once above the sustained rate (at least the batch
    /// limit; 0: twice the rate or the batch limit, whichever is larger).
    #[arg(long, env = "PULSELINE_RATE_LIMIT_BURST", default_value_t = 0)]
    pub rate_limit_burst: u32,
    /// Seconds between maintenance passes (retention, partitions).
    #[arg(
        long,
        env = "PULSELINE_MAINTENANCE_INTERVAL_SECS",
        default_value_t = 3600
    )]
    pub maintenance_interval_secs: u64,
    /// Seconds between alert rule evaluation passes (0: this process evaluates no rules).
    #[arg(long, env = "PULSELINE_RULES_INTERVAL_SECS", default_value_t = 30)]
    pub rules_interval_secs: u64,
    /// Milliseconds between weekly digest passes: each records the digests that are due and
    /// sends due digest e-mails (0: this process sends no digests). docs/digest.md.
    #[arg(long, env = "PULSELINE_DIGEST_INTERVAL_MS", default_value_t = 60_000)]
    pub digest_interval_ms: u64,
    /// Seconds to let in-flight requests and commits finish after SIGTERM/SIGINT.
    #[arg(long, env = "PULSELINE_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,
    /// Directory of a built browser SDK to serve at /sdk/v1/ instead of the one embedded in
    /// this binary (loader.js, pulseline.js, pulseline_bg.wasm, web-vitals.js, pulseline.d.ts,
    /// each optionally with .br and .gz, as `sdk-wasm/build.sh` writes them). Read at startup.
    #[arg(long, env = "PULSELINE_SDK_DIR")]
    pub sdk_dir: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub limits: Limits,
    #[command(flatten)]
    pub delivery: DeliveryConfig,
    #[command(flatten)]
    pub dashboard: DashboardConfig,
    #[command(flatten)]
    pub proxy: ProxyConfig,
    #[command(flatten)]
    pub ops: OpsConfig,
    #[command(flatten)]
    pub web: WebConfig,
}

/// The hosted dashboard's settings (README, "Dashboard").
#[derive(Debug, Clone, Args)]
pub struct DashboardConfig {
    /// The URL people open the dashboard at, e.g. `https://pulse.example.com`. An `https` URL
    /// makes session cookies `Secure`; its origin is accepted for state-changing requests.
    #[arg(long, env = "PULSELINE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Hours a login lasts; after it the session is refused and removed.
    #[arg(long, env = "PULSELINE_SESSION_TTL_HOURS", default_value_t = 168)]
    pub session_ttl_hours: u32,
    /// Login attempts per minute allowed per client address and per e-mail address.
    #[arg(
        long,
        env = "PULSELINE_LOGIN_ATTEMPTS_PER_MINUTE",
        default_value_t = 10
    )]
    pub login_attempts_per_minute: u32,
    /// E-mail (login name) of the first admin, created with a one-time password on first start.
    #[arg(long, env = "PULSELINE_ADMIN_EMAIL", default_value = "admin@localhost")]
    pub admin_email: String,
    /// Most day rollup rows an unfiltered Web page view may read (beyond it the query asks for
    /// a shorter period), and the cap of a filtered Web view's visits when below 100,000.
    #[arg(
        long,
        env = "PULSELINE_DASHBOARD_MAX_SCAN_EVENTS",
        default_value_t = 2_000_000
    )]
    pub max_scan_events: u32,
    /// Password checks (argon2, 19 MiB each) running at once: logins and password changes.
    /// 0: one per CPU. Beyond it a request waits PULSELINE_PASSWORD_CHECK_WAIT_MS, then 503.
    #[arg(long, env = "PULSELINE_PASSWORD_CHECKS", default_value_t = 0)]
    pub password_checks: usize,
    /// Milliseconds a login or password change waits for a free password check before 503.
    #[arg(
        long,
        env = "PULSELINE_PASSWORD_CHECK_WAIT_MS",
        default_value_t = 2_000
    )]
    pub password_check_wait_ms: u64,
    /// Live tails (`/tail`, a database poll every second) one login may hold open at once.
    #[arg(long, env = "PULSELINE_TAILS_PER_SESSION", default_value_t = 8)]
    pub tails_per_session: usize,
    /// Live tails open at once on this collector, all users together.
    #[arg(long, env = "PULSELINE_MAX_TAILS", default_value_t = 200)]
    pub max_tails: usize,
    /// Most events one Explore answer reads from the raw events (a property filter or group-by,
    /// a unique count, a sub-hour bucket, the events table). It reads newest first and answers
    /// for the buckets it covered, saying from when; nothing is refused.
    #[arg(
        long,
        env = "PULSELINE_DASHBOARD_SCAN_ROWS",
        default_value_t = 2_000_000,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub scan_rows: u32,
    /// Milliseconds of database time one heavy dashboard query may take (Explore beyond the
    /// rollups, funnels, retention, churn, sessions, Web Vitals, the Web page, rule previews,
    /// their CSV and shared-link versions). Its statements are stopped when it is spent and it
    /// answers 503, asking for a shorter range or fewer filters.
    #[arg(
        long,
        env = "PULSELINE_DASHBOARD_QUERY_TIMEOUT_MS",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub query_timeout_ms: u64,
    /// Heavy dashboard queries running at once for one project. Beyond it a query waits
    /// PULSELINE_DASHBOARD_QUERY_WAIT_MS for a slot, then 503.
    #[arg(
        long,
        env = "PULSELINE_DASHBOARD_QUERIES_PER_PROJECT",
        default_value_t = 2,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub queries_per_project: u32,
    /// Heavy dashboard queries running at once on this collector, all projects together.
    /// 0: one per CPU.
    #[arg(long, env = "PULSELINE_DASHBOARD_QUERIES", default_value_t = 0)]
    pub queries: u32,
    /// Milliseconds a heavy dashboard query waits for a slot before 503.
    #[arg(
        long,
        env = "PULSELINE_DASHBOARD_QUERY_WAIT_MS",
        default_value_t = 1_000
    )]
    pub query_wait_ms: u64,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        Self {
            public_url: None,
            session_ttl_hours: 168,
            login_attempts_per_minute: 10,
            admin_email: "admin@localhost".to_owned(),
            max_scan_events: 2_000_000,
            password_checks: 0,
            password_check_wait_ms: 2_000,
            tails_per_session: 8,
            max_tails: 200,
            scan_rows: 2_000_000,
            query_timeout_ms: 10_000,
            queries_per_project: 2,
            queries: 0,
            query_wait_ms: 1_000,
        }
    }
}

impl Config {
    /// A fresh SQLite database in `dir`, listening on an ephemeral loopback port.
    pub fn for_tests(dir: &Path) -> Self {
        Self::for_tests_with_database(format!("sqlite://{}", dir.join("pulseline.db").display()))
    }

    /// Test settings on the given database (e.g. a fresh PostgreSQL database).
    pub fn for_tests_with_database(database_url: String) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url,
            sqlite_synchronous: SqliteSynchronous::Normal,
            shutdown_grace_secs: 5,
            default_plan: "unlimited".to_owned(),
            rate_limit_events_per_sec: 0,
            rate_limit_burst: 0,
            maintenance_interval_secs: 3600,
            // Tests drive rule passes themselves (`alerting::rules::run_once`) at fake times.
            rules_interval_secs: 0,
            // Tests set the fake clock past a Monday and wait for the digest.
            digest_interval_ms: 100,
            limits: Limits::default(),
            sdk_dir: None,
            delivery: DeliveryConfig {
                // Tests deliver to stand-in servers on 127.0.0.1.
                allow_private_webhooks: true,
                ..Default::default()
            },
            dashboard: DashboardConfig {
                // Test machines run many collectors at once on debug builds: a correctness
                // test must not trip the production budget. Budget tests set their own.
                query_timeout_ms: 600_000,
                ..Default::default()
            },
            proxy: Default::default(),
            ops: Default::default(),
            web: Default::default(),
        }
    }
}

/// Where operations endpoints are served (README, "Operations listener").
#[derive(Clone, Default, Args)]
pub struct OpsConfig {
    /// A second address serving `/metrics`, `/healthz` and `/readyz` (e.g. `127.0.0.1:9090`).
    /// When set, `/metrics` is no longer served on PULSELINE_LISTEN.
    #[arg(long, env = "PULSELINE_OPS_LISTEN")]
    pub ops_listen: Option<SocketAddr>,
    /// A token `/metrics` requires as `Authorization: Bearer TOKEN`, on whichever listener.
    #[arg(long, env = "PULSELINE_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
}

/// Without the token: a logged or printed configuration must not leak it.
impl std::fmt::Debug for OpsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpsConfig")
            .field("ops_listen", &self.ops_listen)
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "…"))
            .finish()
    }
}
