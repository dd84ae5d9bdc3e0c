//! `GET /api/dash/web-analytics`: what this collector derives at ingest, so the dashboard can
//! say when geo is off (no PULSELINE_GEOIP_DB) instead of showing an empty countries table.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ErrorBody;
use crate::routes::extract::Session;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct WebAnalyticsSettings {
    /// A GeoIP database is loaded: `context.location` is derived.
    pub geo: bool,
    /// The database's own name for its type, e.g. "GeoLite2-City"; null without one.
    pub geo_database: Option<String>,
    /// Client IPs are stored as `context.ip` (PULSELINE_STORE_IP).
    pub store_ip: bool,
    /// Longest User-Agent parsed, in bytes (longer ones are parsed by their start).
    pub max_user_agent_bytes: usize,
}

#[utoipa::path(
    get, path = "/api/dash/web-analytics", tag = "dashboard",
    operation_id = "dashboard_web_analytics",
    description = "What ingest derives for web analytics on this collector (GeoIP on or off, \
                   whether IPs are stored). See docs/web-analytics.md.",
    responses(
        (status = 200, body = WebAnalyticsSettings),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn show(State(state): State<AppState>, _session: Session) -> Json<WebAnalyticsSettings> {
    Json(WebAnalyticsSettings {
        geo: state.web.geo_enabled(),
        geo_database: state.web.geo_database().map(str::to_owned),
        store_ip: state.web.stores_ip(),
        max_user_agent_bytes: crate::web::MAX_USER_AGENT_BYTES,
    })
}
