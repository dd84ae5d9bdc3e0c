//! Inbound webhooks: a delivery from Stripe, GitHub or a generic Standard Webhooks sender,
//! verified by that sender's documented signature scheme and turned into one Segment `track`
//! message for the normal ingest path. The sender's delivery id becomes the `messageId`, so a
//! retried or replayed delivery is stored once. See docs/inbound-webhooks.md.

use axum::http::HeaderMap;
use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use crate::alerting::delivery::webhook;
use crate::error::ApiError;

/// Largest delivery body accepted. Stripe's and GitHub's event payloads are far smaller.
pub const MAX_INBOUND_BODY_BYTES: usize = 1024 * 1024;
/// How far a signed timestamp may be from the collector's clock, either way: Stripe's default
/// tolerance, and the window Standard Webhooks recommends. An older delivery is refused as a
/// possible replay; a replay within the window is deduplicated by its delivery id.
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 300;
/// Most inbound sources per project.
pub const MAX_SOURCES_PER_PROJECT: i64 = 20;
/// Most segments of a mapping's JSON path.
pub const MAX_PATH_SEGMENTS: usize = 8;
/// Longest mapping JSON path, in bytes.
pub const MAX_PATH_BYTES: usize = 200;

/// The sender a source receives from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Stripe,
    Github,
    Generic,
}

impl SourceKind {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        match s {
            "stripe" => Ok(Self::Stripe),
            "github" => Ok(Self::Github),
            "generic" => Ok(Self::Generic),
            other => Err(ApiError::BadRequest(format!(
                "kind '{other}' is not a source kind: use stripe, github or generic"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stripe => "stripe",
            Self::Github => "github",
            Self::Generic => "generic",
        }
    }
}

/// A dotted path into a JSON payload (`data.object.customer`, `items.0.id`): object keys, or
/// array indexes written as digits. Keys hold letters, digits, `_`, `-` and `$`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath(Vec<String>);

impl JsonPath {
    pub fn parse(what: &str, s: &str) -> Result<Self, ApiError> {
        let bad = |why: String| {
            ApiError::BadRequest(format!(
                "{what} '{s}' is not a JSON path: {why}; write keys separated by dots, e.g. \
                 data.object.customer"
            ))
        };
        if s.len() > MAX_PATH_BYTES {
            return Err(bad(format!("it is longer than {MAX_PATH_BYTES} bytes")));
        }
        let segments: Vec<String> = s.split('.').map(str::to_owned).collect();
        if segments.len() > MAX_PATH_SEGMENTS {
            return Err(bad(format!(
                "it has more than {MAX_PATH_SEGMENTS} segments"
            )));
        }
        for seg in &segments {
            let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$');
            if seg.is_empty() || !seg.chars().all(allowed) {
                return Err(bad(format!(
                    "segment '{seg}' must be letters, digits, '_', '-' or '$'"
                )));
            }
        }
        Ok(Self(segments))
    }

    pub fn lookup<'v>(&self, mut value: &'v Value) -> Option<&'v Value> {
        for seg in &self.0 {
            value = match value {
                Value::Object(map) => map.get(seg)?,
                Value::Array(items) => items.get(seg.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(value)
    }
}

impl std::fmt::Display for JsonPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

/// What a source needs to turn a delivery into a message.
#[derive(Debug)]
pub struct Receiver<'a> {
    pub kind: SourceKind,
    pub name: &'a str,
    pub secret: &'a str,
    pub event_path: Option<JsonPath>,
    pub user_path: Option<JsonPath>,
}

/// The delivery as a Segment message, or `Ok(None)` for a delivery that carries no event
/// (GitHub's `ping` when a hook is created). Nothing of the body is read before its signature
/// is verified.
pub fn to_message(
    source: &Receiver<'_>,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Option<Value>, ApiError> {
    match source.kind {
        SourceKind::Stripe => stripe(source, headers, body, now).map(Some),
        SourceKind::Github => github(source, headers, body),
        SourceKind::Generic => generic(source, headers, body, now).map(Some),
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, ApiError> {
    headers
        .get(name)
        .ok_or_else(|| {
            ApiError::Unauthorized(format!(
                "missing {name} header: every delivery must be signed by the sender"
            ))
        })?
        .to_str()
        .map_err(|_| ApiError::Unauthorized(format!("the {name} header is not valid text")))
}

fn bad_signature(scheme: &str) -> ApiError {
    ApiError::Unauthorized(format!(
        "the {scheme} signature does not match the body: check that the source's signing secret \
         is the one the sender shows for this endpoint"
    ))
}

fn check_fresh(timestamp: i64, now: DateTime<Utc>, header: &str) -> Result<(), ApiError> {
    let skew = now.timestamp() - timestamp;
    if skew.abs() > TIMESTAMP_TOLERANCE_SECS {
        return Err(ApiError::Unauthorized(format!(
            "the {header} timestamp {timestamp} is {skew} s from the collector's clock; the \
             tolerance is {TIMESTAMP_TOLERANCE_SECS} s, so a delayed or replayed delivery is \
             refused. Check the sender's and the collector's clocks"
        )));
    }
    Ok(())
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn hmac_sha256(secret: &str) -> Hmac<Sha256> {
    // HMAC takes keys of any length, so this cannot fail.
    Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length")
}

fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the delivery body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::BadRequest(
            "the delivery body must be a JSON object".into(),
        ));
    }
    Ok(value)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The string and number fields of an object, which category templates and rules can use.
fn scalars(value: Option<&Value>) -> Map<String, Value> {
    let Some(Value::Object(map)) = value else {
        return Map::new();
    };
    map.iter()
        .filter(|(_, v)| v.is_string() || v.is_number() || v.is_boolean())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A user id from a payload value: a string or a number.
fn user_id(value: Option<&Value>) -> Option<Value> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(Value::String(s.clone())),
        Value::Number(n) => Some(Value::Number(n.clone())),
        _ => None,
    }
}

fn message(
    source: &Receiver<'_>,
    message_id: &str,
    event: &str,
    user: Option<Value>,
    timestamp: Option<DateTime<Utc>>,
    properties: Map<String, Value>,
) -> Value {
    let mut m = json!({
        "type": "track",
        "messageId": message_id,
        "event": event,
        "properties": properties,
        "context": {"inbound": {"kind": source.kind.as_str(), "source": source.name}},
    });
    match user {
        Some(u) => m["userId"] = u,
        None => m["anonymousId"] = Value::String(source.kind.as_str().to_owned()),
    }
    if let Some(t) = timestamp {
        m["timestamp"] = Value::String(rfc3339(t));
    }
    m
}

/// Stripe: `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">[,v1=...]`, keyed with
/// the endpoint's `whsec_` secret as is (stripe.com/docs/webhooks#verify-manually).
fn stripe(
    source: &Receiver<'_>,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Value, ApiError> {
    let value = header(headers, "stripe-signature")?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in value.split(',') {
        match item.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => signatures.extend(decode_hex(sig)),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| {
        ApiError::Unauthorized("Stripe-Signature has no t=<unix time> element".into())
    })?;
    if signatures.is_empty() {
        return Err(ApiError::Unauthorized(
            "Stripe-Signature has no v1=<hex signature> element".into(),
        ));
    }
    let mut mac = hmac_sha256(source.secret);
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    if !signatures
        .iter()
        .any(|sig| mac.clone().verify_slice(sig).is_ok())
    {
        return Err(bad_signature("Stripe-Signature"));
    }
    check_fresh(timestamp, now, "Stripe-Signature")?;

    let event = json_body(body)?;
    let field = |name: &str| {
        event[name]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "the Stripe event has no '{name}': is this a Stripe event object?"
                ))
            })
    };
    let id = field("id")?;
    let kind = field("type")?;
    let object = event.pointer("/data/object");
    let user = user_id(object.and_then(|o| o.get("customer"))).or_else(|| {
        (object.and_then(|o| o.get("object")) == Some(&json!("customer")))
            .then(|| user_id(object.and_then(|o| o.get("id"))))
            .flatten()
    });
    let created = event["created"]
        .as_i64()
        .and_then(|s| DateTime::from_timestamp(s, 0));
    let mut properties = scalars(object);
    if let Some(live) = event.get("livemode") {
        properties.insert("livemode".into(), live.clone());
    }
    Ok(message(source, id, kind, user, created, properties))
}

/// GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>` keyed with the hook's
/// secret; the event is `X-GitHub-Event` plus the payload's `action`, the id
/// `X-GitHub-Delivery` (docs.github.com, "Validating webhook deliveries"). GitHub signs no
/// timestamp, so only the delivery id guards against replays.
fn github(
    source: &Receiver<'_>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<Value>, ApiError> {
    let value = header(headers, "x-hub-signature-256")?;
    let sig = value
        .strip_prefix("sha256=")
        .and_then(decode_hex)
        .ok_or_else(|| {
            ApiError::Unauthorized("X-Hub-Signature-256 must be sha256=<hex signature>".into())
        })?;
    let mut mac = hmac_sha256(source.secret);
    mac.update(body);
    mac.verify_slice(&sig)
        .map_err(|_| bad_signature("X-Hub-Signature-256"))?;

    let required = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                ApiError::BadRequest(format!("missing {name} header: is this a GitHub delivery?"))
            })
    };
    let kind = required("x-github-event")?;
    let delivery = required("x-github-delivery")?;
    if kind == "ping" {
        return Ok(None);
    }
    let payload = json_body(body)?;
    let action = payload["action"].as_str();
    let event = match action {
        Some(a) => format!("github.{kind}.{a}"),
        None => format!("github.{kind}"),
    };
    let mut properties = scalars(payload.get(kind));
    for (name, value) in [
        ("action", payload.get("action")),
        ("repository", payload.pointer("/repository/full_name")),
        ("sender", payload.pointer("/sender/login")),
    ] {
        if let Some(v) = value.filter(|v| v.is_string()) {
            properties.insert(name.into(), v.clone());
        }
    }
    let user = user_id(payload.pointer("/sender/login"));
    Ok(Some(message(
        source, delivery, &event, user, None, properties,
    )))
}

/// Standard Webhooks (standardwebhooks.com): `webhook-id`, `webhook-timestamp` and
/// `webhook-signature: v1,<base64>`, verified by the code that signs the collector's own
/// outbound webhooks. The event name and user id come from the source's JSON paths.
fn generic(
    source: &Receiver<'_>,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Value, ApiError> {
    let id = header(headers, "webhook-id")?;
    let timestamp = header(headers, "webhook-timestamp")?
        .parse::<i64>()
        .map_err(|_| ApiError::Unauthorized("webhook-timestamp must be unix seconds".into()))?;
    let signature = header(headers, "webhook-signature")?;
    let valid = webhook::verify(source.secret, id, timestamp, body, signature)
        .map_err(ApiError::BadRequest)?;
    if !valid {
        return Err(bad_signature("webhook-signature"));
    }
    check_fresh(timestamp, now, "webhook-timestamp")?;

    let payload = json_body(body)?;
    let event_path = source.event_path.as_ref().ok_or_else(|| {
        ApiError::BadRequest("this source has no event_path: recreate it with one".into())
    })?;
    let event = event_path
        .lookup(&payload)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "the payload has no string at the source's event_path '{event_path}'"
            ))
        })?
        .to_owned();
    let user = source
        .user_path
        .as_ref()
        .and_then(|p| user_id(p.lookup(&payload)));
    let properties = match payload {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    Ok(message(
        source,
        id,
        &event,
        user,
        DateTime::from_timestamp(timestamp, 0),
        properties,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_within_the_tolerance_pass_and_beyond_it_are_refused() {
        let now = Utc::now();
        let t = now.timestamp();
        for skew in [0, 300, -300] {
            assert!(check_fresh(t - skew, now, "t").is_ok(), "{skew}");
        }
        for skew in [301, -301] {
            assert!(check_fresh(t - skew, now, "t").is_err(), "{skew}");
        }
    }

    #[test]
    fn paths_are_bounded_and_read_objects_and_arrays() {
        let p = JsonPath::parse("event_path", "data.items.1.name").unwrap();
        let v = json!({"data": {"items": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(p.lookup(&v), Some(&json!("b")));
        assert!(JsonPath::parse("event_path", "a..b").is_err());
        assert!(JsonPath::parse("event_path", "a.b c").is_err());
        assert!(JsonPath::parse("event_path", &["a"; 9].join(".")).is_err());
        assert!(JsonPath::parse("event_path", &"a".repeat(201)).is_err());
    }

    #[test]
    fn hex_decoding_refuses_odd_or_non_hex_input() {
        assert_eq!(decode_hex("0aff"), Some(vec![0x0a, 0xff]));
        assert_eq!(decode_hex("0af"), None);
        assert_eq!(decode_hex("zz"), None);
        assert_eq!(decode_hex("é1"), None);
    }
}
