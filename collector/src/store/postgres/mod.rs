//! PostgreSQL: the backend for production and for several collector replicas. Every decision
//! that must happen once (dedupe, scheduled jobs) is made by the database, never in-process:
//! dedupe by `event_ids`' primary key, jobs under advisory locks.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Row};

use super::delivery::Outbox;
use super::{
    DAY_MS, DISPATCH_MARKERS_RETENTION, HOUR_MS, NOTIFICATION_RETENTION, PendingBatch,
    RetentionReport, StoreError, StoredEvent, from_millis, millis, month_of, rollup_name,
};
use crate::domain::ProjectId;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

const MAX_CONNECTIONS: u32 = 16;
/// Advisory lock keys: one replica at a time runs each job.
const RETENTION_LOCK: i64 = 0x5055_4c53_0001;
/// Days of partitions kept ready ahead of today.
const PARTITIONS_AHEAD: i64 = 3;

#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
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
        Ok(Self { pool })
    }

    /// The pool, for store code in other files (PostgreSQL has no separate readers).
    pub(crate) fn read_pool(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) fn write_pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub async fn insert_batches(
        &self,
        batches: Vec<PendingBatch>,
        deliveries: Vec<super::delivery::NewDelivery>,
    ) -> Result<Vec<u64>, StoreError> {
        let batches = &batches[..];
        // Every (project, messageId) once per transaction, in key order: replicas committing
        // overlapping ids then lock them in the same order and cannot deadlock.
        let mut seen = HashSet::new();
        let mut order: Vec<(usize, usize)> = Vec::new();
        for (b, batch) in batches.iter().enumerate() {
            for (m, msg) in batch.messages.iter().enumerate() {
                if seen.insert((batch.project_id, msg.message_id.as_str())) {
                    order.push((b, m));
                }
            }
        }
        let key = |&(b, m): &(usize, usize)| {
            (
                batches[b].project_id,
                batches[b].messages[m].message_id.as_str(),
            )
        };
        order.sort_unstable_by(|x, y| key(x).cmp(&key(y)));

        let mut tx = self.pool.begin().await?;
        let new_positions: Vec<i64> = sqlx::query_scalar(
            "WITH input AS (
                 SELECT * FROM UNNEST($1::INT8[], $2::TEXT[], $3::INT8[])
                     WITH ORDINALITY AS t(project_id, message_id, received_at, pos)
             ), fresh AS (
                 INSERT INTO event_ids (project_id, message_id, received_at)
                 SELECT project_id, message_id, received_at FROM input ORDER BY pos
                 ON CONFLICT DO NOTHING
                 RETURNING project_id, message_id
             )
             SELECT input.pos FROM input JOIN fresh USING (project_id, message_id)",
        )
        .bind(
            order
                .iter()
                .map(|&(b, _)| batches[b].project_id)
                .collect::<Vec<_>>(),
        )
        .bind(order.iter().map(|x| key(x).1).collect::<Vec<_>>())
        .bind(
            order
                .iter()
                .map(|&(b, _)| millis(batches[b].received_at))
                .collect::<Vec<_>>(),
        )
        .fetch_all(&mut *tx)
        .await?;

        let mut is_new: Vec<Vec<bool>> = batches
            .iter()
            .map(|b| vec![false; b.messages.len()])
            .collect();
        for pos in new_positions {
            let (b, m) = order[(pos - 1) as usize];
            is_new[b][m] = true;
        }

        let mut rows = EventColumns::default();
        let mut rollups: BTreeMap<(i64, String, i64), i64> = BTreeMap::new();
        let mut bot_rollups: BTreeMap<(i64, String, i64), i64> = BTreeMap::new();
        let mut monthly: BTreeMap<(i64, String), i64> = BTreeMap::new();
        let mut totals: BTreeMap<i64, i64> = BTreeMap::new();
        let mut inserted = Vec::with_capacity(batches.len());
        for (b, batch) in batches.iter().enumerate() {
            let received_at = millis(batch.received_at);
            let mut n = 0;
            for (m, msg) in batch.messages.iter().enumerate() {
                if !is_new[b][m] {
                    continue;
                }
                n += 1;
                let ts = millis(msg.timestamp);
                let key = (
                    batch.project_id,
                    rollup_name(msg),
                    ts - ts.rem_euclid(HOUR_MS),
                );
                if msg.bot {
                    *bot_rollups.entry(key.clone()).or_default() += 1;
                }
                *rollups.entry(key).or_default() += 1;
                rows.push(batch.project_id, msg, received_at);
            }
            if n > 0 {
                *monthly
                    .entry((batch.project_id, month_of(batch.received_at)))
                    .or_default() += n;
                *totals.entry(batch.project_id).or_default() += n;
            }
            inserted.push(n as u64);
        }
        // The notifications of this commit's events, atomically with them (exactly once per
        // category and event: the outbox's unique key absorbs resent messages).
        // Only for events this commit stored first: a resent duplicate notifies nothing.
        let fresh: HashSet<(i64, &str)> = batches
            .iter()
            .enumerate()
            .flat_map(|(b, batch)| {
                let is_new = &is_new;
                batch
                    .messages
                    .iter()
                    .enumerate()
                    .filter(move |(m, _)| is_new[b][*m])
                    .map(move |(_, msg)| (batch.project_id, msg.message_id.as_str()))
            })
            .collect();
        let deliveries: Vec<super::delivery::NewDelivery> = deliveries
            .iter()
            .filter(|d| {
                d.event_message_id
                    .as_deref()
                    .is_none_or(|m| fresh.contains(&(d.project_id, m)))
            })
            .cloned()
            .collect();
        let deliveries = super::category_cap::limit_postgres(&mut tx, deliveries).await?;
        tx.insert_deliveries(&deliveries).await?;
        if rows.project_id.is_empty() {
            tx.commit().await?;
            return Ok(inserted);
        }
        sqlx::query(
            "INSERT INTO events (project_id, message_id, type, event, user_id, anonymous_id,
                                 timestamp, received_at, body)
             SELECT * FROM UNNEST($1::INT8[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[],
                                  $6::TEXT[], $7::INT8[], $8::INT8[], $9::TEXT[])",
        )
        .bind(&rows.project_id)
        .bind(&rows.message_id)
        .bind(&rows.kind)
        .bind(&rows.event)
        .bind(&rows.user_id)
        .bind(&rows.anonymous_id)
        .bind(&rows.timestamp)
        .bind(&rows.received_at)
        .bind(&rows.body)
        .execute(&mut *tx)
        .await?;
        // The dashboard's DAU/WAU/MAU read this rollup (migrations 0006); sorted, so concurrent
        // writers take its row locks in the same order.
        sqlx::query(
            "INSERT INTO active_users_daily (project_id, day, user_key)
             SELECT DISTINCT p, ts - mod(ts, $5), COALESCE(u, a)
             FROM UNNEST($1::INT8[], $2::INT8[], $3::TEXT[], $4::TEXT[], $6::BOOL[])
                  AS t(p, ts, u, a, bot)
             WHERE COALESCE(u, a) IS NOT NULL AND NOT bot ORDER BY 1, 2, 3
             ON CONFLICT DO NOTHING",
        )
        .bind(&rows.project_id)
        .bind(&rows.timestamp)
        .bind(&rows.user_id)
        .bind(&rows.anonymous_id)
        .bind(DAY_MS)
        .bind(&rows.bot)
        .execute(&mut *tx)
        .await?;
        if !bot_rollups.is_empty() {
            let (p, rest): (Vec<i64>, Vec<(String, i64, i64)>) = bot_rollups
                .into_iter()
                .map(|((p, name, hour), n)| (p, (name, hour, n)))
                .unzip();
            let (names, (hours, counts)): (Vec<String>, (Vec<i64>, Vec<i64>)) =
                rest.into_iter().map(|(a, b, c)| (a, (b, c))).unzip();
            sqlx::query(
                "INSERT INTO rollups_hourly_bots (project_id, name, hour, events)
                 SELECT * FROM UNNEST($1::INT8[], $2::TEXT[], $3::INT8[], $4::INT8[])
                 ON CONFLICT (project_id, name, hour)
                 DO UPDATE SET events = rollups_hourly_bots.events + excluded.events",
            )
            .bind(&p)
            .bind(&names)
            .bind(&hours)
            .bind(&counts)
            .execute(&mut *tx)
            .await?;
        }

        let (p, rest): (Vec<i64>, Vec<(String, i64, i64)>) = rollups
            .into_iter()
            .map(|((p, name, hour), n)| (p, (name, hour, n)))
            .unzip();
        let (names, (hours, counts)): (Vec<String>, (Vec<i64>, Vec<i64>)) =
            rest.into_iter().map(|(a, b, c)| (a, (b, c))).unzip();
        sqlx::query(
            "INSERT INTO rollups_hourly (project_id, name, hour, events)
             SELECT * FROM UNNEST($1::INT8[], $2::TEXT[], $3::INT8[], $4::INT8[])
             ON CONFLICT (project_id, name, hour)
             DO UPDATE SET events = rollups_hourly.events + excluded.events",
        )
        .bind(&p)
        .bind(&names)
        .bind(&hours)
        .bind(&counts)
        .execute(&mut *tx)
        .await?;

        let (mp, (months, mcounts)): (Vec<i64>, (Vec<String>, Vec<i64>)) =
            monthly.into_iter().map(|((p, m), n)| (p, (m, n))).unzip();
        sqlx::query(
            "INSERT INTO usage_monthly (project_id, month, events)
             SELECT * FROM UNNEST($1::INT8[], $2::TEXT[], $3::INT8[])
             ON CONFLICT (project_id, month)
             DO UPDATE SET events = usage_monthly.events + excluded.events",
        )
        .bind(&mp)
        .bind(&months)
        .bind(&mcounts)
        .execute(&mut *tx)
        .await?;

        let (tp, tcounts): (Vec<i64>, Vec<i64>) = totals.into_iter().unzip();
        sqlx::query(
            "UPDATE project_usage u SET events_total = u.events_total + t.n
             FROM UNNEST($1::INT8[], $2::INT8[]) AS t(project_id, n)
             WHERE u.project_id = t.project_id",
        )
        .bind(&tp)
        .bind(&tcounts)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(inserted)
    }

    /// The newest `limit` events received at or after `since` (unix ms), oldest first; the
    /// partitions by day of receipt bound the walk back from the latest event.
    pub async fn events_received_since(
        &self,
        project_id: ProjectId,
        since: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM events WHERE received_at >= $1 AND project_id = $2
             ORDER BY seq DESC LIMIT $3",
        )
        .bind(since)
        .bind(project_id)
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
            ] {
                sqlx::query(sql)
                    .bind(project_id)
                    .bind(cutoff)
                    .execute(&mut *tx)
                    .await?;
            }
            // Active-user rollups of the days that ended before the cutoff.
            for sql in [
                "DELETE FROM active_users_daily WHERE project_id = $1 AND day < $2",
                "DELETE FROM active_users_days WHERE project_id = $1 AND day < $2",
                "DELETE FROM users_last_seen WHERE project_id = $1 AND last_day < $2",
            ] {
                sqlx::query(sql)
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

/// Column arrays for one UNNEST insert.
#[derive(Default)]
struct EventColumns<'a> {
    project_id: Vec<i64>,
    message_id: Vec<&'a str>,
    kind: Vec<&'static str>,
    event: Vec<Option<&'a str>>,
    user_id: Vec<Option<&'a str>>,
    anonymous_id: Vec<Option<&'a str>>,
    timestamp: Vec<i64>,
    received_at: Vec<i64>,
    body: Vec<&'a str>,
    /// Not a column: keeps bots out of the active-user rollup.
    bot: Vec<bool>,
}

impl<'a> EventColumns<'a> {
    fn push(&mut self, project_id: i64, m: &'a crate::domain::Message, received_at: i64) {
        self.project_id.push(project_id);
        self.message_id.push(&m.message_id);
        self.kind.push(m.kind.as_str());
        self.event.push(m.event.as_deref());
        self.user_id.push(m.user_id.as_deref());
        self.anonymous_id.push(m.anonymous_id.as_deref());
        self.timestamp.push(millis(m.timestamp));
        self.received_at.push(received_at);
        self.body.push(&m.body);
        self.bot.push(m.bot);
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
