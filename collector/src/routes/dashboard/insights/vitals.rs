//! The Web Vitals page: p75 by metric and page.

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
pub struct VitalsAnswer {
    #[serde(flatten)]
    pub report: analytics::VitalsReport,
    /// Web Vital events from bots in the range: left out unless `include_bots=true`.
    pub bot_events: i64,
}

#[utoipa::path(
    get, path = "/api/dash/projects/{project}/vitals", tag = "dashboard",
    operation_id = "dashboard_vitals",
    params(ProjectPath, RangeParams, BotsParams),
    description = "Core Web Vitals of the range: p75 and the good / needs improvement / poor \
                   shares, overall, per page and per bucket. Bots' samples are left out \
                   unless `include_bots=true`.",
    responses(
        (status = 200, body = VitalsAnswer, headers(("pulseline-bot-events" = i64,
            description = "Bot events in the range (left out unless include_bots=true)"))),
        (status = 400, description = "An invalid parameter (says which), or more events in the \
                                      range than PULSELINE_DASHBOARD_MAX_SCAN_EVENTS",
            body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn vitals(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
    ApiQuery(p): ApiQuery<RangeParams>,
    ApiQuery(bots): ApiQuery<BotsParams>,
) -> Result<Response, ApiError> {
    session.require(&state, project, Role::Viewer).await?;
    let answer = vitals_of(&state, project, &p, bots.include_bots).await?;
    let bot_events = answer.bot_events;
    Ok(with_bot_events(Json(answer), bot_events))
}

/// The Web Vitals of `project`, for its members and for a shared link (`dashboard::share`).
pub async fn vitals_of(
    state: &AppState,
    project: ProjectId,
    p: &RangeParams,
    include_bots: bool,
) -> Result<VitalsAnswer, ApiError> {
    let r = range(state, p, 7)?;
    let event = Some(analytics::WEB_VITAL_EVENT);
    let (rows, bot_events) = scan(state, project, &r, event, include_bots).await?;
    Ok(VitalsAnswer {
        report: analytics::web_vitals(&rows, r.from, r.to, r.bucket),
        bot_events,
    })
}
