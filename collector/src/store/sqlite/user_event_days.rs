//! The SQLite ingest commit's share of `user_event_days` (migration 0039) and of its bots'
//! twin `user_event_days_bots` (0052): the rows it stored, summed per (project, name, user,
//! day) in Rust, then one upsert per key.

use crate::domain::Message;
use crate::store::funnels::{UserEventDays, upsert_sql};
use crate::store::{Backend, PendingBatch, StoreError};

/// Adds the rows `stored` says this commit stored (messages without a user left out) to
/// `user_event_days`, bots' to `user_event_days_bots`, in the commit's transaction.
pub(super) fn record(
    tx: &rusqlite::Transaction<'_>,
    rows: &[(&PendingBatch, &Message)],
    stored: &[bool],
) -> Result<(), StoreError> {
    let messages = rows
        .iter()
        .zip(stored)
        .filter(|(_, new)| **new)
        .map(|(&(batch, m), _)| (batch.project_id, m));
    for (who, days) in UserEventDays::of_commit(messages) {
        if days.0.is_empty() {
            continue;
        }
        let mut upsert =
            tx.prepare_cached(&upsert_sql(who.table("user_event_days"), Backend::Sqlite))?;
        for ((project, name, user, day), d) in &days.0 {
            upsert.execute(rusqlite::params![
                project, name, user, day, d.events, d.first, d.second, d.last
            ])?;
        }
    }
    Ok(())
}
