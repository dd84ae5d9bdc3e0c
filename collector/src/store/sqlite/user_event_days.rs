//! The SQLite ingest commit's share of `user_event_days` (migration 0039): the rows it stored,
//! summed per (project, name, user, day) in Rust, then one upsert per key.

use crate::domain::Message;
use crate::store::funnels::UserEventDays;
use crate::store::{PendingBatch, StoreError};

/// Adds the rows `stored` says this commit stored (bots and messages without a user left
/// out) to `user_event_days`, in the commit's transaction.
pub(super) fn record(
    tx: &rusqlite::Transaction<'_>,
    rows: &[(&PendingBatch, &Message)],
    stored: &[bool],
) -> Result<(), StoreError> {
    let mut days = UserEventDays::default();
    for (&(batch, m), _) in rows.iter().zip(stored).filter(|(_, new)| **new) {
        days.add(batch.project_id, m);
    }
    if days.0.is_empty() {
        return Ok(());
    }
    let mut upsert = tx.prepare_cached(
        "INSERT INTO user_event_days (project_id, name, user_key, day, events, first_ts, last_ts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (project_id, name, user_key, day) DO UPDATE SET
             events = events + excluded.events,
             first_ts = MIN(first_ts, excluded.first_ts),
             last_ts = MAX(last_ts, excluded.last_ts)",
    )?;
    for ((project, name, user, day), (events, first, last)) in &days.0 {
        upsert.execute(rusqlite::params![
            project, name, user, day, events, first, last
        ])?;
    }
    Ok(())
}
