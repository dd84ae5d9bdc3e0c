//! Write and secret keys: issued, looked up on every request, rotated and revoked. Written once
//! for both backends; SQLite's ingest lookup has a faster path of its own (`sqlite::keys`).

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Row};

use super::{Quota, Store, StoreError, from_millis, millis};
use crate::domain::{KeyHash, KeyKind, PlainKey, ProjectId};

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
    pub(super) fn from_columns(
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

    /// The stored record of this key, once inserted as `id`.
    fn record(&self, id: i64, project_id: ProjectId, now: DateTime<Utc>) -> KeyRecord {
        KeyRecord {
            id,
            project_id,
            kind: self.kind,
            prefix: self.prefix.clone(),
            created_at: now,
            revoked_at: None,
            plain: self.plain.map(str::to_owned),
        }
    }
}

/// A key from a row of `api_keys`' columns, on either backend.
fn key_record<R: Row>(r: &R) -> KeyRecord
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

/// A key with its project's quota, from a [`FIND_KEY_WITH_QUOTA`] row.
fn key_with_quota<R: Row>(r: &R) -> (KeyRecord, Quota)
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let quota = Quota {
        plan: r.get("plan"),
        events_per_month: r.get("events_per_month"),
        used_this_month: r.get("used"),
    };
    (key_record(r), quota)
}

/// The key with its project's plan and the month's usage (`$1` the hash, `$2` the month): the
/// one query of every ingest request. SQLite's fast path (`sqlite::keys`) runs the same text.
pub(super) const FIND_KEY_WITH_QUOTA: &str = "
    SELECT k.id, k.project_id, k.kind, k.prefix, k.created_at, k.revoked_at, k.plain,
           p.plan, pl.events_per_month, COALESCE(u.events, 0) AS used
    FROM api_keys k
    JOIN projects p ON p.id = k.project_id
    JOIN plans pl ON pl.name = p.plan
    LEFT JOIN usage_monthly u ON u.project_id = k.project_id AND u.month = $2
    WHERE k.key_hash = $1";

const KEY_COLUMNS: &str = "id, project_id, kind, prefix, created_at, revoked_at, plain";

/// Ends a key at `$1` (unix ms), keeping an earlier end; `$2` is its id.
const REVOKE: &str = "UPDATE api_keys
    SET revoked_at = CASE WHEN revoked_at IS NOT NULL AND revoked_at < $1 THEN revoked_at
                          ELSE $1 END
    WHERE id = $2
    RETURNING id, project_id, kind, prefix, created_at, revoked_at, plain";

/// Stores a key of project `$1`; binds in [`insert_key`]'s order.
pub(super) const INSERT_KEY: &str =
    "INSERT INTO api_keys (project_id, kind, key_hash, prefix, created_at, plain)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";

/// [`INSERT_KEY`] with its parameters, for a transaction of either backend.
pub(super) fn insert_key<'q, DB: sqlx::Database>(
    project_id: ProjectId,
    key: &NewKey<'_>,
    now: DateTime<Utc>,
) -> sqlx::query::Query<'q, DB, DB::Arguments>
where
    for<'e> i64: sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    for<'e> String: sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    for<'e> Vec<u8>: sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    for<'e> Option<String>: sqlx::Encode<'e, DB> + sqlx::Type<DB>,
{
    sqlx::query(INSERT_KEY)
        .bind(project_id)
        .bind(key.kind.as_str().to_owned())
        .bind(key.hash.0.to_vec())
        .bind(key.prefix.clone())
        .bind(millis(now))
        .bind(key.plain.map(str::to_owned))
}

impl Store {
    pub async fn create_key(
        &self,
        project_id: ProjectId,
        key: &NewKey<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<KeyRecord>, StoreError> {
        with_db!(self, write_pool, |pool| {
            let mut tx = pool.begin().await?;
            let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM projects WHERE id = $1")
                .bind(project_id)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Ok(None);
            }
            let id: i64 = insert_key(project_id, key, now)
                .fetch_one(&mut *tx)
                .await?
                .get("id");
            tx.commit().await?;
            Ok(Some(key.record(id, project_id, now)))
        })
    }

    pub async fn find_key(&self, hash: &KeyHash) -> Result<Option<KeyRecord>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let row = sqlx::query(AssertSqlSafe(format!(
                "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1"
            )))
            .bind(&hash.0[..])
            .fetch_optional(pool)
            .await?;
            Ok(row.as_ref().map(key_record))
        })
    }

    /// The key with its project's quota for the month of `now`. One query per request.
    pub async fn find_key_with_quota(
        &self,
        hash: &KeyHash,
        now: DateTime<Utc>,
    ) -> Result<Option<(KeyRecord, Quota)>, StoreError> {
        let month = super::month_of(now);
        if let Store::Sqlite(s) = self {
            match s.find_key_on_task(hash, &month) {
                Ok(found) => return Ok(found),
                Err(error) => {
                    metrics::counter!("pulseline_key_lookup_fallbacks_total").increment(1);
                    tracing::debug!(%error, "key lookup on the calling task failed; asking the pool");
                }
            }
        }
        self.find_key_with_quota_in_pool(hash, &month).await
    }

    /// [`FIND_KEY_WITH_QUOTA`] through sqlx's pool.
    pub(super) async fn find_key_with_quota_in_pool(
        &self,
        hash: &KeyHash,
        month: &str,
    ) -> Result<Option<(KeyRecord, Quota)>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let row = sqlx::query(FIND_KEY_WITH_QUOTA)
                .bind(&hash.0[..])
                .bind(month)
                .fetch_optional(pool)
                .await?;
            Ok(row.as_ref().map(key_with_quota))
        })
    }

    pub async fn list_keys(
        &self,
        project_id: Option<ProjectId>,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let rows = sqlx::query(AssertSqlSafe(format!(
                "SELECT {KEY_COLUMNS} FROM api_keys
                 WHERE CAST($1 AS INT8) IS NULL OR project_id = $1 ORDER BY project_id, id"
            )))
            .bind(project_id)
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(key_record).collect())
        })
    }

    /// Revokes a key at `now`. `None` if there is no such key; revoking twice keeps the first
    /// time, and revoking a key in a rotation's grace period ends the grace at once.
    pub async fn revoke_key(
        &self,
        key_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<KeyRecord>, StoreError> {
        with_db!(self, write_pool, |pool| {
            let row = sqlx::query(REVOKE)
                .bind(millis(now))
                .bind(key_id)
                .fetch_optional(pool)
                .await?;
            Ok(row.as_ref().map(key_record))
        })
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
        with_db!(self, write_pool, |pool| {
            let mut tx = pool.begin().await?;
            let old = sqlx::query(REVOKE)
                .bind(millis(old_until))
                .bind(key_id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(old) = old.as_ref().map(key_record) else {
                return Ok(None);
            };
            debug_assert_eq!(old.kind, new.kind);
            let id: i64 = insert_key(old.project_id, new, now)
                .fetch_one(&mut *tx)
                .await?
                .get("id");
            tx.commit().await?;
            Ok(Some(new.record(id, old.project_id, now)))
        })
    }
}
