//! Sessions: counts and durations of visits in the range.

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
    get, path = "/api/dash/projects/{project}/sessions", tag = "dashboard",
    operation_id = "dashboard_sessions",
    params(ProjectPath, RangeParams),
    description = "Sessions of the range (a user's events with no gap over 30 minutes): count, \
                   mean length and bounce rate.",
    responses(
        (status = 200, body = analytics::SessionStats),
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
) -> Result<Json<analytics::SessionStats>, ApiError> {
    session.require(&state, project, Role::Viewer).await?;
    let r = range(&state, &p, 7)?;
    let rows = scan(&state, project, &r, None).await?;
    Ok(Json(analytics::sessions(&rows)))
}
