//! The message objects of `track`, `identify`, `page`, `screen`, `group` and `alias`: their
//! fields arrive as positional arguments (`lib/index.js` reads them off the object, which
//! JavaScript does far more cheaply than Node-API's one call per property, see
//! docs/benchmarks.md), and are
//! converted here to what the core's builders take. The `#[napi(object)]` interfaces below exist
//! for the generated `index.d.ts`; values are read by [`Fields::from_args`].
#![allow(unsafe_code)] // `Date.parse` of a timestamp string, with raw Node-API calls.

use std::{
    ptr,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use napi::sys;
use napi_derive::napi;
use pulseline::{MessageFields, MessageId, User};
use serde_json::{Map, Value};

use crate::{
    convert::{Converter, FailureKind},
    error::{ErrorSpec, Field, conversion_error},
};

/// Fields every message accepts, in the order `lib/index.js` passes them.
const COMMON: [&str; 6] = [
    "userId",
    "anonymousId",
    "timestamp",
    "context",
    "integrations",
    "messageId",
];

/// Which message a call captures: its name and the fields it accepts beyond [`COMMON`].
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    pub method: &'static str,
    extra: &'static [&'static str],
}

pub(crate) const TRACK: Kind = Kind {
    method: "track",
    extra: &["event", "properties"],
};
pub(crate) const IDENTIFY: Kind = Kind {
    method: "identify",
    extra: &["traits"],
};
pub(crate) const PAGE: Kind = Kind {
    method: "page",
    extra: &["name", "properties"],
};
pub(crate) const SCREEN: Kind = Kind {
    method: "screen",
    extra: &["name", "properties"],
};
pub(crate) const GROUP: Kind = Kind {
    method: "group",
    extra: &["groupId", "traits"],
};
pub(crate) const ALIAS: Kind = Kind {
    method: "alias",
    extra: &["previousId"],
};

/// The fields of one message object, as read from JavaScript.
#[derive(Debug, Default)]
pub struct Fields {
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub event: Option<String>,
    pub name: Option<String>,
    pub group_id: Option<String>,
    pub previous_id: Option<String>,
    /// `properties` or `traits`, serialized by the core straight from the JavaScript object.
    pub payload: Option<sys::napi_value>,
    /// `timestamp`, `messageId`, `context` and `integrations`, applied by every builder.
    pub common: MessageFields,
}

impl Fields {
    /// The fields of one message, passed positionally by `lib/index.js` (which reads them off
    /// the message object in JIT-compiled JavaScript, checks for unknown fields, and calls the
    /// native method): [`COMMON`] first, then the kind's own fields.
    pub(crate) fn from_args(
        cx: &Converter,
        kind: Kind,
        values: &[sys::napi_value],
    ) -> Result<Fields, napi_or_spec::Failed> {
        let mut f = Fields::default();
        for (name, &value) in COMMON.iter().chain(kind.extra).zip(values) {
            let t = cx.type_of(value).map_err(Failed::Kind)?;
            if t != sys::ValueType::napi_undefined {
                f.set(cx, kind, name, value, t)?;
            }
        }
        Ok(f)
    }

    fn set(
        &mut self,
        cx: &Converter,
        kind: Kind,
        key: &str,
        value: sys::napi_value,
        t: sys::napi_valuetype,
    ) -> Result<(), napi_or_spec::Failed> {
        if t == sys::ValueType::napi_null {
            return Ok(());
        }
        match key {
            "userId" => self.user_id = Some(id(cx, kind, key, value, t)?),
            "anonymousId" => self.anonymous_id = Some(id(cx, kind, key, value, t)?),
            "previousId" => self.previous_id = Some(id(cx, kind, key, value, t)?),
            "groupId" => self.group_id = Some(id(cx, kind, key, value, t)?),
            "event" => self.event = Some(text(cx, kind, key, value, t)?),
            "name" => self.name = Some(text(cx, kind, key, value, t)?),
            "properties" | "traits" => {
                object(cx, kind, key, value, t)?;
                self.payload = Some(value);
            }
            "context" => self.common.context = Some(map(cx, kind, "context", value, t)?),
            "integrations" => {
                self.common.integrations = Some(map(cx, kind, "integrations", value, t)?);
            }
            "timestamp" => self.common.timestamp = Some(timestamp(cx, kind, value, t)?),
            // Any non-empty string up to the core's limit, as the collector accepts; the core
            // checks it at capture like every other field.
            "messageId" => {
                self.common.message_id = Some(MessageId::from(text(cx, kind, key, value, t)?))
            }
            _ => unreachable!("checked against the field lists above"),
        }
        Ok(())
    }

    /// `userId` and/or `anonymousId` (the core checks that they are not empty).
    pub(crate) fn user(&mut self, kind: Kind) -> Result<User, ErrorSpec> {
        if kind.method == ALIAS.method {
            // `Alias::new` takes the user id itself; leave it in place for it.
            return match &self.user_id {
                Some(u) => Ok(User::id(u.clone())),
                None => Err(ErrorSpec::type_error(
                    "PULSELINE_INVALID_MESSAGE",
                    format!(
                        "invalid message: userId is required, e.g. {}",
                        example(kind)
                    ),
                )
                .field("field", Field::Str("userId".into()))),
            };
        }
        User::from_ids(self.user_id.take(), self.anonymous_id.take()).map_err(|err| {
            ErrorSpec::type_error(
                "PULSELINE_INVALID_MESSAGE",
                format!("{err}, e.g. {}", example(kind)),
            )
            .field("field", Field::Str("userId".into()))
        })
    }
}

fn example(kind: Kind) -> &'static str {
    match kind.method {
        "track" => {
            "client.track({ userId: 'user-42', event: 'signup', properties: { plan: 'pro' } })"
        }
        "identify" => {
            "client.identify({ userId: 'user-42', traits: { email: 'ada@example.com' } })"
        }
        "page" => "client.page({ userId: 'user-42', name: 'Pricing' })",
        "screen" => "client.screen({ userId: 'user-42', name: 'Settings' })",
        "group" => "client.group({ userId: 'user-42', groupId: 'acme' })",
        _ => "client.alias({ userId: 'user-42', previousId: 'anon-7' })",
    }
}

/// Errors of parsing: our own, or a conversion failure (possibly a pending JS exception).
pub(crate) mod napi_or_spec {
    use crate::{convert::FailureKind, error::ErrorSpec};

    #[derive(Debug)]
    pub(crate) enum Failed {
        Spec(ErrorSpec),
        Kind(FailureKind),
    }
}
use napi_or_spec::Failed;

fn wrong(kind: Kind, key: &str, expected: &str, t: sys::napi_valuetype) -> Failed {
    Failed::Spec(
        ErrorSpec::type_error(
            "PULSELINE_INVALID_MESSAGE",
            format!(
                "client.{}(): {key} must be {expected}, not {}",
                kind.method,
                type_name(t)
            ),
        )
        .field("field", Field::Str(key.to_owned())),
    )
}

fn type_name(t: sys::napi_valuetype) -> &'static str {
    match t {
        sys::ValueType::napi_undefined => "undefined",
        sys::ValueType::napi_null => "null",
        sys::ValueType::napi_boolean => "a boolean",
        sys::ValueType::napi_number => "a number",
        sys::ValueType::napi_string => "a string",
        sys::ValueType::napi_symbol => "a symbol",
        sys::ValueType::napi_object => "an object",
        sys::ValueType::napi_function => "a function",
        sys::ValueType::napi_bigint => "a bigint",
        _ => "an external value",
    }
}

fn text(
    cx: &Converter,
    kind: Kind,
    key: &str,
    value: sys::napi_value,
    t: sys::napi_valuetype,
) -> Result<String, Failed> {
    if t != sys::ValueType::napi_string {
        return Err(wrong(kind, key, "a string", t));
    }
    cx.string(value).map_err(Failed::Kind)
}

/// An id: a string, or an integer (database primary keys), sent as a string.
fn id(
    cx: &Converter,
    kind: Kind,
    key: &str,
    value: sys::napi_value,
    t: sys::napi_valuetype,
) -> Result<String, Failed> {
    if t == sys::ValueType::napi_number {
        let n = cx.number(value).map_err(Failed::Kind)?;
        if n.is_finite() && n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
            return Ok(format!("{}", n as i64));
        }
        return Err(wrong(kind, key, "a string or an integer", t));
    }
    if t != sys::ValueType::napi_string {
        return Err(wrong(kind, key, "a string or an integer", t));
    }
    cx.string(value).map_err(Failed::Kind)
}

fn object(
    cx: &Converter,
    kind: Kind,
    key: &str,
    value: sys::napi_value,
    t: sys::napi_valuetype,
) -> Result<(), Failed> {
    let plain = t == sys::ValueType::napi_object
        && !cx.is_date(value).map_err(Failed::Kind)?
        && !cx.is_array(value).map_err(Failed::Kind)?;
    if plain {
        Ok(())
    } else {
        Err(wrong(kind, key, "a plain object", t))
    }
}

/// `context` / `integrations`: converted to a JSON object for the core's builders.
fn map(
    cx: &Converter,
    kind: Kind,
    key: &'static str,
    value: sys::napi_value,
    t: sys::napi_valuetype,
) -> Result<Map<String, Value>, Failed> {
    object(cx, kind, key, value, t)?;
    match serde_json::to_value(cx.value(value).with_kind(t)) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(wrong(kind, key, "a plain object", t)),
        Err(_) => match cx.take_failure() {
            Some(failure) => match conversion_error(key, &failure) {
                Some(spec) => Err(Failed::Spec(spec)),
                None => Err(Failed::Kind(FailureKind::Exception)),
            },
            None => Err(wrong(kind, key, "a plain object", t)),
        },
    }
}

/// `timestamp`: a `Date`, an ISO 8601 string (anything `Date.parse` reads), or epoch milliseconds.
fn timestamp(
    cx: &Converter,
    kind: Kind,
    value: sys::napi_value,
    t: sys::napi_valuetype,
) -> Result<SystemTime, Failed> {
    let ms = match t {
        sys::ValueType::napi_number => cx.number(value).map_err(Failed::Kind)?,
        sys::ValueType::napi_object if cx.is_date(value).map_err(Failed::Kind)? => {
            cx.date_millis(value).map_err(Failed::Kind)?
        }
        sys::ValueType::napi_string => date_parse(cx, value)?,
        _ => {
            return Err(wrong(
                kind,
                "timestamp",
                "a Date, an ISO 8601 string or a number",
                t,
            ));
        }
    };
    if !ms.is_finite() {
        return Err(Failed::Spec(
            ErrorSpec::type_error(
                "PULSELINE_INVALID_MESSAGE",
                format!("client.{}(): timestamp is not a valid date", kind.method),
            )
            .field("field", Field::Str("timestamp".into())),
        ));
    }
    let since = Duration::from_secs_f64(ms.abs() / 1000.0);
    Ok(if ms >= 0.0 {
        UNIX_EPOCH + since
    } else {
        UNIX_EPOCH - since
    })
}

/// `Date.parse(value)`, so timestamps accept exactly what JavaScript's own dates do.
fn date_parse(cx: &Converter, value: sys::napi_value) -> Result<f64, Failed> {
    let env = cx.env();
    let napi = |s| {
        if s == sys::Status::napi_ok {
            Ok(())
        } else {
            Err(Failed::Kind(FailureKind::Napi("Date.parse")))
        }
    };
    let (mut global, mut date, mut parse, mut out) = (
        ptr::null_mut(),
        ptr::null_mut(),
        ptr::null_mut(),
        ptr::null_mut(),
    );
    // SAFETY: values of the current callback, on the JavaScript thread; names are NUL-terminated.
    unsafe {
        napi(sys::napi_get_global(env, &mut global))?;
        napi(sys::napi_get_named_property(
            env,
            global,
            c"Date".as_ptr(),
            &mut date,
        ))?;
        napi(sys::napi_get_named_property(
            env,
            date,
            c"parse".as_ptr(),
            &mut parse,
        ))?;
        napi(sys::napi_call_function(
            env, date, parse, 1, &value, &mut out,
        ))?;
    }
    cx.number(out).map_err(Failed::Kind)
}

/// A `track` message: something a user did. Give `userId`, `anonymousId`, or both.
#[napi(object, object_to_js = false)]
#[allow(dead_code)] // Declares the TypeScript interface; `Fields::parse` reads the values.
pub struct TrackMessage {
    /// Your stable id of the user (a string, or an integer sent as a string).
    #[napi(ts_type = "string | number")]
    pub user_id: Option<String>,
    /// An id for a visitor not (yet) known by a user id.
    #[napi(ts_type = "string | number")]
    pub anonymous_id: Option<String>,
    /// What happened, e.g. `signup`.
    pub event: String,
    /// Details of the event: plain objects, arrays, strings, numbers, booleans, null, `Date`
    /// (sent as ISO 8601) and `BigInt`. `undefined` fields are left out.
    #[napi(ts_type = "Record<string, unknown>")]
    pub properties: Option<Value>,
    /// When it happened (default: now). A `Date`, an ISO 8601 string, or epoch milliseconds.
    #[napi(ts_type = "Date | string | number")]
    pub timestamp: Option<String>,
    /// Extra `context` entries (ip, locale, page, campaign...); `context.library` is the SDK's.
    #[napi(ts_type = "Record<string, unknown>")]
    pub context: Option<Value>,
    /// Segment destination switches.
    #[napi(ts_type = "Record<string, unknown>")]
    pub integrations: Option<Value>,
    /// Your own `messageId` instead of a fresh UUIDv7, to make a backfill idempotent: any
    /// non-empty string of at most 200 characters (an order number, a row id, a UUID).
    pub message_id: Option<String>,
}

/// An `identify` message: who a user is. Give `userId`, `anonymousId`, or both.
#[napi(object, object_to_js = false)]
#[allow(dead_code)] // Declares the TypeScript interface; `Fields::parse` reads the values.
pub struct IdentifyMessage {
    /// Your stable id of the user (a string, or an integer sent as a string).
    #[napi(ts_type = "string | number")]
    pub user_id: Option<String>,
    /// An id for a visitor not (yet) known by a user id.
    #[napi(ts_type = "string | number")]
    pub anonymous_id: Option<String>,
    /// What you know about the user (email, name, plan...), converted like `properties`.
    #[napi(ts_type = "Record<string, unknown>")]
    pub traits: Option<Value>,
    /// When it happened (default: now). A `Date`, an ISO 8601 string, or epoch milliseconds.
    #[napi(ts_type = "Date | string | number")]
    pub timestamp: Option<String>,
    /// Extra `context` entries (ip, locale, page, campaign...); `context.library` is the SDK's.
    #[napi(ts_type = "Record<string, unknown>")]
    pub context: Option<Value>,
    /// Segment destination switches.
    #[napi(ts_type = "Record<string, unknown>")]
    pub integrations: Option<Value>,
    /// Your own `messageId` instead of a fresh UUIDv7, to make a backfill idempotent: any
    /// non-empty string of at most 200 characters (an order number, a row id, a UUID).
    pub message_id: Option<String>,
}

/// A `page` message: a page view.
#[napi(object, object_to_js = false)]
#[allow(dead_code)] // Declares the TypeScript interface; `Fields::parse` reads the values.
pub struct PageMessage {
    /// Your stable id of the user (a string, or an integer sent as a string).
    #[napi(ts_type = "string | number")]
    pub user_id: Option<String>,
    /// An id for a visitor not (yet) known by a user id.
    #[napi(ts_type = "string | number")]
    pub anonymous_id: Option<String>,
    /// The page or screen's name.
    pub name: Option<String>,
    /// Details of the view, converted like `track` properties.
    #[napi(ts_type = "Record<string, unknown>")]
    pub properties: Option<Value>,
    /// When it happened (default: now). A `Date`, an ISO 8601 string, or epoch milliseconds.
    #[napi(ts_type = "Date | string | number")]
    pub timestamp: Option<String>,
    /// Extra `context` entries (ip, locale, page, campaign...); `context.library` is the SDK's.
    #[napi(ts_type = "Record<string, unknown>")]
    pub context: Option<Value>,
    /// Segment destination switches.
    #[napi(ts_type = "Record<string, unknown>")]
    pub integrations: Option<Value>,
    /// Your own `messageId` instead of a fresh UUIDv7, to make a backfill idempotent: any
    /// non-empty string of at most 200 characters (an order number, a row id, a UUID).
    pub message_id: Option<String>,
}

/// A `screen` message: a mobile screen view.
#[napi(object, object_to_js = false)]
#[allow(dead_code)] // Declares the TypeScript interface; `Fields::parse` reads the values.
pub struct ScreenMessage {
    /// Your stable id of the user (a string, or an integer sent as a string).
    #[napi(ts_type = "string | number")]
    pub user_id: Option<String>,
    /// An id for a visitor not (yet) known by a user id.
    #[napi(ts_type = "string | number")]
    pub anonymous_id: Option<String>,
    /// The page or screen's name.
    pub name: Option<String>,
    /// Details of the view, converted like `track` properties.
    #[napi(ts_type = "Record<string, unknown>")]
    pub properties: Option<Value>,
    /// When it happened (default: now). A `Date`, an ISO 8601 string, or epoch milliseconds.
    #[napi(ts_type = "Date | string | number")]
    pub timestamp: Option<String>,
    /// Extra `context` entries (ip, locale, page, campaign...); `context.library` is the SDK's.
    #[napi(ts_type = "Record<string, unknown>")]
    pub context: Option<Value>,
    /// Segment destination switches.
    #[napi(ts_type = "Record<string, unknown>")]
    pub integrations: Option<Value>,
    /// Your own `messageId` instead of a fresh UUIDv7, to make a backfill idempotent: any
    /// non-empty string of at most 200 characters (an order number, a row id, a UUID).
    pub message_id: Option<String>,
}

/// A `group` message: the user belongs to a company, team or account.
#[napi(object, object_to_js = false)]
#[allow(dead_code)] // Declares the TypeScript interface; `Fields::parse` reads the values.
pub struct GroupMessage {
    /// Your stable id of the user (a string, or an integer sent as a string).
    #[napi(ts_type = "string | number")]
    pub user_id: Option<String>,
    /// An id for a visitor not (yet) known by a user id.
    #[napi(ts_type = "string | number")]
    pub anonymous_id: Option<String>,
    /// The group's id.
    #[napi(ts_type = "string | number")]
    pub group_id: String,
    /// What you know about the group.
    #[napi(ts_type = "Record<string, unknown>")]
    pub traits: Option<Value>,
    /// When it happened (default: now). A `Date`, an ISO 8601 string, or epoch milliseconds.
    #[napi(ts_type = "Date | string | number")]
    pub timestamp: Option<String>,
    /// Extra `context` entries (ip, locale, page, campaign...); `context.library` is the SDK's.
    #[napi(ts_type = "Record<string, unknown>")]
    pub context: Option<Value>,
    /// Segment destination switches.
    #[napi(ts_type = "Record<string, unknown>")]
    pub integrations: Option<Value>,
    /// Your own `messageId` instead of a fresh UUIDv7, to make a backfill idempotent: any
    /// non-empty string of at most 200 characters (an order number, a row id, a UUID).
    pub message_id: Option<String>,
}

/// An `alias` message: `previousId` and `userId` are the same person.
#[napi(object, object_to_js = false)]
#[allow(dead_code)] // Declares the TypeScript interface; `Fields::parse` reads the values.
pub struct AliasMessage {
    /// The new id.
    #[napi(ts_type = "string | number")]
    pub user_id: String,
    /// The id used so far (e.g. an anonymous id).
    #[napi(ts_type = "string | number")]
    pub previous_id: String,
    /// When it happened (default: now). A `Date`, an ISO 8601 string, or epoch milliseconds.
    #[napi(ts_type = "Date | string | number")]
    pub timestamp: Option<String>,
    /// Extra `context` entries (ip, locale, page, campaign...); `context.library` is the SDK's.
    #[napi(ts_type = "Record<string, unknown>")]
    pub context: Option<Value>,
    /// Segment destination switches.
    #[napi(ts_type = "Record<string, unknown>")]
    pub integrations: Option<Value>,
    /// Your own `messageId` instead of a fresh UUIDv7, to make a backfill idempotent: any
    /// non-empty string of at most 200 characters (an order number, a row id, a UUID).
    pub message_id: Option<String>,
}
