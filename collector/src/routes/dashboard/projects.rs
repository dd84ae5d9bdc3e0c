//! Projects, their audit log and usage. Viewers read; admins read the audit log. Keys and
//! members have their own modules ([`super::keys`], [`super::members`]).

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{CsrfHeader, ProjectPath};
use crate::domain::ProjectId;
use crate::domain::account::Role;
use crate::error::{ApiError, ErrorBody};
use crate::projects;
use crate::routes::extract::{ApiJson, ApiQuery, PathIds, Session, no_such_project};
use crate::state::AppState;
use crate::store::accounts::AuditEntry;
use crate::store::next_month_start;

// Where the tests and earlier callers found the key limits.
pub use super::keys::{MAX_ACTIVE_KEYS_PER_PROJECT, MAX_REVOKED_KEYS_LISTED};

/// Most projects a user who is not an instance admin may own: anyone logged in can create
/// projects, and each holds keys, rules and channels.
pub const MAX_OWNED_PROJECTS_PER_USER: usize = 20;

#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectView {
    #[schema(value_type = i64)]
    pub id: ProjectId,
    pub name: String,
    pub plan: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

#[utoipa::path(
    get, path = "/api/dash/projects", tag = "dashboard",
    operation_id = "dashboard_projects_list",
    description = "The projects the user is a member of, with the user's role in each.",
    responses(
        (status = 200, body = Vec<ProjectView>),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    session: Session,
) -> Result<Json<Vec<ProjectView>>, ApiError> {
    let projects = state.store.user_projects(session.user_id()).await?;
    Ok(Json(
        projects
            .into_iter()
            .map(|(p, role)| ProjectView {
                id: p.id,
                name: p.name,
                plan: p.plan,
                role,
                created_at: p.created_at,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewProject {
    /// 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
}

/// A project just created, with its two keys: the only time they are shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedProject {
    #[schema(value_type = i64)]
    pub id: ProjectId,
    pub name: String,
    /// The `plw_` key the SDKs send events with.
    pub write_key: String,
    /// The `pls_` key of the read and alerting APIs.
    pub secret_key: String,
}

/// Any user may create a project; they become its owner. Its keys are shown once.
#[utoipa::path(
    post, path = "/api/dash/projects", tag = "dashboard",
    operation_id = "dashboard_project_create", request_body = NewProject,
    description = "Creates a project (on PULSELINE_DEFAULT_PLAN) owned by the user. Its keys \
                   are in this answer only. A user who is not an instance admin owns at most \
                   MAX_OWNED_PROJECTS_PER_USER (20) projects.",
    params(CsrfHeader),
    responses(
        (status = 200, body = CreatedProject),
        (status = 400, description = "Not a JSON {name} body, a name not of 1 to 100 \
                                      characters, or the user already owns \
                                      MAX_OWNED_PROJECTS_PER_USER (20) projects",
            body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 403, description = "Missing or wrong X-CSRF-Token, or a cross-site Origin",
            body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    session: Session,
    ApiJson(form): ApiJson<NewProject>,
) -> Result<Json<CreatedProject>, ApiError> {
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::BadRequest(
            "a project needs a name of 1 to 100 characters".into(),
        ));
    }
    if !session.record.user.is_admin {
        let owned = state
            .store
            .user_projects(session.user_id())
            .await?
            .into_iter()
            .filter(|(_, role)| *role == Role::Owner)
            .count();
        if owned >= MAX_OWNED_PROJECTS_PER_USER {
            return Err(ApiError::BadRequest(format!(
                "you own {owned} projects, the most one user may (MAX_OWNED_PROJECTS_PER_USER \
                 = {MAX_OWNED_PROJECTS_PER_USER}): work in an existing one, or ask an instance \
                 admin"
            )));
        }
    }
    let now = state.clock.now();
    let keys = projects::create_project_owned_by(
        &state.store,
        name,
        &state.dashboard.default_plan,
        session.user_id(),
        now,
    )
    .await?;
    session
        .audit(
            &state,
            Some(keys.project_id),
            "project.created",
            name.to_owned(),
        )
        .await?;
    Ok(Json(CreatedProject {
        id: keys.project_id,
        name: keys.name,
        write_key: keys.write_key,
        secret_key: keys.secret_key,
    }))
}

#[utoipa::path(
    get, path = "/api/dash/projects/{project}", tag = "dashboard",
    operation_id = "dashboard_project_show", params(ProjectPath),
    responses(
        (status = 200, body = ProjectView),
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
) -> Result<Json<ProjectView>, ApiError> {
    let role = session.require(&state, project, Role::Viewer).await?;
    let p = state
        .store
        .project(project)
        .await?
        .ok_or_else(|| no_such_project(project))?;
    Ok(Json(ProjectView {
        id: p.id,
        name: p.name,
        plan: p.plan,
        role,
        created_at: p.created_at,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Most entries, newest first (default 200; 1 to 1000, clamped).
    limit: Option<i64>,
}

/// The audit log: admins only.
#[utoipa::path(
    get, path = "/api/dash/projects/{project}/audit", tag = "dashboard",
    operation_id = "dashboard_audit_log",
    description = "The project's audit log, newest first. Admin role or higher.",
    params(ProjectPath, AuditParams),
    responses(
        (status = 200, body = Vec<AuditEntry>),
        (status = 400, description = "A non-integer project id or limit", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 403, description = "Below the admin role", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn audit(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    session.require(&state, project, Role::Admin).await?;
    let limit = params.limit.unwrap_or(200).clamp(1, 1000);
    Ok(Json(state.store.list_audit(project, limit).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Usage {
    pub plan: String,
    pub events_this_month: i64,
    /// `None`: the plan has no quota.
    pub quota: Option<i64>,
    pub over_quota: bool,
    /// When the month's count starts again.
    pub resets_at: DateTime<Utc>,
}

#[utoipa::path(
    get, path = "/api/dash/projects/{project}/usage", tag = "dashboard",
    operation_id = "dashboard_usage", params(ProjectPath),
    description = "Events accepted this calendar month (UTC) against the plan's quota.",
    responses(
        (status = 200, body = Usage),
        (status = 400, description = "The project id is not an integer", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn usage(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
) -> Result<Json<Usage>, ApiError> {
    session.require(&state, project, Role::Viewer).await?;
    let now = state.clock.now();
    let p = state
        .store
        .project(project)
        .await?
        .ok_or_else(|| no_such_project(project))?;
    let plan = state.store.plan(&p.plan).await?;
    let used = state.store.usage_this_month(project, now).await?;
    let quota = plan.and_then(|p| p.events_per_month);
    Ok(Json(Usage {
        plan: p.plan,
        events_this_month: used,
        quota,
        over_quota: quota.is_some_and(|q| used >= q),
        resets_at: next_month_start(now),
    }))
}
