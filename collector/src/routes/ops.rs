//! Liveness, readiness and metrics, and the optional operations listener.
//!
//! `/metrics` shows instance-wide volumes, so an operator can move it off the public listener
//! (`PULSELINE_OPS_LISTEN`) and/or require a bearer token (`PULSELINE_METRICS_TOKEN`).
//! `/healthz` and `/readyz` stay on the main listener too: load balancers probe it there.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use sha2::Digest as _;

use crate::error::ApiError;
use crate::state::AppState;

/// `/metrics` for the main router: there unless a separate operations listener serves it.
pub fn metrics_on_main_listener(state: &AppState) -> Router<AppState> {
    match state.ops.ops_listen {
        Some(_) => Router::new(),
        None => Router::new().route("/metrics", get(metrics)),
    }
}

/// The operations listener's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// Readiness waits this long for the database before answering 503.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// The database answers; the collector can take traffic.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = String), (status = 503, body = String)))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match tokio::time::timeout(READY_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready".to_owned()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "database unavailable".to_owned(),
            )
        }
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "database did not answer in time".to_owned(),
        ),
    }
}

/// Prometheus metrics in the text exposition format. On PULSELINE_OPS_LISTEN when that is
/// set; with `Authorization: Bearer` when PULSELINE_METRICS_TOKEN is set.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, body = String),
        (status = 401, description = "PULSELINE_METRICS_TOKEN is set and the request lacks it")))]
pub async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(token) = &state.ops.metrics_token {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        // Digests first, so the comparison takes the same time whatever the lengths.
        let digest = |s: &str| sha2::Sha256::digest(s.as_bytes());
        if !constant_time_eq(&digest(sent.trim()), &digest(token)) {
            return Err(ApiError::Unauthorized(
                "/metrics needs Authorization: Bearer <PULSELINE_METRICS_TOKEN>".into(),
            ));
        }
    }
    let mut body = state.metrics.render();
    let login = &state.dashboard.login_limiter;
    let mut sizes = vec![
        (login.name(), login.len()),
        ("webhook_pace", state.delivery.sender.paced_urls()),
    ];
    if let Some(ingest) = &state.rate_limiter {
        sizes.push((ingest.name(), ingest.len()));
    }
    body.push_str(&crate::limiter::render_sizes(&sizes));
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
