//! Notification channels (Discord, Slack, webhook, email targets) of a project.

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Row};

use crate::domain::ProjectId;
use crate::store::{Store, StoreError, from_millis, millis};

#[derive(Debug, Clone)]
pub struct ChannelRecord {
    pub id: i64,
    pub project_id: ProjectId,
    pub name: String,
    pub kind: String,
    pub target: String,
    pub secret: Option<String>,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct ChannelChanges {
    pub name: Option<String>,
    pub target: Option<String>,
    /// `true` clears a disabled channel's reason.
    pub enable: bool,
}

/// Why a delivery whose channel was deleted was not sent (also the delivery worker's word).
pub const CHANNEL_DELETED: &str = "the channel was deleted";

const CHANNEL_COLUMNS: &str =
    "id, project_id, name, kind, target, secret, disabled_reason, disabled_at, created_at";

macro_rules! channel_from {
    ($r:expr) => {
        ChannelRecord {
            id: $r.try_get("id")?,
            project_id: $r.try_get("project_id")?,
            name: $r.try_get("name")?,
            kind: $r.try_get("kind")?,
            target: $r.try_get("target")?,
            secret: $r.try_get("secret")?,
            disabled_reason: $r.try_get("disabled_reason")?,
            disabled_at: $r
                .try_get::<Option<i64>, _>("disabled_at")?
                .map(from_millis),
            created_at: from_millis($r.try_get("created_at")?),
        }
    };
}

impl Store {
    pub async fn list_channels(
        &self,
        project_id: ProjectId,
    ) -> Result<Vec<ChannelRecord>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let rows = sqlx::query(AssertSqlSafe(format!(
                "SELECT {CHANNEL_COLUMNS} FROM notification_channels WHERE project_id = $1 ORDER BY id"
            )))
            .bind(project_id)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| Ok(channel_from!(r))).collect()
        })
    }

    /// The project's channel `id`. There is no lookup by id alone: an id from a request, a
    /// rule or an outbox row means something only within its project.
    pub async fn channel(
        &self,
        project_id: ProjectId,
        id: i64,
    ) -> Result<Option<ChannelRecord>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let row = sqlx::query(AssertSqlSafe(format!(
                "SELECT {CHANNEL_COLUMNS} FROM notification_channels
                 WHERE project_id = $1 AND id = $2"
            )))
            .bind(project_id)
            .bind(id)
            .fetch_optional(pool)
            .await?;
            row.map(|r| Ok(channel_from!(r))).transpose()
        })
    }

    pub async fn create_channel(
        &self,
        project_id: ProjectId,
        name: &str,
        kind: &str,
        target: &str,
        secret: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<ChannelRecord, StoreError> {
        with_db!(self, write_pool, |pool| {
            let row = sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO notification_channels (project_id, name, kind, target, secret,
                     created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {CHANNEL_COLUMNS}"
            )))
            .bind(project_id)
            .bind(name)
            .bind(kind)
            .bind(target)
            .bind(secret)
            .bind(millis(now))
            .fetch_one(pool)
            .await?;
            Ok(channel_from!(row))
        })
    }

    pub async fn update_channel(
        &self,
        project_id: ProjectId,
        id: i64,
        changes: &ChannelChanges,
        now: DateTime<Utc>,
    ) -> Result<Option<ChannelRecord>, StoreError> {
        with_db!(self, write_pool, |pool| {
            let row = sqlx::query(AssertSqlSafe(format!(
                "UPDATE notification_channels SET name = COALESCE($3, name),
                     target = COALESCE($4, target),
                     disabled_reason = CASE WHEN $5 THEN NULL ELSE disabled_reason END,
                     disabled_at = CASE WHEN $5 THEN NULL ELSE disabled_at END,
                     updated_at = $6
                 WHERE project_id = $1 AND id = $2 RETURNING {CHANNEL_COLUMNS}"
            )))
            .bind(project_id)
            .bind(id)
            .bind(&changes.name)
            .bind(&changes.target)
            .bind(changes.enable)
            .bind(millis(now))
            .fetch_optional(pool)
            .await?;
            row.map(|r| Ok(channel_from!(r))).transpose()
        })
    }

    /// Deletes a channel no category uses, and ends its open deliveries (dead, with the
    /// reason) in the same transaction, so that nothing still queued for it is ever sent.
    /// `Err(names)` lists the categories in the way.
    pub async fn delete_channel(
        &self,
        project_id: ProjectId,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<Result<bool, Vec<String>>, StoreError> {
        with_db!(self, write_pool, |pool| {
            let mut tx = pool.begin().await?;
            let users: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM event_categories WHERE project_id = $1 AND channel_id = $2
                 ORDER BY id",
            )
            .bind(project_id)
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
            if !users.is_empty() {
                tx.rollback().await?;
                return Ok(Err(users));
            }
            let done =
                sqlx::query("DELETE FROM notification_channels WHERE project_id = $1 AND id = $2")
                    .bind(project_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            if done.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(Ok(false));
            }
            // A send in flight keeps its lease: its attempt is still recorded, and
            // `record_attempt` leaves the delivery dead unless that attempt delivered it.
            sqlx::query(
                "UPDATE deliveries SET status = 'dead', last_error = $3, next_attempt_at = $4
                 WHERE project_id = $1 AND channel_id = $2 AND status IN ('pending', 'failed')",
            )
            .bind(project_id)
            .bind(id)
            .bind(CHANNEL_DELETED)
            .bind(millis(now))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Ok(true))
        })
    }

    /// Disables the project's channel whose target is gone (a webhook answered 401/404).
    pub async fn disable_channel(
        &self,
        project_id: ProjectId,
        id: i64,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_db!(self, write_pool, |pool| {
            sqlx::query(
                "UPDATE notification_channels SET disabled_reason = $3, disabled_at = $4,
                     updated_at = $4
                 WHERE project_id = $1 AND id = $2 AND disabled_reason IS NULL",
            )
            .bind(project_id)
            .bind(id)
            .bind(reason)
            .bind(millis(now))
            .execute(pool)
            .await?;
            Ok(())
        })
    }
}
