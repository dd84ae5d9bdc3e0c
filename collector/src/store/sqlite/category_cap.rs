//! The per-category flood cap (`store::category_cap`), counted by the SQLite ingest thread.

use crate::store::StoreError;
use crate::store::category_cap::{COUNT_SQL, SENT_SQL, allowed, groups, kept};
use crate::store::delivery::NewDelivery;

/// The SQLite ingest thread's side (rusqlite, inside its transaction): the deliveries to
/// write; the capped rest is only counted.
pub(crate) fn limit_sqlite<'a>(
    tx: &rusqlite::Transaction<'_>,
    deliveries: Vec<&'a NewDelivery>,
) -> Result<Vec<&'a NewDelivery>, StoreError> {
    let mut keep = vec![true; deliveries.len()];
    for ((category, minute), members) in groups(deliveries.iter().copied()) {
        let d = deliveries[members[0]];
        // By name: SQLite numbers `$n` parameters in order of appearance, not by `n`.
        let sent: i64 = tx.prepare_cached(COUNT_SQL)?.query_row(
            rusqlite::named_params! {
                "$1": category,
                "$2": minute,
                "$3": d.project_id,
                "$4": d.channel_id,
                "$5": members.len() as i64,
            },
            |r| r.get(0),
        )?;
        let allowed = allowed(d, sent, members.len());
        if allowed > 0 {
            tx.prepare_cached(SENT_SQL)?
                .execute(rusqlite::named_params! {
                    "$1": category,
                    "$2": minute,
                    "$3": allowed as i64,
                })?;
        }
        for &i in &members[allowed..] {
            keep[i] = false;
        }
    }
    Ok(kept(deliveries, keep))
}
