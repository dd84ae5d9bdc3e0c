//! The PostgreSQL ingest commit's share of `user_event_days` (migration 0039): the rows it
//! stored, summed per (project, name, user, day) in Rust, then one `UNNEST` upsert in key
//! order, so replicas committing together lock its rows in the same order.

use sqlx::PgConnection;

use crate::store::funnels::{UserEventDays, upsert_sql};
use crate::store::{Backend, PendingBatch, StoreError};

/// Adds the messages `is_new` marks as stored by this commit (messages without a user left
/// out) to `user_event_days`, bots' to `user_event_days_bots` (0052), in the commit's
/// transaction.
pub(super) async fn record(
    tx: &mut PgConnection,
    batches: &[PendingBatch],
    is_new: &[Vec<bool>],
) -> Result<(), StoreError> {
    let messages = super::ingest::stored(batches, is_new);
    for (who, days) in UserEventDays::of_commit(messages) {
        if !days.0.is_empty() {
            upsert(tx, who.table("user_event_days"), days).await?;
        }
    }
    Ok(())
}

/// One `UNNEST` upsert of the rows, in key order.
async fn upsert(
    tx: &mut PgConnection,
    table: &str,
    days: UserEventDays<'_>,
) -> Result<(), StoreError> {
    let mut cols = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut values = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((project, name, user, day), d) in days.0 {
        cols.0.push(project);
        cols.1.push(name);
        cols.2.push(user);
        cols.3.push(day);
        values.0.push(d.events);
        values.1.push(d.first);
        values.2.push(d.second);
        values.3.push(d.last);
    }
    sqlx::query(sqlx::AssertSqlSafe(upsert_sql(table, Backend::Postgres)))
        .bind(&cols.0)
        .bind(&cols.1)
        .bind(&cols.2)
        .bind(&cols.3)
        .bind(&values.0)
        .bind(&values.1)
        .bind(&values.2)
        .bind(&values.3)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
