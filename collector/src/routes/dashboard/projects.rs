//! Projects, their keys, members, audit log and usage. Viewers read; developers manage keys;
//! admins manage members; owners make owners.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{CsrfHeader, KeyPath, ProjectPath};
use crate::domain::account::{Email, Role};
use crate::domain::{KeyKind, ProjectId};
use crate::error::{ApiError, ErrorBody};
use crate::projects;
use crate::routes::extract::{ApiJson, ApiQuery, PathIds, Session, no_such_project};
use crate::state::AppState;
use crate::store::accounts::{AuditEntry, Member};
use crate::store::{KeyRecord, next_month_start};

/// Most projects a user who is not an instance admin may own: anyone logged in can create
/// projects, and each holds keys, rules and channels.
pub const MAX_OWNED_PROJECTS_PER_USER: usize = 20;
/// Most keys of a project that are not revoked; revoke one to issue another.
pub const MAX_ACTIVE_KEYS_PER_PROJECT: usize = 20;
/// Most revoked keys the key list shows, newest first (rotation revokes one key each time).
pub const MAX_REVOKED_KEYS_LISTED: usize = 50;

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

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    pub id: i64,
    /// `write` or `secret`.
    pub kind: &'static str,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    /// When it stopped working, or, within a rotation's grace period, when it will.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Whether it works now (not revoked, or within a rotation's grace period).
    pub active: bool,
    /// The e-mail of the member who issued it in the dashboard; `None` for keys made by the
    /// CLI or on the first start.
    pub created_by: Option<String>,
    /// The key itself. Write keys are public (every page that sends events carries one), so
    /// theirs is always here, except for write keys issued before migration 0030 kept them
    /// (rotate one with a grace period to get a key shown here). A secret key is here only in the
    /// answer that created it: only its hash is stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

fn key_view(
    k: KeyRecord,
    created_by: Option<String>,
    new_secret: Option<String>,
    now: DateTime<Utc>,
) -> KeyView {
    KeyView {
        id: k.id,
        kind: k.kind.as_str(),
        active: k.active_at(now),
        prefix: k.prefix,
        created_at: k.created_at,
        revoked_at: k.revoked_at,
        created_by,
        key: k.plain.or(new_secret),
    }
}

/// The project's keys, each with who issued it.
async fn key_views(state: &AppState, project: ProjectId) -> Result<Vec<KeyView>, ApiError> {
    let now = state.clock.now();
    let mut keys = state.store.list_keys(Some(project)).await?;
    // Active keys first, then the newest revoked ones; older revoked keys are left out.
    keys.sort_by_key(|k| (!k.active_at(now), std::cmp::Reverse(k.revoked_at), k.id));
    let active = keys.iter().filter(|k| k.active_at(now)).count();
    keys.truncate(active + MAX_REVOKED_KEYS_LISTED);
    let creators = state.store.key_creators(project).await?;
    Ok(keys
        .into_iter()
        .map(|k| {
            let by = creators.iter().find(|c| c.key_id == k.id);
            key_view(k, by.map(|c| c.email.clone()), None, now)
        })
        .collect())
}

#[utoipa::path(
    get, path = "/api/dash/projects/{project}/keys", tag = "dashboard",
    operation_id = "dashboard_keys_list", params(ProjectPath),
    description = "The project's keys (prefixes only), each with who issued it: the active \
                   ones, then the newest MAX_REVOKED_KEYS_LISTED (50) revoked ones.",
    responses(
        (status = 200, body = Vec<KeyView>),
        (status = 400, description = "The project id is not an integer", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn keys(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
) -> Result<Json<Vec<KeyView>>, ApiError> {
    session.require(&state, project, Role::Viewer).await?;
    Ok(Json(key_views(&state, project).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewKey {
    /// `write` or `secret`.
    #[schema(pattern = "^(write|secret)$")]
    kind: String,
}

#[utoipa::path(
    post, path = "/api/dash/projects/{project}/keys", tag = "dashboard",
    operation_id = "dashboard_key_create", request_body = NewKey,
    description = "Issues a new key; the key itself is in this answer only. Developer role or \
                   higher. At most MAX_ACTIVE_KEYS_PER_PROJECT (20) keys are not revoked.",
    params(ProjectPath, CsrfHeader),
    responses(
        (status = 200, body = KeyView),
        (status = 400, description = "Not a JSON {kind} body, an unknown kind, a \
                                      non-integer project id, or MAX_ACTIVE_KEYS_PER_PROJECT \
                                      keys already active", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 403, description = "Below the developer role, missing or wrong X-CSRF-Token, \
                                      or a cross-site Origin", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn create_key(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
    ApiJson(form): ApiJson<NewKey>,
) -> Result<Json<KeyView>, ApiError> {
    session.require(&state, project, Role::Developer).await?;
    let kind = KeyKind::parse(&form.kind).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "unknown key kind '{}': use write or secret",
            form.kind
        ))
    })?;
    let now = state.clock.now();
    let active = state
        .store
        .list_keys(Some(project))
        .await?
        .iter()
        .filter(|k| k.active_at(now))
        .count();
    if active >= MAX_ACTIVE_KEYS_PER_PROJECT {
        return Err(ApiError::BadRequest(format!(
            "project {project} has {active} keys that are not revoked, the most it may \
             (MAX_ACTIVE_KEYS_PER_PROJECT = {MAX_ACTIVE_KEYS_PER_PROJECT}): revoke one you no \
             longer use first"
        )));
    }
    let issued = projects::create_key(&state.store, project, kind, now)
        .await?
        .ok_or_else(|| no_such_project(project))?;
    state
        .store
        .set_key_creator(issued.record.id, session.user_id())
        .await?;
    session
        .audit(
            &state,
            Some(project),
            "key.created",
            format!("{} key {}", kind, issued.record.prefix),
        )
        .await?;
    Ok(Json(key_view(
        issued.record,
        Some(session.record.user.email.clone()),
        Some(issued.key.as_str().to_owned()),
        now,
    )))
}

/// The key, if it belongs to the project (else 404, whatever project it belongs to).
async fn project_key(
    state: &AppState,
    project: ProjectId,
    key_id: i64,
) -> Result<KeyRecord, ApiError> {
    state
        .store
        .list_keys(Some(project))
        .await?
        .into_iter()
        .find(|k| k.id == key_id)
        .ok_or_else(|| ApiError::NotFound(format!("project {project} has no key {key_id}")))
}

/// How long a rotated key keeps working beside its replacement.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// Hours the old key keeps working (0, the default: it stops at once); at most 720
    /// (MAX_KEY_ROTATION_GRACE, 30 days), time to update every page that carries it.
    #[serde(default)]
    grace_hours: u32,
}

#[utoipa::path(
    post, path = "/api/dash/projects/{project}/keys/{key}/rotate", tag = "dashboard",
    operation_id = "dashboard_key_rotate", request_body(content = Option<RotateKey>),
    description = "Issues a key of the same kind and revokes the old one, at once or after \
                   `grace_hours`; a new secret key is in this answer only. Developer role or \
                   higher.",
    params(ProjectPath, KeyPath, CsrfHeader),
    responses(
        (status = 200, body = KeyView),
        (status = 400, description = "A non-integer id in the path, a body that is not \
                                      {grace_hours}, or a grace over 720 hours", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 403, description = "Below the developer role, missing or wrong X-CSRF-Token, \
                                      or a cross-site Origin", body = ErrorBody),
        (status = 404, description = "No such project among the user's, or no such key in it",
            body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn rotate_key(
    State(state): State<AppState>,
    session: Session,
    PathIds((project, key_id)): PathIds<(ProjectId, i64)>,
    body: Option<ApiJson<RotateKey>>,
) -> Result<Json<KeyView>, ApiError> {
    session.require(&state, project, Role::Developer).await?;
    let rotate = body.map(|ApiJson(r)| r).unwrap_or_default();
    let grace = chrono::Duration::hours(i64::from(rotate.grace_hours));
    if grace > projects::MAX_KEY_ROTATION_GRACE {
        return Err(ApiError::BadRequest(format!(
            "grace_hours {} is longer than {} hours (MAX_KEY_ROTATION_GRACE): update the pages \
             that carry the old key within that time, or rotate again later",
            rotate.grace_hours,
            projects::MAX_KEY_ROTATION_GRACE.num_hours()
        )));
    }
    let old = project_key(&state, project, key_id).await?;
    if !old.active_at(state.clock.now()) {
        return Err(ApiError::BadRequest(format!(
            "key {key_id} is already revoked; create a new key instead"
        )));
    }
    let now = state.clock.now();
    let issued = projects::rotate_key(&state.store, key_id, grace, now)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("project {project} has no key {key_id}")))?;
    state
        .store
        .set_key_creator(issued.record.id, session.user_id())
        .await?;
    session
        .audit(
            &state,
            Some(project),
            "key.rotated",
            format!(
                "{} key {} → {}, old key valid {}",
                old.kind,
                old.prefix,
                issued.record.prefix,
                if rotate.grace_hours == 0 {
                    "no longer".to_owned()
                } else {
                    format!("{} more hours", rotate.grace_hours)
                }
            ),
        )
        .await?;
    Ok(Json(key_view(
        issued.record,
        Some(session.record.user.email.clone()),
        Some(issued.key.as_str().to_owned()),
        now,
    )))
}

#[utoipa::path(
    post, path = "/api/dash/projects/{project}/keys/{key}/revoke", tag = "dashboard",
    operation_id = "dashboard_key_revoke",
    description = "Revokes the key: it stops working at once. Developer role or higher.",
    params(ProjectPath, KeyPath, CsrfHeader),
    responses(
        (status = 200, body = KeyView),
        (status = 400, description = "A non-integer id in the path", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 403, description = "Below the developer role, missing or wrong X-CSRF-Token, \
                                      or a cross-site Origin", body = ErrorBody),
        (status = 404, description = "No such project among the user's, or no such key in it",
            body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    session: Session,
    PathIds((project, key_id)): PathIds<(ProjectId, i64)>,
) -> Result<Json<KeyView>, ApiError> {
    session.require(&state, project, Role::Developer).await?;
    project_key(&state, project, key_id).await?;
    let revoked = state
        .store
        .revoke_key(key_id, state.clock.now())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("project {project} has no key {key_id}")))?;
    session
        .audit(
            &state,
            Some(project),
            "key.revoked",
            format!("{} key {}", revoked.kind, revoked.prefix),
        )
        .await?;
    let by = state
        .store
        .key_creators(project)
        .await?
        .into_iter()
        .find(|c| c.key_id == key_id)
        .map(|c| c.email);
    Ok(Json(key_view(revoked, by, None, state.clock.now())))
}

#[utoipa::path(
    get, path = "/api/dash/projects/{project}/members", tag = "dashboard",
    operation_id = "dashboard_members_list", params(ProjectPath),
    responses(
        (status = 200, body = Vec<Member>),
        (status = 400, description = "The project id is not an integer", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn members(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
) -> Result<Json<Vec<Member>>, ApiError> {
    session.require(&state, project, Role::Viewer).await?;
    Ok(Json(state.store.list_members(project).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MemberForm {
    /// A member's e-mail address.
    email: String,
    /// `viewer`, `developer`, `admin` or `owner`.
    #[schema(value_type = Role)]
    role: String,
}

/// Changes a member's role. Admins manage developers and viewers and other admins; only owners
/// grant or take away ownership; the last owner stays. New members join by invitation.
#[utoipa::path(
    post, path = "/api/dash/projects/{project}/members", tag = "dashboard",
    operation_id = "dashboard_member_set",
    request_body = MemberForm,
    description = "Changes a member's role; answers the members. Admin role or higher; only \
                   owners make or unmake owners; the last owner stays. Someone who is not a \
                   member yet is invited instead (POST /api/dash/projects/{project}/invitations).",
    params(ProjectPath, CsrfHeader),
    responses(
        (status = 200, body = Vec<Member>),
        (status = 400, description = "Not a JSON {email, role} body, an unknown role, an \
                                      invalid e-mail, demoting the last owner, or a non-integer \
                                      project id", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 403, description = "Below the admin role, an admin touching an owner, missing \
                                      or wrong X-CSRF-Token, or a cross-site Origin",
            body = ErrorBody),
        (status = 404, description = "No such project among the user's, or the e-mail is not a \
                                      member's (invite them)", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn set_member(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
    ApiJson(form): ApiJson<MemberForm>,
) -> Result<Json<Vec<Member>>, ApiError> {
    let my_role = session.require(&state, project, Role::Admin).await?;
    let role = Role::parse(&form.role).map_err(ApiError::BadRequest)?;
    let email = Email::parse(&form.email).map_err(ApiError::BadRequest)?;
    let members = state.store.list_members(project).await?;
    // Only members are looked up: whether the address has an account is never revealed.
    let Some(member) = members.iter().find(|m| m.email == email.as_str()) else {
        return Err(ApiError::NotFound(format!(
            "{} is not a member of project {project}: invite them with POST \
             /api/dash/projects/{project}/invitations",
            email.as_str()
        )));
    };
    let current = member.role;
    if (role == Role::Owner || current == Role::Owner) && my_role < Role::Owner {
        return Err(ApiError::Forbidden(
            "only an owner can make or unmake owners".into(),
        ));
    }
    if current == Role::Owner && role != Role::Owner && owners(&members) == 1 {
        return Err(ApiError::BadRequest(
            "this is the project's last owner: make someone else owner first".into(),
        ));
    }
    state
        .store
        .set_member(project, member.user_id, role, state.clock.now())
        .await?;
    session
        .audit(
            &state,
            Some(project),
            "member.role_changed",
            format!("{} as {role} (was {current})", member.email),
        )
        .await?;
    Ok(Json(state.store.list_members(project).await?))
}

fn owners(members: &[Member]) -> usize {
    members.iter().filter(|m| m.role == Role::Owner).count()
}

/// A member removed: who is left, and the secret keys the removed member issued that still
/// work (they may have kept a copy: rotate them).
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberRemoved {
    pub members: Vec<Member>,
    /// Active secret keys issued by the removed member, for one-click rotation
    /// (POST /api/dash/projects/{project}/keys/{key}/rotate).
    pub keys_to_rotate: Vec<KeyView>,
}

#[utoipa::path(
    delete, path = "/api/dash/projects/{project}/members/{user}", tag = "dashboard",
    operation_id = "dashboard_member_remove",
    description = "Removes a member; answers the members left and the active secret keys the \
                   removed member issued (rotate them). Admin role or higher; only owners remove \
                   owners; the last owner stays.",
    params(ProjectPath, ("user" = i64, Path, description = "The member's user_id."), CsrfHeader),
    responses(
        (status = 200, body = MemberRemoved),
        (status = 400, description = "The last owner, or a non-integer id in the path",
            body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 403, description = "Below the admin role, an admin removing an owner, missing \
                                      or wrong X-CSRF-Token, or a cross-site Origin",
            body = ErrorBody),
        (status = 404, description = "No such project among the user's, or no such member",
            body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn remove_member(
    State(state): State<AppState>,
    session: Session,
    PathIds((project, user_id)): PathIds<(ProjectId, i64)>,
) -> Result<Json<MemberRemoved>, ApiError> {
    let my_role = session.require(&state, project, Role::Admin).await?;
    let members = state.store.list_members(project).await?;
    let Some(member) = members.iter().find(|m| m.user_id == user_id) else {
        return Err(ApiError::NotFound(format!(
            "user {user_id} is not a member of project {project}"
        )));
    };
    if member.role == Role::Owner && my_role < Role::Owner {
        return Err(ApiError::Forbidden(
            "only an owner can remove an owner".into(),
        ));
    }
    if member.role == Role::Owner && owners(&members) == 1 {
        return Err(ApiError::BadRequest(
            "this is the project's last owner: make someone else owner first".into(),
        ));
    }
    state.store.remove_member(project, user_id).await?;
    session
        .audit(
            &state,
            Some(project),
            "member.removed",
            member.email.clone(),
        )
        .await?;
    let keys_to_rotate = key_views(&state, project)
        .await?
        .into_iter()
        .filter(|k| {
            k.kind == KeyKind::Secret.as_str()
                && k.active
                && k.created_by.as_deref() == Some(member.email.as_str())
        })
        .collect();
    Ok(Json(MemberRemoved {
        members: state.store.list_members(project).await?,
        keys_to_rotate,
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
