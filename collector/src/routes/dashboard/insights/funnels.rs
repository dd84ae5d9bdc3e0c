//! Funnels: how many users go through the steps in order, within a window.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{MAX_FUNNEL_WINDOW_SECS, RangeParams, bot_events, range, with_bot_events};
use crate::analytics;
use crate::domain::ProjectId;
use crate::domain::account::Role;
use crate::error::{ApiError, ErrorBody};
use crate::routes::dashboard::ProjectPath;
use crate::routes::extract::{ApiQuery, PathIds, Session};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FunnelParams {
    /// Start, unix milliseconds (default: `to` minus 30 days).
    #[param(minimum = 0, maximum = 253402300799999.0)]
    from: Option<i64>,
    /// End, exclusive, unix milliseconds (default: now). At most 253402300799999 (year 9999).
    #[param(minimum = 0, maximum = 253402300799999.0)]
    to: Option<i64>,
    /// Not used by the funnel; checked like every range's.
    #[param(minimum = 60_000)]
    bucket: Option<i64>,
    /// Step event names, comma-separated, in order: 2 to 10 (blanks around names are trimmed).
    #[param(pattern = r"^[^,]*[^,\s][^,]*(,[^,]*[^,\s][^,]*){1,9}$")]
    steps: String,
    /// Seconds from the first step within which the others must happen (default 1 day; 1 to
    /// 31622400, a year).
    #[param(minimum = 1, maximum = 31_622_400)]
    window_secs: Option<i64>,
    /// Count events from crawlers and automated browsers too (default false).
    #[serde(default)]
    include_bots: bool,
}

#[utoipa::path(
    get, path = "/api/dash/projects/{project}/funnel", tag = "dashboard",
    operation_id = "dashboard_funnel",
    params(ProjectPath, FunnelParams),
    description = "An ordered funnel: users per step, conversion from the first step and \
                   drop-off from the previous one. Bot events are left out unless \
                   `include_bots=true` (then a user key's bot and other events are one \
                   user's). The answer comes from the per-user-day rollups (people's, and \
                   bots' with `include_bots=true`), whatever the range holds.",
    responses(
        (status = 200, body = Vec<analytics::FunnelStep>, headers(("pulseline-bot-events" = i64,
            description = "Bot events in the range (left out unless include_bots=true)"))),
        (status = 400, description = "An invalid parameter (says which): no `steps`, fewer than \
                                      2 or more than 10 steps, or a window out of bounds",
            body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
        (status = 503, description = "A heavy query: over its time budget (PULSELINE_DASHBOARD_QUERY_TIMEOUT_MS, code query_timeout), or too many running (PULSELINE_DASHBOARD_QUERIES_PER_PROJECT, PULSELINE_DASHBOARD_QUERIES, code overloaded); see Retry-After", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn funnel(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
    ApiQuery(p): ApiQuery<FunnelParams>,
) -> Result<Response, ApiError> {
    session.require(&state, project, Role::Viewer).await?;
    let _slot = state.dashboard.queries.admit(project).await?;
    let r = range(&state, &p.range(), 30)?;
    let steps: Vec<String> = p
        .steps
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if !(2..=10).contains(&steps.len()) {
        return Err(ApiError::BadRequest(
            "a funnel needs 2 to 10 steps: steps=Signed Up,Activated,Paid".into(),
        ));
    }
    let window_secs = p.window_secs.unwrap_or(86_400);
    if !(1..=MAX_FUNNEL_WINDOW_SECS).contains(&window_secs) {
        return Err(ApiError::BadRequest(format!(
            "window_secs ({window_secs}) must be 1 to {MAX_FUNNEL_WINDOW_SECS} (a year)"
        )));
    }
    let window = window_secs * 1000;
    let reached = state
        .store
        .funnel_reached(project, r.from, r.to, &steps, window, p.include_bots)
        .await?;
    Ok(with_bot_events(
        Json(analytics::funnel_steps(&steps, &reached)),
        bot_events(&state, project, &r, None).await?,
    ))
}

impl FunnelParams {
    fn range(&self) -> RangeParams {
        RangeParams {
            from: self.from,
            to: self.to,
            bucket: self.bucket,
        }
    }
}
