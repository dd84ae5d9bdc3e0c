//! Alert history over HTTP: every time a rule fired, and when it resolved. Secret key, or a
//! dashboard session of any role: see [`super::extract::Caller`].

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiQuery, Caller};
use super::rules::rfc3339;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::store::AlertRecord;

/// Most alerts one page returns.
pub const MAX_ALERTS_PAGE: u32 = 500;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertsParams {
    /// Only this rule's alerts.
    rule_id: Option<i64>,
    /// Alerts per page, 1 to 500 (default 100).
    limit: Option<u32>,
    /// `next_cursor` from the previous page.
    cursor: Option<i64>,
}

/// One time a rule fired.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertView {
    pub id: i64,
    pub rule_id: i64,
    pub rule_name: String,
    /// `firing` while open, else `resolved`.
    pub status: String,
    /// `threshold`, `anomaly` or `no_data`.
    pub reason: String,
    pub bucket_start: String,
    pub started_at: String,
    pub resolved_at: Option<String>,
    pub value: Option<f64>,
    /// The threshold, or the anomaly baseline.
    pub expected: Option<f64>,
    /// What was seen, what was expected, and which property values moved most.
    pub explanation: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertsPage {
    pub alerts: Vec<AlertView>,
    pub next_cursor: Option<i64>,
}

/// Alert history, newest first: every time a rule fired, and when it resolved.
#[utoipa::path(
    get, path = "/api/v1/alerts", tag = "alerting",
    operation_id = "rules_alerts",
    params(AlertsParams),
    responses(
        (status = 200, body = AlertsPage),
        (status = 400, description = "Invalid parameter", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
    ),
    security(("bearer" = []), ("basic" = []))
)]
pub async fn alerts(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<AlertsParams>,
) -> Result<Json<AlertsPage>, ApiError> {
    let project_id = caller.project();
    let limit = params.limit.unwrap_or(100);
    if !(1..=MAX_ALERTS_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_ALERTS_PAGE}, got {limit}"
        )));
    }
    let rows = state
        .store
        .list_alerts(project_id, params.rule_id, params.cursor, i64::from(limit))
        .await?;
    let next_cursor = (rows.len() == limit as usize)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    Ok(Json(AlertsPage {
        alerts: rows.into_iter().map(alert_view).collect(),
        next_cursor,
    }))
}

fn alert_view(a: AlertRecord) -> AlertView {
    AlertView {
        id: a.id,
        rule_id: a.rule_id,
        rule_name: a.rule_name,
        status: if a.resolved_at.is_some() {
            "resolved"
        } else {
            "firing"
        }
        .to_owned(),
        reason: a.reason,
        bucket_start: rfc3339(a.bucket_start),
        started_at: rfc3339(a.started_at),
        resolved_at: a.resolved_at.map(rfc3339),
        value: a.value,
        expected: a.expected,
        explanation: a.explanation,
    }
}
