//! The hosted dashboard: its static files and its JSON API under `/api/dash`, authenticated by
//! a session cookie. Every state-changing request carries the session's CSRF token in
//! `X-CSRF-Token` and, when the browser sends one, an `Origin` matching this server.
//! Authorisation is per project and checked here, on the server, for every call: a user who
//! is not a member of a project gets 404 for everything in it, exactly as if it did not exist.

pub mod account;
pub mod assets;
pub mod digest;
pub mod insights;
pub mod invitations;
pub mod keys;
pub mod members;
pub mod projects;
pub mod retention;
pub mod settings;
pub mod share;
pub mod web;
pub mod web_settings;

use axum::Router;
use axum::http::header;
use axum::routing::{get, post};
use utoipa::IntoParams;

use crate::domain::ProjectId;
use crate::state::AppState;

/// The dashboard's pages and API, with `alerting`: the alerting routes mounted under
/// [`super::DASHBOARD_PREFIX`] (built by the caller, so this module needs nothing from its parent).
pub fn router(alerting: Router<AppState>) -> Router<AppState> {
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
            get(keys::keys).post(keys::create_key),
        )
        .route(
            "/api/dash/projects/{project}/keys/{key}/rotate",
            post(keys::rotate_key),
        )
        .route(
            "/api/dash/projects/{project}/keys/{key}/revoke",
            post(keys::revoke_key),
        )
        .route(
            "/api/dash/projects/{project}/members",
            get(members::members).post(members::set_member),
        )
        .route(
            "/api/dash/projects/{project}/members/{user}",
            axum::routing::delete(members::remove_member),
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
            get(insights::overview::overview),
        )
        .route(
            "/api/dash/projects/{project}/series",
            get(insights::explore::series),
        )
        .route(
            "/api/dash/projects/{project}/events",
            get(insights::explore::events),
        )
        .route(
            "/api/dash/projects/{project}/event-names",
            get(insights::overview::event_names),
        )
        .route(
            "/api/dash/projects/{project}/vitals",
            get(insights::vitals::vitals),
        )
        .route(
            "/api/dash/projects/{project}/funnel",
            get(insights::funnels::funnel),
        )
        .route(
            "/api/dash/projects/{project}/retention",
            get(insights::retention::retention),
        )
        .route(
            "/api/dash/projects/{project}/churn",
            get(insights::churn::churn),
        )
        .route(
            "/api/dash/projects/{project}/sessions",
            get(insights::sessions::sessions),
        )
        .route(
            "/api/dash/projects/{project}/tail",
            get(insights::live::tail),
        )
        .route("/api/dash/projects/{project}/web", get(web::report))
        .route(
            "/api/dash/projects/{project}/web/realtime",
            get(web::realtime),
        )
        .route(
            "/api/dash/projects/{project}/shares",
            get(share::list).post(share::create),
        )
        .route(
            "/api/dash/projects/{project}/shares/{share}",
            axum::routing::delete(share::revoke),
        )
        .merge(share::public::router())
        .route(
            "/api/dash/projects/{project}/settings",
            get(settings::settings).post(settings::update_settings),
        )
        .route(
            "/api/dash/projects/{project}/digest",
            get(digest::show).post(digest::subscribe),
        )
        .route(
            "/api/dash/projects/{project}/digest/channel",
            post(digest::set_channel),
        )
        .route(
            "/api/dash/projects/{project}/digest/preview",
            post(digest::preview),
        )
        .merge(alerting)
        .layer(axum::middleware::map_response(no_basic_auth_prompt))
}

/// The API's 401s invite HTTP Basic (for SDKs); a browser would answer that with a password
/// prompt instead of letting the dashboard show its login page.
async fn no_basic_auth_prompt(mut response: axum::response::Response) -> axum::response::Response {
    response.headers_mut().remove(header::WWW_AUTHENTICATE);
    response
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
