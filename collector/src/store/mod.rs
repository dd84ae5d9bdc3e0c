//! Storage. One `Store` value per process; backends behave the same (SQLite now, PostgreSQL
//! next). Callers never see SQL.

mod sqlite;

use chrono::{DateTime, Utc};

use crate::config::SqliteSynchronous;
use crate::domain::{KeyHash, KeyKind, Message, ProjectId};
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "unsupported PULSELINE_DATABASE_URL '{0}': use sqlite://path/to/file.db \
         (PostgreSQL support is not in this build)"
    )]
    UnsupportedUrl(String),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A key as stored: never the key itself, only its hash and a recognisable prefix.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub id: i64,
    pub project_id: ProjectId,
    pub kind: KeyKind,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct ProjectRecord {
    pub id: ProjectId,
    pub name: String,
    pub created_at: DateTime<Utc>,
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
        } else {
            Err(StoreError::UnsupportedUrl(url.to_owned()))
        }
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(s) => s.ping().await,
        }
    }

    pub async fn close(&self) {
        match self {
            Self::Sqlite(s) => s.close().await,
        }
    }

    pub async fn count_projects(&self) -> Result<i64, StoreError> {
        match self {
            Self::Sqlite(s) => s.count_projects().await,
        }
    }

    pub async fn list_projects(&self) -> Result<Vec<ProjectRecord>, StoreError> {
        match self {
            Self::Sqlite(s) => s.list_projects().await,
        }
    }

    /// Creates a project with one write key and one secret key, in one transaction.
    pub async fn create_project(
        &self,
        name: &str,
        write_key: (&KeyHash, &str),
        secret_key: (&KeyHash, &str),
        now: DateTime<Utc>,
    ) -> Result<ProjectId, StoreError> {
        match self {
            Self::Sqlite(s) => s.create_project(name, write_key, secret_key, now).await,
        }
    }

    pub async fn create_key(
        &self,
        project_id: ProjectId,
        kind: KeyKind,
        hash: &KeyHash,
        prefix: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<KeyRecord>, StoreError> {
        match self {
            Self::Sqlite(s) => s.create_key(project_id, kind, hash, prefix, now).await,
        }
    }

    pub async fn find_key(&self, hash: &KeyHash) -> Result<Option<KeyRecord>, StoreError> {
        match self {
            Self::Sqlite(s) => s.find_key(hash).await,
        }
    }

    pub async fn list_keys(
        &self,
        project_id: Option<ProjectId>,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        match self {
            Self::Sqlite(s) => s.list_keys(project_id).await,
        }
    }

    /// Revokes a key. `None` if there is no such key; revoking twice keeps the first time.
    pub async fn revoke_key(
        &self,
        key_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<KeyRecord>, StoreError> {
        match self {
            Self::Sqlite(s) => s.revoke_key(key_id, now).await,
        }
    }

    /// Issues a new key of the same kind for the same project and revokes the old one, at once.
    pub async fn rotate_key(
        &self,
        key_id: i64,
        new_hash: &KeyHash,
        new_prefix: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<KeyRecord>, StoreError> {
        match self {
            Self::Sqlite(s) => s.rotate_key(key_id, new_hash, new_prefix, now).await,
        }
    }

    /// Stores every batch in one transaction. Returns, per batch, how many messages were new
    /// (the rest were duplicates of stored `(project, messageId)` pairs).
    pub async fn insert_batches(&self, batches: &[PendingBatch]) -> Result<Vec<u64>, StoreError> {
        match self {
            Self::Sqlite(s) => s.insert_batches(batches).await,
        }
    }

    pub async fn list_events(
        &self,
        project_id: ProjectId,
        query: &EventQuery,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        match self {
            Self::Sqlite(s) => s.list_events(project_id, query).await,
        }
    }

    pub async fn events_total(&self, project_id: ProjectId) -> Result<i64, StoreError> {
        match self {
            Self::Sqlite(s) => s.events_total(project_id).await,
        }
    }
}

pub(crate) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
