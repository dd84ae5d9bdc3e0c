//! The fast capture path: `lib/index.js` checks a message in JavaScript, keeps a shallow copy,
//! and at the end of the tick (or every [`MAX_PENDING`] messages) serializes all of them with
//! one `JSON.stringify` and hands the string over in one call. Parsing it here borrows the
//! `properties`/`traits` JSON as raw text, which the core copies into the message verbatim:
//! no JavaScript value is walked through Node-API, which keeps the capture call cheap
//! (docs/benchmarks.md). Messages the JavaScript check is not sure of (ids given as numbers,
//! a `messageId`, `BigInt`s, class instances, very large or deep values…) take the exact path
//! through `message.rs` instead, which throws the precise error.
//!
//! [`MAX_PENDING`]: ../lib/index.js

use std::{
    borrow::Cow,
    time::{Duration, UNIX_EPOCH},
};

use pulseline::{Alias, Group, Identify, MessageFields, Page, Screen, Track, User};
use serde::Deserialize;
use serde_json::{Map, Value, value::RawValue};

/// One message, as the array `lib/index.js` writes:
/// `[kind, userId, anonymousId, timestampMs, text, payload, context, integrations]`, where
/// `kind` indexes `KINDS` there and `text` is the event, name, groupId or previousId.
#[derive(Debug, Deserialize)]
struct Entry<'a>(
    u8,
    #[serde(borrow)] Option<Cow<'a, str>>,
    #[serde(borrow)] Option<Cow<'a, str>>,
    f64,
    #[serde(borrow)] Option<Cow<'a, str>>,
    #[serde(borrow)] Option<&'a RawValue>,
    Option<Map<String, Value>>,
    Option<Map<String, Value>>,
);

/// Captures every message of `json`; returns what went wrong with those that could not be
/// captured (the JavaScript side warns), or `None`. Each of those is counted as dropped and
/// reported to `onDrop`: its capture call returned long ago. A full buffer is counted by the
/// core itself; a shut-down client drops silently, as the exact path does.
pub(crate) fn capture_all(core: &pulseline::Client, json: &str) -> Option<String> {
    let entries: Vec<Entry<'_>> = match serde_json::from_str(json) {
        Ok(entries) => entries,
        Err(err) => return Some(format!("internal error: unreadable message batch ({err})")),
    };
    let (mut failed, mut first) = (0usize, None);
    for entry in entries {
        match capture(core, entry) {
            Ok(()) | Err(pulseline::Error::QueueFull { .. }) | Err(pulseline::Error::Closed) => {}
            Err(err) => {
                let reason = match err {
                    pulseline::Error::MessageTooLarge { .. } => pulseline::DropReason::TooLarge,
                    _ => pulseline::DropReason::Unserializable,
                };
                core.record_dropped(reason, 1);
                failed += 1;
                first.get_or_insert_with(|| err.to_string());
            }
        }
    }
    first.map(|e| format!("pulseline: {failed} message(s) could not be captured: {e}"))
}

fn capture(core: &pulseline::Client, e: Entry<'_>) -> Result<(), pulseline::Error> {
    let Entry(kind, user_id, anonymous_id, ms, text, payload, context, integrations) = e;
    let text = text.map(Cow::into_owned).unwrap_or_default();
    let at = UNIX_EPOCH + Duration::from_millis(ms.max(0.0) as u64);
    let mut fields = MessageFields::default();
    fields.timestamp = Some(at);
    fields.context = context;
    fields.integrations = integrations;
    let user = || {
        User::from_ids(
            user_id.as_deref().map(str::to_owned),
            anonymous_id.as_deref().map(str::to_owned),
        )
    };
    macro_rules! send {
        ($method:ident, $message:expr, $payload_setter:ident) => {{
            let m = $message.fields(fields);
            match payload {
                Some(p) => core.$method(m.$payload_setter(p)),
                None => core.$method(m),
            }
        }};
    }
    match kind {
        0 => send!(track, Track::new(user()?, text), properties),
        1 => send!(identify, Identify::new(user()?), traits),
        2 => send!(
            page,
            named(Page::new(user()?), text, Page::name),
            properties
        ),
        3 => send!(
            screen,
            named(Screen::new(user()?), text, Screen::name),
            properties
        ),
        4 => send!(group, Group::new(user()?, text), traits),
        _ => core.alias(Alias::new(user_id.unwrap_or_default(), text).fields(fields)),
    }
    .map(drop)
}

fn named<M>(m: M, name: String, set: fn(M, String) -> M) -> M {
    if name.is_empty() { m } else { set(m, name) }
}
