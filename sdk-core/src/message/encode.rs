//! Builders to wire bytes: written field by field, checked against the collector's limits.

use serde::Serialize;
use web_time::SystemTime;

use crate::{
    Error, JsonLimitError, MessageId, ToJson, limits::MAX_MESSAGE_BYTES, time::write_rfc3339_millis,
};

use super::builders::{Alias, Common, Group, Identify, Page, Screen, Track, User};
use super::validate::{event_name, id_within_limit, invalid, within_id_limit};

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
pub(super) fn write_json<T: Serialize + ?Sized>(buf: &mut Vec<u8>, value: &T) {
    if let Err(err) = serde_json::to_writer(&mut *buf, value) {
        // Unreachable for the types passed here; keep the buffer valid JSON regardless.
        tracing::error!(%err, "serializing a JSON value failed");
        buf.extend_from_slice(b"null");
    }
}

/// Whether the members of a valid JSON object (its text without the braces) have `key` at the
/// top level, as written (a key spelled with escapes is not recognised).
pub(super) fn has_top_level_key(members: &[u8], key: &[u8]) -> bool {
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
