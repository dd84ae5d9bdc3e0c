//! The SQLite ingest commit's Web Vitals rollups (`crate::store::vitals`): each touched row is
//! read, merged with the commit's samples and written back, by the one writer.

use rusqlite::{OptionalExtension, Transaction, params};

use crate::store::vitals::{VitalAcc, VitalRollups};
use crate::store::{PendingBatch, StoreError};

/// Adds the Web Vitals among the messages of `batches` that this commit stored (`stored`,
/// one flag per message in order).
pub(super) fn add(
    tx: &Transaction<'_>,
    batches: &[PendingBatch],
    stored: &[bool],
) -> Result<(), StoreError> {
    let mut r = VitalRollups::default();
    let messages = batches
        .iter()
        .flat_map(|b| b.messages.iter().map(move |m| (b.project_id, m)));
    for ((project, m), _) in messages.zip(stored).filter(|(_, new)| **new) {
        r.add(project, m);
    }
    write(tx, r)
}

/// Merges `r` into the stored rows.
pub(crate) fn write(tx: &Transaction<'_>, mut r: VitalRollups) -> Result<(), StoreError> {
    if r.is_empty() {
        return Ok(());
    }
    for ((project, metric, hour, bot), acc) in &r.hourly {
        let mut old = tx.prepare_cached(
            "SELECT samples, good, poor, sketch FROM vitals_hourly
             WHERE project_id = ?1 AND metric = ?2 AND hour = ?3 AND bot = ?4",
        )?;
        let merged = merged(
            old.query_row(params![project, metric, hour, bot], stored)
                .optional()?,
            acc,
        )?;
        tx.prepare_cached(
            "INSERT OR REPLACE INTO vitals_hourly
             (project_id, metric, hour, bot, samples, good, poor, sketch)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            project,
            metric,
            hour,
            bot,
            merged.samples,
            merged.good,
            merged.poor,
            merged.sketch.encode()
        ])?;
    }
    {
        let mut held = tx.prepare_cached(
            "SELECT COUNT(*), COALESCE(MAX(path = ?5), 0) FROM vitals_pages_daily
             WHERE project_id = ?1 AND metric = ?2 AND day = ?3 AND bot = ?4",
        )?;
        let mut failed = None;
        r.cap_pages(&mut |(p, m, d, b, path)| match held
            .query_row(params![p, m, d, b, path], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
            }) {
            Ok((n, has)) => (usize::try_from(n).unwrap_or(usize::MAX), has != 0),
            Err(e) => {
                failed.get_or_insert(e);
                (0, true)
            }
        });
        if let Some(e) = failed {
            return Err(e.into());
        }
    }
    for ((project, metric, day, bot, path), acc) in &r.pages {
        let mut old = tx.prepare_cached(
            "SELECT samples, good, poor, sketch FROM vitals_pages_daily
             WHERE project_id = ?1 AND metric = ?2 AND day = ?3 AND bot = ?4 AND path = ?5",
        )?;
        let merged = merged(
            old.query_row(params![project, metric, day, bot, path], stored)
                .optional()?,
            acc,
        )?;
        tx.prepare_cached(
            "INSERT OR REPLACE INTO vitals_pages_daily
             (project_id, metric, day, bot, path, samples, good, poor, sketch)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            project,
            metric,
            day,
            bot,
            path,
            merged.samples,
            merged.good,
            merged.poor,
            merged.sketch.encode()
        ])?;
    }
    Ok(())
}

type StoredRow = (i64, i64, i64, Vec<u8>);

fn stored(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRow> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn merged(old: Option<StoredRow>, add: &VitalAcc) -> Result<VitalAcc, StoreError> {
    let mut acc = match old {
        Some((samples, good, poor, sketch)) => {
            VitalAcc::from_columns(samples, good, poor, &sketch)?
        }
        None => VitalAcc::default(),
    };
    acc.merge(add);
    Ok(acc)
}
