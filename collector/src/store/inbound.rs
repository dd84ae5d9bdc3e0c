//! Storage of inbound webhook sources, on both backends (SQL written once, as in
//! [`super::delivery`]).

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Row};

use super::{Quota, Store, StoreError, from_millis, millis, month_of};
use crate::domain::ProjectId;

/// A source as stored. `secret` verifies the sender's signatures and is never listed.
#[derive(Clone)]
pub struct InboundSourceRecord {
    pub id: i64,
    pub project_id: ProjectId,
    pub kind: String,
    pub name: String,
    pub token: String,
    pub secret: String,
    pub event_path: Option<String>,
    pub user_path: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The latest delivery: when, the HTTP status answered, and the refusal's message.
    pub last_delivery: Option<(DateTime<Utc>, i64, Option<String>)>,
}

impl std::fmt::Debug for InboundSourceRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundSourceRecord")
            .field("id", &self.id)
            .field("project_id", &self.project_id)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A source about to be stored.
#[derive(Debug)]
pub struct NewInboundSource<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    pub token: &'a str,
    pub secret: &'a str,
    pub event_path: Option<&'a str>,
    pub user_path: Option<&'a str>,
}

const COLUMNS: &str = "id, project_id, kind, name, token, secret, event_path, user_path, \
                       created_at, last_delivery_at, last_status, last_error";

macro_rules! source_from {
    ($r:expr) => {
        InboundSourceRecord {
            id: $r.try_get("id")?,
            project_id: $r.try_get("project_id")?,
            kind: $r.try_get("kind")?,
            name: $r.try_get("name")?,
            token: $r.try_get("token")?,
            secret: $r.try_get("secret")?,
            event_path: $r.try_get("event_path")?,
            user_path: $r.try_get("user_path")?,
            created_at: from_millis($r.try_get("created_at")?),
            last_delivery: match (
                $r.try_get::<Option<i64>, _>("last_delivery_at")?,
                $r.try_get::<Option<i64>, _>("last_status")?,
            ) {
                (Some(at), Some(status)) => {
                    Some((from_millis(at), status, $r.try_get("last_error")?))
                }
                _ => None,
            },
        }
    };
}

impl Store {
    pub async fn list_inbound_sources(
        &self,
        project_id: ProjectId,
    ) -> Result<Vec<InboundSourceRecord>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let rows = sqlx::query(AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM inbound_sources WHERE project_id = $1 ORDER BY id"
            )))
            .bind(project_id)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| Ok(source_from!(r))).collect()
        })
    }

    /// The source a delivery is addressed to, by the token in its URL (any project).
    pub async fn inbound_source_by_token(
        &self,
        token: &str,
    ) -> Result<Option<InboundSourceRecord>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let row = sqlx::query(AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM inbound_sources WHERE token = $1"
            )))
            .bind(token)
            .fetch_optional(pool)
            .await?;
            row.map(|r| Ok(source_from!(r))).transpose()
        })
    }

    /// The project's plan and its usage in the month of `now`: inbound deliveries count
    /// against the same monthly quota as ingest. `None` if the project is gone.
    pub async fn project_quota(
        &self,
        project_id: ProjectId,
        now: DateTime<Utc>,
    ) -> Result<Option<Quota>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let row = sqlx::query(
                "SELECT p.plan, pl.events_per_month, COALESCE(u.events, 0) AS used
                 FROM projects p
                 JOIN plans pl ON pl.name = p.plan
                 LEFT JOIN usage_monthly u ON u.project_id = p.id AND u.month = $2
                 WHERE p.id = $1",
            )
            .bind(project_id)
            .bind(month_of(now))
            .fetch_optional(pool)
            .await?;
            row.map(|r| {
                Ok(Quota {
                    plan: r.try_get("plan")?,
                    events_per_month: r.try_get("events_per_month")?,
                    used_this_month: r.try_get("used")?,
                })
            })
            .transpose()
        })
    }

    /// Stores the source unless the project already has `max` of them (`Ok(None)`).
    pub async fn create_inbound_source(
        &self,
        project_id: ProjectId,
        source: &NewInboundSource<'_>,
        max: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<InboundSourceRecord>, StoreError> {
        with_db!(self, write_pool, |pool| {
            let row = sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO inbound_sources (project_id, kind, name, token, secret, event_path,
                     user_path, created_at)
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8
                 WHERE (SELECT COUNT(*) FROM inbound_sources WHERE project_id = $1) < $9
                 RETURNING {COLUMNS}"
            )))
            .bind(project_id)
            .bind(source.kind)
            .bind(source.name)
            .bind(source.token)
            .bind(source.secret)
            .bind(source.event_path)
            .bind(source.user_path)
            .bind(millis(now))
            .bind(max)
            .fetch_optional(pool)
            .await?;
            row.map(|r| Ok(source_from!(r))).transpose()
        })
    }

    /// Records the latest delivery to source `id`: when, the status answered, and why it was
    /// refused (`None` when it was accepted).
    pub async fn record_inbound_delivery(
        &self,
        id: i64,
        at: DateTime<Utc>,
        status: u16,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        with_db!(self, write_pool, |pool| {
            sqlx::query(
                "UPDATE inbound_sources SET last_delivery_at = $2, last_status = $3, last_error = $4
                 WHERE id = $1",
            )
            .bind(id)
            .bind(millis(at))
            .bind(i64::from(status))
            .bind(error)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Deletes the project's source `id`; `false` when the project has no such source.
    pub async fn delete_inbound_source(
        &self,
        project_id: ProjectId,
        id: i64,
    ) -> Result<bool, StoreError> {
        with_db!(self, write_pool, |pool| {
            let done = sqlx::query("DELETE FROM inbound_sources WHERE project_id = $1 AND id = $2")
                .bind(project_id)
                .bind(id)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }
}
