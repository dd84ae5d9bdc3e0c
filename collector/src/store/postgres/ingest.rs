//! The PostgreSQL ingest commit: every batch of a group in one transaction, each table written
//! with one `UNNEST` statement, in key order so that replicas committing together take their
//! row locks in the same order and cannot deadlock.

use std::collections::{BTreeMap, HashSet};

use sqlx::PgConnection;

use super::PostgresStore;
use crate::store::delivery::{NewDelivery, Outbox};
use crate::store::{HOUR_MS, PendingBatch, StoreError, millis, month_of, rollup_name};

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
        // The commit's projects, for the shared lock of their tracked property keys
        // (`crate::store::props`), taken by the first statement, before any event gets a seq.
        let mut locks: Vec<i32> = batches
            .iter()
            .map(|b| crate::store::props::lock_key(b.project_id))
            .collect();
        locks.sort_unstable();
        locks.dedup();
        let new_positions: Vec<i64> = sqlx::query_scalar(
            "WITH locks AS MATERIALIZED (
                 SELECT pg_advisory_xact_lock_shared($4, k) FROM UNNEST($5::INT4[]) AS k
             ), input AS (
                 SELECT * FROM UNNEST($1::INT8[], $2::TEXT[], $3::INT8[])
                     WITH ORDINALITY AS t(project_id, message_id, received_at, pos)
             ), fresh AS (
                 INSERT INTO event_ids (project_id, message_id, received_at)
                 SELECT project_id, message_id, received_at FROM input ORDER BY pos
                 ON CONFLICT DO NOTHING
                 RETURNING project_id, message_id
             )
             SELECT input.pos FROM input JOIN fresh USING (project_id, message_id)
             WHERE (SELECT COUNT(*) FROM locks) >= 0",
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
        .bind(crate::store::props::LOCK_SPACE)
        .bind(&locks)
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
        let mut rollups = HourlyCounts::new();
        let mut bot_rollups = HourlyCounts::new();
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
        // `rows` (with the rollup sums) is what this commit stored: rollups maintained by other
        // modules take their rows from it, in this transaction, after this statement.
        // The active-user rollup is keyed by each project's local day (migration 0040).
        let (days, tracked) =
            super::local_days::day_keys(&mut tx, &rows.project_id, &rows.timestamp).await?;
        store_rows(
            &mut tx,
            &rows,
            &days,
            &rollups,
            &bot_rollups,
            monthly,
            totals,
        )
        .await?;
        super::user_event_days::record(&mut tx, batches, &is_new).await?;
        super::props::record(&mut tx, batches, &is_new, &tracked).await?;
        super::vitals::add(&mut tx, batches, &is_new).await?;
        super::sessions::record(&mut tx, batches, &is_new).await?;
        tx.commit().await?;
        Ok(inserted)
    }
}

/// The hourly rollup's sums, per (project, name, hour).
type HourlyCounts = BTreeMap<(i64, String, i64), i64>;

/// Stores the surviving events and adds them to every rollup the ingest commit maintains, in
/// one statement: one round trip and one executor start instead of six.
///
/// PostgreSQL runs the main statement first, then the data-modifying CTEs from the last to the
/// first, so the tables are written in the order events (then the Web page's page views, when
/// the commit holds any), bots' days, active users, bot hours, hours, months, totals, each in
/// key order (the arrays are sorted): the same for every commit, so replicas committing
/// together cannot deadlock.
async fn store_rows(
    tx: &mut PgConnection,
    rows: &EventColumns<'_>,
    days: &[i64],
    hourly: &HourlyCounts,
    bot_hourly: &HourlyCounts,
    monthly: BTreeMap<(i64, String), i64>,
    totals: BTreeMap<i64, i64>,
) -> Result<(), StoreError> {
    let hours = HourlyColumns::from(hourly);
    let bot_hours = HourlyColumns::from(bot_hourly);
    let (mp, (months, mcounts)): (Vec<i64>, (Vec<String>, Vec<i64>)) =
        monthly.into_iter().map(|((p, m), n)| (p, (m, n))).unzip();
    let (tp, tcounts): (Vec<i64>, Vec<i64>) = totals.into_iter().unzip();
    // Page views also get their Web page row (migration 0055) from this statement: the events
    // insert returns a row for each of them (NULL for every other event, so that nothing else
    // is copied), and `web_pageviews_add` derives and inserts them. A commit without page views
    // inserts its events as the main statement and returns nothing.
    let main = if rows.kind.contains(&"page") {
        ", stored AS (
             INSERT INTO events (project_id, message_id, type, event, user_id, anonymous_id,
                                 timestamp, received_at, body)
             SELECT * FROM UNNEST($1::INT8[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[],
                                  $6::TEXT[], $7::INT8[], $8::INT8[], $9::TEXT[])
             RETURNING CASE WHEN type = 'page' AND COALESCE(anonymous_id, user_id) IS NOT NULL
                 THEN ROW(seq, project_id, timestamp, COALESCE(anonymous_id, user_id),
                          body)::web_pageview_source END AS page
         )
         SELECT web_pageviews_add(ARRAY(SELECT page FROM stored WHERE page IS NOT NULL))"
    } else {
        "INSERT INTO events (project_id, message_id, type, event, user_id, anonymous_id,
                             timestamp, received_at, body)
         SELECT * FROM UNNEST($1::INT8[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[],
                              $6::TEXT[], $7::INT8[], $8::INT8[], $9::TEXT[])"
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH totals AS (
             UPDATE project_usage u SET events_total = u.events_total + t.n
             FROM UNNEST($23::INT8[], $24::INT8[]) AS t(project_id, n)
             WHERE u.project_id = t.project_id
         ), months AS (
             INSERT INTO usage_monthly (project_id, month, events)
             SELECT * FROM UNNEST($20::INT8[], $21::TEXT[], $22::INT8[])
             ON CONFLICT (project_id, month)
             DO UPDATE SET events = usage_monthly.events + excluded.events
         ), hours AS (
             INSERT INTO rollups_hourly (project_id, name, hour, events)
             SELECT * FROM UNNEST($16::INT8[], $17::TEXT[], $18::INT8[], $19::INT8[])
             ON CONFLICT (project_id, name, hour)
             DO UPDATE SET events = rollups_hourly.events + excluded.events
         ), bot_hours AS (
             INSERT INTO rollups_hourly_bots (project_id, name, hour, events)
             SELECT * FROM UNNEST($12::INT8[], $13::TEXT[], $14::INT8[], $15::INT8[])
             ON CONFLICT (project_id, name, hour)
             DO UPDATE SET events = rollups_hourly_bots.events + excluded.events
         ), active AS (
             -- The dashboard's DAU/WAU/MAU read this rollup (migrations 0006), keyed by
             -- the project's local day (0040).
             INSERT INTO active_users_daily (project_id, day, user_key)
             SELECT DISTINCT p, d, COALESCE(u, a)
             FROM UNNEST($1::INT8[], $11::INT8[], $5::TEXT[], $6::TEXT[], $10::BOOL[])
                  AS t(p, d, u, a, bot)
             WHERE COALESCE(u, a) IS NOT NULL AND NOT bot ORDER BY 1, 2, 3
             ON CONFLICT DO NOTHING
         ), active_bots AS (
             -- Bots' days, for retention with bots (migration 0052).
             INSERT INTO active_bots_daily (project_id, day, user_key)
             SELECT DISTINCT p, d, COALESCE(u, a)
             FROM UNNEST($1::INT8[], $11::INT8[], $5::TEXT[], $6::TEXT[], $10::BOOL[])
                  AS t(p, d, u, a, bot)
             WHERE COALESCE(u, a) IS NOT NULL AND bot ORDER BY 1, 2, 3
             ON CONFLICT DO NOTHING
         ) {main}"
    )))
    .bind(&rows.project_id)
    .bind(&rows.message_id)
    .bind(&rows.kind)
    .bind(&rows.event)
    .bind(&rows.user_id)
    .bind(&rows.anonymous_id)
    .bind(&rows.timestamp)
    .bind(&rows.received_at)
    .bind(&rows.body)
    .bind(&rows.bot)
    .bind(days)
    .bind(&bot_hours.project_id)
    .bind(&bot_hours.name)
    .bind(&bot_hours.hour)
    .bind(&bot_hours.events)
    .bind(&hours.project_id)
    .bind(&hours.name)
    .bind(&hours.hour)
    .bind(&hours.events)
    .bind(&mp)
    .bind(&months)
    .bind(&mcounts)
    .bind(&tp)
    .bind(&tcounts)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// An hourly rollup's sums as column arrays, in key order.
#[derive(Default)]
struct HourlyColumns<'a> {
    project_id: Vec<i64>,
    name: Vec<&'a str>,
    hour: Vec<i64>,
    events: Vec<i64>,
}

impl<'a> From<&'a HourlyCounts> for HourlyColumns<'a> {
    fn from(counts: &'a HourlyCounts) -> Self {
        let mut c = Self::default();
        for ((p, name, hour), n) in counts {
            c.project_id.push(*p);
            c.name.push(name);
            c.hour.push(*hour);
            c.events.push(*n);
        }
        c
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

/// The messages of `batches` that `is_new` marks as stored by this commit, each with its
/// project: what the commit's rollups add.
pub(super) fn stored<'a>(
    batches: &'a [PendingBatch],
    is_new: &'a [Vec<bool>],
) -> impl Iterator<Item = (i64, &'a crate::domain::Message)> + 'a {
    batches.iter().zip(is_new).flat_map(|(batch, new)| {
        batch
            .messages
            .iter()
            .zip(new)
            .filter(|(_, new)| **new)
            .map(|(m, _)| (batch.project_id, m))
    })
}
