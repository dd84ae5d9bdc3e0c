//! A project's keys in the dashboard: listed with who issued them, created (a secret key shown
//! once), rotated with a grace period, revoked. Developers and above.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{CsrfHeader, KeyPath, ProjectPath};
use crate::domain::account::Role;
use crate::domain::{KeyKind, ProjectId};
use crate::error::{ApiError, ErrorBody};
use crate::projects;
use crate::routes::extract::{ApiJson, PathIds, Session, no_such_project};
use crate::state::AppState;
use crate::store::KeyRecord;

/// Most keys of a project that are not revoked; revoke one to issue another.
pub const MAX_ACTIVE_KEYS_PER_PROJECT: usize = 20;
/// Most revoked keys the key list shows, newest first (rotation revokes one key each time).
pub const MAX_REVOKED_KEYS_LISTED: usize = 50;

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

pub(super) fn key_view(
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
pub(super) async fn key_views(
    state: &AppState,
    project: ProjectId,
) -> Result<Vec<KeyView>, ApiError> {
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
