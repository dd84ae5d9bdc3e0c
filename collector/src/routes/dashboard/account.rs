//! Logging in and out, the current session, and changing one's password.

use std::time::Duration;

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::CsrfHeader;
use crate::domain::account::{
    MAX_EMAIL_BYTES, SessionToken, hash_password, random_token, verify_password,
};
use crate::error::{ApiError, ErrorBody};
use crate::routes::extract::{
    ApiJson, ApiQuery, SESSION_COOKIE, Session, behind_tls, check_origin, client_ip,
};
use crate::state::AppState;
use crate::store::accounts::AuditEntry;

/// Most sessions one user holds; logging in once more ends the oldest.
pub const MAX_SESSIONS_PER_USER: i64 = 20;

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    pub user_id: i64,
    pub email: String,
    pub is_admin: bool,
    /// Send it as `X-CSRF-Token` with every POST, PATCH and DELETE.
    pub csrf_token: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

impl From<&Session> for SessionInfo {
    fn from(s: &Session) -> Self {
        Self {
            user_id: s.record.user.id,
            email: s.record.user.email.clone(),
            is_admin: s.record.user.is_admin,
            csrf_token: s.record.csrf_token.clone(),
            expires_at: s.record.expires_at,
        }
    }
}

/// The answer of a change that has nothing else to say.
#[derive(Debug, Serialize, ToSchema)]
pub struct Done {
    /// Always `true`.
    pub success: bool,
}

const DONE: Done = Done { success: true };

#[utoipa::path(
    get, path = "/api/dash/session", tag = "dashboard",
    operation_id = "dashboard_session_current",
    description = "The logged-in user and the CSRF token to send with changes.",
    responses(
        (status = 200, body = SessionInfo),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn current(session: Session) -> Json<SessionInfo> {
    Json(SessionInfo::from(&session))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct Login {
    email: String,
    password: String,
}

/// Checks the password, starts a session and sets its cookie. Wrong e-mail and wrong password
/// get the same answer. Rate limited per address and per e-mail. A user keeps at most
/// MAX_SESSIONS_PER_USER sessions: the oldest ends.
#[utoipa::path(
    post, path = "/api/dash/session", tag = "dashboard",
    operation_id = "dashboard_session_login", request_body = Login,
    description = "Logs in: sets the `pulseline_session` cookie (HttpOnly, SameSite=Lax) and \
                   answers the session with its CSRF token. Rate limited per client address and \
                   per e-mail (PULSELINE_LOGIN_ATTEMPTS_PER_MINUTE). A user keeps at most \
                   MAX_SESSIONS_PER_USER (20) sessions: logging in once more ends the oldest.",
    responses(
        (status = 200, body = SessionInfo,
            headers(("set-cookie" = String, description = "The session cookie"))),
        (status = 400, description = "Not a JSON {email, password} body", body = ErrorBody),
        (status = 401, description = "Wrong e-mail or password (the same answer for both)",
            body = ErrorBody),
        (status = 403, description = "Origin is another site", body = ErrorBody),
        (status = 429, description = "Too many attempts; see Retry-After", body = ErrorBody),
        (status = 503, description = "Too many password checks in progress \
                                      (PULSELINE_PASSWORD_CHECKS); see Retry-After",
            body = ErrorBody),
    )
)]
pub async fn login(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let (mut parts, body) = req.into_parts();
    check_origin(&parts.headers, &state.dashboard.config)?;
    let ip = client_ip(&parts);
    let Json(form): Json<Login> =
        Json::from_request(Request::from_parts(parts.clone(), body), &state)
            .await
            .map_err(|e| {
                ApiError::BadRequest(format!("expected {{\"email\",\"password\"}}: {e}"))
            })?;
    // Before the e-mail becomes a rate-limiter key: no account has a longer one anyway.
    if form.email.trim().len() > MAX_EMAIL_BYTES {
        return Err(ApiError::BadRequest(format!(
            "the e-mail address is longer than {MAX_EMAIL_BYTES} bytes (MAX_EMAIL_BYTES), so no \
             account has it: check what is sent as \"email\""
        )));
    }
    let email = form.email.trim().to_lowercase();
    let limiter = &state.dashboard.login_limiter;
    for key in [
        format!("ip:{}", crate::proxy::limit_key(ip.as_deref())),
        format!("email:{email}"),
    ] {
        if let Err(wait) = limiter.check(&key) {
            return Err(ApiError::TooManyRequests {
                message: format!(
                    "too many login attempts (PULSELINE_LOGIN_ATTEMPTS_PER_MINUTE = {}); wait \
                     and try again",
                    state.dashboard.config.login_attempts_per_minute
                ),
                retry_after: wait.max(Duration::from_secs(1)),
            });
        }
    }
    let user = state.store.find_user_by_email(&email).await?;
    let password = form.password;
    // Verify against a fixed hash when the user does not exist, so timing tells nothing.
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let ok = state
        .dashboard
        .password_checks
        .run(move || {
            verify_password(
                &password,
                stored.as_deref().unwrap_or_else(|| unknown_user_hash()),
            )
        })
        .await?;
    let (Some(user), true) = (user, ok) else {
        return Err(ApiError::Unauthorized("wrong e-mail or password".into()));
    };
    let now = state.clock.now();
    let token = SessionToken::generate();
    let expires_at = now + state.dashboard.session_ttl();
    state
        .store
        .create_session(&token.hash(), user.id, &random_token(32), now, expires_at)
        .await?;
    // Every login adds a row that lives for the session TTL; the oldest logins end instead.
    state
        .store
        .keep_newest_sessions(user.id, MAX_SESSIONS_PER_USER)
        .await?;
    state
        .store
        .append_audit(&AuditEntry {
            project_id: None,
            user_id: Some(user.id),
            actor: user.email.clone(),
            action: "user.login".into(),
            target: user.email.clone(),
            ip,
            at: now,
        })
        .await?;
    let secure = behind_tls(&parts.headers, &state.dashboard.config);
    let max_age = state.dashboard.session_ttl().num_seconds();
    // The session just made, read back as every later request will see it.
    parts.headers.insert(
        header::COOKIE,
        HeaderValue::from_str(&format!("{SESSION_COOKIE}={}", token.as_str()))
            .map_err(|e| ApiError::Internal(e.into()))?,
    );
    parts.method = axum::http::Method::GET;
    let session = Session::from_request_parts(&mut parts, &state).await?;
    let mut response = Json(SessionInfo::from(&session)).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
            token.as_str(),
            if secure { "; Secure" } else { "" }
        ))
        .map_err(|e| ApiError::Internal(e.into()))?,
    );
    Ok(response)
}

/// argon2id of a random password: verified against when the e-mail is unknown, so an unknown
/// address costs the same time as a wrong password.
fn unknown_user_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&random_token(24)).unwrap_or_default())
}

/// Ends the session (the row is deleted; the cookie is cleared).
#[utoipa::path(
    delete, path = "/api/dash/session", tag = "dashboard",
    operation_id = "dashboard_session_logout",
    params(CsrfHeader),
    responses(
        (status = 200, body = Done,
            headers(("set-cookie" = String, description = "Clears the session cookie"))),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 403, description = "Missing or wrong X-CSRF-Token, or a cross-site Origin",
            body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    session: Session,
) -> Result<Response, ApiError> {
    state.store.delete_session(&session.token_hash).await?;
    session
        .audit(
            &state,
            None,
            "user.logout",
            session.record.user.email.clone(),
        )
        .await?;
    let secure = behind_tls(&headers, &state.dashboard.config);
    let mut response = Json(DONE).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
            if secure { "; Secure" } else { "" }
        ))
        .map_err(|e| ApiError::Internal(e.into()))?,
    );
    Ok(response)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// Changes the password; every other session of the user ends.
#[utoipa::path(
    post, path = "/api/dash/password", tag = "dashboard",
    operation_id = "dashboard_password_change", request_body = PasswordChange,
    description = "Changes the password; every other session of the user ends.",
    params(CsrfHeader),
    responses(
        (status = 200, body = Done),
        (status = 400, description = "Not a JSON {current_password, new_password} body, or \
                                      an unacceptable new password", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 403, description = "The current password is wrong, or missing or wrong \
                                      X-CSRF-Token, or a cross-site Origin", body = ErrorBody),
        (status = 503, description = "Too many password checks in progress \
                                      (PULSELINE_PASSWORD_CHECKS); see Retry-After",
            body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn change_password(
    State(state): State<AppState>,
    session: Session,
    ApiJson(form): ApiJson<PasswordChange>,
) -> Result<Json<Done>, ApiError> {
    let stored = session.record.user.password_hash.clone();
    let (ok, new_hash) = state
        .dashboard
        .password_checks
        .run(move || {
            let ok = verify_password(&form.current_password, &stored);
            (ok, ok.then(|| hash_password(&form.new_password)))
        })
        .await?;
    if !ok {
        return Err(ApiError::Forbidden("the current password is wrong".into()));
    }
    let new_hash = new_hash
        .unwrap_or_else(|| Err("unreachable".into()))
        .map_err(ApiError::BadRequest)?;
    state
        .store
        .set_password(session.user_id(), &new_hash, &session.token_hash)
        .await?;
    session
        .audit(
            &state,
            None,
            "user.password_changed",
            session.record.user.email.clone(),
        )
        .await?;
    Ok(Json(DONE))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccountAuditParams {
    /// Most entries, newest first (default 200; 1 to 1000, clamped).
    limit: Option<i64>,
    /// Instance admins: only this user's events (default: everyone's). Others see only
    /// their own, whatever this says.
    user: Option<i64>,
}

/// Account events: logins, logouts, password changes. Each user sees their own; instance
/// admins see everyone's. A project's audit log never shows them.
#[utoipa::path(
    get, path = "/api/dash/audit", tag = "dashboard",
    operation_id = "dashboard_account_audit", params(AccountAuditParams),
    description = "Account events (logins, logouts, password changes), newest first, with the \
                   client address: the user's own, or for instance admins everyone's (or one \
                   user's with `user`).",
    responses(
        (status = 200, body = Vec<AuditEntry>),
        (status = 400, description = "A non-integer limit or user", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 403, description = "`user` names someone else and the caller is not an \
                                      instance admin", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn account_audit(
    State(state): State<AppState>,
    session: Session,
    ApiQuery(params): ApiQuery<AccountAuditParams>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    let limit = params.limit.unwrap_or(200).clamp(1, 1000);
    let user = if session.record.user.is_admin {
        params.user
    } else if params.user.is_some_and(|u| u != session.user_id()) {
        return Err(ApiError::Forbidden(
            "only instance admins read other users' account events".into(),
        ));
    } else {
        Some(session.user_id())
    };
    Ok(Json(state.store.list_account_audit(user, limit).await?))
}
