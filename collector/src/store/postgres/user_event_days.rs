//! The PostgreSQL ingest commit's share of `user_event_days` (migration 0039): the rows it
//! stored, summed per (project, name, user, day) in Rust, then one `UNNEST` upsert in key
//! order, so replicas committing together lock its rows in the same order.

use sqlx::PgConnection;

use crate::store::funnels::UserEventDays;
use crate::store::{PendingBatch, StoreError};

/// Adds the messages `is_new` marks as stored by this commit (bots and messages without a
/// user left out) to `user_event_days`, in the commit's transaction.
pub(super) async fn record(
    tx: &mut PgConnection,
    batches: &[PendingBatch],
    is_new: &[Vec<bool>],
) -> Result<(), StoreError> {
    let mut days = UserEventDays::default();
    for (batch, new) in batches.iter().zip(is_new) {
        for (m, _) in batch.messages.iter().zip(new).filter(|(_, new)| **new) {
            days.add(batch.project_id, m);
        }
    }
    if days.0.is_empty() {
        return Ok(());
    }
    let mut cols = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut values = (Vec::new(), Vec::new(), Vec::new());
    for ((project, name, user, day), (events, first, last)) in days.0 {
        cols.0.push(project);
        cols.1.push(name);
        cols.2.push(user);
        cols.3.push(day);
        values.0.push(events);
        values.1.push(first);
        values.2.push(last);
    }
    sqlx::query(
        "INSERT INTO user_event_days (project_id, name, user_key, day, events, first_ts, last_ts)
         SELECT * FROM UNNEST($1::INT8[], $2::TEXT[], $3::TEXT[], $4::INT8[], $5::INT8[],
                              $6::INT8[], $7::INT8[])
         ON CONFLICT (project_id, name, user_key, day) DO UPDATE SET
             events = user_event_days.events + excluded.events,
             first_ts = LEAST(user_event_days.first_ts, excluded.first_ts),
             last_ts = GREATEST(user_event_days.last_ts, excluded.last_ts)",
    )
    .bind(&cols.0)
    .bind(&cols.1)
    .bind(&cols.2)
    .bind(&cols.3)
    .bind(&values.0)
    .bind(&values.1)
    .bind(&values.2)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
