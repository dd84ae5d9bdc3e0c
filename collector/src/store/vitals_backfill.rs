//! Rolls up the Web Vitals stored before the vitals rollup existed (migration 0041 lists each
//! project's events up to then in `vitals_backfill`): maintenance reads them a chunk at a time,
//! through the `(project, event, seq)` index, and adds each chunk to the rollup in the same
//! transaction that moves the project's cursor, so a chunk counts once even across a crash or
//! replicas.

use std::collections::{HashMap, HashSet};

use sqlx::{Row, SqliteConnection};

use super::analytics::is_bot;
use super::vitals::{VitalAcc, VitalRollups, vital_of_body};
use super::{Backend, Store, StoreError};
use crate::analytics::WEB_VITAL_EVENT;

/// Events read per backfill transaction (each holds the SQLite writer while it runs).
pub const BACKFILL_CHUNK: i64 = 5_000;

/// The next chunk of one project: its cursor and the events it covers.
struct Chunk {
    project: i64,
    end_seq: i64,
    rollups: VitalRollups,
    /// The last seq read, when the chunk was full (more may follow).
    last: Option<i64>,
}

/// Moves the project's cursor past the chunk (`$next`: the seq after it, `None` when it was
/// the last), or ends the project's backfill. A macro: the same code on each backend's
/// transaction.
macro_rules! advance {
    ($tx:expr, $project:expr, $next:expr, $end:expr) => {{
        match $next.filter(|n: &i64| *n <= $end) {
            Some(n) => {
                sqlx::query("UPDATE vitals_backfill SET next_seq = $1 WHERE project_id = $2")
                    .bind(n)
                    .bind($project)
                    .execute(&mut *$tx)
                    .await?;
            }
            None => {
                sqlx::query("DELETE FROM vitals_backfill WHERE project_id = $1")
                    .bind($project)
                    .execute(&mut *$tx)
                    .await?;
            }
        }
    }};
}

/// The first project's next chunk on `$tx`, or `None` when no backfill is left.
macro_rules! read_chunk {
    ($tx:expr, $backend:expr, $lock:expr) => {{
        let sql = format!(
            "SELECT project_id, next_seq, end_seq FROM vitals_backfill
             ORDER BY project_id LIMIT 1 {}",
            $lock
        );
        match sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_optional(&mut *$tx)
            .await?
        {
            None => None,
            Some(row) => {
                let (project, next_seq, end_seq): (i64, i64, i64) =
                    (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
                let sql = format!(
                    "SELECT seq, timestamp, body, {bot} AS bot FROM events
                     WHERE project_id = $1 AND event = $2 AND type = 'track'
                       AND seq >= $3 AND seq <= $4
                     ORDER BY seq LIMIT $5",
                    bot = is_bot($backend)
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(project)
                    .bind(WEB_VITAL_EVENT)
                    .bind(next_seq)
                    .bind(end_seq)
                    .bind(BACKFILL_CHUNK)
                    .fetch_all(&mut *$tx)
                    .await?;
                let mut rollups = VitalRollups::default();
                let mut last = None;
                for r in &rows {
                    let (seq, ts, body, bot): (i64, i64, String, bool) =
                        (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
                    last = Some(seq);
                    if let Some((vital, value, path)) = vital_of_body(&body) {
                        rollups.add_sample(project, ts, bot, vital, value, path);
                    }
                }
                let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= BACKFILL_CHUNK;
                Some(Chunk {
                    project,
                    end_seq,
                    rollups,
                    last: if full { last } else { None },
                })
            }
        }
    }};
}

impl Store {
    /// Rolls up one chunk of a project's pre-rollup Web Vitals. Returns whether any work is
    /// left; with several replicas each takes another project's chunk (PostgreSQL).
    pub async fn backfill_vitals(&self) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => {
                let mut tx = s.write_pool().begin().await?;
                let Some(chunk) = read_chunk!(tx, Backend::Sqlite, "") else {
                    // Ended here, not at drop: a dropped transaction stays open until its
                    // connection is used again, and its snapshot stalls every checkpoint.
                    tx.rollback().await?;
                    return Ok(false);
                };
                let next = chunk.last.map(|l| l + 1);
                write_sqlite(&mut tx, chunk.rollups).await?;
                advance!(tx, chunk.project, next, chunk.end_seq);
                tx.commit().await?;
                Ok(true)
            }
            Store::Postgres(p) => {
                let mut tx = p.write_pool().begin().await?;
                let Some(chunk) = read_chunk!(tx, Backend::Postgres, "FOR UPDATE SKIP LOCKED")
                else {
                    tx.rollback().await?;
                    return Ok(false);
                };
                let next = chunk.last.map(|l| l + 1);
                super::postgres::write_vitals(&mut tx, chunk.rollups).await?;
                advance!(tx, chunk.project, next, chunk.end_seq);
                tx.commit().await?;
                Ok(true)
            }
        }
    }
}

/// The SQLite merge of `crate::store::sqlite::vitals`, on the sqlx writer connection.
async fn write_sqlite(conn: &mut SqliteConnection, mut r: VitalRollups) -> Result<(), StoreError> {
    if r.is_empty() {
        return Ok(());
    }
    let mut paths: HashMap<(i64, &'static str, i64, i64), HashSet<String>> = HashMap::new();
    for (p, m, d, b, _) in r.pages.keys() {
        if paths.contains_key(&(*p, *m, *d, *b)) {
            continue;
        }
        let held: Vec<String> = sqlx::query_scalar(
            "SELECT path FROM vitals_pages_daily
             WHERE project_id = $1 AND metric = $2 AND day = $3 AND bot = $4",
        )
        .bind(p)
        .bind(m)
        .bind(d)
        .bind(b)
        .fetch_all(&mut *conn)
        .await?;
        paths.insert((*p, m, *d, *b), held.into_iter().collect());
    }
    r.cap_pages(&mut |(p, m, d, b, path)| {
        paths
            .get(&(*p, *m, *d, *b))
            .map_or((0, false), |s| (s.len(), s.contains(path)))
    });
    for ((p, m, h, b), acc) in &r.hourly {
        let old = sqlx::query(
            "SELECT samples, good, poor, sketch FROM vitals_hourly
             WHERE project_id = $1 AND metric = $2 AND hour = $3 AND bot = $4",
        )
        .bind(p)
        .bind(m)
        .bind(h)
        .bind(b)
        .fetch_optional(&mut *conn)
        .await?;
        let acc = merged(old, acc)?;
        sqlx::query(
            "INSERT OR REPLACE INTO vitals_hourly
             (project_id, metric, hour, bot, samples, good, poor, sketch)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(p)
        .bind(m)
        .bind(h)
        .bind(b)
        .bind(acc.samples)
        .bind(acc.good)
        .bind(acc.poor)
        .bind(acc.sketch.encode())
        .execute(&mut *conn)
        .await?;
    }
    for ((p, m, d, b, path), acc) in &r.pages {
        let old = sqlx::query(
            "SELECT samples, good, poor, sketch FROM vitals_pages_daily
             WHERE project_id = $1 AND metric = $2 AND day = $3 AND bot = $4 AND path = $5",
        )
        .bind(p)
        .bind(m)
        .bind(d)
        .bind(b)
        .bind(path)
        .fetch_optional(&mut *conn)
        .await?;
        let acc = merged(old, acc)?;
        sqlx::query(
            "INSERT OR REPLACE INTO vitals_pages_daily
             (project_id, metric, day, bot, path, samples, good, poor, sketch)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(p)
        .bind(m)
        .bind(d)
        .bind(b)
        .bind(path)
        .bind(acc.samples)
        .bind(acc.good)
        .bind(acc.poor)
        .bind(acc.sketch.encode())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn merged(old: Option<sqlx::sqlite::SqliteRow>, add: &VitalAcc) -> Result<VitalAcc, StoreError> {
    let mut acc = match old {
        Some(r) => VitalAcc::stored(&r)?,
        None => VitalAcc::default(),
    };
    acc.merge(add);
    Ok(acc)
}
