//! Shared, read-only dashboard pages (docs/sharing.md) and the unlocks their passwords grant.
//! One SQL text per query serves both backends.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Store, StoreError, from_millis, millis};
use crate::domain::ProjectId;

/// A published page as stored: the link itself is not (only its SHA-256).
#[derive(Debug, Clone)]
pub struct ShareRecord {
    pub id: i64,
    pub project_id: ProjectId,
    /// `overview`, `vitals` or `web` (a CHECK constraint holds it to these).
    pub page: String,
    pub prefix: String,
    pub password_hash: Option<String>,
    /// Origins allowed to embed the page in an iframe; empty: none.
    pub origins: Vec<String>,
    /// The e-mail of the member who published it (`None` once that account is gone).
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What [`Store::create_share`] stores.
#[derive(Debug)]
pub struct NewShare<'a> {
    pub project_id: ProjectId,
    pub page: &'a str,
    pub token_hash: &'a [u8],
    pub prefix: &'a str,
    pub password_hash: Option<&'a str>,
    pub origins: &'a [String],
    pub created_by: i64,
}

const SELECT_SHARES: &str = "SELECT s.id, s.project_id, s.page, s.prefix, s.password_hash,
        s.origins, u.email AS created_by, s.created_at
    FROM shares s LEFT JOIN users u ON u.id = s.created_by";

/// A [`ShareRecord`] from a row of [`SELECT_SHARES`], on either backend.
macro_rules! share_record {
    () => {
        |r| {
            let origins: String = r.get("origins");
            ShareRecord {
                id: r.get("id"),
                project_id: r.get("project_id"),
                page: r.get("page"),
                prefix: r.get("prefix"),
                password_hash: r.get("password_hash"),
                origins: origins.split_whitespace().map(str::to_owned).collect(),
                created_by: r.get("created_by"),
                created_at: from_millis(r.get("created_at")),
            }
        }
    };
}

impl Store {
    /// Stores a share; `None` when the project has `max` shares already (counted in the same
    /// transaction, so two publishers at once cannot pass the limit together on SQLite's single
    /// writer; on PostgreSQL the project row is locked for the count).
    pub async fn create_share(
        &self,
        share: &NewShare<'_>,
        max: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        with_db!(self, write_pool, |pool, backend| {
            let mut tx = pool.begin().await?;
            if backend == super::Backend::Postgres {
                sqlx::query("SELECT id FROM projects WHERE id = $1 FOR UPDATE")
                    .bind(share.project_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            }
            let count: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM shares WHERE project_id = $1")
                    .bind(share.project_id)
                    .fetch_one(&mut *tx)
                    .await?;
            if count >= max {
                return Ok(None);
            }
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO shares (project_id, page, token_hash, prefix, password_hash, origins,
                                     created_by, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            )
            .bind(share.project_id)
            .bind(share.page)
            .bind(share.token_hash)
            .bind(share.prefix)
            .bind(share.password_hash)
            .bind(share.origins.join(" "))
            .bind(share.created_by)
            .bind(millis(now))
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Some(id))
        })
    }

    /// The project's shares, oldest first.
    pub async fn list_shares(&self, project_id: ProjectId) -> Result<Vec<ShareRecord>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "{SELECT_SHARES} WHERE s.project_id = $1 ORDER BY s.id"
            )))
            .bind(project_id)
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(share_record!()).collect())
        })
    }

    /// The share whose link hashes to `token_hash`, whatever its project.
    pub async fn find_share(&self, token_hash: &[u8]) -> Result<Option<ShareRecord>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "{SELECT_SHARES} WHERE s.token_hash = $1"
            )))
            .bind(token_hash)
            .fetch_optional(pool)
            .await?;
            Ok(row.as_ref().map(share_record!()))
        })
    }

    /// Deletes share `id` of the project (its unlocks go with it); `None` if it has no such
    /// share.
    pub async fn delete_share(
        &self,
        project_id: ProjectId,
        id: i64,
    ) -> Result<Option<ShareRecord>, StoreError> {
        let Some(share) = self
            .list_shares(project_id)
            .await?
            .into_iter()
            .find(|s| s.id == id)
        else {
            return Ok(None);
        };
        with_db!(self, write_pool, |pool| {
            sqlx::query("DELETE FROM shares WHERE project_id = $1 AND id = $2")
                .bind(project_id)
                .bind(id)
                .execute(pool)
                .await?;
            Ok(Some(share))
        })
    }

    /// Records an unlock of share `share_id` until `expires_at`, dropping its expired ones.
    pub async fn add_share_unlock(
        &self,
        share_id: i64,
        token_hash: &[u8],
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_db!(self, write_pool, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM share_unlocks WHERE share_id = $1 AND expires_at <= $2")
                .bind(share_id)
                .bind(millis(now))
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO share_unlocks (token_hash, share_id, expires_at) VALUES ($1, $2, $3)",
            )
            .bind(token_hash)
            .bind(share_id)
            .bind(millis(expires_at))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Whether `token_hash` unlocks share `share_id` at `now`.
    pub async fn share_unlocked(
        &self,
        share_id: i64,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        with_db!(self, read_pool, |pool| {
            let found: Option<i64> = sqlx::query_scalar(
                "SELECT share_id FROM share_unlocks
                 WHERE token_hash = $1 AND share_id = $2 AND expires_at > $3",
            )
            .bind(token_hash)
            .bind(share_id)
            .bind(millis(now))
            .fetch_optional(pool)
            .await?;
            Ok(found.is_some())
        })
    }
}
