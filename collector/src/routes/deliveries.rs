//! The outbox as users see it: what was sent where, and every attempt. Secret key, or any
//! member of the project through the dashboard: see [`super::extract::Caller`].

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiQuery, Caller};
use crate::alerting::notification::Notification;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// Most deliveries one request returns.
pub const MAX_DELIVERIES_PAGE: i64 = 500;
const STATUSES: [&str; 4] = ["pending", "delivered", "failed", "dead"];

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesParams {
    /// pending (not tried yet), delivered, failed (retry scheduled) or dead (given up).
    status: Option<String>,
    channel_id: Option<i64>,
    /// 1 to 500 (default 100), newest first.
    limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryAttempt {
    pub attempt: i64,
    pub started_at: DateTime<Utc>,
    pub latency_ms: i64,
    pub status_code: Option<i64>,
    /// success, http_error, error or refused.
    pub outcome: String,
    /// The first 512 bytes of the response body.
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Delivery {
    pub id: i64,
    pub channel_id: i64,
    /// `event:<category id>:<messageId>` or `alert:<alert event id>`.
    pub source: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub notification: Option<Notification>,
    pub attempt_log: Vec<DeliveryAttempt>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<Delivery>,
}

/// List deliveries with their attempts, newest first.
#[utoipa::path(
    get, path = "/api/v1/deliveries", tag = "alerting",
    operation_id = "deliveries_list",
    params(DeliveriesParams),
    responses((status = 200, body = DeliveryList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(p): ApiQuery<DeliveriesParams>,
) -> Result<Json<DeliveryList>, ApiError> {
    let project = caller.project();
    if let Some(s) = &p.status
        && !STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::BadRequest(format!(
            "status '{s}' is not one of {}",
            STATUSES.join(", ")
        )));
    }
    let limit = p.limit.unwrap_or(100);
    if !(1..=MAX_DELIVERIES_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_DELIVERIES_PAGE}, got {limit}"
        )));
    }
    let rows = state
        .store
        .list_deliveries(project, p.status.as_deref(), p.channel_id, limit)
        .await?;
    Ok(Json(DeliveryList {
        deliveries: rows
            .into_iter()
            .map(|(d, attempts)| Delivery {
                id: d.id,
                channel_id: d.channel_id,
                source: d.source_key,
                status: d.status,
                attempts: d.attempts,
                next_attempt_at: d.next_attempt_at,
                last_error: d.last_error,
                created_at: d.created_at,
                delivered_at: d.delivered_at,
                notification: serde_json::from_str(&d.content).ok(),
                attempt_log: attempts
                    .into_iter()
                    .map(|a| DeliveryAttempt {
                        attempt: a.attempt,
                        started_at: a.started_at,
                        latency_ms: a.latency_ms,
                        status_code: a.status_code,
                        outcome: a.outcome,
                        response_excerpt: a.response_excerpt,
                        error: a.error,
                    })
                    .collect(),
            })
            .collect(),
    }))
}
