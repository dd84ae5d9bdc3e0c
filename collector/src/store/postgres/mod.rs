//! PostgreSQL: the backend for production and for several collector replicas. Every decision
//! that must happen once (dedupe, scheduled jobs) is made by the database, never in-process:
//! dedupe by `event_ids`' primary key, jobs under advisory locks.

mod category_cap;
mod ingest;
mod local_days;
mod persons;
mod props;
mod sessions;
mod vitals;
pub(crate) use vitals::write as write_vitals;
mod user_event_days;

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Row};

use super::{
    DAY_MS, DISPATCH_MARKERS_RETENTION, HOUR_MS, NOTIFICATION_RETENTION, RECEIVED_ORDER_SLACK_MS,
    RetentionReport, StoreError, StoredEvent, from_millis, millis,
};
use crate::domain::ProjectId;
use crate::store::sessions::retention_sql;

/// The first seq of project `$1` received at or after `$2`, for the live tail: a binary
/// search over seq, one index seek per step, probing only the daily partitions from `$3` (the
/// UTC day of `$2`: the table is partitioned by `received_at`). Walking the project's seq index
/// back until `received_at` drops below the tail's start instead would read every event of
/// today's partition whenever none is that recent (a quiet project's tail polls each second).
/// Seq follows arrival only up to a request's wait for its commit, so the caller searches from
/// a little earlier ([`RECEIVED_ORDER_SLACK_MS`]) and filters on `received_at` too.
const FIRST_SEQ_RECEIVED_SINCE: &str = "
    WITH RECURSIVE search(lo, hi) AS (
        SELECT COALESCE(MIN(seq), 0), COALESCE(MAX(seq), 0) + 1
        FROM events WHERE project_id = $1 AND received_at >= $3
        UNION ALL
        SELECT CASE WHEN probe.received_at < $2 THEN s.mid + 1 ELSE s.lo END,
               CASE WHEN probe.received_at < $2 THEN s.hi ELSE s.mid END
        FROM (SELECT lo, hi, lo + (hi - lo) / 2 AS mid FROM search WHERE lo < hi) s
        CROSS JOIN LATERAL (
            SELECT received_at FROM events
            WHERE project_id = $1 AND received_at >= $3 AND seq >= s.mid
            ORDER BY seq LIMIT 1
        ) probe
    )
    SELECT MAX(lo) FROM search";

static MIGRATOR: sqlx::migrate::Migrator = sqlx_macros::migrate!("../migrations/postgres");

const MAX_CONNECTIONS: u32 = 16;
/// Connections of budgeted reads (heavy dashboard queries, `store::budget`), apart from the
/// main pool so that ingest and cheap reads never wait behind them.
const BUDGETED_CONNECTIONS: u32 = 8;
/// Advisory lock keys: one replica at a time runs each job.
const RETENTION_LOCK: i64 = 0x5055_4c53_0001;
/// Days of partitions kept ready ahead of today.
const PARTITIONS_AHEAD: i64 = 3;

#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// Reads of requests with a time budget (`store::budget`).
    budgeted: PgPool,
    /// `Store::set_pair_heavy_visits`.
    pub(crate) pair_heavy_visits: i64,
    /// `Store::set_fill_budget`.
    pub(crate) fill_budget: std::time::Duration,
}

impl PostgresStore {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        // sqlx takes an advisory lock while migrating, so replicas starting together are safe.
        MIGRATOR.run(&pool).await?;
        let budgeted = super::budget::postgres_pool(BUDGETED_CONNECTIONS).connect_lazy_with(
            (*pool.connect_options())
                .clone()
                .application_name(super::budget::POSTGRES_APPLICATION_NAME),
        );
        Ok(Self {
            pool,
            budgeted,
            pair_heavy_visits: crate::store::visits::PAIR_HEAVY_VISITS,
            fill_budget: crate::store::visits::FILL_TX_BUDGET,
        })
    }

    /// The pool, for store code in other files (PostgreSQL has no separate readers); inside a
    /// request with a time budget, the pool whose statements stop at its deadline.
    pub(crate) fn read_pool(&self) -> &PgPool {
        if super::budget::budgeted() {
            &self.budgeted
        } else {
            &self.pool
        }
    }

    pub(crate) fn write_pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.budgeted.close().await;
        self.pool.close().await;
    }

    /// The newest `limit` events received at or after `since` (unix ms), oldest first; the
    /// partitions by day of receipt bound the walk back from the latest event.
    pub async fn events_received_since(
        &self,
        project_id: ProjectId,
        since: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let search_from = since - RECEIVED_ORDER_SLACK_MS;
        let from: i64 = sqlx::query_scalar(FIRST_SEQ_RECEIVED_SINCE)
            .bind(project_id)
            .bind(search_from)
            .bind(search_from - search_from.rem_euclid(DAY_MS))
            .fetch_one(&self.pool)
            .await?;
        // A statement of its own, so the planner sees how few rows lie at or above `from`.
        let rows = sqlx::query(
            "SELECT * FROM events WHERE project_id = $1 AND seq >= $2 AND received_at >= $3
             ORDER BY seq DESC LIMIT $4",
        )
        .bind(project_id)
        .bind(from)
        .bind(since)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().rev().map(super::stored_event).collect())
    }

    /// Daily partitions from yesterday to a few days ahead. Creating a future day's partition
    /// is instant (the default partition holds nothing for it). Replicas may race here: a
    /// partition another replica just created is not an error.
    pub async fn prepare_partitions(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let today = millis(now) - millis(now).rem_euclid(DAY_MS);
        for day in -1..=PARTITIONS_AHEAD {
            let start = today + day * DAY_MS;
            let name = partition_name(start);
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS {name} PARTITION OF events FOR VALUES FROM ({start}) TO ({})",
                start + DAY_MS
            );
            if let Err(e) = sqlx::query(AssertSqlSafe(sql)).execute(&self.pool).await {
                tracing::debug!(partition = name, error = %e, "partition not created; rows for that day stay in events_default");
            }
        }
        Ok(())
    }

    pub async fn apply_retention(&self, now: i64) -> Result<RetentionReport, StoreError> {
        let mut report = RetentionReport::default();
        let mut tx = self.pool.begin().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(RETENTION_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            return Ok(report); // another replica is on it
        }
        let projects = sqlx::query(
            "SELECT p.id, pl.retention_days::INT8 AS retention_days,
                    p.raw_retention_days::INT8 AS raw_retention_days
             FROM projects p JOIN plans pl ON pl.name = p.plan",
        )
        .fetch_all(&mut *tx)
        .await?;
        // Whole partitions go when every project's retention has passed them.
        let retention: Vec<Option<i64>> = projects
            .iter()
            .map(|r| r.get::<Option<i64>, _>("retention_days"))
            .collect();
        let longest = if retention.iter().all(Option::is_some) {
            retention.iter().flatten().max().copied()
        } else {
            None // a project keeps data forever: partitions stay, rows are deleted per project
        };
        if let Some(days) = longest {
            let cutoff = now - days * DAY_MS;
            let partitions: Vec<String> = sqlx::query_scalar(
                "SELECT c.relname::TEXT FROM pg_inherits i
                 JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
                 WHERE p.relname = 'events' AND c.relname LIKE 'events_p%'",
            )
            .fetch_all(&mut *tx)
            .await?;
            for name in partitions {
                let Some(start) = partition_start(&name) else {
                    continue;
                };
                if start + DAY_MS <= cutoff {
                    sqlx::query(AssertSqlSafe(format!("DROP TABLE {name}")))
                        .execute(&mut *tx)
                        .await?;
                    report.partitions_dropped += 1;
                }
            }
        }
        for row in &projects {
            let plan_days = row.get::<Option<i64>, _>("retention_days");
            let raw_days = row.get::<Option<i64>, _>("raw_retention_days");
            if plan_days.is_none() && raw_days.is_none() {
                continue;
            }
            let project_id: i64 = row.get("id");
            let raw_cutoff = now - super::raw_retention::raw_days(plan_days, raw_days) * DAY_MS;
            report.events_deleted +=
                sqlx::query("DELETE FROM events WHERE project_id = $1 AND received_at < $2")
                    .bind(project_id)
                    .bind(raw_cutoff)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            for sql in [
                "DELETE FROM event_ids WHERE project_id = $1 AND received_at < $2",
                // Dropped partitions fire no delete trigger (migrations/postgres/0026).
                "DELETE FROM web_pageviews WHERE project_id = $1 AND ts < $2",
                // Visits go with their page views (their rollups stay, below).
                "DELETE FROM web_visits WHERE project_id = $1 AND start_ts < $2",
            ] {
                sqlx::query(sql)
                    .bind(project_id)
                    .bind(raw_cutoff)
                    .execute(&mut *tx)
                    .await?;
            }
            // Rollups (and notification history) follow the plan, however short the project
            // keeps raw events.
            let Some(days) = plan_days else {
                continue;
            };
            let cutoff = now - days * DAY_MS;
            for sql in [
                "DELETE FROM rollups_hourly WHERE project_id = $1 AND hour < $2",
                "DELETE FROM rollups_hourly_bots WHERE project_id = $1 AND hour < $2",
                "DELETE FROM vitals_hourly WHERE project_id = $1 AND hour < $2",
                "DELETE FROM web_hourly WHERE project_id = $1 AND hour < $2",
            ] {
                // The hour that holds the cutoff stays, as on SQLite: part of it is still kept.
                sqlx::query(sql)
                    .bind(project_id)
                    .bind(cutoff - cutoff.rem_euclid(HOUR_MS))
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("DELETE FROM vitals_pages_daily WHERE project_id = $1 AND day < $2")
                .bind(project_id)
                .bind(cutoff - cutoff.rem_euclid(DAY_MS))
                .execute(&mut *tx)
                .await?;
            // Web page day rows of the days that ended before the cutoff (local midnights
            // are within a day of it).
            sqlx::query("DELETE FROM web_daily WHERE project_id = $1 AND day < $2")
                .bind(project_id)
                .bind(cutoff - DAY_MS)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM web_daily_pairs WHERE project_id = $1 AND day < $2")
                .bind(project_id)
                .bind(cutoff - DAY_MS)
                .execute(&mut *tx)
                .await?;
            // Active-user rollups of the days that ended before the cutoff.
            let days = [
                "DELETE FROM active_users_daily WHERE project_id = $1 AND day < $2",
                "DELETE FROM active_users_days WHERE project_id = $1 AND day < $2",
                "DELETE FROM users_last_seen WHERE project_id = $1 AND last_day < $2",
                "DELETE FROM user_event_days WHERE project_id = $1 AND day < $2",
                // Bots' twins (migration 0052), like people's.
                "DELETE FROM active_bots_daily WHERE project_id = $1 AND day < $2",
                "DELETE FROM user_event_days_bots WHERE project_id = $1 AND day < $2",
            ];
            // Then sessions (people's and bots') that ended before the cutoff's day
            // (`store::sessions`), after their share of the hourly sums.
            let sessions = retention_sql();
            for sql in days.into_iter().chain(sessions.iter().map(String::as_str)) {
                sqlx::query(AssertSqlSafe(sql))
                    .bind(project_id)
                    .bind(cutoff - cutoff.rem_euclid(DAY_MS))
                    .execute(&mut *tx)
                    .await?;
            }
            // One statement each, no chunks: the whole pass is one transaction anyway, and the
            // rows it removes are finished ones that no worker updates.
            for (sql, counted) in NOTIFICATION_RETENTION {
                let rows = sqlx::query(sql)
                    .bind(project_id)
                    .bind(cutoff)
                    .bind(i64::MAX)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                report.count(counted, rows);
            }
        }
        sqlx::query(DISPATCH_MARKERS_RETENTION)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(report)
    }
}

fn partition_name(day_start_ms: i64) -> String {
    format!("events_p{}", from_millis(day_start_ms).format("%Y%m%d"))
}

fn partition_start(name: &str) -> Option<i64> {
    let date = chrono::NaiveDate::parse_from_str(name.strip_prefix("events_p")?, "%Y%m%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_round_trip() {
        let start = chrono::NaiveDate::from_ymd_opt(2026, 11, 22)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc().timestamp_millis())
            .unwrap();
        assert_eq!(partition_name(start), "events_p20261122");
        assert_eq!(partition_start("events_p20261122"), Some(start));
        assert_eq!(partition_start("events_default"), None);
    }
}
