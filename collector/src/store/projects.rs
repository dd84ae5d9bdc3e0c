//! Projects, plans, usage and the read API's event listing: one SQL text for both backends.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::keys::{NewKey, insert_key};
use super::{
    EventQuery, HOUR_MS, Plan, ProjectRecord, Store, StoreError, StoredEvent, from_millis, millis,
    month_of, stored_event,
};
use crate::domain::ProjectId;

impl Store {
    pub async fn count_projects(&self) -> Result<i64, StoreError> {
        with_db!(self, write_pool, |pool| {
            Ok(sqlx::query_scalar("SELECT COUNT(*) FROM projects")
                .fetch_one(pool)
                .await?)
        })
    }

    pub async fn list_projects(&self) -> Result<Vec<ProjectRecord>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let rows = sqlx::query("SELECT id, name, plan, created_at FROM projects ORDER BY id")
                .fetch_all(pool)
                .await?;
            Ok(rows.iter().map(project_record).collect())
        })
    }

    /// One project by id.
    pub async fn project(
        &self,
        project_id: ProjectId,
    ) -> Result<Option<ProjectRecord>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let row = sqlx::query("SELECT id, name, plan, created_at FROM projects WHERE id = $1")
                .bind(project_id)
                .fetch_optional(pool)
                .await?;
            Ok(row.as_ref().map(project_record))
        })
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
        with_db!(self, write_pool, |pool| {
            let mut tx = pool.begin().await?;
            let id: ProjectId = sqlx::query_scalar(
                "INSERT INTO projects (name, plan, created_at) VALUES ($1, $2, $3) RETURNING id",
            )
            .bind(name)
            .bind(plan)
            .bind(millis(now))
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO project_usage (project_id) VALUES ($1)")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            for key in [write_key, secret_key] {
                insert_key(id, key, now).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(id)
        })
    }

    pub async fn plan(&self, name: &str) -> Result<Option<Plan>, StoreError> {
        Ok(self
            .list_plans()
            .await?
            .into_iter()
            .find(|p| p.name == name))
    }

    pub async fn list_plans(&self) -> Result<Vec<Plan>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let rows = sqlx::query(
                "SELECT name, events_per_month, CAST(retention_days AS INT8) AS retention_days
                 FROM plans ORDER BY name",
            )
            .fetch_all(pool)
            .await?;
            Ok(rows
                .iter()
                .map(|r| Plan {
                    name: r.get("name"),
                    events_per_month: r.get("events_per_month"),
                    retention_days: r.get("retention_days"),
                })
                .collect())
        })
    }

    /// Creates or changes a plan; projects on it follow at once.
    pub async fn upsert_plan(&self, plan: &Plan) -> Result<(), StoreError> {
        with_db!(self, write_pool, |pool| {
            sqlx::query(
                "INSERT INTO plans (name, events_per_month, retention_days)
                 VALUES ($1, $2, CAST($3 AS INT4))
                 ON CONFLICT (name) DO UPDATE SET events_per_month = excluded.events_per_month,
                                                  retention_days = excluded.retention_days",
            )
            .bind(&plan.name)
            .bind(plan.events_per_month)
            .bind(plan.retention_days)
            .execute(pool)
            .await?;
            Ok(())
        })
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
        with_db!(self, write_pool, |pool| {
            let done = sqlx::query("UPDATE projects SET plan = $1 WHERE id = $2")
                .bind(plan)
                .bind(project_id)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Events newly stored for the project in the month of `now`.
    pub async fn usage_this_month(
        &self,
        project_id: ProjectId,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let month = month_of(now);
        with_db!(self, read_pool, |pool| {
            let used: Option<i64> = sqlx::query_scalar(
                "SELECT events FROM usage_monthly WHERE project_id = $1 AND month = $2",
            )
            .bind(project_id)
            .bind(&month)
            .fetch_optional(pool)
            .await?;
            Ok(used.unwrap_or(0))
        })
    }

    pub async fn events_total(&self, project_id: ProjectId) -> Result<i64, StoreError> {
        with_db!(self, read_pool, |pool| {
            let total: Option<i64> =
                sqlx::query_scalar("SELECT events_total FROM project_usage WHERE project_id = $1")
                    .bind(project_id)
                    .fetch_optional(pool)
                    .await?;
            Ok(total.unwrap_or(0))
        })
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
        let (from, to) = (millis(from), millis(to));
        with_db!(self, read_pool, |pool| {
            let rows = sqlx::query(
                "SELECT hour, events FROM rollups_hourly
                 WHERE project_id = $1 AND name = $2 AND hour >= $3 AND hour < $4 ORDER BY hour",
            )
            .bind(project_id)
            .bind(name)
            .bind(from - from.rem_euclid(HOUR_MS))
            .bind(to)
            .fetch_all(pool)
            .await?;
            Ok(rows
                .iter()
                .map(|r| (from_millis(r.get("hour")), r.get("events")))
                .collect())
        })
    }

    pub async fn list_events(
        &self,
        project_id: ProjectId,
        q: &EventQuery,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        // Static SQL per filter combination, so each uses its index and nothing is interpolated;
        // each binds only the parameters it uses (PostgreSQL refuses extra ones).
        let sql = match (&q.event, &q.user_id) {
            (None, None) => {
                "SELECT * FROM events WHERE project_id = $1 AND seq < $2
                 ORDER BY seq DESC LIMIT $3"
            }
            (Some(_), None) => {
                "SELECT * FROM events WHERE project_id = $1 AND seq < $2 AND event = $4
                 ORDER BY seq DESC LIMIT $3"
            }
            (None, Some(_)) => {
                "SELECT * FROM events WHERE project_id = $1 AND seq < $2 AND user_id = $4
                 ORDER BY seq DESC LIMIT $3"
            }
            (Some(_), Some(_)) => {
                "SELECT * FROM events WHERE project_id = $1 AND seq < $2 AND event = $4
                 AND user_id = $5 ORDER BY seq DESC LIMIT $3"
            }
        };
        with_db!(self, read_pool, |pool| {
            let mut query = sqlx::query(sql)
                .bind(project_id)
                .bind(q.before_seq.unwrap_or(i64::MAX))
                .bind(i64::from(q.limit));
            for filter in [&q.event, &q.user_id].into_iter().flatten() {
                query = query.bind(filter.as_str());
            }
            let rows = query.fetch_all(pool).await?;
            Ok(rows.iter().map(stored_event).collect())
        })
    }
}

/// A project from a row of `projects`' columns, on either backend.
fn project_record<R: Row>(r: &R) -> ProjectRecord
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    ProjectRecord {
        id: r.get("id"),
        name: r.get("name"),
        plan: r.get("plan"),
        created_at: from_millis(r.get("created_at")),
    }
}
