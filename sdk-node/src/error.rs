//! `pulseline::Error` and conversion failures to JavaScript errors: the one place that decides
//! each error's constructor (`TypeError` for what the caller passed, `RangeError` for sizes,
//! `Error` otherwise), its `code` (`PULSELINE_*`) and its fields. An I/O error becomes the
//! `cause`.
#![allow(unsafe_code)] // Builds the error object with raw Node-API calls (also off a ThreadsafeFunction).

use std::ptr;

use napi::{Env, Status, bindgen_prelude::ToNapiValue, sys};

use pulseline::{ConversionFailure, limits::MAX_MESSAGE_BYTES};

use crate::convert::{Failure, FailureKind};

/// The JavaScript constructor an error is made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Constructor {
    Error,
    TypeError,
    RangeError,
}

/// A field value of an error object.
#[derive(Debug, Clone)]
pub(crate) enum Field {
    Str(String),
    Num(f64),
    Null,
}

/// A JavaScript error described in Rust: made on any thread (the worker's `onError` included),
/// turned into an object on the JavaScript thread.
#[derive(Debug, Clone)]
pub struct ErrorSpec {
    constructor: Constructor,
    code: &'static str,
    message: String,
    fields: Vec<(&'static str, Field)>,
    /// `(errno, description)` of an I/O error, attached as `cause`.
    cause: Option<(Option<i32>, String)>,
}

impl ErrorSpec {
    pub(crate) fn new(
        constructor: Constructor,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        ErrorSpec {
            constructor,
            code,
            message: message.into(),
            fields: Vec::new(),
            cause: None,
        }
    }

    /// A wrong argument type or value.
    pub(crate) fn type_error(code: &'static str, message: impl Into<String>) -> Self {
        ErrorSpec::new(Constructor::TypeError, code, message)
    }

    pub(crate) fn field(mut self, name: &'static str, value: Field) -> Self {
        self.fields.push((name, value));
        self
    }

    /// As a `napi::Error` to return from a `#[napi]` function: thrown as this very object.
    pub(crate) fn into_napi(self, env: &Env) -> napi::Error {
        // SAFETY: `env` is the current callback's env, on the JavaScript thread.
        match unsafe { ErrorSpec::to_napi_value(env.raw(), self.clone()) } {
            // SAFETY: the value was just created in this env.
            Ok(value) => napi::Error::from(unsafe {
                napi::bindgen_prelude::Unknown::from_raw_unchecked(env.raw(), value)
            }),
            Err(_) => napi::Error::new(Status::GenericFailure, self.message),
        }
    }
}

impl ToNapiValue for ErrorSpec {
    unsafe fn to_napi_value(env: sys::napi_env, spec: Self) -> napi::Result<sys::napi_value> {
        // SAFETY (whole function): the caller guarantees a valid env on its JavaScript thread.
        unsafe {
            let error = create(env, spec.constructor, &spec.message)?;
            set(env, error, "code", string(env, spec.code)?)?;
            for (name, value) in &spec.fields {
                let value = match value {
                    Field::Str(s) => string(env, s)?,
                    Field::Num(n) => {
                        let mut out = ptr::null_mut();
                        napi::check_status!(sys::napi_create_double(env, *n, &mut out))?;
                        out
                    }
                    Field::Null => {
                        let mut out = ptr::null_mut();
                        napi::check_status!(sys::napi_get_null(env, &mut out))?;
                        out
                    }
                };
                set(env, error, name, value)?;
            }
            if let Some((errno, description)) = &spec.cause {
                let cause = create(env, Constructor::Error, description)?;
                if let Some(errno) = errno {
                    let mut n = ptr::null_mut();
                    napi::check_status!(sys::napi_create_int32(env, *errno, &mut n))?;
                    set(env, cause, "errno", n)?;
                }
                set(env, error, "cause", cause)?;
            }
            Ok(error)
        }
    }
}

unsafe fn string(env: sys::napi_env, s: &str) -> napi::Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    // SAFETY: the pointer and length describe `s`.
    napi::check_status!(unsafe {
        sys::napi_create_string_utf8(env, s.as_ptr().cast(), s.len() as isize, &mut out)
    })?;
    Ok(out)
}

unsafe fn create(
    env: sys::napi_env,
    constructor: Constructor,
    message: &str,
) -> napi::Result<sys::napi_value> {
    // SAFETY: as in `string`.
    unsafe {
        let message = string(env, message)?;
        let mut out = ptr::null_mut();
        let code = ptr::null_mut();
        napi::check_status!(match constructor {
            Constructor::Error => sys::napi_create_error(env, code, message, &mut out),
            Constructor::TypeError => sys::napi_create_type_error(env, code, message, &mut out),
            Constructor::RangeError => sys::napi_create_range_error(env, code, message, &mut out),
        })?;
        Ok(out)
    }
}

unsafe fn set(
    env: sys::napi_env,
    object: sys::napi_value,
    name: &str,
    value: sys::napi_value,
) -> napi::Result<()> {
    // SAFETY: as in `string`.
    unsafe {
        let key = string(env, name)?;
        napi::check_status!(sys::napi_set_property(env, object, key, value))
    }
}

impl From<&pulseline::Error> for ErrorSpec {
    fn from(error: &pulseline::Error) -> Self {
        use pulseline::Error as E;
        let message = error.to_string();
        match error {
            E::InvalidMessage { field, .. } => {
                ErrorSpec::type_error("PULSELINE_INVALID_MESSAGE", message)
                    .field("field", Field::Str((*field).into()))
            }
            E::MessageTooLarge { size, limit } => ErrorSpec::new(
                Constructor::RangeError,
                "PULSELINE_MESSAGE_TOO_LARGE",
                message,
            )
            .field("size", Field::Num(*size as f64))
            .field("limit", Field::Num(*limit as f64)),
            E::Serialize { field, .. } => {
                ErrorSpec::type_error("PULSELINE_INVALID_MESSAGE", message)
                    .field("field", Field::Str((*field).into()))
            }
            E::QueueFull {
                max_events,
                max_bytes,
            } => ErrorSpec::new(Constructor::Error, "PULSELINE_QUEUE_FULL", message)
                .field("maxEvents", Field::Num(*max_events as f64))
                .field("maxBytes", Field::Num(*max_bytes as f64)),
            E::Closed => ErrorSpec::new(Constructor::Error, "PULSELINE_CLOSED", message),
            E::Http {
                status,
                retry_after,
                body,
            } => ErrorSpec::new(Constructor::Error, "PULSELINE_HTTP", message)
                .field("status", Field::Num(f64::from(*status)))
                .field(
                    "retryAfter",
                    retry_after.map_or(Field::Null, |d| Field::Num(d.as_millis() as f64)),
                )
                .field("body", Field::Str(body.clone())),
            E::Transport { kind, .. } => {
                ErrorSpec::new(Constructor::Error, "PULSELINE_TRANSPORT", message)
                    .field("kind", Field::Str(kind.to_string()))
            }
            E::Rejected { message_id, reason } => {
                ErrorSpec::new(Constructor::Error, "PULSELINE_REJECTED", message)
                    .field("messageId", Field::Str(message_id.clone()))
                    .field("reason", Field::Str(reason.clone()))
            }
            E::Disk { path, source } => {
                let mut e = ErrorSpec::new(Constructor::Error, "PULSELINE_DISK_BUFFER", message)
                    .field("path", Field::Str(path.display().to_string()));
                e.cause = Some((source.raw_os_error(), source.to_string()));
                e
            }
            E::CorruptRecord { path, offset } => {
                ErrorSpec::new(Constructor::Error, "PULSELINE_DISK_BUFFER", message)
                    .field("path", Field::Str(path.display().to_string()))
                    .field("offset", Field::Num(*offset as f64))
            }
            E::Config { .. } => ErrorSpec::new(Constructor::Error, "PULSELINE_CONFIG", message),
            _ => ErrorSpec::new(Constructor::Error, "PULSELINE_ERROR", message),
        }
    }
}

/// The error for a value of `argument` that could not be converted to JSON; `None` when a
/// JavaScript exception (a throwing getter) is already pending and should propagate as is.
pub(crate) fn conversion_error(argument: &str, failure: &Failure) -> Option<ErrorSpec> {
    let path = failure.path.render(argument);
    let (code, message) = match &failure.kind {
        FailureKind::Exception => return None,
        FailureKind::Value(kind @ ConversionFailure::Unsupported { .. }) => {
            ("PULSELINE_UNSUPPORTED_TYPE", kind.message(&path))
        }
        FailureKind::Value(kind) => ("PULSELINE_INVALID_MESSAGE", kind.message(&path)),
        FailureKind::TooLarge => {
            let message = format!(
                "message is above the {MAX_MESSAGE_BYTES}-byte limit (conversion stopped at \
                 {path}); trim properties or traits"
            );
            return Some(
                ErrorSpec::new(
                    Constructor::RangeError,
                    "PULSELINE_MESSAGE_TOO_LARGE",
                    message,
                )
                .field("limit", Field::Num(MAX_MESSAGE_BYTES as f64))
                .field("path", Field::Str(path)),
            );
        }
        FailureKind::Napi(what) => (
            "PULSELINE_ERROR",
            format!("{path}: Node-API call failed ({what})"),
        ),
    };
    Some(ErrorSpec::type_error(code, message).field("path", Field::Str(path)))
}

/// A pending JavaScript exception, rethrown unchanged.
pub(crate) fn pending_exception() -> napi::Error {
    napi::Error::new(Status::PendingException, "")
}

/// Whether a JavaScript exception is pending on `env` (a getter or Proxy trap threw).
pub(crate) fn exception_pending(env: &Env) -> bool {
    let mut pending = false;
    // SAFETY: the current callback's env, on the JavaScript thread.
    let status = unsafe { sys::napi_is_exception_pending(env.raw(), &mut pending) };
    status == sys::Status::napi_ok && pending
}

/// Converts a live JavaScript value with its `FromNapiValue` impl (what `#[napi]` arguments use).
pub(crate) fn from_unknown<T: napi::bindgen_prelude::FromNapiValue>(
    value: napi::bindgen_prelude::Unknown<'_>,
) -> napi::Result<T> {
    use napi::JsValue;
    // SAFETY: the value and its env belong to the current callback, on the JavaScript thread.
    unsafe { T::from_napi_value(value.value().env, value.raw()) }
}
