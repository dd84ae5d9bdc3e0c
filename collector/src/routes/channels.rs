//! Notification channels: where notifications go. Secret key, or a dashboard session (viewers
//! read; developers and above change and send tests): see [`super::extract::Caller`].

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{ApiJson, Caller, PathId};
use crate::alerting::delivery::sender::{SendOutcome, check_target};
use crate::alerting::delivery::{next_state, webhook};
use crate::alerting::notification::{Notification, NotificationField};
use crate::domain::ProjectId;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::store::delivery::{ChannelChanges, ChannelRecord, NextState};

/// Longest channel or category name.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest webhook URL or email address.
pub const MAX_TARGET_CHARS: usize = 2_048;
/// Most channels of one project: each is listed, checked and delivered to.
pub const MAX_CHANNELS_PER_PROJECT: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Discord,
    Slack,
    Webhook,
    Email,
}

impl ChannelKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Discord => "discord",
            Self::Slack => "slack",
            Self::Webhook => "webhook",
            Self::Email => "email",
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateChannel {
    /// 1 to 100 characters.
    pub name: String,
    pub kind: ChannelKind,
    /// The webhook URL (discord, slack, webhook).
    pub url: Option<String>,
    /// The recipient (email).
    pub email: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateChannel {
    pub name: Option<String>,
    pub url: Option<String>,
    pub email: Option<String>,
    /// `true` re-enables a channel disabled after a 401/404; `false` disables it.
    pub enabled: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Channel {
    pub id: i64,
    pub name: String,
    pub kind: String,
    /// The webhook URL or email address. Viewers see a webhook URL without its path (its
    /// token): `https://discord.com/…`.
    pub target: String,
    pub enabled: bool,
    /// Why delivery stopped using this channel (e.g. the webhook answered 404).
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// Generic webhooks: the `whsec_` signing secret. Shown once, in the creation response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
}

impl From<ChannelRecord> for Channel {
    fn from(c: ChannelRecord) -> Self {
        Self {
            id: c.id,
            name: c.name,
            kind: c.kind,
            target: c.target,
            enabled: c.disabled_reason.is_none(),
            disabled_reason: c.disabled_reason,
            disabled_at: c.disabled_at,
            created_at: c.created_at,
            signing_secret: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelList {
    pub channels: Vec<Channel>,
}

/// The real outcome of a test notification.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestResult {
    /// The target accepted it (2xx, or SMTP 2xx).
    pub delivered: bool,
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
    /// Set when this answer (401/404) disabled the channel.
    pub channel_disabled: Option<String>,
}

pub(crate) fn check_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::BadRequest(format!(
            "name must be 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(name.to_owned())
}

async fn check_url(
    state: &AppState,
    kind: ChannelKind,
    url: Option<&str>,
) -> Result<String, ApiError> {
    let url = url
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "a {} channel needs \"url\": the webhook URL",
                kind.as_str()
            ))
        })?;
    if url.chars().count() > MAX_TARGET_CHARS {
        return Err(ApiError::BadRequest(format!(
            "url is longer than {MAX_TARGET_CHARS} characters"
        )));
    }
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| ApiError::BadRequest(format!("url '{url}' is not a valid URL ({e})")))?;
    check_target(&parsed, state.delivery.config.allow_private_webhooks)
        .await
        .map_err(ApiError::BadRequest)?;
    Ok(url.to_owned())
}

fn check_email(email: Option<&str>) -> Result<String, ApiError> {
    let email = email
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| {
            ApiError::BadRequest("an email channel needs \"email\": the recipient address".into())
        })?;
    email
        .parse::<lettre::Address>()
        .map_err(|e| ApiError::BadRequest(format!("'{email}' is not an email address ({e})")))?;
    Ok(email.to_owned())
}

/// Create a channel.
#[utoipa::path(
    post, path = "/api/v1/channels", tag = "alerting",
    operation_id = "channels_create",
    request_body = CreateChannel,
    responses(
        (status = 201, body = Channel),
        (status = 400, description = "Invalid channel (says what to fix), or the project has \
                                      MAX_CHANNELS_PER_PROJECT (50) already", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateChannel>,
) -> Result<(StatusCode, Json<Channel>), ApiError> {
    let project = caller.project_to_change("creating a channel")?;
    if state.store.list_channels(project).await?.len() >= MAX_CHANNELS_PER_PROJECT {
        return Err(ApiError::BadRequest(format!(
            "this project has {MAX_CHANNELS_PER_PROJECT} channels, the most it may \
             (MAX_CHANNELS_PER_PROJECT): delete one you no longer use first"
        )));
    }
    let name = check_name(&body.name)?;
    let target = match body.kind {
        ChannelKind::Email => check_email(body.email.as_deref())?,
        kind => check_url(&state, kind, body.url.as_deref()).await?,
    };
    let secret = (body.kind == ChannelKind::Webhook).then(webhook::new_secret);
    let record = state
        .store
        .create_channel(
            project,
            &name,
            body.kind.as_str(),
            &target,
            secret.as_deref(),
            state.clock.now(),
        )
        .await?;
    caller
        .audit(&state, "channel.created", describe(&record))
        .await?;
    let mut channel = Channel::from(record);
    channel.signing_secret = secret;
    Ok((StatusCode::CREATED, Json(channel)))
}

/// List the project's channels (with why any is disabled).
#[utoipa::path(
    get, path = "/api/v1/channels", tag = "alerting",
    operation_id = "channels_list",
    responses((status = 200, body = ChannelList), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ChannelList>, ApiError> {
    let project = caller.project();
    let channels = state.store.list_channels(project).await?;
    Ok(Json(ChannelList {
        channels: channels
            .into_iter()
            .map(|c| shown_to(&caller, c.into()))
            .collect(),
    }))
}

/// A webhook URL carries its token (Discord's and Slack's are the credential itself): members
/// below [`super::extract::CHANGE_ROLE`] see only where it points, `https://host/…`.
fn shown_to(caller: &Caller, mut channel: Channel) -> Channel {
    let below_developer = matches!(caller, Caller::Member { role, .. }
        if *role < super::extract::CHANGE_ROLE);
    if below_developer && channel.kind != ChannelKind::Email.as_str() {
        channel.target = match reqwest::Url::parse(&channel.target) {
            Ok(url) => format!(
                "{}://{}{}/…",
                url.scheme(),
                url.host_str().unwrap_or_default(),
                url.port().map(|p| format!(":{p}")).unwrap_or_default()
            ),
            Err(_) => "…".to_owned(),
        };
    }
    channel
}

/// How the audit log names a channel: `#3 "Ops" (webhook)`.
fn describe(c: &ChannelRecord) -> String {
    format!("#{} \"{}\" ({})", c.id, c.name, c.kind)
}

async fn owned(state: &AppState, project: ProjectId, id: i64) -> Result<ChannelRecord, ApiError> {
    state.store.channel(project, id).await?.ok_or_else(|| {
        ApiError::NotFound(format!(
            "no channel {id} in this project; see GET /api/v1/channels"
        ))
    })
}

/// One channel.
#[utoipa::path(
    get, path = "/api/v1/channels/{id}", tag = "alerting",
    operation_id = "channels_get_one",
    params(("id" = i64, Path)),
    responses((status = 200, body = Channel), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    id: PathId,
) -> Result<Json<Channel>, ApiError> {
    let project = caller.project();
    let id = id.parse("channel")?;
    Ok(Json(shown_to(
        &caller,
        owned(&state, project, id).await?.into(),
    )))
}

/// Rename, retarget, re-enable or disable a channel.
#[utoipa::path(
    patch, path = "/api/v1/channels/{id}", tag = "alerting",
    operation_id = "channels_update",
    params(("id" = i64, Path)),
    request_body = UpdateChannel,
    responses((status = 200, body = Channel), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    id: PathId,
    ApiJson(body): ApiJson<UpdateChannel>,
) -> Result<Json<Channel>, ApiError> {
    let project = caller.project_to_change("changing a channel")?;
    let id = id.parse("channel")?;
    let current = owned(&state, project, id).await?;
    let kind = match current.kind.as_str() {
        "discord" => ChannelKind::Discord,
        "slack" => ChannelKind::Slack,
        "webhook" => ChannelKind::Webhook,
        _ => ChannelKind::Email,
    };
    let target = match (kind, &body.url, &body.email) {
        (ChannelKind::Email, _, Some(e)) => Some(check_email(Some(e))?),
        (ChannelKind::Email, Some(_), None) => {
            return Err(ApiError::BadRequest(
                "an email channel takes \"email\", not \"url\"".into(),
            ));
        }
        (_, Some(u), _) => Some(check_url(&state, kind, Some(u)).await?),
        _ => None,
    };
    let changes = ChannelChanges {
        name: body.name.as_deref().map(check_name).transpose()?,
        target,
        enable: body.enabled == Some(true),
    };
    let now = state.clock.now();
    state
        .store
        .update_channel(project, id, &changes, now)
        .await?;
    if body.enabled == Some(false) {
        state
            .store
            .disable_channel(project, id, "disabled through the API", now)
            .await?;
    }
    let updated = owned(&state, project, id).await?;
    let mut what: Vec<&str> = Vec::new();
    if changes.name.is_some() {
        what.push("name");
    }
    if changes.target.is_some() {
        what.push("target");
    }
    match body.enabled {
        Some(true) => what.push("enabled"),
        Some(false) => what.push("disabled"),
        None => {}
    }
    caller
        .audit(
            &state,
            "channel.updated",
            format!("{} ({})", describe(&updated), what.join(", ")),
        )
        .await?;
    Ok(Json(updated.into()))
}

/// Delete a channel no category uses.
///
/// Its deliveries not sent yet end with it: `dead`, "the channel was deleted".
#[utoipa::path(
    delete, path = "/api/v1/channels/{id}", tag = "alerting",
    operation_id = "channels_delete",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 400, description = "Categories still use it", body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    id: PathId,
) -> Result<StatusCode, ApiError> {
    let project = caller.project_to_change("deleting a channel")?;
    let id = id.parse("channel")?;
    let current = owned(&state, project, id).await?;
    match state
        .store
        .delete_channel(project, id, state.clock.now())
        .await?
    {
        Ok(true) => {
            caller
                .audit(&state, "channel.deleted", describe(&current))
                .await?;
            Ok(StatusCode::NO_CONTENT)
        }
        Ok(false) => Err(ApiError::NotFound(format!(
            "no channel {id} in this project"
        ))),
        Err(users) => Err(ApiError::BadRequest(format!(
            "channel {id} is used by the categories {}: delete them or point them at another channel first",
            users.join(", ")
        ))),
    }
}

/// Send a test notification now and report what the target answered.
#[utoipa::path(
    post, path = "/api/v1/channels/{id}/test", tag = "alerting",
    operation_id = "channels_test",
    params(("id" = i64, Path)),
    responses((status = 200, body = TestResult), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn test(
    State(state): State<AppState>,
    caller: Caller,
    id: PathId,
) -> Result<Json<TestResult>, ApiError> {
    let project = caller.project_to_change("sending a test notification")?;
    let id = id.parse("channel")?;
    let channel = owned(&state, project, id).await?;
    let now = state.clock.now();
    let n = Notification {
        title: "🔔 Pulseline test notification".into(),
        description: format!("If you can read this, channel \"{}\" works.", channel.name),
        colour: 0x58_65F2,
        fields: vec![NotificationField {
            name: "channel".into(),
            value: channel.name.clone(),
            inline: true,
        }],
        url: None,
        timestamp: Some(now),
        user: None,
        footer: Some("Pulseline · test".into()),
    };
    let outcome = state
        .delivery
        .sender
        .send(
            &channel,
            &n,
            &format!("msg_test_{}", uuid::Uuid::now_v7().simple()),
            None,
        )
        .await;
    let (next, disable) = next_state(&outcome, 1, &state.delivery.config, now);
    if let Some(reason) = &disable {
        state
            .store
            .disable_channel(project, id, reason, now)
            .await?;
    }
    let answer = match &outcome {
        SendOutcome::Answered { status, .. } => format!("HTTP {status}"),
        SendOutcome::Failed { error, .. } => error.clone(),
        SendOutcome::Paced(_) => "rate limited, not sent".to_owned(),
    };
    caller
        .audit(
            &state,
            "channel.tested",
            format!("{}: {answer}", describe(&channel)),
        )
        .await?;
    let result = match outcome {
        SendOutcome::Answered {
            status,
            excerpt,
            latency,
            ..
        } => TestResult {
            delivered: next == NextState::Delivered,
            status_code: Some(status),
            latency_ms: latency.as_millis() as u64,
            response_excerpt: Some(excerpt),
            error: None,
            channel_disabled: disable,
        },
        SendOutcome::Failed { error, latency, .. } => TestResult {
            delivered: false,
            status_code: None,
            latency_ms: latency.as_millis() as u64,
            response_excerpt: None,
            error: Some(error),
            channel_disabled: None,
        },
        SendOutcome::Paced(wait) => TestResult {
            delivered: false,
            status_code: None,
            latency_ms: 0,
            response_excerpt: None,
            error: Some(format!(
                "this webhook is rate limited; try again in {} ms",
                wait.as_millis()
            )),
            channel_disabled: None,
        },
    };
    Ok(Json(result))
}
