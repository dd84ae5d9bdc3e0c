//! Shared, read-only dashboard pages (docs/sharing.md): an admin publishes a project's
//! overview, Web Vitals or Web page as a link `/s/{token}` that works logged out, optionally
//! behind a password and embeddable on listed origins. This module publishes, lists and
//! revokes; [`public`] serves the link and only that page's data.

pub mod public;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use super::{CsrfHeader, ProjectPath};
use crate::domain::ProjectId;
use crate::domain::account::{Role, hash_password, random_token};
use crate::error::{ApiError, ErrorBody};
use crate::routes::extract::{ApiJson, PathIds, Session};
use crate::state::AppState;
use crate::store::shares::{NewShare, ShareRecord};

/// Most shares one project has; revoke one to publish another.
pub const MAX_SHARES_PER_PROJECT: i64 = 20;
/// Most origins one share may be embedded on.
pub const MAX_SHARE_ORIGINS: usize = 10;
/// How long a correct password unlocks a shared page in one browser tab.
pub const SHARE_UNLOCK_HOURS: i64 = 12;
/// The role that publishes and revokes: what leaves the project's members is an admin's call,
/// as inviting members is.
pub const SHARE_ROLE: Role = Role::Admin;
/// The pages that can be shared.
pub const SHAREABLE_PAGES: [&str; 3] = ["overview", "vitals", "web"];

/// Every link starts with this, so a leaked one is recognisable in logs and scanners.
const TOKEN_PREFIX: &str = "plsh_";
/// Random alphanumerics after the prefix: 32 of 62 symbols, 190 bits from the OS-seeded CSPRNG.
const TOKEN_CHARS: usize = 32;
/// Characters of the link kept in plain text to tell shares apart.
const SHOWN_PREFIX_CHARS: usize = TOKEN_PREFIX.len() + 6;

/// The stored form of a link or an unlock token: its SHA-256 (the link itself is never stored).
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Whether `token` has the shape of a link this server issues (checked before any query).
pub fn plausible_token(token: &str) -> bool {
    token
        .strip_prefix(TOKEN_PREFIX)
        .is_some_and(|t| t.len() == TOKEN_CHARS && t.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShareView {
    pub id: i64,
    /// `overview`, `vitals` or `web`.
    pub page: String,
    /// The link's first characters, to recognise it.
    pub prefix: String,
    /// Whether the link asks for a password.
    pub password: bool,
    /// Origins that may embed the page in an iframe; empty: none may.
    pub origins: Vec<String>,
    /// The e-mail of the member who published it.
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The link's path (`/s/plsh_…`), in the answer that published it only: only its hash is
    /// stored, so a lost link is revoked and published again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

fn share_view(s: ShareRecord, path: Option<String>) -> ShareView {
    ShareView {
        id: s.id,
        page: s.page,
        prefix: s.prefix,
        password: s.password_hash.is_some(),
        origins: s.origins,
        created_by: s.created_by,
        created_at: s.created_at,
        path,
    }
}

/// `{share}` in `/openapi.json`.
#[derive(Debug, IntoParams)]
#[into_params(names("share"), parameter_in = Path)]
pub struct SharePath(
    /// The share's id (GET /api/dash/projects/{project}/shares).
    pub i64,
);

#[utoipa::path(
    get, path = "/api/dash/projects/{project}/shares", tag = "dashboard",
    operation_id = "dashboard_shares_list", params(ProjectPath),
    description = "The project's shared pages (prefixes only: links are shown once). Admin role \
                   or higher.",
    responses(
        (status = 200, body = Vec<ShareView>),
        (status = 400, description = "The project id is not an integer", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 403, description = "Below the admin role", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
) -> Result<Json<Vec<ShareView>>, ApiError> {
    session.require(&state, project, SHARE_ROLE).await?;
    let shares = state.store.list_shares(project).await?;
    Ok(Json(
        shares.into_iter().map(|s| share_view(s, None)).collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewShareForm {
    /// `overview`, `vitals` or `web`.
    #[schema(pattern = "^(overview|vitals|web)$")]
    page: String,
    /// A password the link asks for (at least 10 characters); none: anyone with the link sees
    /// the page.
    #[serde(default)]
    password: Option<String>,
    /// Origins (`https://status.example.com`) that may show the page in an iframe, at most
    /// MAX_SHARE_ORIGINS (10); none: no site may frame it.
    #[serde(default)]
    origins: Vec<String>,
}

/// `raw` as an origin (`scheme://host[:port]`), or a 400 saying what is wrong.
fn parse_origin(raw: &str) -> Result<String, ApiError> {
    let bad = |why: &str| {
        ApiError::BadRequest(format!(
            "origin {raw:?} {why}: give scheme, host and port only, e.g. \
             https://status.example.com"
        ))
    };
    if raw.contains('*') {
        return Err(bad("has a wildcard, which is not allowed"));
    }
    let url = url::Url::parse(raw.trim()).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(bad("is not http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("carries a user name or password"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(bad("has a path, query or fragment"));
    }
    Ok(url.origin().ascii_serialization())
}

#[utoipa::path(
    post, path = "/api/dash/projects/{project}/shares", tag = "dashboard",
    operation_id = "dashboard_share_create", request_body = NewShareForm,
    description = "Publishes one page of the project as a read-only link that works logged \
                   out; the link is in this answer only. Admin role or higher. At most \
                   MAX_SHARES_PER_PROJECT (20) shares per project and MAX_SHARE_ORIGINS (10) \
                   origins per share.",
    params(ProjectPath, CsrfHeader),
    responses(
        (status = 200, body = ShareView),
        (status = 400, description = "Not a JSON {page, password, origins} body, an unknown \
                                      page, a password outside 10 to 256 characters, an \
                                      origin that is not scheme://host[:port], too many \
                                      origins, or MAX_SHARES_PER_PROJECT shares already",
            body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 403, description = "Below the admin role, missing or wrong X-CSRF-Token, or a \
                                      cross-site Origin", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
    ApiJson(form): ApiJson<NewShareForm>,
) -> Result<Json<ShareView>, ApiError> {
    session.require(&state, project, SHARE_ROLE).await?;
    let page = SHAREABLE_PAGES
        .into_iter()
        .find(|p| *p == form.page)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "unknown page {:?}: share overview, vitals or web",
                form.page
            ))
        })?;
    if form.origins.len() > MAX_SHARE_ORIGINS {
        return Err(ApiError::BadRequest(format!(
            "{} origins given, more than a share may have (MAX_SHARE_ORIGINS = \
             {MAX_SHARE_ORIGINS}): publish another share for the rest",
            form.origins.len()
        )));
    }
    let mut origins = Vec::new();
    for raw in &form.origins {
        let origin = parse_origin(raw)?;
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    let password_hash = match form.password {
        None => None,
        Some(password) => Some(
            state
                .dashboard
                .password_checks
                .run(move || hash_password(&password))
                .await?
                .map_err(|e| ApiError::BadRequest(format!("share password: {e}")))?,
        ),
    };
    let token = format!("{TOKEN_PREFIX}{}", random_token(TOKEN_CHARS));
    let prefix = &token[..SHOWN_PREFIX_CHARS];
    let hash = token_hash(&token);
    let id = state
        .store
        .create_share(
            &NewShare {
                project_id: project,
                page,
                token_hash: &hash,
                prefix,
                password_hash: password_hash.as_deref(),
                origins: &origins,
                created_by: session.user_id(),
            },
            MAX_SHARES_PER_PROJECT,
            state.clock.now(),
        )
        .await?
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "project {project} has {MAX_SHARES_PER_PROJECT} shared pages, the most it may \
                 (MAX_SHARES_PER_PROJECT): revoke one you no longer use first"
            ))
        })?;
    session
        .audit(
            &state,
            Some(project),
            "share.published",
            format!(
                "{page} page, link {prefix}…{}{}",
                if password_hash.is_some() {
                    ", with a password"
                } else {
                    ""
                },
                if origins.is_empty() {
                    String::new()
                } else {
                    format!(", embeddable on {}", origins.join(" "))
                }
            ),
        )
        .await?;
    let share = state
        .store
        .list_shares(project)
        .await?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("share {id} was revoked meanwhile")))?;
    Ok(Json(share_view(share, Some(format!("/s/{token}")))))
}

#[utoipa::path(
    delete, path = "/api/dash/projects/{project}/shares/{share}", tag = "dashboard",
    operation_id = "dashboard_share_revoke",
    description = "Revokes the share: its link answers 404 from the next request on, also in \
                   pages already open. Admin role or higher.",
    params(ProjectPath, SharePath, CsrfHeader),
    responses(
        (status = 200, body = ShareView),
        (status = 400, description = "A non-integer id in the path", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 403, description = "Below the admin role, missing or wrong X-CSRF-Token, or a \
                                      cross-site Origin", body = ErrorBody),
        (status = 404, description = "No such project among the user's, or no such share in it",
            body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn revoke(
    State(state): State<AppState>,
    session: Session,
    PathIds((project, id)): PathIds<(ProjectId, i64)>,
) -> Result<Json<ShareView>, ApiError> {
    session.require(&state, project, SHARE_ROLE).await?;
    let share = state
        .store
        .delete_share(project, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("project {project} has no share {id}")))?;
    session
        .audit(
            &state,
            Some(project),
            "share.revoked",
            format!("{} page, link {}…", share.page, share.prefix),
        )
        .await?;
    Ok(Json(share_view(share, None)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        assert_eq!(
            parse_origin("https://Status.Example.com").unwrap(),
            "https://status.example.com"
        );
        assert_eq!(
            parse_origin("http://localhost:8080/").unwrap(),
            "http://localhost:8080"
        );
        for bad in [
            "https://*.example.com",
            "https://example.com/path",
            "ftp://example.com",
            "https://a:b@example.com",
            "example.com",
            "https://example.com/?q=1",
            "'none'",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn links_are_long_random_and_recognisable() {
        let a = format!("{TOKEN_PREFIX}{}", random_token(TOKEN_CHARS));
        let b = format!("{TOKEN_PREFIX}{}", random_token(TOKEN_CHARS));
        assert_ne!(a, b);
        assert!(plausible_token(&a));
        assert!(!plausible_token("plsh_short"));
        assert!(!plausible_token(&a.replace(TOKEN_PREFIX, "pls_")));
    }
}
