//! The weekly digest in the dashboard (docs/digest.md): each member turns it on or off for
//! themself, a developer or above picks the project's Discord/Slack channel for it, and any
//! member can have the current digest e-mailed to themself now (a preview, rate-limited).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{CsrfHeader, ProjectPath};
use crate::domain::ProjectId;
use crate::domain::account::Role;
use crate::error::{ApiError, ErrorBody};
use crate::reports::digest::{self, DIGEST_PREVIEWS_PER_HOUR};
use crate::routes::extract::{ApiJson, PathIds, Session};
use crate::state::AppState;

/// A Discord or Slack channel of the project the digest can go to.
#[derive(Debug, Serialize, ToSchema)]
pub struct DigestChannelOption {
    pub id: i64,
    pub name: String,
    pub kind: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DigestView {
    /// Whether the weekly digest is e-mailed to you (the logged-in member).
    pub subscribed: bool,
    /// The project's channel that also gets the digest (null: none).
    pub channel_id: Option<i64>,
    /// The channels you may pick from: developers and above only (empty for viewers).
    pub channels: Vec<DigestChannelOption>,
    /// Whether this collector can send e-mail (PULSELINE_SMTP_URL and PULSELINE_SMTP_FROM).
    pub email_configured: bool,
    /// Previews you may ask for per hour.
    pub previews_per_hour: u32,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionUpdate {
    /// true: e-mail me the weekly digest of this project; false: stop.
    pub subscribed: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelUpdate {
    /// A Discord or Slack channel of this project, or null for none.
    pub channel_id: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewSent {
    /// Your e-mail address: a preview goes to nobody else.
    pub sent_to: String,
    /// The week the preview covers (unix ms, end excluded).
    pub week_start: i64,
    pub week_end: i64,
}

async fn view(
    state: &AppState,
    session: &Session,
    project: ProjectId,
    role: Role,
) -> Result<DigestView, ApiError> {
    let settings = state
        .store
        .digest_settings(project, session.user_id())
        .await?;
    let channels = if role >= Role::Developer {
        state
            .store
            .list_channels(project)
            .await?
            .into_iter()
            .filter(|c| matches!(c.kind.as_str(), "discord" | "slack"))
            .map(|c| DigestChannelOption {
                id: c.id,
                name: c.name,
                kind: c.kind,
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(DigestView {
        subscribed: settings.subscribed,
        channel_id: settings.channel_id,
        channels,
        email_configured: digest::email_configured(&state.delivery.config),
        previews_per_hour: DIGEST_PREVIEWS_PER_HOUR,
    })
}

#[utoipa::path(
    get, path = "/api/dash/projects/{project}/digest", tag = "dashboard",
    operation_id = "dashboard_digest", params(ProjectPath),
    responses(
        (status = 200, body = DigestView),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn show(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
) -> Result<Json<DigestView>, ApiError> {
    let role = session.require(&state, project, Role::Viewer).await?;
    Ok(Json(view(&state, &session, project, role).await?))
}

#[utoipa::path(
    post, path = "/api/dash/projects/{project}/digest", tag = "dashboard",
    operation_id = "dashboard_digest_subscribe", params(ProjectPath, CsrfHeader),
    request_body = SubscriptionUpdate,
    description = "Turns the weekly digest e-mail on or off for the logged-in member.",
    responses(
        (status = 200, body = DigestView),
        (status = 400, description = "Not a valid body (says what)", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 403, description = "A missing CSRF token", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn subscribe(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
    ApiJson(body): ApiJson<SubscriptionUpdate>,
) -> Result<Json<DigestView>, ApiError> {
    let role = session.require(&state, project, Role::Viewer).await?;
    state
        .store
        .set_digest_subscription(
            project,
            session.user_id(),
            body.subscribed,
            state.clock.now(),
        )
        .await?;
    Ok(Json(view(&state, &session, project, role).await?))
}

#[utoipa::path(
    post, path = "/api/dash/projects/{project}/digest/channel", tag = "dashboard",
    operation_id = "dashboard_digest_channel", params(ProjectPath, CsrfHeader),
    request_body = ChannelUpdate,
    description = "Picks the project's Discord or Slack channel that also gets the weekly \
                   digest (null: none). Needs the developer role; audited.",
    responses(
        (status = 200, body = DigestView),
        (status = 400, description = "Not a Discord or Slack channel of this project (names \
                                      the id)", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 403, description = "Below the developer role, or a missing CSRF token",
            body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn set_channel(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
    ApiJson(body): ApiJson<ChannelUpdate>,
) -> Result<Json<DigestView>, ApiError> {
    let role = session.require(&state, project, Role::Developer).await?;
    if let Some(id) = body.channel_id {
        // Only this project's channels: another project's id is refused like an unknown one.
        let channel = state.store.channel(project, id).await?;
        if !channel.is_some_and(|c| matches!(c.kind.as_str(), "discord" | "slack")) {
            return Err(ApiError::BadRequest(format!(
                "channel_id {id} is not a Discord or Slack channel of this project: pick one \
                 from GET /api/dash/projects/{project}/digest (channels), or null for none"
            )));
        }
    }
    state
        .store
        .set_digest_channel(project, body.channel_id)
        .await?;
    session
        .audit(
            &state,
            Some(project),
            "digest.channel",
            match body.channel_id {
                Some(id) => format!("weekly digest to channel {id}"),
                None => "weekly digest to no channel".to_owned(),
            },
        )
        .await?;
    Ok(Json(view(&state, &session, project, role).await?))
}

#[utoipa::path(
    post, path = "/api/dash/projects/{project}/digest/preview", tag = "dashboard",
    operation_id = "dashboard_digest_preview", params(ProjectPath, CsrfHeader),
    description = "E-mails the project's current digest (its last complete week) to the \
                   logged-in member only, now. The week's scheduled digest is not affected. \
                   At most DIGEST_PREVIEWS_PER_HOUR (3) per member and hour.",
    responses(
        (status = 200, body = PreviewSent),
        (status = 400, description = "This collector has no SMTP server, or the address \
                                      cannot take mail", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 403, description = "A missing CSRF token", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
        (status = 429, description = "Too many previews: Retry-After says when", body = ErrorBody),
        (status = 503, description = "The SMTP server did not take the e-mail; or, as a \
                                      heavy query, over its time budget \
                                      (PULSELINE_DASHBOARD_QUERY_TIMEOUT_MS, code \
                                      query_timeout) or too many running \
                                      (PULSELINE_DASHBOARD_QUERIES_PER_PROJECT, \
                                      PULSELINE_DASHBOARD_QUERIES, code overloaded); see \
                                      Retry-After", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn preview(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
) -> Result<Json<PreviewSent>, ApiError> {
    session.require(&state, project, Role::Viewer).await?;
    let config = &state.delivery.config;
    if !digest::email_configured(config) {
        return Err(ApiError::BadRequest(
            "this collector cannot send e-mail: its operator sets PULSELINE_SMTP_URL and \
             PULSELINE_SMTP_FROM (docs/digest.md)"
                .into(),
        ));
    }
    let to = session.record.user.email.clone();
    // The digest's reads scan the week's page views: a heavy query, budgeted up to the
    // e-mail, whose sending is the mail server's time, not the database's.
    let preview = state
        .dashboard
        .queries
        .run(project, "try again when the server is less busy", async {
            // Counted once admitted: a preview refused for load is not one of the member's.
            if let Err(wait) = state.dashboard.digest_previews.check(&session.user_id()) {
                return Err(ApiError::TooManyRequests {
                    message: format!(
                        "at most {DIGEST_PREVIEWS_PER_HOUR} digest previews per hour \
                         (DIGEST_PREVIEWS_PER_HOUR): try again in {} s",
                        wait.as_secs().max(1)
                    ),
                    retry_after: wait,
                });
            }
            Ok(digest::preview(&state.store, project, state.clock.now()).await?)
        })
        .await?;
    let sent = digest::send_preview(
        config,
        &to,
        preview,
        state.dashboard.config.public_url.as_deref(),
    )
    .await;
    match sent {
        Ok(d) => Ok(Json(PreviewSent {
            sent_to: to,
            week_start: d.week_start,
            week_end: d.week_end,
        })),
        Err(e) if e.retryable => Err(ApiError::Overloaded {
            message: "the SMTP server did not take the preview now; try again in a minute".into(),
            retry_after: std::time::Duration::from_secs(60),
        }),
        Err(e) => {
            tracing::warn!(error = %e.message, "digest preview not sent");
            Err(ApiError::BadRequest(format!(
                "the preview could not be sent to {to}: the mail server refused it"
            )))
        }
    }
}
