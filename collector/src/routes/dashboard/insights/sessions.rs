//! Sessions: counts and durations of the sessions that start in the range, from the sessions
//! kept at ingest (`store::sessions`); with bots, the bots' sessions kept the same way too.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

use super::{BotsParams, RangeParams, bot_events, range, with_bot_events};
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
    description = "Sessions (a user's events with no silence over 30 minutes): count, mean \
                   length (first to last event) and bounce rate (sessions of one event). Bot \
                   events are left out unless `include_bots=true`. The answer counts the \
                   sessions that start in the range, each whole (one running past `to` counts \
                   its full length; one that started before `from` is not counted), from the \
                   sessions kept at ingest, whatever the range holds. With \
                   `include_bots=true` the bots' sessions count too, each made of a user \
                   key's bot events alone (a key that sends both has its bot and other \
                   sessions counted apart).",
    responses(
        (status = 200, body = SessionsAnswer, headers(("pulseline-bot-events" = i64,
            description = "Bot events in the range (left out unless include_bots=true)"))),
        (status = 400, description = "An invalid parameter (says which)", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
        (status = 503, description = "A heavy query: over its time budget (PULSELINE_DASHBOARD_QUERY_TIMEOUT_MS, code query_timeout), or too many running (PULSELINE_DASHBOARD_QUERIES_PER_PROJECT, PULSELINE_DASHBOARD_QUERIES, code overloaded); see Retry-After", body = ErrorBody),
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
    let _slot = state.dashboard.queries.admit(project).await?;
    let r = range(&state, &p, 7)?;
    let bot_events = bot_events(&state, project, &r, None).await?;
    let answer = SessionsAnswer {
        stats: state
            .store
            .session_stats(project, r.from, r.to, bots.include_bots)
            .await?,
        bot_events,
    };
    Ok(with_bot_events(Json(answer), bot_events))
}
