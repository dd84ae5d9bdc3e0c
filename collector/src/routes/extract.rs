//! What route handlers take from a request besides the state: who calls ([`Session`],
//! [`Caller`]), path ids ([`PathId`], [`PathIds`]), and bodies and query strings whose
//! rejections are answered with the product's error body ([`ApiJson`], [`ApiQuery`]).
//!
//! One set of alerting handlers serves two front doors, told apart by [`Caller`]:
//!
//! - `/api/v1/...`: a server-side tool with the project's secret key, which may do everything;
//! - `/api/dash/projects/{project}/...`: a dashboard user, by session cookie (CSRF on changes,
//!   as every dashboard route), with their role in that project: viewers read, developers and
//!   above change. A user who is not a member gets 404, as for a project that does not exist.
//!
//! Every change is appended to the project's audit log with who, when and from where.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{
    ConnectInfo, FromRequest, FromRequestParts, MatchedPath, OptionalFromRequest, Path, Query,
    RawPathParams, Request,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use serde::de::DeserializeOwned;

use crate::auth::{authenticate, key_from_headers};
use crate::config::DashboardConfig;
use crate::domain::account::{Role, SessionToken};
use crate::domain::{KeyKind, ProjectId};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::accounts::{AuditEntry, SessionRecord};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "pulseline_session";
/// The header that carries the session's CSRF token on state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The logged-in user of a request. Extracting it also enforces CSRF on unsafe methods.
#[derive(Debug, Clone)]
pub struct Session {
    pub record: SessionRecord,
    pub token_hash: Vec<u8>,
    pub ip: Option<String>,
}

impl Session {
    pub fn user_id(&self) -> i64 {
        self.record.user.id
    }

    /// The user's role in `project`, at least `min`. Not a member: 404, as for a project that
    /// does not exist, so other tenants' ids reveal nothing. A lower role: 403.
    pub async fn require(
        &self,
        state: &AppState,
        project: ProjectId,
        min: Role,
    ) -> Result<Role, ApiError> {
        let Some(role) = state.store.role_in(project, self.user_id()).await? else {
            return Err(no_such_project(project));
        };
        if role < min {
            return Err(ApiError::Forbidden(format!(
                "this needs the {min} role or higher in project {project}; you are {role}. \
                 Ask a project admin to change your role"
            )));
        }
        Ok(role)
    }

    /// Appends to the audit log, as this user, from this address.
    pub async fn audit(
        &self,
        state: &AppState,
        project: Option<ProjectId>,
        action: &str,
        target: String,
    ) -> Result<(), ApiError> {
        state
            .store
            .append_audit(&AuditEntry {
                project_id: project,
                user_id: Some(self.user_id()),
                actor: self.record.user.email.clone(),
                action: action.to_owned(),
                target,
                ip: self.ip.clone(),
                at: state.clock.now(),
            })
            .await?;
        Ok(())
    }
}

pub fn no_such_project(project: ProjectId) -> ApiError {
    ApiError::NotFound(format!(
        "no project {project} among yours: pick one from GET /api/dash/projects"
    ))
}

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = cookie(&parts.headers, SESSION_COOKIE).ok_or_else(|| {
            ApiError::Unauthorized("not logged in: POST /api/dash/session first".into())
        })?;
        let token_hash = SessionToken::from_cookie(&token).hash();
        let record = state
            .store
            .find_session(&token_hash, state.clock.now())
            .await?
            .ok_or_else(|| {
                ApiError::Unauthorized("your session has expired or ended: log in again".into())
            })?;
        if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
            check_origin(&parts.headers, &state.dashboard.config)?;
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !constant_time_eq(sent.as_bytes(), record.csrf_token.as_bytes()) {
                return Err(ApiError::Forbidden(
                    "missing or wrong X-CSRF-Token header: send the csrf_token from \
                     GET /api/dash/session with every change"
                        .into(),
                ));
            }
        }
        Ok(Self {
            record,
            token_hash,
            ip: client_ip(parts),
        })
    }
}

/// The client's address: the connection's peer, or what a trusted proxy says
/// (PULSELINE_TRUSTED_PROXIES, see [`crate::proxy`]).
pub fn client_ip(parts: &Parts) -> Option<String> {
    match parts.extensions.get::<crate::proxy::ClientAddr>() {
        Some(addr) => Some(addr.0.to_string()),
        None => parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string()),
    }
}

/// A browser's `Origin` must be this server (by its Host header or PULSELINE_PUBLIC_URL).
/// Requests without one (curl, server-side tools) rely on the CSRF token alone.
pub fn check_origin(headers: &HeaderMap, config: &DashboardConfig) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let same_host = host.is_some_and(|h| {
        origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(h))
    });
    let public = config
        .public_url
        .as_deref()
        .is_some_and(|u| u.trim_end_matches('/').eq_ignore_ascii_case(origin));
    if same_host || public {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "cross-site request refused: Origin {origin} is not this dashboard (set \
             PULSELINE_PUBLIC_URL if it is served under another name)"
        )))
    }
}

/// Whether the cookie should be `Secure`: served over TLS, as PULSELINE_PUBLIC_URL or a
/// trusted proxy's `X-Forwarded-Proto` says (the header is dropped from anyone else, see
/// [`crate::proxy::client_addr`]).
pub fn behind_tls(headers: &HeaderMap, config: &DashboardConfig) -> bool {
    config
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

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

    /// The project, for a change by this caller; a viewer gets a 403 that says which role is
    /// needed.
    pub fn project_to_change(&self, what: &str) -> Result<ProjectId, ApiError> {
        match self {
            Self::Member { role, project, .. } if *role < CHANGE_ROLE => {
                Err(ApiError::Forbidden(format!(
                    "{what} needs the {CHANGE_ROLE} role or higher in project {project}; you are \
                     {role}. Ask a project admin to change your role"
                )))
            }
            Self::SecretKey { project, .. } | Self::Member { project, .. } => Ok(*project),
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

/// `Path`, with a malformed id answered like every other error: 400 with a JSON body that says
/// what to send (axum's own rejection is plain text).
#[derive(Debug)]
pub struct PathIds<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for PathIds<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(ids)| Self(ids))
            .map_err(|e| {
                ApiError::BadRequest(format!(
                    "{}: ids in the path are integers (projects from GET /api/dash/projects)",
                    e.body_text()
                ))
            })
    }
}

/// A JSON body. One that is missing, malformed or of the wrong shape is answered 400 with the
/// product's error body ([`ApiError`]'s `From<JsonRejection>`), not axum's plain text.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = <Json<T> as FromRequest<S>>::from_request(req, state).await?;
        Ok(Self(value))
    }
}

/// An optional JSON body: `None` without a `Content-Type`, as axum's `Option<Json<T>>`.
impl<T: DeserializeOwned, S: Send + Sync> OptionalFromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, ApiError> {
        let value = <Json<T> as OptionalFromRequest<S>>::from_request(req, state).await?;
        Ok(value.map(|Json(v)| Self(v)))
    }
}

/// A query string, answered 400 with the reason when it does not parse.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(value) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}
