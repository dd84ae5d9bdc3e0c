//! A project's raw-event retention (docs/privacy.md, "Retention"): members read it, owners set
//! it. Rollups keep the plan's retention.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{CsrfHeader, ProjectPath};
use crate::domain::ProjectId;
use crate::domain::account::Role;
use crate::error::{ApiError, ErrorBody};
use crate::routes::extract::{ApiJson, PathIds, Session, no_such_project};
use crate::state::AppState;
use crate::store::raw_retention::{RawRetention, validate};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionForm {
    /// Days raw events are kept, from 1 to the plan's retention (at most
    /// MAX_RAW_RETENTION_DAYS, 3650); `null` keeps them as long as the plan.
    raw_retention_days: Option<i64>,
}

#[utoipa::path(
    get, path = "/api/dash/projects/{project}/data-retention", tag = "dashboard",
    operation_id = "dashboard_retention_show", params(ProjectPath),
    description = "How long the project keeps raw events and rollups.",
    responses(
        (status = 200, body = RawRetention),
        (status = 400, description = "The project id is not an integer", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
) -> Result<Json<RawRetention>, ApiError> {
    session.require(&state, project, Role::Viewer).await?;
    let retention = state.store.raw_retention(project).await?;
    Ok(Json(retention.ok_or_else(|| no_such_project(project))?))
}

#[utoipa::path(
    put, path = "/api/dash/projects/{project}/data-retention", tag = "dashboard",
    operation_id = "dashboard_retention_set", request_body = RetentionForm,
    description = "Sets how many days raw events are kept, below the plan's retention; the \
                   next maintenance pass deletes older ones. Hourly and active-user rollups \
                   keep the plan's retention. Owner role.",
    params(ProjectPath, CsrfHeader),
    responses(
        (status = 200, body = RawRetention),
        (status = 400, description = "Not a JSON {raw_retention_days} body, or days outside 1 \
                                      to the plan's retention", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 403, description = "Below the owner role, missing or wrong X-CSRF-Token, or \
                                      a cross-site Origin", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn set(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
    ApiJson(form): ApiJson<RetentionForm>,
) -> Result<Json<RawRetention>, ApiError> {
    session.require(&state, project, Role::Owner).await?;
    let current = state
        .store
        .raw_retention(project)
        .await?
        .ok_or_else(|| no_such_project(project))?;
    if let Some(days) = form.raw_retention_days {
        validate(days, current.plan_retention_days).map_err(ApiError::BadRequest)?;
    }
    state
        .store
        .set_raw_retention(project, form.raw_retention_days)
        .await?;
    let target = form
        .raw_retention_days
        .map_or_else(|| "as the plan".to_owned(), |d| format!("{d} days"));
    session
        .audit(&state, Some(project), "project.raw_retention", target)
        .await?;
    let retention = state.store.raw_retention(project).await?;
    Ok(Json(retention.ok_or_else(|| no_such_project(project))?))
}
