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
) -> Result<(Vec<i64>, HashMap<i64, Vec<String>>), StoreError> {
    let mut ids = projects.to_vec();
    ids.sort_unstable();
    ids.dedup();
    // The projects' tracked property keys come with their zones: one round trip for both. This
    // statement runs after the commit took its shared lock of the projects' tracked keys
    // (`crate::store::props`), so it sees any settings change that committed before.
    let mut zones = HashMap::new();
    let mut tracked = HashMap::new();
    for r in sqlx::query(
        "SELECT id, timezone,
                ARRAY(SELECT key FROM tracked_properties t WHERE t.project_id = projects.id
                      ORDER BY key) AS tracked
         FROM projects WHERE id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?
    {
        let id: i64 = r.get("id");
        zones.insert(id, zone(r.get("timezone")));
        tracked.insert(id, r.get::<Vec<String>, _>("tracked"));
    }
    let utc = zone("UTC");
    let days = projects
        .iter()
        .zip(timestamps)
        .map(|(p, &ts)| day_key(zones.get(p).unwrap_or(&utc), ts))
        .collect();
    Ok((days, tracked))
}
