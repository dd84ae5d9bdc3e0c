//! Who acts on a project's alerting (categories, channels, rules, alerts, deliveries), and for
//! which project. One set of handlers serves two front doors:
//!
//! - `/api/v1/...`: a server-side tool with the project's secret key, which may do everything;
//! - `/api/dash/projects/{project}/...`: a dashboard user, by session cookie (CSRF on changes,
//!   as every dashboard route), with their role in that project: viewers read, developers and
//!   above change. A user who is not a member gets 404, as for a project that does not exist.
//!
//! Every change is appended to the project's audit log with who, when and from where.

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams};
use axum::http::request::Parts;

use super::dashboard::{Session, client_ip, no_such_project};
use crate::auth::{authenticate, key_from_headers};
use crate::domain::account::Role;
use crate::domain::{KeyKind, ProjectId};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::accounts::AuditEntry;

/// The role a dashboard user needs to create, edit or delete alerting objects and to send
/// test notifications.
pub const CHANGE_ROLE: Role = Role::Developer;

/// The caller of an alerting route, resolved from the key or from the session.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A secret key of `project`: full access, as before the dashboard existed.
    SecretKey {
        project: ProjectId,
        key_prefix: String,
        ip: Option<String>,
    },
    /// A logged-in member of `project` with `role`.
    Member {
        session: Box<Session>,
        project: ProjectId,
        role: Role,
    },
}

impl Caller {
    pub fn project(&self) -> ProjectId {
        match self {
            Self::SecretKey { project, .. } | Self::Member { project, .. } => *project,
        }
    }

    /// Refuses a change to a viewer with a 403 that says which role is needed.
    pub fn may_change(&self, what: &str) -> Result<(), ApiError> {
        match self {
            Self::SecretKey { .. } => Ok(()),
            Self::Member { role, project, .. } if *role < CHANGE_ROLE => {
                Err(ApiError::Forbidden(format!(
                    "{what} needs the {CHANGE_ROLE} role or higher in project {project}; you are \
                     {role}. Ask a project admin to change your role"
                )))
            }
            Self::Member { .. } => Ok(()),
        }
    }

    /// Appends `action` on `target` to the project's audit log: the user (or the key's
    /// prefix), now, and the client's address.
    pub async fn audit(
        &self,
        state: &AppState,
        action: &str,
        target: String,
    ) -> Result<(), ApiError> {
        let (user_id, actor, ip) = match self {
            Self::SecretKey { key_prefix, ip, .. } => {
                (None, format!("secret key {key_prefix}…"), ip.clone())
            }
            Self::Member { session, .. } => (
                Some(session.user_id()),
                session.record.user.email.clone(),
                session.ip.clone(),
            ),
        };
        state
            .store
            .append_audit(&AuditEntry {
                project_id: Some(self.project()),
                user_id,
                actor,
                action: action.to_owned(),
                target,
                ip,
                at: state.clock.now(),
            })
            .await?;
        Ok(())
    }
}

/// Dashboard routes are those mounted under `/api/dash/`; everything else is a secret-key route.
fn is_dashboard_route(parts: &Parts) -> bool {
    parts
        .extensions
        .get::<MatchedPath>()
        .is_some_and(|m| m.as_str().starts_with("/api/dash/"))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if is_dashboard_route(parts) {
            member(parts, state).await
        } else {
            secret_key(parts, state).await
        }
    }
}

/// The logged-in user (CSRF checked on changes by [`Session`]) and their role in the path's
/// project; 404 when they are not a member.
async fn member(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|e| ApiError::NotFound(format!("invalid path: {e}")))?;
    let raw = params
        .iter()
        .find(|(k, _)| *k == "project")
        .map(|(_, v)| v.to_owned())
        .ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("dashboard route without {{project}}"))
        })?;
    let session = Session::from_request_parts(parts, state).await?;
    let project: ProjectId = raw.parse().map_err(|_| {
        ApiError::NotFound(format!(
            "project ids are integers, not '{raw}': pick one from GET /api/dash/projects"
        ))
    })?;
    let Some(role) = state.store.role_in(project, session.user_id()).await? else {
        return Err(no_such_project(project));
    };
    Ok(Caller::Member {
        session: Box::new(session),
        project,
        role,
    })
}

/// The project of the secret key in the request's headers.
async fn secret_key(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    let key = authenticate(
        state,
        key_from_headers(&parts.headers)?.as_deref(),
        KeyKind::Secret,
    )
    .await?;
    Ok(Caller::SecretKey {
        project: key.project_id,
        key_prefix: key.prefix,
        ip: client_ip(parts),
    })
}

/// The `{id}` segment of an alerting path (a channel, category or rule id), parsed by the
/// handler so that it can say which kind of id was wrong.
#[derive(Debug, Clone)]
pub struct PathId(Option<String>);

impl PathId {
    /// The id, or a 400 naming what it should have been.
    pub fn parse(&self, what: &str) -> Result<i64, ApiError> {
        self.0
            .as_deref()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                ApiError::BadRequest(format!("the {what} id in the path must be an integer"))
            })
    }
}

impl FromRequestParts<AppState> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("invalid path: {e}")))?;
        Ok(Self(
            params
                .iter()
                .find(|(k, _)| *k == "id")
                .map(|(_, v)| v.to_owned()),
        ))
    }
}
