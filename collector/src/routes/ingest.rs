//! The Segment HTTP Tracking API: `/v1/batch` and the single-message endpoints.

use std::borrow::Cow;
use std::net::IpAddr;

use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::{Extension, Json};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::auth::{admit_ingest, key_from_headers};
use crate::cookieless;
use crate::domain::{Message, MessageType};
use crate::error::{ApiError, ErrorBody};
use crate::ingest::{Rejected, decode_body};
use crate::proxy::ClientAddr;
use crate::state::AppState;
use crate::store::PendingBatch;
use crate::web::RequestOrigin;

/// Answer to an ingest request: 200 means every accepted message is durably stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestResponse {
    /// Always true on 200.
    pub success: bool,
    /// Messages stored (or already stored: a repeated `messageId` is acknowledged once more).
    pub accepted: usize,
    /// Messages that were not stored, with the reason. The others were stored.
    pub rejected: Vec<Rejected>,
}

/// A Segment message. Only the fields the collector checks are listed; any others are kept.
/// Every message needs `userId` or `anonymousId` (or both).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({
    "userId": "user-42", "event": "Order Completed",
    "messageId": "0193b7a4-6c1e-7f0a-9d8e-4b2c1a0f9e78",
    "properties": {"order_id": "o-1842", "value": 49.99, "currency": "EUR"}
}))]
#[allow(dead_code)] // documentation of the wire format; the handler reads raw JSON
pub struct MessageDoc {
    /// The message type. Implied by the single-message endpoints, which accept only their own.
    #[serde(rename = "type")]
    #[schema(example = "track")]
    kind: Option<MessageTypeDoc>,
    /// Unique id; the collector stores each (project, messageId) once. Assigned if absent.
    #[serde(rename = "messageId")]
    message_id: Option<String>,
    /// RFC 3339. Defaults to the time the collector received the message.
    #[schema(example = "2026-11-22T09:30:00.000Z")]
    timestamp: Option<String>,
    /// Your user id (a string or a number); `userId` or `anonymousId` is required.
    #[serde(rename = "userId")]
    #[schema(schema_with = id_schema)]
    user_id: Option<serde_json::Value>,
    /// A device or session id (a string or a number).
    #[serde(rename = "anonymousId")]
    #[schema(schema_with = id_schema)]
    anonymous_id: Option<serde_json::Value>,
    /// Event name, required for track.
    #[schema(example = "Signed Up")]
    event: Option<String>,
    /// Page or screen name.
    name: Option<String>,
    /// Required for group.
    #[serde(rename = "groupId")]
    #[schema(schema_with = id_schema)]
    group_id: Option<serde_json::Value>,
    /// Required for alias.
    #[serde(rename = "previousId")]
    previous_id: Option<String>,
    properties: Option<serde_json::Map<String, serde_json::Value>>,
    traits: Option<serde_json::Map<String, serde_json::Value>>,
    context: Option<serde_json::Map<String, serde_json::Value>>,
    integrations: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum MessageTypeDoc {
    Track,
    Identify,
    Page,
    Screen,
    Group,
    Alias,
}

/// Segment ids are strings or numbers.
fn id_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    Schema::OneOf(
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::String))
            .item(ObjectBuilder::new().schema_type(Type::Number))
            .build(),
    )
}

/// `POST /v1/batch` body.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
#[schema(example = json!({
    "batch": [
        {"type": "identify", "userId": "user-42", "traits": {"plan": "pro"}},
        {"type": "track", "userId": "user-42", "event": "Signed Up",
         "messageId": "0193b7a4-6c1e-7f0a-9d8e-4b2c1a0f9e77",
         "timestamp": "2026-11-22T09:30:00.000Z", "properties": {"source": "landing"}},
        {"type": "page", "anonymousId": "a-77", "name": "Pricing", "properties": {"path": "/pricing"}}
    ]
}))]
pub struct BatchDoc {
    batch: Vec<MessageDoc>,
    /// Alternative to the Authorization header.
    #[serde(rename = "writeKey")]
    write_key: Option<String>,
    /// When the client sent the request (RFC 3339).
    #[serde(rename = "sentAt")]
    sent_at: Option<String>,
}

#[derive(Deserialize)]
struct BatchEnvelope<'a> {
    #[serde(borrow)]
    batch: Vec<&'a RawValue>,
    #[serde(rename = "writeKey", borrow, default)]
    write_key: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct SingleEnvelope<'a> {
    #[serde(rename = "writeKey", borrow, default)]
    write_key: Option<Cow<'a, str>>,
}

/// Send many messages in one request.
#[utoipa::path(
    post, path = "/v1/batch", tag = "ingest",
    request_body(content = BatchDoc, content_type = "application/json"),
    responses(
        (status = 200, description = "Stored; invalid messages listed in `rejected`", body = IngestResponse),
        (status = 400, description = "Malformed body, or no valid message", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked write key", body = ErrorBody),
        (status = 403, description = "A secret key was used to ingest", body = ErrorBody),
        (status = 413, description = "Body or batch too large", body = ErrorBody),
        (status = 415, description = "Unsupported Content-Type or Content-Encoding", body = ErrorBody),
        (status = 429, description = "Rate limit or monthly quota reached; see Retry-After", body = ErrorBody),
        (status = 503, description = "Overloaded or storage unavailable; see Retry-After", body = ErrorBody),
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn batch(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<IngestResponse>, ApiError> {
    let header_key = key_from_headers(&headers)?;
    let body = decode_body(
        &headers,
        body.map_err(body_rejection(&state))?,
        state.limits.max_request_bytes,
    )?;
    let envelope: BatchEnvelope<'_> = serde_json::from_slice(&body.0).map_err(|e| {
        ApiError::BadRequest(format!(
            "body is not a valid batch ({e}): expected {{\"batch\": [message, ...]}}"
        ))
    })?;
    let presented = header_key.as_deref().or(envelope.write_key.as_deref());
    if envelope.batch.is_empty() {
        return Err(ApiError::BadRequest(
            "'batch' is empty: send at least one message".into(),
        ));
    }
    if envelope.batch.len() > state.limits.max_batch_messages {
        return Err(ApiError::PayloadTooLarge(format!(
            "batch has {} messages; the limit is {} (PULSELINE_MAX_BATCH_MESSAGES): split it",
            envelope.batch.len(),
            state.limits.max_batch_messages
        )));
    }
    let key = admit_ingest(&state, presented, envelope.batch.len()).await?;
    let visitor = Visitor::of(&state, &headers, client, &envelope.batch).await?;
    let origin = RequestOrigin::of(&headers, client.map(|c| c.0.0));
    store(
        &state,
        key.project_id,
        &envelope.batch,
        None,
        visitor,
        &origin,
    )
    .await
}

/// Segment's bulk import endpoint, kept for its SDKs and tools: the same as `/v1/batch`
/// (each message's own `timestamp` is kept, however old).
#[utoipa::path(
    post, path = "/v1/import", tag = "ingest",
    request_body(content = BatchDoc, content_type = "application/json"),
    responses(
        (status = 200, description = "Stored; invalid messages listed in `rejected`", body = IngestResponse),
        (status = 400, description = "Malformed body, or no valid message", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked write key", body = ErrorBody),
        (status = 403, description = "A secret key was used to ingest", body = ErrorBody),
        (status = 413, description = "Body or batch too large", body = ErrorBody),
        (status = 415, description = "Unsupported Content-Type or Content-Encoding", body = ErrorBody),
        (status = 429, description = "Rate limit or monthly quota reached; see Retry-After", body = ErrorBody),
        (status = 503, description = "Overloaded or storage unavailable; see Retry-After", body = ErrorBody),
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn import(
    state: State<AppState>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<IngestResponse>, ApiError> {
    batch(state, client, headers, body).await
}

/// The single-message endpoints, one per type.
macro_rules! single_endpoint {
    ($fn:ident, $path:literal, $kind:expr, $summary:literal) => {
        #[doc = $summary]
        #[utoipa::path(
            post, path = $path, tag = "ingest",
            request_body(content = MessageDoc, content_type = "application/json"),
            responses(
                (status = 200, description = "Stored", body = IngestResponse),
                (status = 400, description = "Malformed or invalid message", body = ErrorBody),
                (status = 401, description = "Missing, unknown or revoked write key", body = ErrorBody),
                (status = 403, description = "A secret key was used to ingest", body = ErrorBody),
                (status = 413, description = "Body too large", body = ErrorBody),
                (status = 415, description = "Unsupported Content-Type or Content-Encoding", body = ErrorBody),
                (status = 429, description = "Rate limit or monthly quota reached; see Retry-After", body = ErrorBody),
                (status = 503, description = "Overloaded or storage unavailable; see Retry-After", body = ErrorBody),
            ),
            security(("basic" = []), ("bearer" = []))
        )]
        pub async fn $fn(
            State(state): State<AppState>,
            client: Option<Extension<ClientAddr>>,
            headers: HeaderMap,
            body: Result<Bytes, BytesRejection>,
        ) -> Result<Json<IngestResponse>, ApiError> {
            single(state, client, headers, body, $kind).await
        }
    };
}

single_endpoint!(
    track,
    "/v1/track",
    MessageType::Track,
    "Record an action a user took."
);
single_endpoint!(
    identify,
    "/v1/identify",
    MessageType::Identify,
    "Tie a user to their traits."
);
single_endpoint!(page, "/v1/page", MessageType::Page, "Record a page view.");
single_endpoint!(
    screen,
    "/v1/screen",
    MessageType::Screen,
    "Record a mobile screen view."
);
single_endpoint!(
    group,
    "/v1/group",
    MessageType::Group,
    "Associate a user with a group."
);
single_endpoint!(
    alias,
    "/v1/alias",
    MessageType::Alias,
    "Merge two user identities."
);

async fn single(
    state: AppState,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    kind: MessageType,
) -> Result<Json<IngestResponse>, ApiError> {
    let header_key = key_from_headers(&headers)?;
    let body = decode_body(
        &headers,
        body.map_err(body_rejection(&state))?,
        state.limits.max_request_bytes,
    )?;
    let raw: &RawValue = serde_json::from_slice(&body.0).map_err(|e| {
        ApiError::BadRequest(format!(
            "body is not valid JSON ({e}): send one message object"
        ))
    })?;
    let envelope: SingleEnvelope<'_> = serde_json::from_str(raw.get())
        .map_err(|_| ApiError::BadRequest("body must be a JSON object (one message)".into()))?;
    let presented = header_key.as_deref().or(envelope.write_key.as_deref());
    let key = admit_ingest(&state, presented, 1).await?;
    let visitor = Visitor::of(&state, &headers, client, &[raw]).await?;
    let origin = RequestOrigin::of(&headers, client.map(|c| c.0.0));
    store(&state, key.project_id, &[raw], Some(kind), visitor, &origin).await
}

/// Validates every message, commits the valid ones, and reports the rest.
pub(crate) async fn store(
    state: &AppState,
    project_id: crate::domain::ProjectId,
    raws: &[&RawValue],
    kind: Option<MessageType>,
    visitor: Option<Visitor>,
    origin: &RequestOrigin,
) -> Result<Json<IngestResponse>, ApiError> {
    let received_at = state.clock.now();
    let mut messages = Vec::with_capacity(raws.len());
    let mut rejected = Vec::new();
    let name_visitor = visitor.as_ref().map(|v| {
        move |ua: Option<&str>| {
            let ua = ua.or(v.header_user_agent.as_deref()).unwrap_or_default();
            cookieless::visitor_id(&v.salt, project_id, v.ip, ua)
        }
    });
    let name_visitor = name_visitor
        .as_ref()
        .map(|f| f as &dyn Fn(Option<&str>) -> String);
    for (index, raw) in raws.iter().enumerate() {
        let max_bytes = state.limits.max_message_bytes;
        match Message::parse_with(raw, kind, max_bytes, received_at, name_visitor) {
            Ok(mut m) => {
                state.web.enrich(&mut m, origin);
                messages.push(m)
            }
            Err(e) => rejected.push(Rejected {
                index,
                message_id: readable_message_id(raw),
                error: e.to_string(),
            }),
        }
    }
    metrics::histogram!("pulseline_batch_messages").record(raws.len() as f64);
    metrics::counter!("pulseline_events_rejected_total").increment(rejected.len() as u64);
    if messages.is_empty() {
        let message = if raws.len() == 1 {
            format!("the message is invalid: {}", rejected[0].error)
        } else {
            format!(
                "none of the {} messages is valid; see 'rejected'",
                raws.len()
            )
        };
        return Err(ApiError::Unprocessable { message, rejected });
    }
    let accepted = messages.len();
    // Suppressed persons' messages are accepted (the sender must not retry them) and dropped.
    let suppressed = state
        .suppressions
        .drop_suppressed(project_id, &mut messages);
    metrics::counter!("pulseline_events_suppressed_total").increment(suppressed as u64);
    if !messages.is_empty() {
        state
            .queue
            .commit(PendingBatch {
                project_id,
                received_at,
                messages,
            })
            .await?;
    }
    metrics::counter!("pulseline_events_accepted_total").increment(accepted as u64);
    Ok(Json(IngestResponse {
        success: true,
        accepted,
        rejected,
    }))
}

/// What names the visitor of a cookieless message: today's salt and the request's client.
pub(crate) struct Visitor {
    salt: [u8; cookieless::SALT_BYTES],
    ip: Option<IpAddr>,
    /// Used when the message carries no `context.userAgent`.
    header_user_agent: Option<String>,
}

impl Visitor {
    /// `None` when no message of the request can be cookieless, so that ingest of ordinary
    /// traffic never waits on the salt.
    async fn of(
        state: &AppState,
        headers: &HeaderMap,
        client: Option<Extension<ClientAddr>>,
        raws: &[&RawValue],
    ) -> Result<Option<Visitor>, ApiError> {
        if !cookieless::may_have_cookieless(raws) {
            return Ok(None);
        }
        let salt = state
            .cookieless_salt
            .for_day(&state.store, state.clock.now())
            .await?;
        Ok(Some(Visitor {
            salt,
            ip: client.map(|Extension(ClientAddr(ip))| ip),
            header_user_agent: headers
                .get(axum::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        }))
    }
}

fn readable_message_id(raw: &RawValue) -> Option<String> {
    #[derive(Deserialize)]
    struct Id<'a> {
        #[serde(rename = "messageId", borrow)]
        message_id: Option<&'a RawValue>,
    }
    let id = serde_json::from_str::<Id<'_>>(raw.get())
        .ok()?
        .message_id?
        .get();
    // A numeric id as its digits, as the message would have been stored.
    match id.as_bytes().first()? {
        b'"' => serde_json::from_str(id).ok(),
        b'-' | b'0'..=b'9' => Some(id.to_owned()),
        _ => None,
    }
}

pub(crate) fn body_rejection(state: &AppState) -> impl Fn(BytesRejection) -> ApiError + '_ {
    move |rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(format!(
                "request body is larger than {} bytes (PULSELINE_MAX_REQUEST_BYTES): split it \
                 into smaller batches",
                state.limits.max_request_bytes
            ))
        } else {
            ApiError::BadRequest(format!("could not read the request body: {rejection}"))
        }
    }
}
