//! The delivery outbox: rows to send, their leases across replicas and attempts (the
//! alert_events hand-off is in `alert_events`). PostgreSQL adds `FOR UPDATE SKIP LOCKED`
//! where replicas compete.

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, Row};

use crate::domain::ProjectId;
use crate::store::{Store, StoreError, from_millis, millis};

/// What a category or an alert asks delivery to send.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub project_id: ProjectId,
    pub channel_id: i64,
    /// `event:<category>:<messageId>` or `alert:<alert_event id>`: unique per channel.
    pub source_key: String,
    /// The [`crate::alerting::notification::Notification`] as JSON.
    pub content: String,
    pub now: DateTime<Utc>,
    /// For an event notification, the event's messageId: the row is written only if this
    /// commit stored the event for the first time (a resent duplicate notifies nothing).
    pub event_message_id: Option<String>,
    /// For an event notification, its category and cap (see `store::category_cap`).
    pub cap: Option<crate::store::category_cap::CategoryCap>,
}

#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    pub id: i64,
    pub project_id: ProjectId,
    pub channel_id: i64,
    pub source_key: String,
    pub content: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub attempt: i64,
    pub started_at: DateTime<Utc>,
    pub latency_ms: i64,
    pub status_code: Option<i64>,
    pub outcome: String,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
}

/// Where a delivery goes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextState {
    Delivered,
    /// Retry at this time (status `failed`).
    RetryAt(DateTime<Utc>),
    /// Give up (status `dead`).
    Dead,
}

const DELIVERY_COLUMNS: &str = "id, project_id, channel_id, source_key, content, status, \
     attempts, next_attempt_at, last_error, created_at, delivered_at";

macro_rules! delivery_from {
    ($r:expr) => {
        DeliveryRecord {
            id: $r.try_get("id")?,
            project_id: $r.try_get("project_id")?,
            channel_id: $r.try_get("channel_id")?,
            source_key: $r.try_get("source_key")?,
            content: $r.try_get("content")?,
            status: $r.try_get("status")?,
            attempts: $r.try_get("attempts")?,
            next_attempt_at: from_millis($r.try_get("next_attempt_at")?),
            last_error: $r.try_get("last_error")?,
            created_at: from_millis($r.try_get("created_at")?),
            delivered_at: $r
                .try_get::<Option<i64>, _>("delivered_at")?
                .map(from_millis),
        }
    };
}

/// The outbox row of one notification; the SQLite ingest thread uses the same text (binding
/// by name: SQLite numbers `$n` parameters in order of appearance).
pub(crate) const INSERT_DELIVERY: &str =
    "INSERT INTO deliveries (project_id, channel_id, source_key, content, \
     status, attempts, next_attempt_at, created_at)
     VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5)
     ON CONFLICT (channel_id, source_key) DO NOTHING";

/// Writes outbox rows inside a transaction of either backend; existing ones are left alone.
pub(crate) trait Outbox {
    fn insert_deliveries(
        &mut self,
        deliveries: &[NewDelivery],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl Outbox for sqlx::SqliteConnection {
    /// One row at a time: SQLite has one writer, and these are few (alerts, test sends).
    async fn insert_deliveries(&mut self, deliveries: &[NewDelivery]) -> Result<(), StoreError> {
        for d in deliveries {
            sqlx::query(INSERT_DELIVERY)
                .bind(d.project_id)
                .bind(d.channel_id)
                .bind(&d.source_key)
                .bind(&d.content)
                .bind(millis(d.now))
                .execute(&mut *self)
                .await?;
        }
        Ok(())
    }
}

impl Outbox for sqlx::PgConnection {
    /// One statement, in key order (like `event_ids`), so concurrent commits cannot deadlock
    /// on the unique key.
    async fn insert_deliveries(&mut self, deliveries: &[NewDelivery]) -> Result<(), StoreError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let mut sorted: Vec<&NewDelivery> = deliveries.iter().collect();
        sorted.sort_by(|a, b| (a.channel_id, &a.source_key).cmp(&(b.channel_id, &b.source_key)));
        sqlx::query(
            "INSERT INTO deliveries (project_id, channel_id, source_key, content, status, attempts,
                                     next_attempt_at, created_at)
             SELECT p, c, k, body, 'pending', 0, t, t
             FROM UNNEST($1::INT8[], $2::INT8[], $3::TEXT[], $4::TEXT[], $5::INT8[])
                  AS x(p, c, k, body, t)
             ON CONFLICT (channel_id, source_key) DO NOTHING",
        )
        .bind(sorted.iter().map(|d| d.project_id).collect::<Vec<_>>())
        .bind(sorted.iter().map(|d| d.channel_id).collect::<Vec<_>>())
        .bind(
            sorted
                .iter()
                .map(|d| d.source_key.clone())
                .collect::<Vec<_>>(),
        )
        .bind(sorted.iter().map(|d| d.content.clone()).collect::<Vec<_>>())
        .bind(sorted.iter().map(|d| millis(d.now)).collect::<Vec<_>>())
        .execute(&mut *self)
        .await?;
        Ok(())
    }
}

impl Store {
    /// Outbox rows outside an ingest commit (alerts, tests). Existing ones are left alone.
    pub async fn enqueue_deliveries(&self, deliveries: &[NewDelivery]) -> Result<(), StoreError> {
        with_db!(self, write_pool, |pool| {
            let mut tx = pool.begin().await?;
            tx.insert_deliveries(deliveries).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Leases up to `limit` due deliveries to `owner` until `lease_until`. A lease that expired
    /// (its replica died) makes the row claimable again. On PostgreSQL rows another replica is
    /// claiming at this moment are skipped, never waited for.
    pub async fn claim_due_deliveries(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        with_db!(self, write_pool, |pool, backend| {
            let lock = backend.skip_locked();
            let rows = sqlx::query(AssertSqlSafe(format!(
                "UPDATE deliveries SET lease_owner = $1, lease_until = $3
                 WHERE id IN (
                     SELECT id FROM deliveries
                     WHERE status IN ('pending', 'failed') AND next_attempt_at <= $2
                       AND (lease_until IS NULL OR lease_until < $2)
                     ORDER BY next_attempt_at, id LIMIT $4 {lock})
                 RETURNING {DELIVERY_COLUMNS}"
            )))
            .bind(owner)
            .bind(millis(now))
            .bind(millis(lease_until))
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| Ok(delivery_from!(r))).collect()
        })
    }

    /// Leases up to `limit` more due deliveries of one channel of one project, oldest first, so
    /// they can be packed into the message of the ones already leased. Same rules as
    /// [`Store::claim_due_deliveries`]: the lease is in the database, so no other replica can
    /// take them.
    pub async fn claim_channel_deliveries(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        project_id: ProjectId,
        channel_id: i64,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        with_db!(self, write_pool, |pool, backend| {
            let lock = backend.skip_locked();
            let rows = sqlx::query(AssertSqlSafe(format!(
                "UPDATE deliveries SET lease_owner = $1, lease_until = $3
                 WHERE id IN (
                     SELECT id FROM deliveries
                     WHERE project_id = $5 AND channel_id = $6
                       AND status IN ('pending', 'failed') AND next_attempt_at <= $2
                       AND (lease_until IS NULL OR lease_until < $2)
                     ORDER BY next_attempt_at, id LIMIT $4 {lock})
                 RETURNING {DELIVERY_COLUMNS}"
            )))
            .bind(owner)
            .bind(millis(now))
            .bind(millis(lease_until))
            .bind(limit)
            .bind(project_id)
            .bind(channel_id)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| Ok(delivery_from!(r))).collect()
        })
    }

    /// The earliest time a delivery becomes due (for the worker's sleep).
    pub async fn next_delivery_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let next: Option<i64> = sqlx::query_scalar(
                "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > next_attempt_at
                                 THEN lease_until ELSE next_attempt_at END)
                 FROM deliveries WHERE status IN ('pending', 'failed')",
            )
            .fetch_one(pool)
            .await?;
            Ok(next.map(from_millis))
        })
    }

    /// Records one attempt and moves the delivery on, if `owner` still holds its lease (a
    /// replica whose lease expired must not overwrite the one that took over). Returns whether
    /// it did.
    pub async fn record_attempt(
        &self,
        delivery_id: i64,
        owner: &str,
        attempt: &AttemptRecord,
        next: NextState,
    ) -> Result<bool, StoreError> {
        let (status, next_at, delivered_at) = match next {
            NextState::Delivered => ("delivered", attempt.started_at, Some(attempt.started_at)),
            NextState::RetryAt(at) => ("failed", at, None),
            NextState::Dead => ("dead", attempt.started_at, None),
        };
        let last_error = attempt.error.clone().or_else(|| {
            (next != NextState::Delivered).then(|| {
                format!(
                    "HTTP {}: {}",
                    attempt.status_code.unwrap_or_default(),
                    attempt.response_excerpt.clone().unwrap_or_default()
                )
            })
        });
        // A delivery ended while this attempt was in flight (its channel was deleted) stays
        // dead with its reason, unless the attempt delivered it.
        const UPDATE: &str = "UPDATE deliveries SET
                 status = CASE WHEN status = 'dead' AND $3 <> 'delivered' THEN 'dead' ELSE $3 END,
                 last_error = CASE WHEN status = 'dead' AND $3 <> 'delivered'
                                   THEN last_error ELSE $6 END,
                 attempts = attempts + 1, next_attempt_at = $4, delivered_at = $5,
                 lease_owner = NULL, lease_until = NULL
             WHERE id = $1 AND lease_owner = $2";
        const INSERT: &str = "INSERT INTO delivery_attempts (delivery_id, attempt, started_at,
                 latency_ms, status_code, outcome, response_excerpt, error)
             SELECT $1, attempts, $2, $3, $4, $5, $6, $7 FROM deliveries WHERE id = $1";
        with_db!(self, write_pool, |pool| {
            let mut tx = pool.begin().await?;
            let updated = sqlx::query(UPDATE)
                .bind(delivery_id)
                .bind(owner)
                .bind(status)
                .bind(millis(next_at))
                .bind(delivered_at.map(millis))
                .bind(&last_error)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if updated == 0 {
                return Ok(false);
            }
            sqlx::query(INSERT)
                .bind(delivery_id)
                .bind(millis(attempt.started_at))
                .bind(attempt.latency_ms)
                .bind(attempt.status_code)
                .bind(&attempt.outcome)
                .bind(&attempt.response_excerpt)
                .bind(&attempt.error)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Gives a leased delivery back without an attempt (paced, or shutting down), due at `at`.
    pub async fn release_delivery(
        &self,
        delivery_id: i64,
        owner: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_db!(self, write_pool, |pool| {
            sqlx::query(
                "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL, next_attempt_at = $3
                 WHERE id = $1 AND lease_owner = $2",
            )
            .bind(delivery_id)
            .bind(owner)
            .bind(millis(at))
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    pub async fn list_deliveries(
        &self,
        project_id: ProjectId,
        status: Option<&str>,
        channel_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<(DeliveryRecord, Vec<AttemptRecord>)>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let rows = sqlx::query(AssertSqlSafe(format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries
                 WHERE project_id = $1 AND ($2 IS NULL OR status = $2)
                   AND ($3 IS NULL OR channel_id = $3)
                 ORDER BY id DESC LIMIT $4"
            )))
            .bind(project_id)
            .bind(status)
            .bind(channel_id)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let d = delivery_from!(r);
                let attempts = sqlx::query(
                    "SELECT attempt, started_at, latency_ms, status_code, outcome,
                            response_excerpt, error
                     FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt",
                )
                .bind(d.id)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|a| {
                    Ok(AttemptRecord {
                        attempt: a.try_get("attempt")?,
                        started_at: from_millis(a.try_get("started_at")?),
                        latency_ms: a.try_get("latency_ms")?,
                        status_code: a.try_get("status_code")?,
                        outcome: a.try_get("outcome")?,
                        response_excerpt: a.try_get("response_excerpt")?,
                        error: a.try_get("error")?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
                out.push((d, attempts));
            }
            Ok(out)
        })
    }
}
