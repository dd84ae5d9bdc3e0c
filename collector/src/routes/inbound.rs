//! Inbound webhook sources (secret key, or a dashboard session: viewers read, developers and
//! above change; see [`super::extract::Caller`]) and the receiving endpoint `/v1/inbound/{token}`,
//! where Stripe, GitHub or a generic sender posts. See docs/inbound-webhooks.md.

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use super::channels::check_name;
use super::extract::{ApiJson, Caller, PathId};
use super::ingest::IngestResponse;
use crate::alerting::delivery::webhook;
use crate::auth::{RateKey, check_quota, check_rate};
use crate::error::{ApiError, ErrorBody};
use crate::inbound::{
    JsonPath, MAX_INBOUND_BODY_BYTES, MAX_SOURCES_PER_PROJECT, Receiver, SourceKind, to_message,
};
use crate::state::AppState;
use crate::store::inbound::{InboundSourceRecord, NewInboundSource};

/// Prefix of receiving tokens, so a pasted URL is recognisable.
const TOKEN_PREFIX: &str = "in_";
/// Random bytes in a receiving token.
const TOKEN_BYTES: usize = 24;
/// Longest signing secret accepted (Stripe's and GitHub's are far shorter).
pub const MAX_SECRET_CHARS: usize = 256;

#[derive(Debug, Deserialize, ToSchema)]
pub struct InboundSourceBody {
    /// `stripe`, `github` or `generic` (Standard Webhooks).
    pub kind: String,
    /// 1 to 100 characters.
    pub name: String,
    /// The signing secret the service shows for this endpoint (Stripe's `whsec_...`, the GitHub
    /// hook's secret); required for those. For `generic`, omit it to have one generated
    /// (returned once as `signing_secret`) or give a `whsec_<base64>` secret.
    pub secret: Option<String>,
    /// `generic` only, required: the JSON path of the event name, e.g. `type` or `data.event`.
    pub event_path: Option<String>,
    /// `generic` only: the JSON path of the user id, e.g. `data.object.customer`.
    pub user_path: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InboundSource {
    pub id: i64,
    pub kind: String,
    pub name: String,
    /// Where the service posts, relative to the collector's public address.
    #[schema(example = "/v1/inbound/in_3q2hZk9w0X4Rj7c1mV8sT5yLbN6dQfGa")]
    pub path: String,
    pub event_path: Option<String>,
    pub user_path: Option<String>,
    /// A generated signing secret, only in the answer to the creation; never shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The latest delivery to this source; null until the service posts.
    pub last_delivery: Option<LastDelivery>,
}

/// When a source last received a delivery, and how it was answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct LastDelivery {
    pub at: DateTime<Utc>,
    /// The HTTP status answered: 200 when stored (or a GitHub ping), else the refusal's.
    pub status: i64,
    /// Why it was refused (the message the sender got, at most 300 characters); null on 200.
    pub error: Option<String>,
}

impl From<InboundSourceRecord> for InboundSource {
    fn from(s: InboundSourceRecord) -> Self {
        Self {
            id: s.id,
            kind: s.kind,
            name: s.name,
            path: format!("/v1/inbound/{}", s.token),
            event_path: s.event_path,
            user_path: s.user_path,
            signing_secret: None,
            created_at: s.created_at,
            last_delivery: s.last_delivery.map(|(at, status, error)| LastDelivery {
                at,
                status,
                error,
            }),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InboundSourceList {
    pub sources: Vec<InboundSource>,
}

fn new_token() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The secret to store, and whether it was generated here (and so is shown once).
fn secret_for(kind: SourceKind, given: Option<&str>) -> Result<(String, bool), ApiError> {
    let given = given.map(str::trim).filter(|s| !s.is_empty());
    if let Some(s) = given
        && s.chars().count() > MAX_SECRET_CHARS
    {
        return Err(ApiError::BadRequest(format!(
            "secret is longer than {MAX_SECRET_CHARS} characters"
        )));
    }
    match (kind, given) {
        (SourceKind::Generic, None) => Ok((webhook::new_secret(), true)),
        (SourceKind::Generic, Some(s)) => {
            // Checked now, so a typo is reported here rather than as failing deliveries.
            webhook::verify(s, "check", 0, b"", "").map_err(|e| {
                ApiError::BadRequest(format!(
                    "secret must be whsec_ followed by base64 ({e}); or omit it to have one \
                     generated"
                ))
            })?;
            Ok((s.to_owned(), false))
        }
        (_, Some(s)) => Ok((s.to_owned(), false)),
        (kind, None) => Err(ApiError::BadRequest(format!(
            "a {} source needs 'secret': paste the signing secret {} shows for this endpoint",
            kind.as_str(),
            match kind {
                SourceKind::Stripe => "Stripe's dashboard (Developers > Webhooks)",
                _ => "you set in the GitHub hook's settings",
            }
        ))),
    }
}

/// Create a source; its `path` is where the service posts.
#[utoipa::path(
    post, path = "/api/v1/inbound-sources", tag = "inbound",
    operation_id = "inbound_sources_create",
    request_body = InboundSourceBody,
    responses(
        (status = 201, body = InboundSource),
        (status = 400, description = "Invalid body, or the project has the most sources", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<InboundSourceBody>,
) -> Result<(StatusCode, Json<InboundSource>), ApiError> {
    let project = caller.project_to_change("creating an inbound source")?;
    let kind = SourceKind::parse(&body.kind)?;
    let name = check_name(&body.name)?;
    let paths = [
        ("event_path", &body.event_path),
        ("user_path", &body.user_path),
    ];
    let [event_path, user_path] = paths.map(|(what, p)| {
        p.as_deref()
            .map(|p| JsonPath::parse(what, p.trim()).map(|p| p.to_string()))
            .transpose()
    });
    let (event_path, user_path) = (event_path?, user_path?);
    match kind {
        SourceKind::Generic if event_path.is_none() => {
            return Err(ApiError::BadRequest(
                "a generic source needs 'event_path': the JSON path of the event name in the \
                 payload, e.g. \"type\""
                    .into(),
            ));
        }
        SourceKind::Stripe | SourceKind::Github if event_path.is_some() || user_path.is_some() => {
            return Err(ApiError::BadRequest(format!(
                "event_path and user_path are for generic sources; a {} source maps its events \
                 itself",
                kind.as_str()
            )));
        }
        _ => {}
    }
    let (secret, generated) = secret_for(kind, body.secret.as_deref())?;
    let token = new_token();
    let record = state
        .store
        .create_inbound_source(
            project,
            &NewInboundSource {
                kind: kind.as_str(),
                name: &name,
                token: &token,
                secret: &secret,
                event_path: event_path.as_deref(),
                user_path: user_path.as_deref(),
            },
            MAX_SOURCES_PER_PROJECT,
            state.clock.now(),
        )
        .await?
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "this project has {MAX_SOURCES_PER_PROJECT} inbound sources, the most it may \
                 have: delete one first"
            ))
        })?;
    caller
        .audit(&state, "inbound_source.created", describe(&record))
        .await?;
    let mut source = InboundSource::from(record);
    source.signing_secret = generated.then_some(secret);
    Ok((StatusCode::CREATED, Json(source)))
}

/// List the project's sources (without their secrets).
#[utoipa::path(
    get, path = "/api/v1/inbound-sources", tag = "inbound",
    operation_id = "inbound_sources_list",
    responses((status = 200, body = InboundSourceList), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<InboundSourceList>, ApiError> {
    let sources = state.store.list_inbound_sources(caller.project()).await?;
    Ok(Json(InboundSourceList {
        sources: sources.into_iter().map(Into::into).collect(),
    }))
}

/// Delete a source: its URL stops accepting deliveries at once.
#[utoipa::path(
    delete, path = "/api/v1/inbound-sources/{id}", tag = "inbound",
    operation_id = "inbound_sources_delete",
    params(("id" = i64, Path)),
    responses(
        (status = 204),
        (status = 400, description = "The id is not an integer", body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    id: PathId,
) -> Result<StatusCode, ApiError> {
    let project = caller.project_to_change("deleting an inbound source")?;
    let id = id.parse("inbound source")?;

    let current = state
        .store
        .list_inbound_sources(project)
        .await?
        .into_iter()
        .find(|s| s.id == id);
    let deleted = state.store.delete_inbound_source(project, id).await?;
    match current {
        Some(record) if deleted => {
            caller
                .audit(&state, "inbound_source.deleted", describe(&record))
                .await?;
            Ok(StatusCode::NO_CONTENT)
        }
        _ => Err(ApiError::NotFound(format!(
            "no inbound source {id} in this project; see GET /api/v1/inbound-sources"
        ))),
    }
}

fn describe(s: &InboundSourceRecord) -> String {
    format!("#{} \"{}\" ({})", s.id, s.name, s.kind)
}

/// Receive a webhook delivery from the source whose URL this is.
///
/// The signature is verified by the source kind's scheme (Stripe-Signature,
/// X-Hub-Signature-256, or Standard Webhooks headers); the delivery becomes one `track` event
/// whose `messageId` is the sender's delivery id, so a repeated delivery is stored once.
#[utoipa::path(
    post, path = "/v1/inbound/{token}", tag = "inbound",
    params(("token" = String, Path, description = "The source's receiving token")),
    request_body(content = serde_json::Value, content_type = "application/json"),
    responses(
        (status = 200, description = "Stored (or a GitHub ping: nothing to store)", body = IngestResponse),
        (status = 400, description = "Not a valid delivery of this kind", body = ErrorBody),
        (status = 401, description = "Unsigned, wrongly signed or stale delivery", body = ErrorBody),
        (status = 404, description = "No source has this token", body = ErrorBody),
        (status = 413, description = "Body larger than 1 MiB", body = ErrorBody),
        (status = 422, description = "The resulting event is invalid", body = ErrorBody),
        (status = 429, description = "The source's rate limit or the project's monthly quota \
                                      is reached; see Retry-After (senders retry later)",
            body = ErrorBody),
    )
)]
pub async fn receive(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<IngestResponse>, ApiError> {
    let unknown = || {
        ApiError::NotFound(
            "no inbound source has this URL: it was deleted or mistyped; see GET \
             /api/v1/inbound-sources"
                .into(),
        )
    };
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 64 {
        return Err(unknown());
    }
    let source = state
        .store
        .inbound_source_by_token(&token)
        .await?
        .ok_or_else(unknown)?;
    let outcome = deliver(&state, &source, &headers, body).await;
    // Kept for the dashboard's list of sources: whether the service reaches this URL, and why
    // its latest delivery was refused. Failing to note it does not fail the delivery.
    let (status, error) = match &outcome {
        Ok(_) => (200, None),
        Err(e) => (e.status_and_code().0.as_u16(), Some(outcome_text(e))),
    };
    if let Err(error) = state
        .store
        .record_inbound_delivery(source.id, state.clock.now(), status, error.as_deref())
        .await
    {
        tracing::warn!(%error, source = source.id, "could not record the inbound delivery");
    }
    outcome
}

/// Most characters of a refusal kept as a source's last error.
const MAX_OUTCOME_CHARS: usize = 300;

/// A refusal as the dashboard shows it: the message the sender got, without internals.
fn outcome_text(e: &ApiError) -> String {
    let text = match e {
        ApiError::Internal(_) => "internal error; it has been logged".to_owned(),
        ApiError::StorageUnavailable { .. } => "storage was temporarily unavailable".to_owned(),
        other => other.to_string(),
    };
    text.chars().take(MAX_OUTCOME_CHARS).collect()
}

/// Verifies, admits and stores one delivery to `source`.
async fn deliver(
    state: &AppState,
    source: &InboundSourceRecord,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<IngestResponse>, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(format!(
                "the delivery is larger than {MAX_INBOUND_BODY_BYTES} bytes, the most an \
                 inbound webhook may carry"
            ))
        } else {
            ApiError::BadRequest(format!("could not read the request body: {rejection}"))
        }
    })?;
    let parse_path =
        |what, p: &Option<String>| p.as_deref().map(|p| JsonPath::parse(what, p)).transpose();
    let receiver = Receiver {
        kind: SourceKind::parse(&source.kind)?,
        name: &source.name,
        secret: &source.secret,
        event_path: parse_path("event_path", &source.event_path)?,
        user_path: parse_path("user_path", &source.user_path)?,
    };
    let Some(message) = to_message(&receiver, headers, &body, state.clock.now())? else {
        return Ok(Json(IngestResponse {
            success: true,
            accepted: 0,
            rejected: Vec::new(),
        }));
    };
    // Each delivery is one event of the project: the same rate limit (keyed by the source, the
    // sender's only credential) and monthly quota as ingest. Senders retry a 429 later.
    check_rate(state, RateKey::InboundSource(source.id), 1)?;
    let quota = state
        .store
        .project_quota(source.project_id, state.clock.now())
        .await?
        .ok_or_else(|| ApiError::NotFound("this inbound source's project is gone".into()))?;
    check_quota(source.project_id, &quota, state.clock.now())?;
    metrics::counter!("pulseline_inbound_deliveries_total", "kind" => source.kind.clone())
        .increment(1);
    let raw = RawValue::from_string(message.to_string())
        .map_err(|e| ApiError::BadRequest(format!("cannot build the event: {e}")))?;
    super::ingest::store(
        state,
        source.project_id,
        &[&raw],
        None,
        None,
        &crate::web::RequestOrigin::default(),
    )
    .await
}
