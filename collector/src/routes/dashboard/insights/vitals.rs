//! The Web Vitals page: p75 by metric and page.

use axum::Json;
use axum::extract::State;

use super::{RangeParams, range, scan};
use crate::analytics;
use crate::domain::ProjectId;
use crate::domain::account::Role;
use crate::error::{ApiError, ErrorBody};
use crate::routes::dashboard::ProjectPath;
use crate::routes::extract::{ApiQuery, PathIds, Session};
use crate::state::AppState;

#[utoipa::path(
    get, path = "/api/dash/projects/{project}/vitals", tag = "dashboard",
    operation_id = "dashboard_vitals",
    params(ProjectPath, RangeParams),
    description = "Core Web Vitals of the range: p75 and the good / needs improvement / poor \
                   shares, overall, per page and per bucket.",
    responses(
        (status = 200, body = analytics::VitalsReport),
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
) -> Result<Json<analytics::VitalsReport>, ApiError> {
    session.require(&state, project, Role::Viewer).await?;
    vitals_of(&state, project, &p).await.map(Json)
}

/// The Web Vitals of `project`, for its members and for a shared link (`dashboard::share`).
pub async fn vitals_of(
    state: &AppState,
    project: ProjectId,
    p: &RangeParams,
) -> Result<analytics::VitalsReport, ApiError> {
    let r = range(state, p, 7)?;
    let rows = scan(state, project, &r, Some(analytics::WEB_VITAL_EVENT)).await?;
    Ok(analytics::web_vitals(&rows, r.from, r.to, r.bucket))
}
