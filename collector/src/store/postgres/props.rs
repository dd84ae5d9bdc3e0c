//! The PostgreSQL side of the tracked-property rollups (`crate::store::props`): the ingest
//! commit's sums and the backfill, each written with a few `UNNEST` statements, rows in key
//! order (the sums are a `BTreeMap`), so that commits and replicas lock rows in one order.

use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::{PgConnection, Row};

use super::PostgresStore;
use crate::store::analytics::is_bot;
use crate::store::props::{
    DayKey, KeyPlan, LOCK_SPACE, MAX_TRACKED_VALUES, PROPS_BACKFILL_CHUNK, PropCounts, Tally,
    all_pairs, backfill_counts, lock_key, rollup_name_of, tracked_on,
};
use crate::store::{Backend, DAY_MS, PendingBatch, StoreError, millis};

/// Adds the non-bot messages `is_new` marks as stored by this commit to the rollups of their
/// projects' tracked keys (`tracked`, read by this commit after its shared lock). Nothing to do
/// costs nothing: no statement runs.
pub(super) async fn record(
    tx: &mut PgConnection,
    batches: &[PendingBatch],
    is_new: &[Vec<bool>],
    tracked: &HashMap<i64, Vec<String>>,
) -> Result<(), StoreError> {
    if tracked.values().all(Vec::is_empty) {
        return Ok(());
    }
    let plans: HashMap<i64, KeyPlan<'_>> = tracked
        .iter()
        .filter(|(_, keys)| !keys.is_empty())
        .map(|(p, keys)| (*p, all_pairs(keys)))
        .collect();
    let mut tallies: BTreeMap<i64, Tally<'_>> = plans
        .iter()
        .map(|(p, (singles, pairs))| (*p, Tally::new(*p, singles, pairs)))
        .collect();
    for (batch, new) in batches.iter().zip(is_new) {
        let Some(tally) = tallies.get_mut(&batch.project_id) else {
            continue;
        };
        for (m, _) in batch.messages.iter().zip(new).filter(|(_, n)| **n) {
            if !m.bot {
                tally.add(rollup_name_of(m), millis(m.timestamp), &m.body);
            }
        }
    }
    let mut counts = PropCounts::default();
    for tally in tallies.into_values() {
        tally.finish(&mut counts);
    }
    write(tx, &counts).await
}

/// Adds `c` to the stored rows, keeping each day's values under [`MAX_TRACKED_VALUES`] (a
/// day's row is locked by the first statement, so commits add its values one after another;
/// a commit that crosses the cap may leave a few more values listed than the cap, never rows).
pub(super) async fn write(tx: &mut PgConnection, c: &PropCounts) -> Result<(), StoreError> {
    if c.is_empty() {
        return Ok(());
    }
    let days: Vec<&DayKey> = c.days().into_iter().collect();
    let col = |f: fn(&DayKey) -> i64| days.iter().map(|d| f(d)).collect::<Vec<_>>();
    let (dp, dd) = (col(|d| d.0), col(|d| d.3));
    let dk: Vec<&str> = days.iter().map(|d| d.1.as_str()).collect();
    let de: Vec<&str> = days.iter().map(|d| d.2.as_str()).collect();
    let long: Vec<bool> = days.iter().map(|d| c.too_long.contains(*d)).collect();
    // Locks each day's row (in key order) and reads what it holds.
    let held = sqlx::query(
        "INSERT INTO tracked_property_days AS d (project_id, key, event, day, values_seen, capped)
         SELECT p, k, e, dd, 0, l FROM UNNEST($1::INT8[], $2::TEXT[], $3::TEXT[], $4::INT8[],
                                               $5::BOOL[]) AS t(p, k, e, dd, l)
         ON CONFLICT (project_id, key, day, event)
         DO UPDATE SET capped = d.capped OR excluded.capped
         RETURNING project_id, key, event, day, values_seen, capped",
    )
    .bind(&dp)
    .bind(&dk)
    .bind(&de)
    .bind(&dd)
    .bind(&long)
    .fetch_all(&mut *tx)
    .await?;
    let mut state: HashMap<DayKey, (i64, bool)> = HashMap::new();
    for r in &held {
        state.insert(
            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?),
            (r.try_get(4)?, r.try_get(5)?),
        );
    }
    // The values of the days still open; the new ones come back.
    let mut vals = ValueColumns::default();
    for (day, values) in &c.values {
        if state.get(day).is_some_and(|s| !s.1) {
            for v in values {
                vals.project.push(day.0);
                vals.key.push(&day.1);
                vals.event.push(&day.2);
                vals.day.push(day.3);
                vals.value.push(v);
            }
        }
    }
    let mut changed: BTreeMap<DayKey, (i64, bool)> = BTreeMap::new();
    if !vals.project.is_empty() {
        let fresh = sqlx::query(
            "INSERT INTO tracked_property_values (project_id, key, event, day, value)
             SELECT * FROM UNNEST($1::INT8[], $2::TEXT[], $3::TEXT[], $4::INT8[], $5::TEXT[])
             ON CONFLICT DO NOTHING
             RETURNING project_id, key, event, day",
        )
        .bind(&vals.project)
        .bind(&vals.key)
        .bind(&vals.event)
        .bind(&vals.day)
        .bind(&vals.value)
        .fetch_all(&mut *tx)
        .await?;
        for r in &fresh {
            let day: DayKey = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
            // Only values of days read above were inserted.
            if let Some(s) = state.get_mut(&day) {
                s.0 += 1;
                s.1 |= s.0 > MAX_TRACKED_VALUES;
                changed.insert(day, *s);
            }
        }
    }
    if !changed.is_empty() {
        let (mut p, mut k, mut e, mut d, mut n, mut capped) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for ((dp, dk, de, dd), (seen, cap)) in &changed {
            p.push(*dp);
            k.push(dk.as_str());
            e.push(de.as_str());
            d.push(*dd);
            n.push(*seen);
            capped.push(*cap);
        }
        sqlx::query(
            "UPDATE tracked_property_days AS d SET values_seen = t.n, capped = t.c
             FROM UNNEST($1::INT8[], $2::TEXT[], $3::TEXT[], $4::INT8[], $5::INT8[],
                         $6::BOOL[]) AS t(p, k, e, dd, n, c)
             WHERE d.project_id = t.p AND d.key = t.k AND d.event = t.e AND d.day = t.dd",
        )
        .bind(&p)
        .bind(&k)
        .bind(&e)
        .bind(&d)
        .bind(&n)
        .bind(&capped)
        .execute(&mut *tx)
        .await?;
    }
    let capped: HashSet<(i64, &str, &str, i64)> = state
        .iter()
        .filter(|(_, s)| s.1)
        .map(|((p, k, e, d), _)| (*p, k.as_str(), e.as_str(), *d))
        .collect();
    let mut rows = RowColumns::default();
    for ((p, ka, kb, e, hour, va, vb), n) in &c.rows {
        let day = hour - hour.rem_euclid(DAY_MS);
        if capped.contains(&(*p, ka, e, day)) || capped.contains(&(*p, kb, e, day)) {
            continue;
        }
        rows.project.push(*p);
        rows.key_a.push(ka);
        rows.key_b.push(kb);
        rows.event.push(e);
        rows.hour.push(*hour);
        rows.value_a.push(va);
        rows.value_b.push(vb);
        rows.events.push(*n);
    }
    if rows.project.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO rollups_props_hourly AS r
             (project_id, key_a, key_b, event, hour, value_a, value_b, events)
         SELECT * FROM UNNEST($1::INT8[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::INT8[],
                              $6::TEXT[], $7::TEXT[], $8::INT8[])
         ON CONFLICT (project_id, key_a, key_b, event, hour, value_a, value_b)
         DO UPDATE SET events = r.events + excluded.events",
    )
    .bind(&rows.project)
    .bind(&rows.key_a)
    .bind(&rows.key_b)
    .bind(&rows.event)
    .bind(&rows.hour)
    .bind(&rows.value_a)
    .bind(&rows.value_b)
    .bind(&rows.events)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// `tracked_property_values` rows as column arrays.
#[derive(Default)]
struct ValueColumns<'a> {
    project: Vec<i64>,
    key: Vec<&'a str>,
    event: Vec<&'a str>,
    day: Vec<i64>,
    value: Vec<&'a str>,
}

/// `rollups_props_hourly` rows as column arrays, in key order.
#[derive(Default)]
struct RowColumns<'a> {
    project: Vec<i64>,
    key_a: Vec<&'a str>,
    key_b: Vec<&'a str>,
    event: Vec<&'a str>,
    hour: Vec<i64>,
    value_a: Vec<&'a str>,
    value_b: Vec<&'a str>,
    events: Vec<i64>,
}

impl PostgresStore {
    /// One backfill chunk: the first key still being backfilled reads [`PROPS_BACKFILL_CHUNK`]
    /// events from its cursor, adds them and moves the cursor, in one transaction. Returns
    /// whether work may be left.
    pub(in crate::store) async fn backfill_props(&self) -> Result<bool, StoreError> {
        let mut tx = self.write_pool().begin().await?;
        let project: Option<i64> = sqlx::query_scalar(
            "SELECT project_id FROM tracked_properties WHERE next_seq <= end_seq
             ORDER BY project_id LIMIT 1",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(project) = project else {
            tx.rollback().await?;
            return Ok(false);
        };
        // Shared, like ingest: a settings change does not run under a chunk, so the keys read
        // next are the ones in place when the chunk commits.
        sqlx::query("SELECT pg_advisory_xact_lock_shared($1, $2)")
            .bind(LOCK_SPACE)
            .bind(lock_key(project))
            .execute(&mut *tx)
            .await?;
        let mut all = tracked_on!(tx, project, "");
        // The key's row, locked for the chunk: a replica backfilling the same key waits, then
        // reads the cursor this chunk moved (a person delete reading it waits too).
        let locked = sqlx::query(
            "SELECT key, next_seq FROM tracked_properties
             WHERE project_id = $1 AND next_seq <= end_seq
             ORDER BY key LIMIT 1 FOR UPDATE",
        )
        .bind(project)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(locked) = locked else {
            tx.rollback().await?;
            return Ok(true);
        };
        let (key, next_seq): (String, i64) = (locked.try_get(0)?, locked.try_get(1)?);
        let Some(at) = all.iter().position(|t| t.key == key) else {
            tx.rollback().await?;
            return Ok(true);
        };
        all[at].next_seq = next_seq;
        if all[at].ready() {
            tx.rollback().await?;
            return Ok(true);
        }
        let this = &all[at];
        let sql = format!(
            "SELECT seq, CASE WHEN type = 'track' THEN event ELSE '$' || type END, timestamp,
                    body, {bot}
             FROM events WHERE project_id = $1 AND seq >= $2 AND seq <= $3
             ORDER BY seq LIMIT $4",
            bot = is_bot(Backend::Postgres)
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(project)
            .bind(this.next_seq)
            .bind(this.end_seq)
            .bind(PROPS_BACKFILL_CHUNK)
            .fetch_all(&mut *tx)
            .await?;
        let events = rows
            .iter()
            .map(|r| {
                Ok((
                    r.try_get(0)?,
                    r.try_get::<Option<String>, _>(1)?.unwrap_or_default(),
                    r.try_get(2)?,
                    r.try_get(3)?,
                    r.try_get(4)?,
                ))
            })
            .collect::<Result<Vec<(i64, String, i64, String, bool)>, sqlx::Error>>()?;
        write(&mut tx, &backfill_counts(project, this, &all, &events)).await?;
        let next_seq = match events.last() {
            Some((seq, ..)) if events.len() as i64 >= PROPS_BACKFILL_CHUNK => seq + 1,
            _ => this.end_seq + 1,
        };
        sqlx::query(
            "UPDATE tracked_properties SET next_seq = $1 WHERE project_id = $2 AND key = $3",
        )
        .bind(next_seq)
        .bind(project)
        .bind(&this.key)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}
