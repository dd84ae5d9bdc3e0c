//! The read API, for tools and tests (the dashboard extends it). Secret key only.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use super::extract::ApiQuery;
use crate::auth::{authenticate, key_from_headers};
use crate::domain::KeyKind;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::store::{EventQuery, StoredEvent};

/// Most events one page returns.
pub const MAX_PAGE_SIZE: u32 = 1_000;
const DEFAULT_PAGE_SIZE: u32 = 100;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsParams {
    /// Events per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` from the previous page.
    cursor: Option<String>,
    /// Only this event name (track) or page/screen name.
    event: Option<String>,
    /// Only this user id.
    user_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventsPage {
    /// Stored messages, newest first, as sent, with `messageId`, `type`, `timestamp` and
    /// `receivedAt` as stored.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Box<RawValue>>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Stats {
    pub project_id: i64,
    /// Events stored for the project (duplicates are not counted).
    pub events_total: i64,
    /// Events stored this calendar month (UTC), what the plan's quota counts.
    pub events_this_month: i64,
}

/// List stored events, newest first.
#[utoipa::path(
    get, path = "/api/v1/events", tag = "read",
    operation_id = "events_list",
    params(EventsParams),
    responses(
        (status = 200, body = EventsPage),
        (status = 400, description = "Invalid parameter", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
        (status = 403, description = "A write key was used to read", body = ErrorBody),
        (status = 503, description = "Storage unavailable; or, as a heavy query, over its time budget (PULSELINE_DASHBOARD_QUERY_TIMEOUT_MS, code query_timeout) or too many running (PULSELINE_DASHBOARD_QUERIES_PER_PROJECT, PULSELINE_DASHBOARD_QUERIES, code overloaded); see Retry-After", body = ErrorBody),
    ),
    security(("bearer" = []), ("basic" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<EventsParams>,
) -> Result<Json<EventsPage>, ApiError> {
    let key = authenticate(
        &state,
        key_from_headers(&headers)?.as_deref(),
        KeyKind::Secret,
    )
    .await?;
    let limit = params.limit.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}"
        )));
    }
    let before_seq = params
        .cursor
        .map(|c| {
            c.parse::<i64>().ok().filter(|s| *s > 0).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "cursor '{c}' is not one this API returned: pass next_cursor unchanged"
                ))
            })
        })
        .transpose()?;
    let query = EventQuery {
        event: params.event.filter(|s| !s.is_empty()),
        user_id: params.user_id.filter(|s| !s.is_empty()),
        before_seq,
        limit,
    };
    // A filter with no index behind it (`user_id`) walks the project's events back from the
    // cursor until the page fills: as heavy as a dashboard query, so bounded like one.
    let _slot = state.dashboard.queries.admit(key.project_id).await?;
    let rows = state.store.list_events(key.project_id, &query).await?;
    let next_cursor = (rows.len() == limit as usize)
        .then(|| rows.last().map(|r| r.seq.to_string()))
        .flatten();
    Ok(Json(EventsPage {
        events: rows.into_iter().map(StoredEvent::render).collect(),
        next_cursor,
    }))
}

/// Counters for the project.
#[utoipa::path(
    get, path = "/api/v1/stats", tag = "read",
    operation_id = "events_stats",
    responses(
        (status = 200, body = Stats),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
        (status = 403, description = "A write key was used to read", body = ErrorBody),
        (status = 503, description = "Storage unavailable", body = ErrorBody),
    ),
    security(("bearer" = []), ("basic" = []))
)]
pub async fn stats(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Stats>, ApiError> {
    let key = authenticate(
        &state,
        key_from_headers(&headers)?.as_deref(),
        KeyKind::Secret,
    )
    .await?;
    let events_total = state.store.events_total(key.project_id).await?;
    let events_this_month = state
        .store
        .usage_this_month(key.project_id, state.clock.now())
        .await?;
    Ok(Json(Stats {
        project_id: key.project_id,
        events_total,
        events_this_month,
    }))
}
