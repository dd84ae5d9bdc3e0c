//! The alert_events hand-off: alerts the evaluator raised, turned into outbox rows exactly
//! once across replicas.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::outbox::{NewDelivery, Outbox};
use crate::domain::ProjectId;
use crate::store::{Store, StoreError, from_millis, millis};

/// An `alert_events` row, as delivery reads it.
#[derive(Debug, Clone)]
pub struct AlertEventRecord {
    pub id: i64,
    pub project_id: ProjectId,
    pub kind: String,
    pub channel_ids: String,
    pub title: String,
    pub description: String,
    pub colour: i64,
    pub fields: String,
    pub url: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// `alert_events` rows no replica has turned into deliveries yet (oldest first).
    pub async fn undispatched_alert_events(
        &self,
        limit: i64,
    ) -> Result<Vec<AlertEventRecord>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let rows = sqlx::query(
                "SELECT a.id, a.project_id, a.kind, CAST(a.channel_ids AS TEXT) AS channel_ids,
                        a.title, a.description, a.colour, CAST(a.fields AS TEXT) AS fields,
                        a.url, a.created_at
                 FROM alert_events a
                 LEFT JOIN alert_events_dispatched d ON d.alert_event_id = a.id
                 WHERE d.alert_event_id IS NULL
                 ORDER BY a.id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(AlertEventRecord {
                        id: r.try_get("id")?,
                        project_id: r.try_get("project_id")?,
                        kind: r.try_get("kind")?,
                        channel_ids: r.try_get("channel_ids")?,
                        title: r.try_get("title")?,
                        description: r.try_get("description")?,
                        colour: r
                            .try_get::<i64, _>("colour")
                            .or_else(|_| r.try_get::<i32, _>("colour").map(i64::from))?,
                        fields: r.try_get("fields")?,
                        url: r.try_get("url")?,
                        created_at: from_millis(r.try_get("created_at")?),
                    })
                })
                .collect()
        })
    }

    /// Marks one alert event dispatched and enqueues its deliveries, in one transaction. Returns
    /// `false` (and enqueues nothing) if another replica already did.
    pub async fn dispatch_alert_event(
        &self,
        alert_event_id: i64,
        deliveries: &[NewDelivery],
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        const MARK: &str = "INSERT INTO alert_events_dispatched (alert_event_id, dispatched_at)
             VALUES ($1, $2) ON CONFLICT DO NOTHING";
        with_db!(self, write_pool, |pool| {
            let mut tx = pool.begin().await?;
            let marked = sqlx::query(MARK)
                .bind(alert_event_id)
                .bind(millis(now))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if marked == 0 {
                return Ok(false);
            }
            tx.insert_deliveries(deliveries).await?;
            tx.commit().await?;
        });
        Ok(true)
    }
}
