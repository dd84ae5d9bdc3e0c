//! The per-category flood cap (`store::category_cap`), counted in PostgreSQL's ingest
//! transaction.

use crate::store::StoreError;
use crate::store::category_cap::{COUNT_SQL, SENT_SQL, allowed, groups, kept};
use crate::store::delivery::NewDelivery;

/// PostgreSQL's side, inside the ingest transaction.
pub(crate) async fn limit_postgres(
    tx: &mut sqlx::PgConnection,
    deliveries: Vec<NewDelivery>,
) -> Result<Vec<NewDelivery>, StoreError> {
    let mut keep = vec![true; deliveries.len()];
    for ((category, minute), members) in groups(deliveries.iter()) {
        let d = &deliveries[members[0]];
        let sent: i64 = sqlx::query_scalar(COUNT_SQL)
            .bind(category)
            .bind(minute)
            .bind(d.project_id)
            .bind(d.channel_id)
            .bind(members.len() as i64)
            .fetch_one(&mut *tx)
            .await?;
        let allowed = allowed(d, sent, members.len());
        if allowed > 0 {
            sqlx::query(SENT_SQL)
                .bind(category)
                .bind(minute)
                .bind(allowed as i64)
                .execute(&mut *tx)
                .await?;
        }
        for &i in &members[allowed..] {
            keep[i] = false;
        }
    }
    Ok(kept(deliveries, keep))
}
