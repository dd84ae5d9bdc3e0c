//! The PostgreSQL ingest commit: every batch of a group in one transaction, each table written
//! with one `UNNEST` statement, in key order so that replicas committing together take their
//! row locks in the same order and cannot deadlock.

use std::collections::{BTreeMap, HashSet};

use sqlx::{AssertSqlSafe, PgConnection};

use super::PostgresStore;
use crate::store::delivery::{NewDelivery, Outbox};
use crate::store::{HOUR_MS, PendingBatch, StoreError, millis, month_of, rollup_name};

/// The two hourly rollups a commit adds to: every event's, and the bots' among them.
const HOURLY: &str = "rollups_hourly";
const HOURLY_BOTS: &str = "rollups_hourly_bots";

impl PostgresStore {
    pub async fn insert_batches(
        &self,
        batches: Vec<PendingBatch>,
        deliveries: Vec<NewDelivery>,
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
        let deliveries: Vec<NewDelivery> = deliveries
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
        // The dashboard's DAU/WAU/MAU read this rollup (migrations 0006), keyed by the project's
        // local day (0040); sorted, so concurrent writers take its row locks in the same order.
        let days = super::local_days::day_keys(&mut tx, &rows.project_id, &rows.timestamp).await?;
        sqlx::query(
            "INSERT INTO active_users_daily (project_id, day, user_key)
             SELECT DISTINCT p, d, COALESCE(u, a)
             FROM UNNEST($1::INT8[], $2::INT8[], $3::TEXT[], $4::TEXT[], $5::BOOL[])
                  AS t(p, d, u, a, bot)
             WHERE COALESCE(u, a) IS NOT NULL AND NOT bot ORDER BY 1, 2, 3
             ON CONFLICT DO NOTHING",
        )
        .bind(&rows.project_id)
        .bind(&days)
        .bind(&rows.user_id)
        .bind(&rows.anonymous_id)
        .bind(&rows.bot)
        .execute(&mut *tx)
        .await?;
        add_hourly(&mut tx, HOURLY_BOTS, bot_rollups).await?;
        add_hourly(&mut tx, HOURLY, rollups).await?;

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
}

/// Adds `counts` per (project, name, hour) to the hourly rollup `table` (one of [`HOURLY`] and
/// [`HOURLY_BOTS`]), in key order.
async fn add_hourly(
    tx: &mut PgConnection,
    table: &'static str,
    counts: BTreeMap<(i64, String, i64), i64>,
) -> Result<(), StoreError> {
    if counts.is_empty() {
        return Ok(());
    }
    let (p, rest): (Vec<i64>, Vec<(String, i64, i64)>) = counts
        .into_iter()
        .map(|((p, name, hour), n)| (p, (name, hour, n)))
        .unzip();
    let (names, (hours, counts)): (Vec<String>, (Vec<i64>, Vec<i64>)) =
        rest.into_iter().map(|(a, b, c)| (a, (b, c))).unzip();
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO {table} (project_id, name, hour, events)
         SELECT * FROM UNNEST($1::INT8[], $2::TEXT[], $3::INT8[], $4::INT8[])
         ON CONFLICT (project_id, name, hour)
         DO UPDATE SET events = {table}.events + excluded.events"
    )))
    .bind(&p)
    .bind(&names)
    .bind(&hours)
    .bind(&counts)
    .execute(&mut *tx)
    .await?;
    Ok(())
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
