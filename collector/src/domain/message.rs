//! A Segment message, validated. Once a [`Message`] exists it is storable as is.

use std::fmt;

use chrono::{DateTime, Datelike, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

/// Longest `event` name (track) or `name` (page/screen) accepted, in characters.
pub const MAX_EVENT_NAME_CHARS: usize = 200;
/// Longest `messageId`, `userId`, `anonymousId`, `groupId` or `previousId`, in characters.
pub const MAX_ID_CHARS: usize = 200;

/// The six Segment message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    Track,
    Identify,
    Page,
    Screen,
    Group,
    Alias,
}

impl MessageType {
    pub fn parse(s: &str) -> Result<Self, MessageError> {
        Ok(match s {
            "track" => Self::Track,
            "identify" => Self::Identify,
            "page" => Self::Page,
            "screen" => Self::Screen,
            "group" => Self::Group,
            "alias" => Self::Alias,
            other => {
                return Err(MessageError::new(format!(
                    "unknown type '{other}': expected one of track, identify, page, screen, group, alias"
                )));
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Track => "track",
            Self::Identify => "identify",
            Self::Page => "page",
            Self::Screen => "screen",
            Self::Group => "group",
            Self::Alias => "alias",
        }
    }
}

/// Why one message of a batch was not stored. The text is shown to the developer as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageError(String);

impl MessageError {
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Names the visitor of a cookieless message from its `context.userAgent`, if any
/// (`crate::cookieless`).
pub type NameVisitor<'a> = &'a dyn Fn(Option<&str>) -> String;

/// A validated message, ready for storage.
#[derive(Debug, Clone)]
pub struct Message {
    pub kind: MessageType,
    pub message_id: String,
    /// `event` for track, `name` for page and screen.
    pub event: Option<String>,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub timestamp: DateTime<Utc>,
    /// The message JSON as the client sent it, plus what ingest derived into its `context`
    /// (`crate::web`).
    pub body: String,
    /// `context.bot` is true: a crawler or automated browser, left out of analytics.
    pub bot: bool,
}

/// Segment ids may be strings or numbers (`userId: 42`); both are stored as strings, a number
/// as the digits it was sent with (read as a float, a 20-digit id would change).
struct Id(String);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error, Unexpected};
        let raw = <&'de RawValue>::deserialize(d)?;
        let text = raw.get();
        match text.as_bytes().first() {
            Some(b'"') => serde_json::from_str(text).map(Id).map_err(D::Error::custom),
            Some(b'-' | b'0'..=b'9') => Ok(Id(text.to_owned())),
            _ => Err(D::Error::invalid_type(
                Unexpected::Other(json_kind(text)),
                &"a string or a number",
            )),
        }
    }
}

/// The fields of a message the collector looks at; the rest travels in `body`.
#[derive(Deserialize)]
struct WireMessage<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "messageId")]
    message_id: Option<Id>,
    #[serde(borrow)]
    timestamp: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "userId")]
    user_id: Option<Id>,
    #[serde(rename = "anonymousId")]
    anonymous_id: Option<Id>,
    #[serde(borrow)]
    event: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "groupId")]
    group_id: Option<Id>,
    #[serde(rename = "previousId")]
    previous_id: Option<Id>,
    #[serde(borrow)]
    properties: Option<&'a RawValue>,
    #[serde(borrow)]
    traits: Option<&'a RawValue>,
    #[serde(borrow)]
    context: Option<&'a RawValue>,
    #[serde(borrow)]
    integrations: Option<&'a RawValue>,
}

impl Message {
    /// Validates one raw message. `default_type` is the endpoint's type for the single-message
    /// endpoints (`/v1/track` implies `track`), `None` for `/v1/batch`.
    pub fn parse(
        raw: &RawValue,
        default_type: Option<MessageType>,
        max_bytes: usize,
        received_at: DateTime<Utc>,
    ) -> Result<Self, MessageError> {
        Self::parse_with(raw, default_type, max_bytes, received_at, None)
    }

    /// [`parse`](Self::parse), naming the visitor of a cookieless message (neither id, and
    /// `context.cookieless = true`) with `visitor`, called with the message's
    /// `context.userAgent` if it has one. Its id is also written into the stored body as
    /// `anonymousId`, so every reader sees the same message. Without `visitor` such a message
    /// is refused as any message without ids.
    pub fn parse_with(
        raw: &RawValue,
        default_type: Option<MessageType>,
        max_bytes: usize,
        received_at: DateTime<Utc>,
        visitor: Option<NameVisitor<'_>>,
    ) -> Result<Self, MessageError> {
        let text = raw.get();
        if text.len() > max_bytes {
            return Err(MessageError::new(format!(
                "message is {} bytes; the limit is {max_bytes} bytes (PULSELINE_MAX_MESSAGE_BYTES): \
                 send fewer or smaller properties",
                text.len()
            )));
        }
        if !text.starts_with('{') {
            return Err(MessageError::new("message must be a JSON object"));
        }
        // Before the fields are read, so an out-of-range id gets this error, naming the field.
        super::numbers::check(text)?;
        let wire: WireMessage<'_> = serde_json::from_str(text).map_err(|e| {
            MessageError::new(format!("message has a field of the wrong type: {e}"))
        })?;

        let kind = match (&wire.kind, default_type) {
            (Some(t), _) => MessageType::parse(t)?,
            (None, Some(t)) => t,
            (None, None) => {
                return Err(MessageError::new(
                    "missing 'type': expected one of track, identify, page, screen, group, alias",
                ));
            }
        };
        if let (Some(given), Some(endpoint)) = (&wire.kind, default_type)
            && given.as_ref() != endpoint.as_str()
        {
            return Err(MessageError::new(format!(
                "type '{given}' sent to /v1/{0}: send {given} messages to /v1/{given} or /v1/batch",
                endpoint.as_str()
            )));
        }

        let user_id = optional_id("userId", wire.user_id)?;
        let mut anonymous_id = optional_id("anonymousId", wire.anonymous_id)?;
        let mut body = None;
        if user_id.is_none() && anonymous_id.is_none() {
            let cookieless = wire.context.and_then(cookieless_user_agent);
            match (cookieless, visitor) {
                (Some(user_agent), Some(visitor)) => {
                    let id = visitor(user_agent.as_deref());
                    body = Some(with_anonymous_id(text, &id)?);
                    anonymous_id = Some(id);
                }
                _ => {
                    return Err(MessageError::new(
                        "missing 'userId' or 'anonymousId': every message needs at least one \
                         (or, from a browser in cookieless mode, context.cookieless = true)",
                    ));
                }
            }
        }

        let event = match kind {
            MessageType::Track => {
                let event = wire
                    .event
                    .ok_or_else(|| MessageError::new("track message is missing 'event'"))?;
                Some(event_name("event", &event)?)
            }
            MessageType::Page | MessageType::Screen => {
                wire.name.map(|n| event_name("name", &n)).transpose()?
            }
            MessageType::Group => {
                if optional_id("groupId", wire.group_id)?.is_none() {
                    return Err(MessageError::new("group message is missing 'groupId'"));
                }
                None
            }
            MessageType::Alias => {
                if optional_id("previousId", wire.previous_id)?.is_none() {
                    return Err(MessageError::new("alias message is missing 'previousId'"));
                }
                if user_id.is_none() {
                    return Err(MessageError::new(
                        "alias message is missing 'userId' (the new id for 'previousId')",
                    ));
                }
                None
            }
            MessageType::Identify => None,
        };

        for (field, value) in [
            ("properties", wire.properties),
            ("traits", wire.traits),
            ("context", wire.context),
            ("integrations", wire.integrations),
        ] {
            if let Some(v) = value {
                let t = v.get();
                if !(t.starts_with('{') || t == "null") {
                    return Err(MessageError::new(format!(
                        "'{field}' must be a JSON object, got {}",
                        json_kind(t)
                    )));
                }
            }
        }

        let message_id = match optional_id("messageId", wire.message_id)? {
            Some(id) => id,
            None => Uuid::now_v7().to_string(),
        };
        let timestamp = match wire.timestamp.as_deref() {
            Some(ts) => DateTime::parse_from_rfc3339(ts)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    MessageError::new(format!(
                        "'timestamp' is not RFC 3339 ({e}): expected e.g. 2026-11-22T09:30:00.000Z, got '{ts}'"
                    ))
                })?,
            None => received_at,
        };
        // An offset can carry year 9999 or 0000 past RFC 3339's range once in UTC; stored, the
        // event would come back with a timestamp no RFC 3339 parser reads.
        if !(0..=9999).contains(&timestamp.year()) {
            return Err(MessageError::new(format!(
                "'timestamp' is outside the years 0000 to 9999 once converted to UTC: got '{}'",
                wire.timestamp.as_deref().unwrap_or_default()
            )));
        }

        Ok(Self {
            kind,
            message_id,
            event,
            user_id,
            anonymous_id,
            timestamp,
            body: body.unwrap_or_else(|| text.to_owned()),
            bot: false,
        })
    }
}

/// For a context with `cookieless: true`, its `userAgent` (if a string); `None` otherwise.
fn cookieless_user_agent(context: &RawValue) -> Option<Option<String>> {
    #[derive(Deserialize)]
    struct Context {
        cookieless: Option<serde_json::Value>,
        #[serde(rename = "userAgent")]
        user_agent: Option<serde_json::Value>,
    }
    let context: Context = serde_json::from_str(context.get()).ok()?;
    if context.cookieless != Some(serde_json::Value::Bool(true)) {
        return None;
    }
    Some(match context.user_agent {
        Some(serde_json::Value::String(ua)) => Some(ua),
        _ => None,
    })
}

/// The message with `anonymousId` set to `id` (replacing a `null` or empty one it may carry).
fn with_anonymous_id(text: &str, id: &str) -> Result<String, MessageError> {
    let mut message: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
        .map_err(|e| MessageError::new(format!("message is not a JSON object: {e}")))?;
    message.insert("anonymousId".into(), serde_json::Value::String(id.into()));
    serde_json::to_string(&message)
        .map_err(|e| MessageError::new(format!("message cannot be re-encoded: {e}")))
}

fn optional_id(field: &str, id: Option<Id>) -> Result<Option<String>, MessageError> {
    let Some(Id(s)) = id else { return Ok(None) };
    if s.is_empty() {
        return Ok(None);
    }
    if s.chars().count() > MAX_ID_CHARS {
        return Err(MessageError::new(format!(
            "'{field}' is longer than {MAX_ID_CHARS} characters"
        )));
    }
    Ok(Some(s))
}

fn event_name(field: &str, name: &str) -> Result<String, MessageError> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(MessageError::new(format!("'{field}' must not be empty")));
    }
    if trimmed.chars().count() > MAX_EVENT_NAME_CHARS {
        return Err(MessageError::new(format!(
            "'{field}' is longer than {MAX_EVENT_NAME_CHARS} characters"
        )));
    }
    Ok(trimmed.to_owned())
}

fn json_kind(text: &str) -> &'static str {
    match text.as_bytes().first() {
        Some(b'[') => "an array",
        Some(b'{') => "an object",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Message, MessageError> {
        let raw: Box<RawValue> = serde_json::from_str(json).expect("test json");
        Message::parse(&raw, None, 32 * 1024, Utc::now())
    }

    #[test]
    fn track_needs_event_and_an_identity() {
        let err = parse(r#"{"type":"track","userId":"u"}"#).unwrap_err();
        assert!(err.to_string().contains("missing 'event'"), "{err}");
        let err = parse(r#"{"type":"track","event":"e"}"#).unwrap_err();
        assert!(
            err.to_string().contains("'userId' or 'anonymousId'"),
            "{err}"
        );
        let ok = parse(r#"{"type":"track","event":" signup ","userId":42}"#).unwrap();
        assert_eq!(ok.event.as_deref(), Some("signup"));
        assert_eq!(ok.user_id.as_deref(), Some("42"));
    }

    #[test]
    fn numeric_ids_keep_the_digits_sent() {
        let m = parse(r#"{"type":"identify","userId":123456789012345678901234567890,"anonymousId":1.10,"messageId":"\u0041"}"#)
            .unwrap();
        assert_eq!(m.user_id.as_deref(), Some("123456789012345678901234567890"));
        assert_eq!(m.anonymous_id.as_deref(), Some("1.10"));
        assert_eq!(m.message_id, "A");
        let err = parse(r#"{"type":"identify","userId":true}"#).unwrap_err();
        assert!(
            err.to_string().contains("expected a string or a number"),
            "{err}"
        );
    }

    #[test]
    fn unknown_type_names_the_valid_ones() {
        let err = parse(r#"{"type":"click","userId":"u"}"#).unwrap_err();
        assert!(err.to_string().contains("expected one of track"), "{err}");
    }

    #[test]
    fn missing_message_id_is_assigned_and_timestamp_defaults_to_receipt() {
        let now = Utc::now();
        let raw: Box<RawValue> =
            serde_json::from_str(r#"{"type":"identify","anonymousId":"a"}"#).unwrap();
        let m = Message::parse(&raw, None, 1024, now).unwrap();
        assert_eq!(m.timestamp, now);
        assert_eq!(Uuid::parse_str(&m.message_id).unwrap().get_version_num(), 7);
    }

    #[test]
    fn bad_timestamp_says_what_format_is_expected() {
        let err = parse(r#"{"type":"track","event":"e","userId":"u","timestamp":"yesterday"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("RFC 3339"), "{err}");
        let ok = parse(r#"{"type":"track","event":"e","userId":"u","timestamp":"2026-01-02T03:04:05.678+01:00"}"#)
            .unwrap();
        assert_eq!(ok.timestamp.to_rfc3339(), "2026-01-02T02:04:05.678+00:00");
    }

    #[test]
    fn timestamps_stay_within_rfc_3339_years_in_utc() {
        for ts in ["9999-12-31T23:00:00-01:00", "0000-01-01T00:00:00+00:01"] {
            let err = parse(&format!(
                r#"{{"type":"track","event":"e","userId":"u","timestamp":"{ts}"}}"#
            ))
            .unwrap_err();
            assert!(
                err.to_string().contains("outside the years 0000 to 9999"),
                "{err}"
            );
        }
        let long_fraction = format!("2026-01-02T03:04:05.{}Z", "9".repeat(5000));
        let ok = parse(&format!(
            r#"{{"type":"track","event":"e","userId":"u","timestamp":"{long_fraction}"}}"#
        ))
        .unwrap();
        assert_eq!(
            ok.timestamp.to_rfc3339(),
            "2026-01-02T03:04:05.999999999+00:00"
        );
        let ok = parse(
            r#"{"type":"track","event":"e","userId":"u","timestamp":"9999-12-31T23:59:59.999Z"}"#,
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn group_and_alias_need_their_ids() {
        assert!(parse(r#"{"type":"group","userId":"u"}"#).is_err());
        assert!(parse(r#"{"type":"group","userId":"u","groupId":7}"#).is_ok());
        assert!(parse(r#"{"type":"alias","anonymousId":"a","previousId":"p"}"#).is_err());
        assert!(parse(r#"{"type":"alias","userId":"u","previousId":"p"}"#).is_ok());
    }

    #[test]
    fn properties_must_be_an_object() {
        let err =
            parse(r#"{"type":"track","event":"e","userId":"u","properties":[1]}"#).unwrap_err();
        assert!(
            err.to_string()
                .contains("'properties' must be a JSON object, got an array")
        );
    }

    #[test]
    fn oversized_message_names_the_limit() {
        let raw: Box<RawValue> = serde_json::from_str(
            r#"{"type":"track","event":"e","userId":"u","properties":{"p":"xxxxxxxxxxxxxxxxxxxx"}}"#,
        )
        .unwrap();
        let err = Message::parse(&raw, None, 40, Utc::now()).unwrap_err();
        assert!(
            err.to_string().contains("PULSELINE_MAX_MESSAGE_BYTES"),
            "{err}"
        );
    }

    #[test]
    fn single_message_endpoints_imply_and_check_the_type() {
        let raw: Box<RawValue> = serde_json::from_str(r#"{"event":"e","userId":"u"}"#).unwrap();
        let m = Message::parse(&raw, Some(MessageType::Track), 1024, Utc::now()).unwrap();
        assert_eq!(m.kind, MessageType::Track);
        let raw: Box<RawValue> = serde_json::from_str(r#"{"type":"page","userId":"u"}"#).unwrap();
        assert!(Message::parse(&raw, Some(MessageType::Track), 1024, Utc::now()).is_err());
    }
}
