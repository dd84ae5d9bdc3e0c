//! The SQLite ingest commit's share of `user_sessions` (`crate::store::sessions`): per user of
//! the commit, one read of the stored sessions its new events can touch, the merge, and the
//! difference written back, by the one writer.

use rusqlite::{Transaction, params};

use crate::store::sessions::{
    Change, CommitSessions, HourlyDelta, Session, add_hourly_sql, merge, sessions_table,
};
use crate::store::{PendingBatch, StoreError, Who};

/// Adds the messages of `batches` that this commit stored (`stored`, one flag per message in
/// order; messages without a user left out) to their users' sessions, bots' to the bots'
/// sessions (migration 0052).
pub(super) fn record(
    tx: &Transaction<'_>,
    batches: &[PendingBatch],
    stored: &[bool],
) -> Result<(), StoreError> {
    let messages = batches
        .iter()
        .flat_map(|b| b.messages.iter().map(move |m| (b.project_id, m)))
        .zip(stored)
        .filter(|(_, new)| **new)
        .map(|(m, _)| m);
    for (who, commit) in CommitSessions::of_commit(messages) {
        if !commit.0.is_empty() {
            record_of(tx, who, commit)?;
        }
    }
    Ok(())
}

/// One side's sessions (people's or bots').
fn record_of(
    tx: &Transaction<'_>,
    who: Who,
    mut commit: CommitSessions<'_>,
) -> Result<(), StoreError> {
    let table = sessions_table(who);
    // Newest first from the latest start the new events can reach, stopping at the first
    // session that ends before they can: one seek and a step or two for a user's open session.
    let mut touched = tx.prepare_cached(&format!(
        "SELECT start_ts, end_ts, events FROM {table}
         WHERE project_id = ?1 AND user_key = ?2 AND start_ts <= ?3
         ORDER BY start_ts DESC"
    ))?;
    let mut delete = tx.prepare_cached(&format!(
        "DELETE FROM {table} WHERE project_id = ?1 AND user_key = ?2 AND start_ts = ?3"
    ))?;
    let mut write = tx.prepare_cached(&format!(
        "INSERT INTO {table} (project_id, user_key, start_ts, end_ts, events)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (project_id, user_key, start_ts)
         DO UPDATE SET end_ts = excluded.end_ts, events = excluded.events"
    ))?;
    let mut stored_sessions = Vec::new();
    let mut hourly = HourlyDelta::default();
    for ((project, user), times, (low, high)) in commit.users() {
        stored_sessions.clear();
        let mut rows = touched.query(params![project, user, high])?;
        while let Some(row) = rows.next()? {
            let s = Session {
                start: row.get(0)?,
                end: row.get(1)?,
                events: row.get(2)?,
            };
            if s.end < low {
                break;
            }
            stored_sessions.push(s);
        }
        drop(rows);
        stored_sessions.reverse();
        let change = Change::between(&stored_sessions, &merge(&stored_sessions, times));
        hourly.add(project, &stored_sessions, &change);
        for start in change.deleted_starts {
            delete.execute(params![project, user, start])?;
        }
        for s in change.written {
            write.execute(params![project, user, s.start, s.end, s.events])?;
        }
    }
    let mut add = tx.prepare_cached(&add_hourly_sql(who, "VALUES ($1, $2, $3, $4, $5)"))?;
    for ((project, hour), [sessions, total_ms, bounces]) in hourly.rows() {
        add.execute(params![project, hour, sessions, total_ms, bounces])?;
    }
    Ok(())
}
