//! The hosted dashboard: its static files and its JSON API under `/api/dash`, authenticated by
//! a session cookie. Every state-changing request carries the session's CSRF token in
//! `X-CSRF-Token` and, when the browser sends one, an `Origin` matching this server.
//! Authorisation is per project and checked here, on the server, for every call: a user who
//! is not a member of a project gets 404 for everything in it, exactly as if it did not exist.

pub mod account;
pub mod assets;
pub mod guards;
pub mod insights;
pub mod invitations;
pub mod projects;
pub mod retention;
pub mod web;
pub mod web_settings;

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::routing::{get, post};
use chrono::Duration;
use serde::de::DeserializeOwned;
use utoipa::IntoParams;

use crate::config::DashboardConfig;
use crate::domain::ProjectId;
use crate::domain::account::{Role, SessionToken};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::accounts::{AuditEntry, SessionRecord};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "pulseline_session";
/// The header that carries the session's CSRF token on state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Limits login attempts per client address and per e-mail address.
pub type LoginLimiter = crate::limiter::KeyedLimiter<String>;

/// What the dashboard's handlers share.
#[derive(Debug)]
pub struct DashboardState {
    pub config: DashboardConfig,
    pub login_limiter: LoginLimiter,
    /// The plan of projects created in the dashboard (PULSELINE_DEFAULT_PLAN).
    pub default_plan: String,
    pub password_checks: guards::PasswordChecks,
    pub tails: guards::TailSlots,
}

impl DashboardState {
    pub fn new(
        config: DashboardConfig,
        default_plan: String,
        clock: crate::limiter::LimiterClock,
    ) -> Self {
        let per_minute =
            NonZeroU32::new(config.login_attempts_per_minute).unwrap_or(NonZeroU32::MIN);
        Self {
            login_limiter: LoginLimiter::new(
                "login",
                governor::Quota::per_minute(per_minute),
                clock,
            ),
            password_checks: guards::PasswordChecks::new(&config),
            tails: guards::TailSlots::new(&config),
            config,
            default_plan,
        }
    }

    pub fn session_ttl(&self) -> Duration {
        Duration::hours(i64::from(self.config.session_ttl_hours))
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{*path}", get(assets::file))
        .route(
            "/api/dash/session",
            get(account::current)
                .post(account::login)
                .delete(account::logout),
        )
        .route("/api/dash/password", post(account::change_password))
        .route("/api/dash/audit", get(account::account_audit))
        .route("/api/dash/web-analytics", get(web_settings::show))
        .route("/api/dash/invitations", get(invitations::mine))
        .route(
            "/api/dash/invitations/{invitation}/accept",
            post(invitations::accept),
        )
        .route(
            "/api/dash/invitations/{invitation}/decline",
            post(invitations::decline),
        )
        .route(
            "/api/dash/projects",
            get(projects::list).post(projects::create),
        )
        .route("/api/dash/projects/{project}", get(projects::show))
        .route(
            "/api/dash/projects/{project}/keys",
            get(projects::keys).post(projects::create_key),
        )
        .route(
            "/api/dash/projects/{project}/keys/{key}/rotate",
            post(projects::rotate_key),
        )
        .route(
            "/api/dash/projects/{project}/keys/{key}/revoke",
            post(projects::revoke_key),
        )
        .route(
            "/api/dash/projects/{project}/members",
            get(projects::members).post(projects::set_member),
        )
        .route(
            "/api/dash/projects/{project}/members/{user}",
            axum::routing::delete(projects::remove_member),
        )
        .route(
            "/api/dash/projects/{project}/invitations",
            get(invitations::pending).post(invitations::invite),
        )
        .route(
            "/api/dash/projects/{project}/invitations/{invitation}",
            axum::routing::delete(invitations::cancel),
        )
        .route("/api/dash/projects/{project}/audit", get(projects::audit))
        .route("/api/dash/projects/{project}/usage", get(projects::usage))
        .route(
            "/api/dash/projects/{project}/data-retention",
            get(retention::show).put(retention::set),
        )
        .route(
            "/api/dash/projects/{project}/overview",
            get(insights::overview),
        )
        .route("/api/dash/projects/{project}/series", get(insights::series))
        .route("/api/dash/projects/{project}/events", get(insights::events))
        .route(
            "/api/dash/projects/{project}/event-names",
            get(insights::event_names),
        )
        .route("/api/dash/projects/{project}/vitals", get(insights::vitals))
        .route("/api/dash/projects/{project}/funnel", get(insights::funnel))
        .route(
            "/api/dash/projects/{project}/retention",
            get(insights::retention),
        )
        .route(
            "/api/dash/projects/{project}/sessions",
            get(insights::sessions),
        )
        .route("/api/dash/projects/{project}/tail", get(insights::tail))
        .route("/api/dash/projects/{project}/web", get(web::report))
        .route(
            "/api/dash/projects/{project}/web/realtime",
            get(web::realtime),
        )
        .route(
            "/api/dash/projects/{project}/settings",
            get(web::settings).post(web::update_settings),
        )
        .merge(super::alerting(super::DASHBOARD_PREFIX))
        .layer(axum::middleware::map_response(no_basic_auth_prompt))
}

/// The API's 401s invite HTTP Basic (for SDKs); a browser would answer that with a password
/// prompt instead of letting the dashboard show its login page.
async fn no_basic_auth_prompt(mut response: axum::response::Response) -> axum::response::Response {
    response.headers_mut().remove(header::WWW_AUTHENTICATE);
    response
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

/// A query string that does not parse, answered with the reason.
pub fn query_error(e: QueryRejection) -> ApiError {
    ApiError::BadRequest(format!("invalid query: {}", e.body_text()))
}

/// `{project}` in `/openapi.json`.
#[derive(Debug, IntoParams)]
#[into_params(names("project"), parameter_in = Path)]
pub struct ProjectPath(
    /// The project id (GET /api/dash/projects).
    #[param(value_type = i64)]
    pub ProjectId,
);

/// `{key}` in `/openapi.json`.
#[derive(Debug, IntoParams)]
#[into_params(names("key"), parameter_in = Path)]
pub struct KeyPath(
    /// The key's id (GET /api/dash/projects/{project}/keys).
    pub i64,
);

/// The CSRF header of state-changing requests, in `/openapi.json`.
#[derive(Debug, IntoParams)]
#[into_params(names("x-csrf-token"), parameter_in = Header)]
pub struct CsrfHeader(
    /// The csrf_token of GET /api/dash/session.
    pub String,
);

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

/// The dashboard state, shared.
pub type SharedDashboard = Arc<DashboardState>;
