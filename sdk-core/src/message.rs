//! Typed builders for the six Segment message types, and their encoding to JSON at capture.
//!
//! Each builder is consumed by the matching [`Client`](crate::Client) method, which validates it,
//! stamps it with a `messageId` (UUIDv7) and a `timestamp`, and serializes it once. The bytes
//! produced here are exactly the bytes that reach the collector, whether the message is sent at
//! once, retried, or replayed from disk after a restart.

use web_time::SystemTime;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::{
    Error, JsonLimitError, MessageId, ToJson,
    limits::{MAX_EVENT_NAME_CHARS, MAX_ID_CHARS, MAX_MESSAGE_BYTES},
    time::write_rfc3339_millis,
};

/// Who a message is about: a known user id, an anonymous id, or both.
///
/// Segment requires at least one of the two; an empty string counts as missing. The one
/// exception is a visitor of a browser page in cookieless mode ([`User::cookieless`]).
///
/// ```
/// use pulseline::User;
///
/// let known = User::id("user-42");
/// let visitor = User::anonymous("3f1c9c1e-anon");
/// let both = User::id("user-42").with_anonymous_id("3f1c9c1e-anon");
/// let from_str: User = "user-42".into();
/// # let _ = (known, visitor, both, from_str);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    user_id: Option<String>,
    anonymous_id: Option<String>,
    cookieless: bool,
}

impl User {
    /// A user identified by your own stable id (`userId`).
    pub fn id(user_id: impl Into<String>) -> Self {
        User {
            user_id: Some(user_id.into()),
            anonymous_id: None,
            cookieless: false,
        }
    }

    /// A visitor not (yet) known by a user id (`anonymousId`).
    pub fn anonymous(anonymous_id: impl Into<String>) -> Self {
        User {
            user_id: None,
            anonymous_id: Some(anonymous_id.into()),
            cookieless: false,
        }
    }

    /// A visitor of a browser page in cookieless mode: no identifier is kept on the device, so
    /// the message may have no id at all. It must carry `context.cookieless = true` (the
    /// browser SDK sets it), from which the collector derives a visitor id that changes every
    /// day; the collector refuses a message with neither id nor that marker. Add a `userId`
    /// once the visitor logs in ([`User::with_user_id`]).
    ///
    /// ```
    /// use pulseline::User;
    ///
    /// let visitor = User::cookieless();
    /// let logged_in = User::cookieless().with_user_id("user-42");
    /// # let _ = (visitor, logged_in);
    /// ```
    pub fn cookieless() -> Self {
        User {
            user_id: None,
            anonymous_id: None,
            cookieless: true,
        }
    }

    /// The user of a binding's call, which takes both ids as optional arguments: `userId`,
    /// `anonymousId`, or both. With neither it is an [`Error::InvalidMessage`] (field `userId`)
    /// saying one is required. Whether the ids are empty or too long is checked at capture.
    ///
    /// ```
    /// use pulseline::User;
    ///
    /// assert_eq!(User::from_ids(Some("u1".into()), None)?, User::id("u1"));
    /// assert_eq!(User::from_ids(None, Some("a1".into()))?, User::anonymous("a1"));
    /// assert!(User::from_ids(None, None).is_err());
    /// # Ok::<(), pulseline::Error>(())
    /// ```
    pub fn from_ids(user_id: Option<String>, anonymous_id: Option<String>) -> Result<Self, Error> {
        if user_id.is_none() && anonymous_id.is_none() {
            return Err(invalid("userId", "or anonymousId is required"));
        }
        Ok(User {
            user_id,
            anonymous_id,
            cookieless: false,
        })
    }

    /// Sets the `userId` (your own stable id for the user).
    pub fn with_user_id(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// Adds an `anonymousId` next to the `userId`.
    pub fn with_anonymous_id(mut self, anonymous_id: impl Into<String>) -> Self {
        self.anonymous_id = Some(anonymous_id.into());
        self
    }
}

impl From<&str> for User {
    fn from(user_id: &str) -> Self {
        User::id(user_id)
    }
}

impl From<String> for User {
    fn from(user_id: String) -> Self {
        User::id(user_id)
    }
}

/// The fields every message type may carry besides who and what: when it happened, its
/// `messageId`, `context` and `integrations`. Each builder takes them one by one
/// ([`Track::timestamp`], …) or all at once with `fields`, which is how the Python and Node
/// bindings apply their shared arguments to any message type.
///
/// ```
/// use pulseline::{MessageFields, Track};
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let mut fields = MessageFields::default();
/// fields.timestamp = Some(UNIX_EPOCH + Duration::from_secs(1_767_225_600));
/// fields.message_id = Some("order-1042".into());
/// let client = pulseline::testing::test_client();
/// let id = client.track(Track::new("user-42", "order_paid").fields(fields))?;
/// assert_eq!(id, "order-1042");
/// # Ok::<(), pulseline::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct MessageFields {
    /// When the event happened; `None`: the moment of capture.
    pub timestamp: Option<SystemTime>,
    /// The `messageId`; `None`: a fresh UUIDv7. See [`MessageId`].
    pub message_id: Option<MessageId>,
    /// Entries added to `context` (`context.library` is the SDK's and is not overridden).
    pub context: Option<Map<String, Value>>,
    /// The `integrations` object.
    pub integrations: Option<Map<String, Value>>,
    context_json: Option<crate::RawJson>,
}

impl MessageFields {
    /// Sets each field `other` has, keeping the others.
    fn merge(&mut self, other: MessageFields) {
        let MessageFields {
            timestamp,
            message_id,
            context,
            integrations,
            context_json,
        } = other;
        if timestamp.is_some() {
            self.timestamp = timestamp;
        }
        if message_id.is_some() {
            self.message_id = message_id;
        }
        if context.is_some() {
            self.context = context;
            self.context_json = None;
        }
        if context_json.is_some() {
            self.context_json = context_json;
            self.context = None;
        }
        if integrations.is_some() {
            self.integrations = integrations;
        }
    }
}

type Common = MessageFields;

macro_rules! common_setters {
    () => {
        /// Sets when the event happened (default: the moment of capture). Use it for backfills.
        pub fn timestamp(mut self, at: impl Into<SystemTime>) -> Self {
            self.common.timestamp = Some(at.into());
            self
        }

        /// Uses your own `messageId` instead of a fresh UUIDv7, e.g. to make a backfill
        /// idempotent: the collector stores each `messageId` once per project. Any non-empty
        /// string of up to [`MAX_MESSAGE_ID_CHARS`](crate::limits::MAX_MESSAGE_ID_CHARS)
        /// characters, or a [`Uuid`](crate::Uuid) (see [`MessageId`]).
        pub fn message_id(mut self, id: impl Into<MessageId>) -> Self {
            self.common.message_id = Some(id.into());
            self
        }

        /// Adds entries to the message's `context` (ip, locale, page, campaign, …).
        ///
        /// `context.library` is always set by the SDK and cannot be overridden here.
        pub fn context(mut self, context: Map<String, Value>) -> Self {
            self.common.context = Some(context);
            self.common.context_json = None;
            self
        }

        /// Sets the message's `context` from the JSON text of an object, for callers that
        /// hold it serialized already (the browser SDK builds it with `JSON.stringify`). It
        /// replaces [`context`](Self::context). `context.library` is the SDK's: an object with
        /// a top-level `library` member is refused at capture.
        pub fn context_json(mut self, context: crate::RawJson) -> Self {
            self.common.context_json = Some(context);
            self.common.context = None;
            self
        }

        /// Sets the message's `integrations` object (Segment destination switches).
        pub fn integrations(mut self, integrations: Map<String, Value>) -> Self {
            self.common.integrations = Some(integrations);
            self
        }

        /// Sets every field that `fields` has (see [`MessageFields`]), keeping the others.
        pub fn fields(mut self, fields: MessageFields) -> Self {
            self.common.merge(fields);
            self
        }
    };
}

/// A `track` message: something a user did.
///
/// ```
/// use pulseline::{Track, User};
/// use serde_json::json;
///
/// let msg = Track::new(User::id("user-42"), "signup")
///     .properties(json!({ "plan": "pro", "seats": 3 }));
/// # let _ = msg;
/// ```
///
/// Properties can be any `Serialize` type that serializes to a JSON object, including your own
/// structs; they are serialized straight into the message without an intermediate `Value`.
/// Already-serialized JSON goes in as [`RawJson`](crate::RawJson).
#[derive(Debug, Clone)]
pub struct Track<P = ()> {
    user: User,
    event: String,
    properties: Option<P>,
    common: Common,
}

impl Track {
    /// A `track` of `event` by `user`.
    pub fn new(user: impl Into<User>, event: impl Into<String>) -> Self {
        Track {
            user: user.into(),
            event: event.into(),
            properties: None,
            common: Common::default(),
        }
    }
}

impl<P> Track<P> {
    /// Sets `properties`; must serialize to a JSON object.
    pub fn properties<Q: ToJson>(self, properties: Q) -> Track<Q> {
        Track {
            user: self.user,
            event: self.event,
            properties: Some(properties),
            common: self.common,
        }
    }

    common_setters!();
}

/// An `identify` message: who a user is (traits such as email or plan).
///
/// ```
/// use pulseline::{Identify, User};
/// use serde_json::json;
///
/// let msg = Identify::new(User::id("user-42")).traits(json!({ "email": "ada@example.com" }));
/// # let _ = msg;
/// ```
#[derive(Debug, Clone)]
pub struct Identify<T = ()> {
    user: User,
    traits: Option<T>,
    common: Common,
}

impl Identify {
    /// An `identify` of `user`.
    pub fn new(user: impl Into<User>) -> Self {
        Identify {
            user: user.into(),
            traits: None,
            common: Common::default(),
        }
    }
}

impl<T> Identify<T> {
    /// Sets `traits`; must serialize to a JSON object.
    pub fn traits<Q: ToJson>(self, traits: Q) -> Identify<Q> {
        Identify {
            user: self.user,
            traits: Some(traits),
            common: self.common,
        }
    }

    common_setters!();
}

macro_rules! named_view {
    ($(#[$doc:meta])* $ty:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $ty<P = ()> {
            user: User,
            name: Option<String>,
            properties: Option<P>,
            common: Common,
        }

        impl $ty {
            #[doc = concat!("A `", $kind, "` view by `user`.")]
            pub fn new(user: impl Into<User>) -> Self {
                $ty { user: user.into(), name: None, properties: None, common: Common::default() }
            }
        }

        impl<P> $ty<P> {
            #[doc = concat!("Sets the ", $kind, "'s `name`.")]
            pub fn name(mut self, name: impl Into<String>) -> Self {
                self.name = Some(name.into());
                self
            }

            /// Sets `properties`; must serialize to a JSON object.
            pub fn properties<Q: ToJson>(self, properties: Q) -> $ty<Q> {
                $ty { user: self.user, name: self.name, properties: Some(properties), common: self.common }
            }

            common_setters!();
        }
    };
}

named_view!(
    /// A `page` message: a web page view.
    ///
    /// ```
    /// use pulseline::{Page, User};
    /// use serde_json::json;
    ///
    /// let msg = Page::new(User::anonymous("anon-1")).name("Pricing").properties(json!({ "path": "/pricing" }));
    /// # let _ = msg;
    /// ```
    Page,
    "page"
);

named_view!(
    /// A `screen` message: a mobile or desktop app screen view.
    ///
    /// ```
    /// use pulseline::{Screen, User};
    ///
    /// let msg = Screen::new(User::id("user-42")).name("Settings");
    /// # let _ = msg;
    /// ```
    Screen,
    "screen"
);

/// A `group` message: ties a user to a company, team or account.
///
/// ```
/// use pulseline::{Group, User};
/// use serde_json::json;
///
/// let msg = Group::new(User::id("user-42"), "acme-inc").traits(json!({ "name": "Acme", "plan": "enterprise" }));
/// # let _ = msg;
/// ```
#[derive(Debug, Clone)]
pub struct Group<T = ()> {
    user: User,
    group_id: String,
    traits: Option<T>,
    common: Common,
}

impl Group {
    /// Puts `user` in the group `group_id`.
    pub fn new(user: impl Into<User>, group_id: impl Into<String>) -> Self {
        Group {
            user: user.into(),
            group_id: group_id.into(),
            traits: None,
            common: Common::default(),
        }
    }
}

impl<T> Group<T> {
    /// Sets the group's `traits`; must serialize to a JSON object.
    pub fn traits<Q: ToJson>(self, traits: Q) -> Group<Q> {
        Group {
            user: self.user,
            group_id: self.group_id,
            traits: Some(traits),
            common: self.common,
        }
    }

    common_setters!();
}

/// An `alias` message: merges a previous identity (`previousId`) into `userId`.
///
/// ```
/// use pulseline::Alias;
///
/// let msg = Alias::new("user-42", "anon-3f1c");
/// # let _ = msg;
/// ```
#[derive(Debug, Clone)]
pub struct Alias {
    user_id: String,
    previous_id: String,
    common: Common,
}

impl Alias {
    /// Declares that `previous_id` and `user_id` are the same person.
    pub fn new(user_id: impl Into<String>, previous_id: impl Into<String>) -> Self {
        Alias {
            user_id: user_id.into(),
            previous_id: previous_id.into(),
            common: Common::default(),
        }
    }

    common_setters!();
}

/// A message serialized at capture: its final wire bytes.
#[derive(Debug)]
pub(crate) struct Encoded {
    pub(crate) bytes: Vec<u8>,
    pub(crate) message_id: MessageId,
}

/// What capture needs to encode any message: the precomputed `"library":{…}` member.
#[derive(Debug, Clone)]
pub(crate) struct Encoder {
    library_member: Vec<u8>,
}

impl Encoder {
    pub(crate) fn new(library_name: &str, library_version: &str) -> Self {
        // Written field by field: no `serde_json::Value` (its code) in the browser's wasm.
        let mut library_member = b"\"library\":{\"name\":".to_vec();
        write_json(&mut library_member, library_name);
        library_member.extend_from_slice(b",\"version\":");
        write_json(&mut library_member, library_version);
        library_member.push(b'}');
        Encoder { library_member }
    }

    pub(crate) fn track<P: ToJson>(&self, m: &Track<P>, now: SystemTime) -> Result<Encoded, Error> {
        event_name("event", &m.event)?;
        let mut w = self.start("track", &m.user, &m.common, now)?;
        w.str_member(b",\"event\":", &m.event);
        w.object_member(b",\"properties\":", "properties", m.properties.as_ref())?;
        w.finish(self, &m.common)
    }

    pub(crate) fn identify<T: ToJson>(
        &self,
        m: &Identify<T>,
        now: SystemTime,
    ) -> Result<Encoded, Error> {
        let mut w = self.start("identify", &m.user, &m.common, now)?;
        w.object_member(b",\"traits\":", "traits", m.traits.as_ref())?;
        w.finish(self, &m.common)
    }

    pub(crate) fn page<P: ToJson>(&self, m: &Page<P>, now: SystemTime) -> Result<Encoded, Error> {
        self.view(
            "page",
            &m.user,
            m.name.as_deref(),
            m.properties.as_ref(),
            &m.common,
            now,
        )
    }

    pub(crate) fn screen<P: ToJson>(
        &self,
        m: &Screen<P>,
        now: SystemTime,
    ) -> Result<Encoded, Error> {
        self.view(
            "screen",
            &m.user,
            m.name.as_deref(),
            m.properties.as_ref(),
            &m.common,
            now,
        )
    }

    pub(crate) fn group<T: ToJson>(&self, m: &Group<T>, now: SystemTime) -> Result<Encoded, Error> {
        id_within_limit("groupId", &m.group_id)?;
        let mut w = self.start("group", &m.user, &m.common, now)?;
        w.str_member(b",\"groupId\":", &m.group_id);
        w.object_member(b",\"traits\":", "traits", m.traits.as_ref())?;
        w.finish(self, &m.common)
    }

    pub(crate) fn alias(&self, m: &Alias, now: SystemTime) -> Result<Encoded, Error> {
        id_within_limit("previousId", &m.previous_id)?;
        let user = User::id(m.user_id.as_str());
        let mut w = self.start("alias", &user, &m.common, now)?;
        w.str_member(b",\"previousId\":", &m.previous_id);
        w.finish(self, &m.common)
    }

    fn view<P: ToJson>(
        &self,
        kind: &'static str,
        user: &User,
        name: Option<&str>,
        properties: Option<&P>,
        common: &Common,
        now: SystemTime,
    ) -> Result<Encoded, Error> {
        if let Some(name) = name {
            event_name("name", name)?;
        }
        let mut w = self.start(kind, user, common, now)?;
        if let Some(name) = name {
            w.str_member(b",\"name\":", name);
        }
        w.object_member(b",\"properties\":", "properties", properties)?;
        w.finish(self, common)
    }

    fn start(
        &self,
        kind: &'static str,
        user: &User,
        common: &Common,
        now: SystemTime,
    ) -> Result<Writer, Error> {
        match (&user.user_id, &user.anonymous_id) {
            // A cookieless visitor has no id on purpose: the collector derives one.
            (None, None) if user.cookieless => {}
            (None, None) => return Err(invalid("userId", "or anonymousId is required")),
            (Some(id), None) if id.is_empty() => {
                return Err(invalid("userId", "must not be empty"));
            }
            (None, Some(id)) if id.is_empty() => {
                return Err(invalid("anonymousId", "must not be empty"));
            }
            (Some(a), Some(b)) if a.is_empty() && b.is_empty() => {
                return Err(invalid("userId", "or anonymousId must be non-empty"));
            }
            _ => {}
        }
        for (field, id) in [
            ("userId", &user.user_id),
            ("anonymousId", &user.anonymous_id),
        ] {
            if let Some(id) = id {
                within_id_limit(field, id)?;
            }
        }
        let message_id = match &common.message_id {
            Some(id) => {
                id.validate()?;
                id.clone()
            }
            None => MessageId::generate(),
        };
        let mut buf = Vec::with_capacity(384);
        buf.extend_from_slice(b"{\"type\":\"");
        buf.extend_from_slice(kind.as_bytes());
        buf.extend_from_slice(b"\",\"messageId\":");
        // Escaped: a caller's id is any string.
        write_json(&mut buf, message_id.as_str());
        buf.extend_from_slice(b",\"timestamp\":\"");
        write_rfc3339_millis(common.timestamp.unwrap_or(now), &mut buf)
            .ok_or_else(|| invalid("timestamp", "must be between 1970 and 9999"))?;
        buf.push(b'"');
        let mut w = Writer { buf, message_id };
        if let Some(id) = user.user_id.as_deref().filter(|id| !id.is_empty()) {
            w.str_member(b",\"userId\":", id);
        }
        if let Some(id) = user.anonymous_id.as_deref().filter(|id| !id.is_empty()) {
            w.str_member(b",\"anonymousId\":", id);
        }
        Ok(w)
    }
}

struct Writer {
    buf: Vec<u8>,
    message_id: MessageId,
}

impl Writer {
    fn str_member(&mut self, key: &[u8], value: &str) {
        self.buf.extend_from_slice(key);
        write_json(&mut self.buf, value);
    }

    /// Writes `value` (if any) and checks it produced a JSON object, as Segment requires.
    fn object_member<T: ToJson>(
        &mut self,
        key: &[u8],
        field: &'static str,
        value: Option<&T>,
    ) -> Result<(), Error> {
        let Some(value) = value else { return Ok(()) };
        self.buf.extend_from_slice(key);
        let start = self.buf.len();
        // Bounded while it is written: a value whose JSON would be huge is refused once the
        // message passes the limit, not after it has been expanded in memory.
        value
            .write_json(&mut self.buf, MAX_MESSAGE_BYTES)
            .map_err(|err| match err {
                JsonLimitError::TooLarge { size, limit } => Error::MessageTooLarge { size, limit },
                JsonLimitError::Serialize(source) => Error::Serialize { field, source },
            })?;
        if self.buf.get(start) != Some(&b'{') {
            return Err(invalid(field, "must serialize to a JSON object"));
        }
        Ok(())
    }

    fn finish(mut self, encoder: &Encoder, common: &Common) -> Result<Encoded, Error> {
        self.buf.extend_from_slice(b",\"context\":{");
        self.buf.extend_from_slice(&encoder.library_member);
        for (key, value) in common.context.iter().flatten() {
            if key == "library" {
                continue;
            }
            self.buf.push(b',');
            write_json(&mut self.buf, key);
            self.buf.push(b':');
            write_json(&mut self.buf, value);
        }
        if let Some(context) = &common.context_json {
            let members = context
                .as_str()
                .strip_prefix('{')
                .and_then(|c| c.strip_suffix('}'))
                .ok_or_else(|| invalid("context", "must be a JSON object"))?
                .trim();
            if has_top_level_key(members.as_bytes(), b"library") {
                return Err(invalid("context", "must not set library (the SDK sets it)"));
            }
            if !members.is_empty() {
                self.buf.push(b',');
                self.buf.extend_from_slice(members.as_bytes());
            }
        }
        self.buf.push(b'}');
        if let Some(integrations) = &common.integrations {
            self.buf.extend_from_slice(b",\"integrations\":");
            write_json(&mut self.buf, integrations);
        }
        self.buf.push(b'}');
        if self.buf.len() > MAX_MESSAGE_BYTES {
            return Err(Error::MessageTooLarge {
                size: self.buf.len(),
                limit: MAX_MESSAGE_BYTES,
            });
        }
        Ok(Encoded {
            bytes: self.buf,
            message_id: self.message_id,
        })
    }
}

/// Serializes values that cannot fail: strings and `serde_json::Value`s (string keys only).
fn write_json<T: Serialize + ?Sized>(buf: &mut Vec<u8>, value: &T) {
    if let Err(err) = serde_json::to_writer(&mut *buf, value) {
        // Unreachable for the types passed here; keep the buffer valid JSON regardless.
        tracing::error!(%err, "serializing a JSON value failed");
        buf.extend_from_slice(b"null");
    }
}

/// Whether the members of a valid JSON object (its text without the braces) have `key` at the
/// top level, as written (a key spelled with escapes is not recognised).
fn has_top_level_key(members: &[u8], key: &[u8]) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let (mut at_key, mut start) = (true, 0);
    for (i, &b) in members.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => {
                    in_string = false;
                    if at_key && depth == 0 && &members[start..i] == key {
                        return true;
                    }
                }
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                start = i + 1;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth -= 1,
            b',' if depth == 0 => at_key = true,
            b':' if depth == 0 => at_key = false,
            _ => {}
        }
    }
    false
}

/// A required id: not empty, and within [`MAX_ID_CHARS`].
fn id_within_limit(field: &'static str, value: &str) -> Result<(), Error> {
    if value.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    within_id_limit(field, value)
}

/// Counted in characters, as the collector counts them (a string of at most that many bytes
/// is within it without counting: capture is the caller's hot path).
fn within_id_limit(field: &'static str, value: &str) -> Result<(), Error> {
    if value.len() > MAX_ID_CHARS && value.chars().nth(MAX_ID_CHARS).is_some() {
        return Err(invalid(field, ID_TOO_LONG));
    }
    Ok(())
}

/// An `event` or `name`: the collector trims it, then refuses it empty or over
/// [`MAX_EVENT_NAME_CHARS`]. It is sent as given.
fn event_name(field: &'static str, value: &str) -> Result<(), Error> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(invalid(field, "must not be empty or only whitespace"));
    }
    if trimmed.len() > MAX_EVENT_NAME_CHARS && trimmed.chars().nth(MAX_EVENT_NAME_CHARS).is_some() {
        return Err(invalid(field, NAME_TOO_LONG));
    }
    Ok(())
}

/// The reasons for over-long values; a test ties their figures to the limits.
pub(crate) const ID_TOO_LONG: &str = "must be at most 200 characters";
const NAME_TOO_LONG: &str = "must be at most 200 characters once trimmed";

fn invalid(field: &'static str, reason: &'static str) -> Error {
    Error::InvalidMessage { field, reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::{Duration, UNIX_EPOCH};

    fn encoder() -> Encoder {
        Encoder::new("pulseline-rust", "9.9.9")
    }

    fn parse(e: &Encoded) -> Value {
        serde_json::from_slice(&e.bytes).unwrap()
    }

    const NOW: Duration = Duration::from_millis(1_767_225_600_123); // 2026-01-01T00:00:00.123Z

    #[test]
    fn track_has_every_segment_field() {
        let mut ctx = Map::new();
        ctx.insert("ip".into(), json!("127.0.0.1"));
        ctx.insert("library".into(), json!("spoofed"));
        let m = Track::new(User::id("u1").with_anonymous_id("a1"), "signup")
            .properties(json!({ "plan": "pro", "quote": "say \"hi\"" }))
            .context(ctx);
        let e = encoder().track(&m, UNIX_EPOCH + NOW).unwrap();
        let v = parse(&e);
        assert_eq!(v["type"], "track");
        assert_eq!(v["messageId"], e.message_id.as_str());
        let id = uuid::Uuid::parse_str(e.message_id.as_str()).unwrap();
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(v["timestamp"], "2026-01-01T00:00:00.123Z");
        assert_eq!(v["userId"], "u1");
        assert_eq!(v["anonymousId"], "a1");
        assert_eq!(v["event"], "signup");
        assert_eq!(
            v["properties"],
            json!({ "plan": "pro", "quote": "say \"hi\"" })
        );
        assert_eq!(
            v["context"]["library"],
            json!({ "name": "pulseline-rust", "version": "9.9.9" })
        );
        assert_eq!(v["context"]["ip"], "127.0.0.1");
    }

    #[test]
    fn each_type_carries_its_required_field() {
        let now = UNIX_EPOCH + NOW;
        let e = encoder();
        let v = parse(
            &e.group(&Group::new("u1", "acme").traits(json!({"seats": 3})), now)
                .unwrap(),
        );
        assert_eq!(
            (v["type"].as_str(), v["groupId"].as_str()),
            (Some("group"), Some("acme"))
        );
        assert_eq!(v["traits"]["seats"], 3);
        let v = parse(&e.alias(&Alias::new("u1", "anon-9"), now).unwrap());
        assert_eq!(
            (v["userId"].as_str(), v["previousId"].as_str()),
            (Some("u1"), Some("anon-9"))
        );
        let v = parse(
            &e.page(&Page::new(User::anonymous("a")).name("Home"), now)
                .unwrap(),
        );
        assert_eq!(
            (v["type"].as_str(), v["name"].as_str()),
            (Some("page"), Some("Home"))
        );
        assert!(v.get("userId").is_none());
        let v = parse(&e.screen(&Screen::new("u1"), now).unwrap());
        assert_eq!(v["type"], "screen");
        let v = parse(
            &e.identify(&Identify::new("u1").traits(json!({"email": "a@b.c"})), now)
                .unwrap(),
        );
        assert_eq!(v["traits"]["email"], "a@b.c");
    }

    #[test]
    fn cookieless_visitor_may_have_no_id() {
        let now = UNIX_EPOCH + NOW;
        let context = crate::RawJson::parse(r#"{"cookieless":true}"#).unwrap();
        let v = parse(
            &encoder()
                .page(&Page::new(User::cookieless()).context_json(context), now)
                .unwrap(),
        );
        assert!(v.get("anonymousId").is_none() && v.get("userId").is_none());
        assert_eq!(v["context"]["cookieless"], true);
        let v = parse(
            &encoder()
                .track(&Track::new(User::cookieless().with_user_id("u1"), "x"), now)
                .unwrap(),
        );
        assert_eq!(v["userId"], "u1");
        assert!(v.get("anonymousId").is_none());
    }

    #[test]
    fn context_json_is_written_as_is_after_the_library() {
        let now = UNIX_EPOCH + NOW;
        let context = crate::RawJson::parse(
            r#" { "page": {"path": "/a", "library": 1}, "x": [1, {"y": 2}] } "#,
        );
        let e = encoder()
            .track(&Track::new("u1", "x").context_json(context.unwrap()), now)
            .unwrap();
        let v = parse(&e);
        assert_eq!(v["context"]["library"]["name"], "pulseline-rust");
        assert_eq!(v["context"]["page"], json!({ "path": "/a", "library": 1 }));
        assert_eq!(v["context"]["x"], json!([1, { "y": 2 }]));
        let empty = crate::RawJson::parse("{}").unwrap();
        let v = parse(
            &encoder()
                .track(&Track::new("u1", "x").context_json(empty), now)
                .unwrap(),
        );
        assert_eq!(v["context"].as_object().unwrap().len(), 1);
        for bad in [
            r#"{"a": {}, "library": {}}"#,
            r#"{"library":"x"}"#,
            "[1]",
            "\"s\"",
        ] {
            let m = Track::new("u1", "x").context_json(crate::RawJson::parse(bad).unwrap());
            assert!(
                matches!(
                    encoder().track(&m, now),
                    Err(Error::InvalidMessage {
                        field: "context",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn rejects_missing_required_fields_with_the_field_name() {
        let now = UNIX_EPOCH + NOW;
        let e = encoder();
        let field = |r: Result<Encoded, Error>| match r {
            Err(Error::InvalidMessage { field, .. }) => field,
            other => panic!("expected InvalidMessage, got {other:?}"),
        };
        assert_eq!(field(e.track(&Track::new("u1", ""), now)), "event");
        assert_eq!(field(e.track(&Track::new("", "x"), now)), "userId");
        assert_eq!(
            field(e.track(&Track::new(User::anonymous(""), "x"), now)),
            "anonymousId"
        );
        assert_eq!(field(e.group(&Group::new("u1", ""), now)), "groupId");
        assert_eq!(field(e.alias(&Alias::new("u1", ""), now)), "previousId");
        assert_eq!(field(e.alias(&Alias::new("", "p"), now)), "userId");
        assert_eq!(
            field(e.track(&Track::new("u1", "x").properties(vec![1, 2]), now)),
            "properties"
        );
        assert_eq!(
            field(e.track(&Track::new("u1", "x").timestamp(UNIX_EPOCH - NOW), now)),
            "timestamp"
        );
    }

    #[test]
    fn rejects_messages_over_the_collector_limit_and_accepts_just_under() {
        let now = UNIX_EPOCH + NOW;
        let e = encoder();
        let base = e
            .track(&Track::new("u1", "x").properties(json!({ "p": "" })), now)
            .unwrap();
        let room = MAX_MESSAGE_BYTES - base.bytes.len();
        let fits = e
            .track(
                &Track::new("u1", "x").properties(json!({ "p": "a".repeat(room) })),
                now,
            )
            .unwrap();
        assert_eq!(fits.bytes.len(), MAX_MESSAGE_BYTES);
        let err = e.track(
            &Track::new("u1", "x").properties(json!({ "p": "a".repeat(room + 1) })),
            now,
        );
        assert!(
            matches!(err, Err(Error::MessageTooLarge { size, limit }) if size == MAX_MESSAGE_BYTES + 1 && limit == MAX_MESSAGE_BYTES)
        );
    }

    #[test]
    fn caller_supplied_message_id_and_timestamp_are_kept() {
        let id = uuid::Uuid::now_v7();
        let at = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let e = encoder()
            .track(
                &Track::new("u1", "x").message_id(id).timestamp(at),
                UNIX_EPOCH + NOW,
            )
            .unwrap();
        let v = parse(&e);
        assert_eq!(v["messageId"], id.to_string());
        assert_eq!(v["timestamp"], "2001-09-09T01:46:40.000Z");
    }

    #[test]
    fn any_non_empty_string_is_a_message_id_sent_as_given() {
        for id in [
            "order-1042",
            "ORDER \"1\"\n",
            "🙂",
            "0192F1A4-5B6C-7D8E-9F00-112233445566",
        ] {
            let e = encoder()
                .track(&Track::new("u1", "x").message_id(id), UNIX_EPOCH + NOW)
                .unwrap();
            assert_eq!(parse(&e)["messageId"], id);
            assert_eq!(e.message_id, id);
        }
        let err = encoder()
            .track(&Track::new("u1", "x").message_id(""), UNIX_EPOCH + NOW)
            .unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidMessage {
                field: "messageId",
                ..
            }
        ));
    }

    #[test]
    fn the_too_long_reasons_name_the_limits() {
        assert_eq!(
            ID_TOO_LONG,
            format!("must be at most {MAX_ID_CHARS} characters")
        );
        assert_eq!(
            NAME_TOO_LONG,
            format!("must be at most {MAX_EVENT_NAME_CHARS} characters once trimmed")
        );
    }

    #[test]
    fn ids_and_names_over_the_collector_limits_are_refused_at_capture() {
        let now = UNIX_EPOCH + NOW;
        let e = encoder();
        // Counted in characters: 200 two-byte characters fit, 201 do not.
        let at = "é".repeat(MAX_ID_CHARS);
        let over = format!("{at}x");
        let field = |r: Result<Encoded, Error>| match r {
            Err(Error::InvalidMessage { field, reason }) => (field, reason),
            other => panic!("expected InvalidMessage, got {other:?}"),
        };
        assert!(e.track(&Track::new(at.as_str(), "x"), now).is_ok());
        assert!(
            e.track(&Track::new(User::anonymous(at.as_str()), "x"), now)
                .is_ok()
        );
        assert_eq!(
            field(e.track(&Track::new(over.as_str(), "x"), now)),
            ("userId", ID_TOO_LONG)
        );
        let both = User::id("u1").with_anonymous_id(over.as_str());
        assert_eq!(
            field(e.track(&Track::new(both, "x"), now)),
            ("anonymousId", ID_TOO_LONG)
        );
        assert_eq!(
            field(e.group(&Group::new("u1", over.as_str()), now)),
            ("groupId", ID_TOO_LONG)
        );
        assert_eq!(
            field(e.alias(&Alias::new("u1", over.as_str()), now)),
            ("previousId", ID_TOO_LONG)
        );
        assert_eq!(
            field(e.alias(&Alias::new(over.as_str(), "p"), now)),
            ("userId", ID_TOO_LONG)
        );
        // Names are trimmed first, as the collector does.
        let name = format!("  {}  ", "n".repeat(MAX_EVENT_NAME_CHARS));
        assert!(e.track(&Track::new("u1", name.as_str()), now).is_ok());
        let long = "n".repeat(MAX_EVENT_NAME_CHARS + 1);
        assert_eq!(
            field(e.track(&Track::new("u1", long.as_str()), now)),
            ("event", NAME_TOO_LONG)
        );
        assert_eq!(
            field(e.page(&Page::new("u1").name(long.as_str()), now)),
            ("name", NAME_TOO_LONG)
        );
        assert_eq!(field(e.track(&Track::new("u1", " \t"), now)).0, "event");
        assert_eq!(field(e.screen(&Screen::new("u1").name(" "), now)).0, "name");
    }

    #[test]
    fn message_fields_apply_to_every_builder_and_keep_what_they_do_not_set() {
        let now = UNIX_EPOCH + NOW;
        let mut context = Map::new();
        context.insert("locale".into(), json!("fr-FR"));
        let fields = MessageFields {
            message_id: Some("m-1".into()),
            context: Some(context),
            ..MessageFields::default()
        };
        let at = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let m = Track::new("u1", "x").timestamp(at).fields(fields.clone());
        let v = parse(&encoder().track(&m, now).unwrap());
        assert_eq!(v["messageId"], "m-1");
        assert_eq!(v["timestamp"], "2001-09-09T01:46:40.000Z");
        assert_eq!(v["context"]["locale"], "fr-FR");
        let v = parse(
            &encoder()
                .alias(&Alias::new("u1", "p").fields(fields), now)
                .unwrap(),
        );
        assert_eq!(v["messageId"], "m-1");
        assert_eq!(v["context"]["locale"], "fr-FR");
    }

    #[test]
    fn user_from_ids_needs_one_id() {
        assert!(matches!(
            User::from_ids(None, None),
            Err(Error::InvalidMessage {
                field: "userId",
                reason: "or anonymousId is required"
            })
        ));
        assert_eq!(
            User::from_ids(Some("u".into()), Some("a".into())).unwrap(),
            User::id("u").with_anonymous_id("a")
        );
    }
}
