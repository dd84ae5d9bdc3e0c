//! Storage. One `Store` value per process; backends behave the same (SQLite now, PostgreSQL
//! next). Callers never see SQL.

/// The one way store code reaches the database. To add a query:
/// 1. write its SQL once with `$1`, `$2`… placeholders: sqlx binds them by number on SQLite
///    too (never rewrite `$` into `?`: that also changes literals such as `'$' || type`);
/// 2. run it inside `with_db!(self, read_pool, |pool| …)` (`write_pool` for writes: SQLite's
///    single writer), or `|pool, backend|` where one clause differs ([`Backend`]);
/// 3. the block is compiled once per backend, so binds and row decoding check against each;
///    what truly differs lives in `sqlite/` or `postgres/`, reached by a `match` on [`Store`].
macro_rules! with_db {
    ($store:expr, $pool_of:ident, |$pool:ident $(, $backend:ident)?| $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite(s) => {
                let $pool = s.$pool_of();
                $(let $backend = $crate::store::Backend::Sqlite;)?
                $body
            }
            $crate::store::Store::Postgres(p) => {
                let $pool = p.$pool_of();
                $(let $backend = $crate::store::Backend::Postgres;)?
                $body
            }
        }
    };
}

pub mod accounts;
pub mod analytics;
pub mod bounded_scan;
pub mod budget;
pub mod category_cap;
pub mod churn;
pub mod cookieless;
pub mod delivery;
pub mod digest;
pub mod funnels;
pub mod inbound;
pub mod invitations;
pub mod keys;
pub mod local_days;
pub mod persons;
mod postgres;
mod projects;
pub mod props;
pub mod raw_retention;
pub mod retention;
mod rules;
mod sessions;
pub mod shares;
mod sqlite;
mod stored_event;
pub mod visits;
pub mod vitals;
pub mod vitals_backfill;
pub mod web;
mod who;
pub(crate) use who::Who;

use chrono::{DateTime, Datelike, TimeZone, Utc};

use crate::config::SqliteSynchronous;
use crate::domain::{Message, ProjectId};
pub use keys::{KeyRecord, NewKey};
pub use postgres::PostgresStore;
pub use rules::{AlertRecord, NewAlert, NewAlertEvent, RuleBuckets, RuleRecord, Transition};
pub use sqlite::SqliteStore;

/// Which backend a [`with_db!`] block runs on, for a clause that differs between the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// What a claim of rows that replicas compete for adds: PostgreSQL skips rows another
    /// replica holds; SQLite has one writer, so there is nothing to skip.
    pub(crate) fn skip_locked(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        }
    }
}

/// A parameter of SQL built at run time (rules' series, the Web page's report), bound the
/// same way on both backends by [`query_with`].
#[derive(Debug, Clone)]
pub(crate) enum Bind {
    Int(i64),
    Real(f64),
    Text(String),
}

/// `sql` with `binds` bound in order, for either backend.
pub(crate) fn query_with<'q, DB: sqlx::Database>(
    sql: String,
    binds: &[Bind],
) -> sqlx::query::Query<'q, DB, DB::Arguments>
where
    for<'e> i64: sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    for<'e> f64: sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    for<'e> String: sqlx::Encode<'e, DB> + sqlx::Type<DB>,
{
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = match b {
            Bind::Int(v) => q.bind(*v),
            Bind::Real(v) => q.bind(*v),
            Bind::Text(v) => q.bind(v.clone()),
        };
    }
    q
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot sync the write-ahead log {path}: {source}")]
    WalSync {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the store is closed (the collector is shutting down)")]
    Closed,
    #[error("cannot start the {name} thread: {source}")]
    Thread {
        name: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "unsupported PULSELINE_DATABASE_URL '{0}': use sqlite://path/to/file.db or \
         postgres://user:password@host:5432/database"
    )]
    UnsupportedUrl(String),
    #[error("there is no plan '{0}': see `pulseline-collector plan list`")]
    UnknownPlan(String),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone)]
pub struct ProjectRecord {
    pub id: ProjectId,
    pub name: String,
    pub plan: String,
    pub created_at: DateTime<Utc>,
}

/// What a project may send per month and how long its data is kept (`None`: no limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub name: String,
    pub events_per_month: Option<i64>,
    pub retention_days: Option<i64>,
}

/// A project's plan and what it has used this month, read with its key on every ingest.
#[derive(Debug, Clone)]
pub struct Quota {
    pub plan: String,
    pub events_per_month: Option<i64>,
    pub used_this_month: i64,
}

/// What one retention pass removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub events_deleted: u64,
    pub partitions_dropped: u64,
    /// Finished deliveries (delivered, or given up on) and their attempts.
    pub deliveries_deleted: u64,
    /// Resolved alerts of the alert history.
    pub alerts_deleted: u64,
}

/// Most rows one retention `DELETE` removes; a pass repeats it until fewer go, so that on
/// SQLite the one writer (and with it ingest) is never held for long.
const RETENTION_CHUNK: i64 = 20_000;

/// Notification history past a project's retention, run by both backends in each project's
/// retention step: `$1` is the project, `$2` the cutoff (unix ms), `$3` the most rows to remove
/// ([`RETENTION_CHUNK`] on SQLite, repeated until fewer go).
/// Deliveries go once finished (`pending` and `failed` ones are still being retried), alerts
/// once resolved (an open one is still updated), and the evaluator's hand-off rows once
/// delivery has taken them up. Each statement comes with the [`RetentionReport`] count its
/// rows add to, if any.
const NOTIFICATION_RETENTION: [(&str, Option<RetentionCount>); 4] = [
    (
        "DELETE FROM delivery_attempts WHERE id IN (
             SELECT a.id FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
             WHERE d.project_id = $1 AND d.created_at < $2 AND d.status IN ('delivered', 'dead')
             LIMIT $3)",
        None,
    ),
    (
        "DELETE FROM deliveries WHERE id IN (
             SELECT id FROM deliveries
             WHERE project_id = $1 AND created_at < $2 AND status IN ('delivered', 'dead')
             LIMIT $3)",
        Some(|r| &mut r.deliveries_deleted),
    ),
    (
        "DELETE FROM alert_events WHERE id IN (
             SELECT id FROM alert_events
             WHERE project_id = $1 AND created_at < $2
               AND id IN (SELECT alert_event_id FROM alert_events_dispatched)
             LIMIT $3)",
        None,
    ),
    (
        "DELETE FROM alert_history WHERE id IN (
             SELECT id FROM alert_history WHERE project_id = $1 AND resolved_at < $2 LIMIT $3)",
        Some(|r| &mut r.alerts_deleted),
    ),
];

/// After every project's [`NOTIFICATION_RETENTION`]: the dispatch markers of removed alert events.
const DISPATCH_MARKERS_RETENTION: &str =
    "DELETE FROM alert_events_dispatched WHERE alert_event_id NOT IN (SELECT id FROM alert_events)";

/// One of [`RetentionReport`]'s counts.
type RetentionCount = fn(&mut RetentionReport) -> &mut u64;

impl RetentionReport {
    fn count(&mut self, counted: Option<RetentionCount>, rows: u64) {
        if let Some(count) = counted {
            *count(self) += rows;
        }
    }
}

/// One request's messages, committed together with others in one transaction.
#[derive(Debug)]
pub struct PendingBatch {
    pub project_id: ProjectId,
    pub received_at: DateTime<Utc>,
    pub messages: Vec<Message>,
}

/// A stored event, as the read API returns it.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub seq: i64,
    pub message_id: String,
    pub kind: String,
    pub event: Option<String>,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub timestamp: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub body: String,
}

#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub event: Option<String>,
    pub user_id: Option<String>,
    /// Only events stored before this sequence number (the pagination cursor).
    pub before_seq: Option<i64>,
    pub limit: u32,
}

#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

/// How long a write waits for SQLite's write lock before it fails, in the server.
pub const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl Store {
    /// Connects to the configured database and brings its schema up to date.
    pub async fn open(
        url: &str,
        sqlite_synchronous: SqliteSynchronous,
    ) -> Result<Self, StoreError> {
        Self::open_waiting(url, sqlite_synchronous, BUSY_TIMEOUT).await
    }

    /// Like [`Store::open`], with SQLite writes waiting up to `busy_timeout` for the write
    /// lock (PostgreSQL waits for row locks as long as the statement runs).
    pub async fn open_waiting(
        url: &str,
        sqlite_synchronous: SqliteSynchronous,
        busy_timeout: std::time::Duration,
    ) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            let store = SqliteStore::open_waiting(url, sqlite_synchronous, busy_timeout).await?;
            Ok(Self::Sqlite(store))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Self::Postgres(PostgresStore::open(url).await?))
        } else {
            Err(StoreError::UnsupportedUrl(url.to_owned()))
        }
    }

    /// How many ingest commits may be in flight at once. SQLite has one writer, but a commit
    /// waiting for its WAL sync has left it: three keep it busiest (docs/benchmarks.md).
    /// PostgreSQL takes several (their locks are taken in key order, so they cannot deadlock).
    pub fn concurrent_commits(&self) -> usize {
        match self {
            Store::Sqlite(_) => 3,
            Store::Postgres(_) => 4,
        }
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Store::Sqlite(_) => Backend::Sqlite,
            Store::Postgres(_) => Backend::Postgres,
        }
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        with_db!(self, read_pool, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
            Ok(())
        })
    }

    pub async fn close(&self) {
        match self {
            Store::Sqlite(s) => s.close().await,
            Store::Postgres(p) => p.close().await,
        }
    }

    /// Removes what is older than each project's plan allows. On PostgreSQL only one replica
    /// runs a pass at a time (an advisory lock); the others return an empty report.
    pub async fn apply_retention(&self, now: DateTime<Utc>) -> Result<RetentionReport, StoreError> {
        match self {
            Store::Sqlite(s) => s.apply_retention(millis(now)).await,
            Store::Postgres(p) => p.apply_retention(millis(now)).await,
        }
    }

    /// Background housekeeping that must run often (SQLite: WAL checkpoints off the writer).
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.checkpoint().await,
            Store::Postgres(_) => Ok(()),
        }
    }

    /// Creates the storage the next days need (PostgreSQL: daily partitions). Idempotent.
    pub async fn prepare_partitions(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(_) => Ok(()),
            Store::Postgres(p) => p.prepare_partitions(now).await,
        }
    }

    /// Stores every batch, and outbox rows for the events that categories matched, in one
    /// transaction. Returns, per batch, how many messages were new (the rest were duplicates of
    /// stored `(project, messageId)` pairs).
    pub async fn insert_batches(
        &self,
        batches: Vec<PendingBatch>,
        deliveries: Vec<delivery::NewDelivery>,
    ) -> Result<Vec<u64>, StoreError> {
        match self {
            Store::Sqlite(s) => s.insert_batches(batches, deliveries).await,
            Store::Postgres(p) => p.insert_batches(batches, deliveries).await,
        }
    }
}

/// `YYYY-MM` of a time, in UTC: the key of monthly usage.
pub fn month_of(t: DateTime<Utc>) -> String {
    format!("{:04}-{:02}", t.year(), t.month())
}

/// When the month of `t` ends and its quota resets.
pub fn next_month_start(t: DateTime<Utc>) -> DateTime<Utc> {
    let (y, m) = if t.month() == 12 {
        (t.year() + 1, 1)
    } else {
        (t.year(), t.month() + 1)
    };
    Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).single().unwrap_or(t)
}

/// The rollup name of a message: the event for track, `$<type>` otherwise.
pub(crate) fn rollup_name(m: &Message) -> String {
    match (&m.event, m.kind) {
        (Some(e), crate::domain::MessageType::Track) => e.clone(),
        _ => format!("${}", m.kind.as_str()),
    }
}

pub(crate) const HOUR_MS: i64 = 3_600_000;
pub(crate) const DAY_MS: i64 = 86_400_000;
/// How far before a time the live tail starts its search for the events received since then
/// (each backend's `events_received_since`): seq follows arrival up to the time a request
/// waits for its commit, and this is far more than that.
pub(crate) const RECEIVED_ORDER_SLACK_MS: i64 = 60_000;

pub(crate) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A `SELECT * FROM events` row, on either backend.
pub(crate) fn stored_event<R>(r: &R) -> StoredEvent
where
    R: sqlx::Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    StoredEvent {
        seq: r.get("seq"),
        message_id: r.get("message_id"),
        kind: r.get("type"),
        event: r.get("event"),
        user_id: r.get("user_id"),
        anonymous_id: r.get("anonymous_id"),
        timestamp: from_millis(r.get("timestamp")),
        received_at: from_millis(r.get("received_at")),
        body: r.get("body"),
    }
}

pub(crate) fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
