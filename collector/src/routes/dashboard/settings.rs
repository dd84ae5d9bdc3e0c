//! A project's settings: its time zone, which decides what "today" and each day are on the Web
//! page. Members read them; admins change them.

use axum::Json;
use axum::extract::State;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{CsrfHeader, ProjectPath};
use crate::domain::ProjectId;
use crate::domain::account::Role;
use crate::error::{ApiError, ErrorBody};
use crate::routes::extract::{ApiJson, PathIds, Session};
use crate::state::AppState;

/// Longest time zone name accepted (IANA names are far shorter).
pub const MAX_TIMEZONE_CHARS: usize = 64;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProjectSettings {
    /// IANA time zone name (`Europe/Berlin`, `America/New_York`, `UTC`): decides what "today"
    /// and each day are on the Web page.
    pub timezone: String,
}

#[utoipa::path(
    get, path = "/api/dash/projects/{project}/settings", tag = "dashboard",
    operation_id = "dashboard_project_settings", params(ProjectPath),
    responses(
        (status = 200, body = ProjectSettings),
        (status = 400, description = "The project id is not an integer", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn settings(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
) -> Result<Json<ProjectSettings>, ApiError> {
    session.require(&state, project, Role::Viewer).await?;
    Ok(Json(ProjectSettings {
        timezone: state.store.project_timezone(project).await?,
    }))
}

#[utoipa::path(
    post, path = "/api/dash/projects/{project}/settings", tag = "dashboard",
    operation_id = "dashboard_project_settings_update", params(ProjectPath, CsrfHeader),
    request_body = ProjectSettings,
    description = "Sets the project's time zone. Needs the admin role; audited.",
    responses(
        (status = 200, body = ProjectSettings),
        (status = 400, description = "Not an IANA time zone name", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 403, description = "Below the admin role, or a missing CSRF token",
            body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn update_settings(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
    ApiJson(body): ApiJson<ProjectSettings>,
) -> Result<Json<ProjectSettings>, ApiError> {
    session.require(&state, project, Role::Admin).await?;
    let name = body.timezone.trim();
    let known = name.len() <= MAX_TIMEZONE_CHARS && TimeZone::get(name).is_ok();
    if !known {
        return Err(ApiError::BadRequest(format!(
            "unknown time zone {:?}: use an IANA name such as Europe/Berlin, \
             America/New_York or UTC",
            name.chars().take(MAX_TIMEZONE_CHARS).collect::<String>()
        )));
    }
    let now = state.clock.now().timestamp_millis();
    if state.store.change_timezone(project, name, now).await? {
        // The active-user rollups are keyed by local day: re-key them in the background (the
        // maintenance pass resumes a rebuild this one leaves unfinished).
        let store = state.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.rebuild_local_days(now).await {
                tracing::warn!(error = %e, "re-keying the days after a time zone change failed");
            }
        });
    }
    session
        .audit(
            &state,
            Some(project),
            "project.timezone",
            format!("time zone {name}"),
        )
        .await?;
    Ok(Json(ProjectSettings {
        timezone: name.to_owned(),
    }))
}
