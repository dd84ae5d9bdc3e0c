//! The SQLite side of the tracked-property rollups (`crate::store::props`): the ingest commit's
//! sums and the backfill, both on the ingest thread's connection (the one writer).

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashSet};

use rusqlite::{OptionalExtension, Transaction, params};

use super::SqliteStore;
use crate::store::analytics::is_bot;
use crate::store::props::{
    DayKey, KeyPlan, MAX_TRACKED_VALUES, PROPS_BACKFILL_CHUNK, PropCounts, Tally, TrackedKey,
    all_pairs, backfill_counts, rollup_name_of,
};
use crate::store::{Backend, DAY_MS, PendingBatch, StoreError, millis};

/// A project's tracked keys, read in the writer's transaction.
fn tracked(tx: &Transaction<'_>, project: i64) -> Result<Vec<TrackedKey>, StoreError> {
    let mut q = tx.prepare_cached(
        "SELECT key, next_seq, end_seq, generation FROM tracked_properties
         WHERE project_id = ?1 ORDER BY key",
    )?;
    let keys = q
        .query_map(params![project], |r| {
            Ok(TrackedKey {
                key: r.get(0)?,
                next_seq: r.get(1)?,
                end_seq: r.get(2)?,
                generation: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(keys)
}

/// Adds the non-bot messages this commit stored (`stored`, one flag per message in order) to
/// the rollups of their projects' tracked keys. A project tracking nothing costs one lookup.
pub(super) fn record(
    tx: &Transaction<'_>,
    batches: &[PendingBatch],
    stored: &[bool],
) -> Result<(), StoreError> {
    let mut keys_of: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for (batch, _) in batches
        .iter()
        .zip(stored_per_batch(batches, stored))
        .filter(|(_, any)| *any)
    {
        if let Entry::Vacant(e) = keys_of.entry(batch.project_id) {
            e.insert(
                tracked(tx, batch.project_id)?
                    .into_iter()
                    .map(|k| k.key)
                    .collect(),
            );
        }
    }
    let plans: BTreeMap<i64, KeyPlan<'_>> = keys_of
        .iter()
        .filter(|(_, keys)| !keys.is_empty())
        .map(|(p, keys)| (*p, all_pairs(keys)))
        .collect();
    if plans.is_empty() {
        return Ok(());
    }
    let mut tallies: BTreeMap<i64, Tally<'_>> = plans
        .iter()
        .map(|(p, (singles, pairs))| (*p, Tally::new(*p, singles, pairs)))
        .collect();
    let messages = batches
        .iter()
        .flat_map(|b| b.messages.iter().map(move |m| (b.project_id, m)));
    for ((project, m), _) in messages.zip(stored).filter(|(_, new)| **new) {
        if let Some(tally) = tallies.get_mut(&project)
            && !m.bot
        {
            tally.add(rollup_name_of(m), millis(m.timestamp), &m.body);
        }
    }
    let mut counts = PropCounts::default();
    for tally in tallies.into_values() {
        tally.finish(&mut counts);
    }
    write(tx, &counts)
}

/// Whether each batch had a message this commit stored.
fn stored_per_batch<'s>(
    batches: &'s [PendingBatch],
    stored: &'s [bool],
) -> impl Iterator<Item = bool> + 's {
    let mut at = 0;
    batches.iter().map(move |b| {
        let any = stored[at..at + b.messages.len()].iter().any(|s| *s);
        at += b.messages.len();
        any
    })
}

/// Adds `c` to the stored rows, keeping each day's values under [`MAX_TRACKED_VALUES`]: a day
/// past it (or with a value too long) is capped, and its rows are no longer written.
pub(super) fn write(tx: &Transaction<'_>, c: &PropCounts) -> Result<(), StoreError> {
    if c.is_empty() {
        return Ok(());
    }
    let mut capped: HashSet<&DayKey> = HashSet::new();
    {
        let mut day_row = tx.prepare_cached(
            "SELECT values_seen, capped FROM tracked_property_days
             WHERE project_id = ?1 AND key = ?2 AND day = ?3 AND event = ?4",
        )?;
        let mut add_value = tx.prepare_cached(
            "INSERT OR IGNORE INTO tracked_property_values (project_id, key, event, day, value)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut has_value = tx.prepare_cached(
            "SELECT 1 FROM tracked_property_values
             WHERE project_id = ?1 AND key = ?2 AND event = ?3 AND day = ?4 AND value = ?5",
        )?;
        let mut set_day = tx.prepare_cached(
            "INSERT INTO tracked_property_days (project_id, key, event, day, values_seen, capped)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (project_id, key, day, event)
             DO UPDATE SET values_seen = excluded.values_seen, capped = excluded.capped",
        )?;
        for day in c.days() {
            let (p, k, e, d) = day;
            let held: Option<(i64, bool)> = day_row
                .query_row(params![p, k, d, e], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let (mut seen, mut is_capped) = held.unwrap_or((0, false));
            is_capped |= c.too_long.contains(day);
            if !is_capped {
                for v in c.values.get(day).into_iter().flatten() {
                    if seen < MAX_TRACKED_VALUES {
                        seen += add_value.execute(params![p, k, e, d, v])? as i64;
                    } else if has_value
                        .query_row(params![p, k, e, d, v], |_| Ok(()))
                        .optional()?
                        .is_none()
                    {
                        is_capped = true;
                        break;
                    }
                }
            }
            if held != Some((seen, is_capped)) {
                set_day.execute(params![p, k, e, d, seen, is_capped])?;
            }
            if is_capped {
                capped.insert(day);
            }
        }
    }
    let is_capped =
        |p: i64, k: &str, e: &str, d: i64| capped.contains(&(p, k.to_owned(), e.to_owned(), d));
    let mut upsert = tx.prepare_cached(
        "INSERT INTO rollups_props_hourly
         (project_id, key_a, key_b, event, hour, value_a, value_b, events)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (project_id, key_a, key_b, event, hour, value_a, value_b)
         DO UPDATE SET events = events + excluded.events",
    )?;
    for ((p, ka, kb, e, hour, va, vb), n) in &c.rows {
        let day = hour - hour.rem_euclid(DAY_MS);
        if !capped.is_empty()
            && (is_capped(*p, ka, e, day) || (!kb.is_empty() && is_capped(*p, kb, e, day)))
        {
            continue;
        }
        upsert.execute(params![p, ka, kb, e, hour, va, vb, n])?;
    }
    Ok(())
}

/// One backfill chunk on the writer's connection: the first key still being backfilled reads
/// [`PROPS_BACKFILL_CHUNK`] events from its cursor, adds them and moves the cursor, in one
/// transaction. Returns whether a chunk was done.
fn backfill_chunk(conn: &mut rusqlite::Connection) -> Result<bool, StoreError> {
    let tx = conn.transaction()?;
    let next: Option<(i64, String)> = tx
        .query_row(
            "SELECT project_id, key FROM tracked_properties WHERE next_seq <= end_seq
             ORDER BY project_id, key LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((project, key)) = next else {
        return Ok(false);
    };
    let all = tracked(&tx, project)?;
    let Some(this) = all.iter().find(|k| k.key == key) else {
        return Ok(false);
    };
    let sql = format!(
        "SELECT seq, CASE WHEN type = 'track' THEN event ELSE '$' || type END, timestamp, body,
                {bot}
         FROM events WHERE project_id = ?1 AND seq >= ?2 AND seq <= ?3 ORDER BY seq LIMIT ?4",
        bot = is_bot(Backend::Sqlite)
    );
    let events: Vec<(i64, String, i64, String, bool)> = tx
        .prepare(&sql)?
        .query_map(
            params![project, this.next_seq, this.end_seq, PROPS_BACKFILL_CHUNK],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                ))
            },
        )?
        .collect::<Result<_, _>>()?;
    write(&tx, &backfill_counts(project, this, &all, &events))?;
    let next_seq = match events.last() {
        Some((seq, ..)) if events.len() as i64 >= PROPS_BACKFILL_CHUNK => seq + 1,
        _ => this.end_seq + 1,
    };
    tx.execute(
        "UPDATE tracked_properties SET next_seq = ?1 WHERE project_id = ?2 AND key = ?3",
        params![next_seq, project, key],
    )?;
    tx.commit()?;
    Ok(true)
}

impl SqliteStore {
    /// One backfill chunk (see [`backfill_chunk`]); returns whether one was done.
    pub(in crate::store) async fn backfill_props(&self) -> Result<bool, StoreError> {
        let turn = self.write.acquire().await?;
        let done = self.ingest.run(backfill_chunk).await?;
        drop(turn);
        Ok(done)
    }
}
