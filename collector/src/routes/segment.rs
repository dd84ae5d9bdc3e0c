//! What Segment's browser SDK (analytics.js / `@segment/analytics-next`) needs to use the
//! collector unchanged: the short ingest paths it posts to (`/v1/p`, `/v1/i`, `/v1/t`, `/v1/g`,
//! `/v1/a`, `/v1/s`, and `/v1/b` in batching mode, `text/plain` bodies carrying `writeKey`), and
//! the settings document its loader fetches from `{cdnURL}/v1/projects/{writeKey}/settings`.

use axum::Extension;
use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;

use super::ingest::{self, IngestResponse};
use crate::auth::authenticate;
use crate::domain::KeyKind;
use crate::error::{ApiError, ErrorBody};
use crate::proxy::ClientAddr;
use crate::state::AppState;

/// The short paths, each the same as its long form.
macro_rules! short_endpoint {
    ($fn:ident, $path:literal, $long:ident, $summary:literal) => {
        #[doc = $summary]
        #[utoipa::path(
            post, path = $path, tag = "ingest", operation_id = concat!("segment_", stringify!($fn)),
            request_body(content = ingest::MessageDoc, content_type = "text/plain",
                description = "One message as JSON, with `writeKey`; `application/json` too"),
            responses(
                (status = 200, description = "Stored", body = IngestResponse),
                (status = 400, description = "Malformed or invalid message", body = ErrorBody),
                (status = 401, description = "Missing, unknown or revoked write key", body = ErrorBody),
                (status = 413, description = "Body too large", body = ErrorBody),
                (status = 415, description = "Unsupported Content-Type or Content-Encoding", body = ErrorBody),
                (status = 429, description = "Rate limit or monthly quota reached; see Retry-After", body = ErrorBody),
                (status = 503, description = "Overloaded or storage unavailable; see Retry-After", body = ErrorBody),
            ),
            security((), ("basic" = []), ("bearer" = []))
        )]
        pub async fn $fn(
            state: State<AppState>,
            client: Option<Extension<ClientAddr>>,
            headers: HeaderMap,
            body: Result<Bytes, BytesRejection>,
        ) -> Result<Json<IngestResponse>, ApiError> {
            ingest::$long(state, client, headers, body).await
        }
    };
}

short_endpoint!(
    page,
    "/v1/p",
    page,
    "Segment analytics.js's page path: the same as `/v1/page`."
);
short_endpoint!(
    identify,
    "/v1/i",
    identify,
    "Segment analytics.js's identify path: the same as `/v1/identify`."
);
short_endpoint!(
    track,
    "/v1/t",
    track,
    "Segment analytics.js's track path: the same as `/v1/track`."
);
short_endpoint!(
    group,
    "/v1/g",
    group,
    "Segment analytics.js's group path: the same as `/v1/group`."
);
short_endpoint!(
    alias,
    "/v1/a",
    alias,
    "Segment analytics.js's alias path: the same as `/v1/alias`."
);
short_endpoint!(
    screen,
    "/v1/s",
    screen,
    "Segment's screen path: the same as `/v1/screen`."
);

/// Segment analytics.js's batching path: the same as `/v1/batch`.
#[utoipa::path(
    post, path = "/v1/b", tag = "ingest", operation_id = "segment_batch",
    request_body(content = ingest::BatchDoc, content_type = "text/plain",
        description = "`{\"batch\": [...], \"writeKey\": ...}` as JSON; `application/json` too"),
    responses(
        (status = 200, description = "Stored; invalid messages listed in `rejected`", body = IngestResponse),
        (status = 400, description = "Malformed body, or no valid message", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked write key", body = ErrorBody),
        (status = 413, description = "Body or batch too large", body = ErrorBody),
        (status = 415, description = "Unsupported Content-Type or Content-Encoding", body = ErrorBody),
        (status = 429, description = "Rate limit or monthly quota reached; see Retry-After", body = ErrorBody),
        (status = 503, description = "Overloaded or storage unavailable; see Retry-After", body = ErrorBody),
    ),
    security((), ("basic" = []), ("bearer" = []))
)]
pub async fn batch(
    state: State<AppState>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<IngestResponse>, ApiError> {
    ingest::batch(state, client, headers, body).await
}

/// How long a browser may reuse the settings document.
const SETTINGS_MAX_AGE_SECS: u64 = 300;

/// The settings Segment's loader reads before it sends anything: its one destination,
/// "Segment.io", pointed back at this collector. Point the snippet's CDN (`cdnURL`) here.
#[utoipa::path(
    get, path = "/v1/projects/{write_key}/settings", tag = "ingest",
    operation_id = "segment_settings",
    params(("write_key" = String, Path, description = "The project's write key")),
    responses(
        (status = 200, description = "analytics.js settings: `integrations[\"Segment.io\"]` with \
                                      `apiHost` = this collector's `/v1`", body = Object),
        (status = 401, description = "Unknown or revoked write key", body = ErrorBody),
    )
)]
pub async fn settings(
    State(state): State<AppState>,
    Path(write_key): Path<String>,
    request_headers: HeaderMap,
) -> Result<Response, ApiError> {
    authenticate(&state, Some(&write_key), KeyKind::Write).await?;
    let (protocol, host) = public_base(&state, &request_headers);
    let body = json!({
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": format!("{host}/v1"),
                "protocol": protocol,
                "addBundledMetadata": true,
                "unbundledIntegrations": [],
                "maybeBundledConfigIds": {},
            }
        },
        "plan": {
            "track": {"__default": {"enabled": true, "integrations": {}}},
            "identify": {"__default": {"enabled": true}},
            "group": {"__default": {"enabled": true}},
        },
        "edgeFunction": {},
        "analyticsNextEnabled": true,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        // analytics-next reports its own metrics to Segment unless the rate is 0.
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": false,
        "remotePlugins": [],
    });
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&format!("public, max-age={SETTINGS_MAX_AGE_SECS}")).expect("ascii"),
    );
    // The answer names the host it was asked on when no public URL is configured.
    headers.insert(header::VARY, HeaderValue::from_static("Host"));
    Ok(response)
}

/// ("https", "pulse.example.com") from PULSELINE_PUBLIC_URL, else from the request: its
/// `Host`, and `https` when a trusted proxy said so (`X-Forwarded-Proto`, removed from
/// untrusted requests by `crate::proxy::client_addr`).
fn public_base(state: &AppState, headers: &HeaderMap) -> (String, String) {
    if let Some(url) = state
        .dashboard
        .config
        .public_url
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        && let Some(host) = url.host_str()
    {
        let host = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let path = url.path().trim_end_matches('/');
        return (url.scheme().to_owned(), format!("{host}{path}"));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let protocol = if https { "https" } else { "http" };
    (protocol.to_owned(), host.to_owned())
}
