//! Storage. One `Store` value per process; backends behave the same (SQLite now, PostgreSQL
//! next). Callers never see SQL.

pub mod accounts;
pub mod analytics;
pub mod category_cap;
pub mod cookieless;
pub mod delivery;
pub mod inbound;
pub mod invitations;
pub mod persons;
mod postgres;
pub mod raw_retention;
mod rules;
mod sqlite;
mod sqlite_ingest;
mod sqlite_keys;
mod stored_event;
pub mod web;

use chrono::{DateTime, Datelike, TimeZone, Utc};

use crate::config::SqliteSynchronous;
use crate::domain::{KeyHash, KeyKind, Message, PlainKey, ProjectId};
pub use postgres::PostgresStore;
pub use rules::{AlertRecord, NewAlert, NewAlertEvent, RuleRecord, Transition, percentile_sorted};
pub use sqlite::SqliteStore;

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

/// A key as stored: its hash and a recognisable prefix, and for write keys (public by design)
/// the key itself; a secret key is never stored in plain text.
#[derive(Clone)]
pub struct KeyRecord {
    pub id: i64,
    pub project_id: ProjectId,
    pub kind: KeyKind,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    /// When the key stopped (or, after a rotation with a grace period, stops) working.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The write key itself; `None` for secret keys and for write keys issued before it was kept.
    pub plain: Option<String>,
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("id", &self.id)
            .field("project_id", &self.project_id)
            .field("kind", &self.kind)
            .field("prefix", &self.prefix)
            .field("created_at", &self.created_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

impl KeyRecord {
    /// A key from its stored columns (times in unix ms), as every backend reads it.
    fn from_columns(
        id: i64,
        project_id: ProjectId,
        kind: &str,
        prefix: String,
        created_at: i64,
        revoked_at: Option<i64>,
        plain: Option<String>,
    ) -> Self {
        Self {
            id,
            project_id,
            // The CHECK constraint guarantees one of the two.
            kind: KeyKind::parse(kind).unwrap_or(KeyKind::Write),
            prefix,
            created_at: from_millis(created_at),
            revoked_at: revoked_at.map(from_millis),
            plain,
        }
    }

    /// Whether the key works at `now`: not revoked, or still within a rotation's grace period.
    pub fn active_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none_or(|at| at > now)
    }
}

/// A key about to be stored: what the database keeps of a freshly generated key.
#[derive(Debug)]
pub struct NewKey<'a> {
    pub kind: KeyKind,
    pub hash: KeyHash,
    pub prefix: String,
    /// Kept for write keys only.
    pub plain: Option<&'a str>,
}

impl<'a> NewKey<'a> {
    pub fn of(key: &'a PlainKey) -> Self {
        let kind = key.kind();
        Self {
            kind,
            hash: key.hash(),
            prefix: key.display_prefix(),
            plain: (kind == KeyKind::Write).then(|| key.as_str()),
        }
    }
}

/// A key from a row of `api_keys`' columns, on either backend.
fn key_record<R: sqlx::Row>(r: &R) -> KeyRecord
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    KeyRecord::from_columns(
        r.get("id"),
        r.get("project_id"),
        &r.get::<String, _>("kind"),
        r.get("prefix"),
        r.get("created_at"),
        r.get("revoked_at"),
        r.get("plain"),
    )
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

/// Calls the same method on whichever backend this is.
macro_rules! dispatch {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match $self {
            Store::Sqlite(s) => s.$method($($arg),*).await,
            Store::Postgres(s) => s.$method($($arg),*).await,
        }
    };
}

impl Store {
    /// Connects to the configured database and brings its schema up to date.
    pub async fn open(
        url: &str,
        sqlite_synchronous: SqliteSynchronous,
    ) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            let store = SqliteStore::open(url, sqlite_synchronous).await?;
            Ok(Self::Sqlite(store))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Self::Postgres(PostgresStore::open(url).await?))
        } else {
            Err(StoreError::UnsupportedUrl(url.to_owned()))
        }
    }

    /// How many ingest commits may be in flight at once. SQLite has one writer, but a commit
    /// waiting for its WAL sync has left the writer, and a loop gathering its next group is not
    /// in it yet: three keep it busiest (measured: 100k events/s at 8 connections against 74k
    /// with two). PostgreSQL takes several (their locks are taken in key order, so they cannot
    /// deadlock).
    pub fn concurrent_commits(&self) -> usize {
        match self {
            Store::Sqlite(_) => 3,
            Store::Postgres(_) => 4,
        }
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self.ping())
    }

    pub async fn close(&self) {
        dispatch!(self.close())
    }

    pub async fn count_projects(&self) -> Result<i64, StoreError> {
        dispatch!(self.count_projects())
    }

    pub async fn list_projects(&self) -> Result<Vec<ProjectRecord>, StoreError> {
        dispatch!(self.list_projects())
    }

    /// Creates a project with one write key and one secret key, in one transaction.
    pub async fn create_project(
        &self,
        name: &str,
        plan: &str,
        write_key: &NewKey<'_>,
        secret_key: &NewKey<'_>,
        now: DateTime<Utc>,
    ) -> Result<ProjectId, StoreError> {
        if self.plan(plan).await?.is_none() {
            return Err(StoreError::UnknownPlan(plan.to_owned()));
        }
        dispatch!(self.create_project(name, plan, write_key, secret_key, now))
    }

    pub async fn plan(&self, name: &str) -> Result<Option<Plan>, StoreError> {
        Ok(self
            .list_plans()
            .await?
            .into_iter()
            .find(|p| p.name == name))
    }

    pub async fn list_plans(&self) -> Result<Vec<Plan>, StoreError> {
        dispatch!(self.list_plans())
    }

    /// Creates or changes a plan; projects on it follow at once.
    pub async fn upsert_plan(&self, plan: &Plan) -> Result<(), StoreError> {
        dispatch!(self.upsert_plan(plan))
    }

    /// `false` if there is no such project.
    pub async fn set_project_plan(
        &self,
        project_id: ProjectId,
        plan: &str,
    ) -> Result<bool, StoreError> {
        if self.plan(plan).await?.is_none() {
            return Err(StoreError::UnknownPlan(plan.to_owned()));
        }
        dispatch!(self.set_project_plan(project_id, plan))
    }

    /// The key with its project's quota for the month of `now`. One query per request.
    pub async fn find_key_with_quota(
        &self,
        hash: &KeyHash,
        now: DateTime<Utc>,
    ) -> Result<Option<(KeyRecord, Quota)>, StoreError> {
        let month = month_of(now);
        dispatch!(self.find_key_with_quota(hash, &month))
    }

    /// Events newly stored for the project in the month of `now`.
    pub async fn usage_this_month(
        &self,
        project_id: ProjectId,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let month = month_of(now);
        dispatch!(self.usage_this_month(project_id, &month))
    }

    /// Hourly event counts of one event name (`$page`, `$identify`… for other types) between
    /// `from` and `to`, from the rollups maintained at ingest.
    pub async fn hourly_counts(
        &self,
        project_id: ProjectId,
        name: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, i64)>, StoreError> {
        dispatch!(self.hourly_counts(project_id, name, millis(from), millis(to)))
    }

    /// Removes what is older than each project's plan allows. On PostgreSQL only one replica
    /// runs a pass at a time (an advisory lock); the others return an empty report.
    pub async fn apply_retention(&self, now: DateTime<Utc>) -> Result<RetentionReport, StoreError> {
        dispatch!(self.apply_retention(millis(now)))
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
            Store::Postgres(s) => s.prepare_partitions(now).await,
        }
    }

    pub async fn create_key(
        &self,
        project_id: ProjectId,
        key: &NewKey<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<KeyRecord>, StoreError> {
        dispatch!(self.create_key(project_id, key, now))
    }

    pub async fn find_key(&self, hash: &KeyHash) -> Result<Option<KeyRecord>, StoreError> {
        dispatch!(self.find_key(hash))
    }

    pub async fn list_keys(
        &self,
        project_id: Option<ProjectId>,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        dispatch!(self.list_keys(project_id))
    }

    /// Revokes a key at `now`. `None` if there is no such key; revoking twice keeps the first
    /// time, and revoking a key in a rotation's grace period ends the grace at once.
    pub async fn revoke_key(
        &self,
        key_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<KeyRecord>, StoreError> {
        dispatch!(self.revoke_key(key_id, now))
    }

    /// Issues a new key of the same kind for the same project, and revokes the old one as of
    /// `old_until` (`now` for at once; later for a grace period, never extending an earlier end).
    pub async fn rotate_key(
        &self,
        key_id: i64,
        new: &NewKey<'_>,
        old_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<KeyRecord>, StoreError> {
        dispatch!(self.rotate_key(key_id, new, old_until, now))
    }

    /// Stores every batch, and outbox rows for the events that categories matched, in one
    /// transaction. Returns, per batch, how many messages were new (the rest were duplicates of
    /// stored `(project, messageId)` pairs).
    pub async fn insert_batches(
        &self,
        batches: Vec<PendingBatch>,
        deliveries: Vec<delivery::NewDelivery>,
    ) -> Result<Vec<u64>, StoreError> {
        dispatch!(self.insert_batches(batches, deliveries))
    }

    pub async fn list_events(
        &self,
        project_id: ProjectId,
        query: &EventQuery,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        dispatch!(self.list_events(project_id, query))
    }

    pub async fn events_total(&self, project_id: ProjectId) -> Result<i64, StoreError> {
        dispatch!(self.events_total(project_id))
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

pub(crate) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A `SELECT * FROM events` row, on either backend.
fn stored_event<R>(r: &R) -> StoredEvent
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
