//! The HTTP surface. `router` is pure: tests drive it with `oneshot` or over a real socket.

pub mod alerts;
pub mod api_docs;
pub mod categories;
pub mod channels;
pub mod dashboard;
mod dashboard_openapi;
pub mod deliveries;
pub mod events;
pub mod extract;
pub mod inbound;
pub mod ingest;
pub mod ops;
pub mod persons;
pub mod rules;
pub mod sdk;
pub mod segment;

use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use self::alerting_routes::alerting;
use self::dashboard_openapi::DashboardMirror;
use axum::{Json, Router};
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Pulseline collector", description = include_str!("api_overview.md")),
    paths(
        ingest::batch, ingest::import, ingest::track, ingest::identify, ingest::page, ingest::screen,
        ingest::group, ingest::alias, events::list, events::stats, ops::healthz, ops::readyz,
        ops::metrics, sdk::serve, sdk::serve_versioned,
        channels::create, channels::list, channels::get_one, channels::update, channels::delete,
        channels::test, categories::create, categories::list, categories::get_one,
        categories::update, categories::delete, deliveries::list,
        rules::create, rules::list, rules::get, rules::update, rules::delete,
        rules::preview, rules::preview_draft, alerts::alerts,
        dashboard::account::current, dashboard::account::login, dashboard::account::logout,
        dashboard::account::change_password, dashboard::account::account_audit,
        dashboard::invitations::pending, dashboard::invitations::invite,
        dashboard::invitations::cancel, dashboard::invitations::mine,
        dashboard::invitations::accept, dashboard::invitations::decline,
        dashboard::projects::list, dashboard::projects::create, dashboard::projects::show,
        dashboard::keys::keys, dashboard::keys::create_key,
        dashboard::keys::rotate_key, dashboard::keys::revoke_key,
        dashboard::members::members, dashboard::members::set_member,
        dashboard::members::remove_member, dashboard::projects::audit,
        dashboard::projects::usage, dashboard::retention::show, dashboard::retention::set,
        dashboard::insights::overview::overview, dashboard::insights::overview::event_names,
        dashboard::insights::explore::series, dashboard::insights::explore::events,
        dashboard::insights::vitals::vitals, dashboard::insights::funnels::funnel,
        dashboard::insights::retention::retention, dashboard::insights::churn::churn,
        dashboard::insights::sessions::sessions,
        dashboard::insights::live::tail,
        dashboard::web::report, dashboard::web::realtime, dashboard::settings::settings,
        dashboard::settings::update_settings,
        dashboard::share::list, dashboard::share::create, dashboard::share::revoke,
        dashboard::share::public::about, dashboard::share::public::unlock,
        dashboard::share::public::overview, dashboard::share::public::vitals,
        dashboard::share::public::web, dashboard::share::public::web_realtime,
        dashboard::digest::show, dashboard::digest::subscribe, dashboard::digest::set_channel,
        dashboard::digest::preview,
        persons::preview, persons::delete, persons::export, persons::suppressions, persons::lift,
        inbound::create, inbound::list, inbound::delete, inbound::receive,
        segment::page, segment::identify, segment::track, segment::group, segment::alias,
        segment::screen, segment::batch, segment::settings, dashboard::web_settings::show,
    ),
    modifiers(&SecuritySchemes, &DashboardMirror),
)]
#[derive(Debug)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

pub fn router(state: AppState) -> Router {
    // Browsers post from any site that embeds the SDK; the key, not the origin, authorises.
    let ingest_cors = CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods([Method::POST, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::CONTENT_ENCODING,
            HeaderName::from_static("x-requested-with"),
        ])
        // The browser SDK honours Retry-After on 429/503 like the native one.
        .expose_headers([header::RETRY_AFTER])
        .max_age(Duration::from_secs(86_400));

    let ingest = Router::new()
        .route("/v1/batch", post(ingest::batch))
        .route("/v1/import", post(ingest::import))
        .route("/v1/track", post(ingest::track))
        .route("/v1/identify", post(ingest::identify))
        .route("/v1/page", post(ingest::page))
        .route("/v1/screen", post(ingest::screen))
        .route("/v1/group", post(ingest::group))
        .route("/v1/alias", post(ingest::alias))
        // Segment's browser SDK (analytics.js) posts to these short paths.
        .route("/v1/p", post(segment::page))
        .route("/v1/i", post(segment::identify))
        .route("/v1/t", post(segment::track))
        .route("/v1/g", post(segment::group))
        .route("/v1/a", post(segment::alias))
        .route("/v1/s", post(segment::screen))
        .route("/v1/b", post(segment::batch))
        .layer(ingest_cors)
        .layer(DefaultBodyLimit::max(state.limits.max_request_bytes));

    Router::new()
        .merge(ingest)
        .merge(dashboard::router(alerting(DASHBOARD_PREFIX)))
        .route(
            "/v1/inbound/{token}",
            post(inbound::receive).layer(DefaultBodyLimit::max(
                crate::inbound::MAX_INBOUND_BODY_BYTES,
            )),
        )
        .route("/api/v1/events", get(events::list))
        .route("/api/v1/stats", get(events::stats))
        .route("/v1/projects/{write_key}/settings", get(segment::settings))
        .merge(alerting(SECRET_KEY_PREFIX))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .merge(ops::metrics_on_main_listener(&state))
        .route("/openapi.json", get(openapi))
        .route("/docs/api", get(api_docs::page))
        .route("/docs/api/{file}", get(api_docs::file))
        .fallback(not_found)
        .layer(middleware::from_fn(crate::state::query_budget::bound))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_request,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::proxy::client_addr,
        ))
        .with_state(state)
}

async fn openapi() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}

async fn not_found(method: Method, uri: axum::http::Uri) -> crate::error::ApiError {
    crate::error::ApiError::NotFound(format!(
        "no endpoint {method} {}; see /openapi.json for the API",
        uri.path()
    ))
}

/// Requests by route and status, and a debug log line per request.
async fn record_request(State(_): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(req).await;
    let status = response.status().as_u16();
    metrics::counter!(
        "pulseline_http_requests_total",
        "method" => method.to_string(), "route" => route.clone(), "status" => status.to_string()
    )
    .increment(1);
    tracing::debug!(%method, route, status, elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "request");
    response
}

/// Where the alerting routes live for secret-key callers.
pub const SECRET_KEY_PREFIX: &str = "/api/v1";
/// Where the same routes live for the dashboard (session cookie and role).
pub const DASHBOARD_PREFIX: &str = "/api/dash/projects/{project}";

mod alerting_routes {
    use axum::Router;
    use axum::routing::{delete, get, post};

    use super::{alerts, categories, channels, deliveries, inbound, persons, rules};
    use crate::state::AppState;

    /// Channels, categories, rules, alerts, deliveries and persons under `prefix`. The same handlers
    /// serve [`super::SECRET_KEY_PREFIX`] and [`super::DASHBOARD_PREFIX`]: their
    /// [`super::extract::Caller`] argument tells them which project and what the caller may do.
    pub fn alerting(prefix: &str) -> Router<AppState> {
        let at = |path: &str| format!("{prefix}{path}");
        Router::new()
            .route(&at("/channels"), get(channels::list).post(channels::create))
            .route(
                &at("/channels/{id}"),
                get(channels::get_one)
                    .patch(channels::update)
                    .delete(channels::delete),
            )
            .route(&at("/channels/{id}/test"), post(channels::test))
            .route(
                &at("/categories"),
                get(categories::list).post(categories::create),
            )
            .route(
                &at("/categories/{id}"),
                get(categories::get_one)
                    .put(categories::update)
                    .delete(categories::delete),
            )
            .route(&at("/deliveries"), get(deliveries::list))
            .route(&at("/rules"), get(rules::list).post(rules::create))
            .route(&at("/rules/preview"), post(rules::preview_draft))
            .route(
                &at("/rules/{id}"),
                get(rules::get).put(rules::update).delete(rules::delete),
            )
            .route(&at("/rules/{id}/preview"), get(rules::preview))
            .route(&at("/alerts"), get(alerts::alerts))
            .route(
                &at("/inbound-sources"),
                get(inbound::list).post(inbound::create),
            )
            .route(&at("/inbound-sources/{id}"), delete(inbound::delete))
            .route(
                &at("/persons"),
                get(persons::preview).delete(persons::delete),
            )
            .route(&at("/persons/export"), get(persons::export))
            .route(
                &at("/persons/suppressions"),
                get(persons::suppressions).delete(persons::lift),
            )
    }
}
