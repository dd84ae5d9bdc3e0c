//! The local day (`store::local_days`) ingest keys a PostgreSQL commit's active-user rows by.

use std::collections::HashMap;

use sqlx::{PgConnection, Row};

use crate::store::StoreError;
use crate::store::local_days::{day_key, zone};

/// The key of each event's local day in its project's time zone, the zones read inside the
/// commit's transaction (one query for all its projects).
pub(super) async fn day_keys(
    tx: &mut PgConnection,
    projects: &[i64],
    timestamps: &[i64],
) -> Result<Vec<i64>, StoreError> {
    let mut ids = projects.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let zones: HashMap<i64, _> =
        sqlx::query("SELECT id, timezone FROM projects WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| (r.get::<i64, _>("id"), zone(r.get("timezone"))))
            .collect();
    let utc = zone("UTC");
    Ok(projects
        .iter()
        .zip(timestamps)
        .map(|(p, &ts)| day_key(zones.get(p).unwrap_or(&utc), ts))
        .collect())
}
