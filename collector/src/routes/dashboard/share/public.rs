//! What a shared link serves, logged out: the dashboard's page at `/s/{token}` (read-only mode
//! in dashboard/src/share.js) and, under `/s/{token}/api/`, the shared page's data for its
//! project and nothing else. A password-protected link answers data only with an unlock token
//! in `X-Share-Unlock`, got from the password: a header, not a cookie, so an embedding site
//! can neither ride on it (CSRF) nor lose it to third-party cookie blocking.

use std::time::Duration;

use axum::extract::{FromRequestParts, RawPathParams, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{SHARE_UNLOCK_HOURS, plausible_token, token_hash};
use crate::domain::account::{MAX_PASSWORD_CHARS, random_token, verify_password};
use crate::error::{ApiError, ErrorBody};
use crate::routes::dashboard::insights::overview::{Overview, overview_of};
use crate::routes::dashboard::insights::vitals::{VitalsAnswer, vitals_of};
use crate::routes::dashboard::insights::{BotsParams, RangeParams};
use crate::routes::dashboard::web::{Realtime, WebParams, WebReportView, realtime_of, report_of};
use crate::routes::extract::{ApiJson, ApiQuery, client_ip};
use crate::state::AppState;
use crate::state::dashboard::SHARE_PASSWORD_ATTEMPTS_PER_MINUTE;
use crate::store::shares::ShareRecord;

/// The header that carries a password-protected link's unlock token.
pub const UNLOCK_HEADER: &str = "x-share-unlock";

/// The shared link's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/s/{token}", get(page))
        .route("/s/{token}/api/share", get(about))
        .route("/s/{token}/api/unlock", post(unlock))
        .route("/s/{token}/api/overview", get(overview))
        .route("/s/{token}/api/vitals", get(vitals))
        .route("/s/{token}/api/web", get(web))
        .route("/s/{token}/api/web/realtime", get(web_realtime))
}

/// `{token}` and the unlock header of a shared link's API, in `/openapi.json`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ShareToken {
    /// The link's token: `/s/{token}` as published (`plsh_` and 32 letters and digits).
    pub token: String,
}

/// The unlock header, in `/openapi.json`.
#[derive(Debug, IntoParams)]
#[into_params(names("x-share-unlock"), parameter_in = Header)]
pub struct UnlockHeader(
    /// For a password-protected link: the `unlock` of POST /s/{token}/api/unlock.
    pub Option<String>,
);

fn no_such_share() -> ApiError {
    ApiError::NotFound(
        "no shared page at this link: it was revoked, or the link is mistyped. Ask whoever \
         shared it for a new one"
            .into(),
    )
}

/// The share a request's `{token}` names, and whether the request may see its data.
#[derive(Debug)]
pub struct ShareLink {
    pub share: ShareRecord,
    /// No password, or a valid unlock token in [`UNLOCK_HEADER`].
    pub unlocked: bool,
    /// The client's address, for the password attempts' rate limit.
    pub ip: Option<String>,
}

impl ShareLink {
    /// The project whose `page` this link shares; 401 while locked, 404 for another page.
    fn project_for(&self, page: &str) -> Result<crate::domain::ProjectId, ApiError> {
        if self.share.page != page {
            return Err(ApiError::NotFound(format!(
                "this link shares the {} page only",
                self.share.page
            )));
        }
        if !self.unlocked {
            return Err(ApiError::Unauthorized(
                "this shared page asks for a password: POST it to the link's /api/unlock and \
                 send the answer's unlock token in X-Share-Unlock"
                    .into(),
            ));
        }
        Ok(self.share.project_id)
    }
}

impl FromRequestParts<AppState> for ShareLink {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| no_such_share())?;
        let token = params
            .iter()
            .find(|(k, _)| *k == "token")
            .map(|(_, v)| v)
            .ok_or_else(no_such_share)?;
        if !plausible_token(token) {
            return Err(no_such_share());
        }
        let share = state
            .store
            .find_share(&token_hash(token))
            .await?
            .ok_or_else(no_such_share)?;
        let unlocked = match (&share.password_hash, parts.headers.get(UNLOCK_HEADER)) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(_), Some(sent)) => {
                let sent = sent.to_str().unwrap_or("");
                // Unlock tokens are 43 characters; anything else cannot match, so no query.
                sent.len() == 43
                    && state
                        .store
                        .share_unlocked(share.id, &token_hash(sent), state.clock.now())
                        .await?
            }
        };
        Ok(Self {
            share,
            unlocked,
            ip: client_ip(parts),
        })
    }
}

/// The dashboard's page in read-only mode, framable only by the share's origins.
async fn page(link: Result<ShareLink, ApiError>) -> Response {
    let link = match link {
        Ok(link) => link,
        Err(ApiError::NotFound(_)) => {
            return (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "No shared page at this link: it was revoked, or the link is mistyped.",
            )
                .into_response();
        }
        Err(e) => return e.into_response(),
    };
    let mut response = super::super::assets::index().await;
    let h = response.headers_mut();
    let ancestors = if link.share.origins.is_empty() {
        "'none'".to_owned()
    } else {
        // A list of origins cannot be said with X-Frame-Options; frame-ancestors supersedes it.
        h.remove(header::X_FRAME_OPTIONS);
        link.share.origins.join(" ")
    };
    let csp = h
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("default-src 'self'")
        .replace("frame-ancestors 'none'", "")
        .trim_end_matches([' ', ';'])
        .to_owned();
    // Origins were parsed to scheme://host[:port], so they hold no `;` or quote.
    if let Ok(v) = HeaderValue::from_str(&format!("{csp}; frame-ancestors {ancestors}")) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    // The link is the credential: keep it out of Referer headers, caches and search engines.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-robots-tag", HeaderValue::from_static("noindex"));
    response
}

#[derive(Debug, Serialize, ToSchema)]
pub struct About {
    page: String,
    password: bool,
    unlocked: bool,
    /// The project's name, once unlocked.
    project_name: Option<String>,
}

/// What the link shares, for the page to render (the name only once unlocked).
#[utoipa::path(
    get, path = "/s/{token}/api/share", tag = "shared pages",
    operation_id = "share_about", params(ShareToken, UnlockHeader),
    description = "What a shared link shows (docs/sharing.md): its page, whether it asks for a \
                   password and whether this request is unlocked; the project's name once \
                   unlocked.",
    responses(
        (status = 200, body = About),
        (status = 404, description = "No such link, or it was revoked", body = ErrorBody),
    )
)]
pub async fn about(
    State(state): State<AppState>,
    link: ShareLink,
) -> Result<Json<About>, ApiError> {
    let project_name = if link.unlocked {
        state
            .store
            .project(link.share.project_id)
            .await?
            .map(|p| p.name)
    } else {
        None
    };
    Ok(Json(About {
        page: link.share.page,
        password: link.share.password_hash.is_some(),
        unlocked: link.unlocked,
        project_name,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UnlockForm {
    password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Unlocked {
    /// Send it in X-Share-Unlock with every data request.
    unlock: String,
    expires_at: DateTime<Utc>,
}

/// Checks the link's password; a correct one gets an unlock token for SHARE_UNLOCK_HOURS.
#[utoipa::path(
    post, path = "/s/{token}/api/unlock", tag = "shared pages",
    operation_id = "share_unlock", params(ShareToken), request_body = UnlockForm,
    description = "Checks a password-protected link's password; the answer's `unlock`, sent in \
                   X-Share-Unlock, opens the link's data for SHARE_UNLOCK_HOURS (12). At most \
                   SHARE_PASSWORD_ATTEMPTS_PER_MINUTE (5) attempts a minute per link and per \
                   client address.",
    responses(
        (status = 200, body = Unlocked),
        (status = 400, description = "Not a JSON {password} body, a password over 256 \
                                      characters, or a link without a password",
            body = ErrorBody),
        (status = 401, description = "Wrong password", body = ErrorBody),
        (status = 404, description = "No such link, or it was revoked", body = ErrorBody),
        (status = 429, description = "Too many attempts; see Retry-After", body = ErrorBody),
        (status = 503, description = "Too many password checks in progress \
                                      (PULSELINE_PASSWORD_CHECKS); see Retry-After",
            body = ErrorBody),
    )
)]
pub async fn unlock(
    State(state): State<AppState>,
    link: ShareLink,
    ApiJson(form): ApiJson<UnlockForm>,
) -> Result<Json<Unlocked>, ApiError> {
    let Some(stored) = link.share.password_hash.clone() else {
        return Err(ApiError::BadRequest(
            "this shared page has no password: fetch its data without unlocking".into(),
        ));
    };
    if form.password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(ApiError::BadRequest(format!(
            "the password is longer than {MAX_PASSWORD_CHARS} characters, so it cannot be this \
             page's"
        )));
    }
    let ip = link.ip;
    let limiter = &state.dashboard.share_passwords;
    for key in [
        format!("share:{}", link.share.id),
        format!("ip:{}", crate::proxy::limit_key(ip.as_deref())),
    ] {
        if let Err(wait) = limiter.check(&key) {
            return Err(ApiError::TooManyRequests {
                message: format!(
                    "too many password attempts on this shared page \
                     (SHARE_PASSWORD_ATTEMPTS_PER_MINUTE = {SHARE_PASSWORD_ATTEMPTS_PER_MINUTE}): \
                     wait and try again"
                ),
                retry_after: wait.max(Duration::from_secs(1)),
            });
        }
    }
    let password = form.password;
    let ok = state
        .dashboard
        .password_checks
        .run(move || verify_password(&password, &stored))
        .await?;
    if !ok {
        return Err(ApiError::Unauthorized(
            "wrong password for this shared page: ask whoever shared it".into(),
        ));
    }
    let token = random_token(43);
    let now = state.clock.now();
    let expires_at = now + chrono::Duration::hours(SHARE_UNLOCK_HOURS);
    state
        .store
        .add_share_unlock(link.share.id, &token_hash(&token), expires_at, now)
        .await?;
    Ok(Json(Unlocked {
        unlock: token,
        expires_at,
    }))
}

/// A shared page always leaves bot events out, as members see it by default: counting them
/// in is for members (`include_bots=true` on their API), so a link's viewers are told so.
fn bots_left_out(bots: BotsParams) -> Result<(), ApiError> {
    if bots.include_bots {
        return Err(ApiError::BadRequest(
            "a shared page always leaves bot events out: remove include_bots=true (project \
             members can count bots in on their own dashboard)"
                .into(),
        ));
    }
    Ok(())
}

#[utoipa::path(
    get, path = "/s/{token}/api/overview", tag = "shared pages",
    operation_id = "share_overview", params(ShareToken, UnlockHeader, BotsParams),
    description = "The shared overview: what GET /api/dash/projects/{project}/overview answers members, bots left out (`include_bots=true` is refused, as on every shared page). Only for a link to that page.",
    responses(
        (status = 200, body = Overview),
        (status = 400, description = "An invalid parameter (says which), or include_bots=true", body = ErrorBody),
        (status = 401, description = "The link asks for a password: unlock it first", body = ErrorBody),
        (status = 404, description = "No such link, revoked, or a link to another page", body = ErrorBody),
    )
)]
pub async fn overview(
    State(state): State<AppState>,
    link: ShareLink,
    ApiQuery(bots): ApiQuery<BotsParams>,
) -> Result<Json<Overview>, ApiError> {
    let project = link.project_for("overview")?;
    bots_left_out(bots)?;
    overview_of(&state, project, bots).await.map(Json)
}

#[utoipa::path(
    get, path = "/s/{token}/api/vitals", tag = "shared pages",
    operation_id = "share_vitals", params(ShareToken, UnlockHeader, RangeParams, BotsParams),
    description = "The shared Web Vitals: what GET /api/dash/projects/{project}/vitals answers members, bots left out (`include_bots=true` is refused). Only for a link to that page.",
    responses(
        (status = 200, body = VitalsAnswer),
        (status = 400, description = "An invalid parameter (says which), or include_bots=true", body = ErrorBody),
        (status = 401, description = "The link asks for a password: unlock it first", body = ErrorBody),
        (status = 404, description = "No such link, revoked, or a link to another page", body = ErrorBody),
        (status = 503, description = "A heavy query: over its time budget (PULSELINE_DASHBOARD_QUERY_TIMEOUT_MS, code query_timeout), or too many running (PULSELINE_DASHBOARD_QUERIES_PER_PROJECT, PULSELINE_DASHBOARD_QUERIES, code overloaded); see Retry-After", body = ErrorBody),
    )
)]
pub async fn vitals(
    State(state): State<AppState>,
    link: ShareLink,
    ApiQuery(p): ApiQuery<RangeParams>,
    ApiQuery(bots): ApiQuery<BotsParams>,
) -> Result<Json<VitalsAnswer>, ApiError> {
    let project = link.project_for("vitals")?;
    bots_left_out(bots)?;
    vitals_of(&state, project, &p, false).await.map(Json)
}

#[utoipa::path(
    get, path = "/s/{token}/api/web", tag = "shared pages",
    operation_id = "share_web", params(ShareToken, UnlockHeader, WebParams, BotsParams),
    description = "The shared Web page: what GET /api/dash/projects/{project}/web answers members, bots left out (`include_bots=true` is refused). Only for a link to that page.",
    responses(
        (status = 200, body = WebReportView),
        (status = 400, description = "An invalid parameter (says which), or include_bots=true", body = ErrorBody),
        (status = 401, description = "The link asks for a password: unlock it first", body = ErrorBody),
        (status = 404, description = "No such link, revoked, or a link to another page", body = ErrorBody),
        (status = 503, description = "A heavy query: over its time budget (PULSELINE_DASHBOARD_QUERY_TIMEOUT_MS, code query_timeout), or too many running (PULSELINE_DASHBOARD_QUERIES_PER_PROJECT, PULSELINE_DASHBOARD_QUERIES, code overloaded); see Retry-After", body = ErrorBody),
    )
)]
pub async fn web(
    State(state): State<AppState>,
    link: ShareLink,
    ApiQuery(p): ApiQuery<WebParams>,
    ApiQuery(bots): ApiQuery<BotsParams>,
) -> Result<Json<WebReportView>, ApiError> {
    let project = link.project_for("web")?;
    bots_left_out(bots)?;
    report_of(&state, project, &p).await.map(Json)
}

#[utoipa::path(
    get, path = "/s/{token}/api/web/realtime", tag = "shared pages",
    operation_id = "share_web_realtime", params(ShareToken, UnlockHeader),
    description = "The shared Web page's realtime card. Only for a link to that page.",
    responses(
        (status = 200, body = Realtime),
        (status = 401, description = "The link asks for a password: unlock it first", body = ErrorBody),
        (status = 404, description = "No such link, revoked, or a link to another page", body = ErrorBody),
    )
)]
pub async fn web_realtime(
    State(state): State<AppState>,
    link: ShareLink,
) -> Result<Json<Realtime>, ApiError> {
    let project = link.project_for("web")?;
    realtime_of(&state, project).await.map(Json)
}
