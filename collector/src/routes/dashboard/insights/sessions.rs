//! Sessions: counts and durations of visits in the range.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

use super::{BotsParams, RangeParams, range, scan, with_bot_events};
use crate::analytics;
use crate::domain::ProjectId;
use crate::domain::account::Role;
use crate::error::{ApiError, ErrorBody};
use crate::routes::dashboard::ProjectPath;
use crate::routes::extract::{ApiQuery, PathIds, Session};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionsAnswer {
    #[serde(flatten)]
    pub stats: analytics::SessionStats,
    /// Bot events in the range: left out unless `include_bots=true`.
    pub bot_events: i64,
}

#[utoipa::path(
    get, path = "/api/dash/projects/{project}/sessions", tag = "dashboard",
    operation_id = "dashboard_sessions",
    params(ProjectPath, RangeParams, BotsParams),
    description = "Sessions of the range (a user's events with no gap over 30 minutes): count, \
                   mean length and bounce rate. Bot events are left out unless \
                   `include_bots=true`.",
    responses(
        (status = 200, body = SessionsAnswer, headers(("pulseline-bot-events" = i64,
            description = "Bot events in the range (left out unless include_bots=true)"))),
        (status = 400, description = "An invalid parameter (says which), or more events in the \
                                      range than PULSELINE_DASHBOARD_MAX_SCAN_EVENTS",
            body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn sessions(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
    ApiQuery(p): ApiQuery<RangeParams>,
    ApiQuery(bots): ApiQuery<BotsParams>,
) -> Result<Response, ApiError> {
    session.require(&state, project, Role::Viewer).await?;
    let r = range(&state, &p, 7)?;
    let (rows, bot_events) = scan(&state, project, &r, None, bots.include_bots).await?;
    let answer = SessionsAnswer {
        stats: analytics::sessions(&rows),
        bot_events,
    };
    Ok(with_bot_events(Json(answer), bot_events))
}
