//! The arguments every capture method shares (who, when, context, ids), converted to what the
//! core's message builders take.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pulseline::{
    JsonLimitError, MessageFields, MessageId, User, limits::MAX_MESSAGE_BYTES, write_json_within,
};
use pyo3::{
    exceptions::PyTypeError,
    prelude::*,
    sync::PyOnceLock,
    types::{PyDict, PyInt, PyString, PyType},
};
use serde_json::{Map, Value};

use crate::{
    convert::Argument,
    error::{Attr, Class, OwnedError, conversion_error},
};

/// A str argument (`event`, `name`, an id) as UTF-8, or an `InvalidMessageError` naming the
/// argument when it holds a lone surrogate (UTF-8 and JSON text cannot carry one).
pub(crate) fn text<'a>(name: &str, value: &'a Bound<'_, PyString>) -> PyResult<&'a str> {
    value.to_str().map_err(|err| {
        let py = value.py();
        let at = err
            .value(py)
            .getattr("start")
            .and_then(|s| s.extract::<usize>())
            .map(|i| format!(" at index {i}"))
            .unwrap_or_default();
        OwnedError::new(
            Class::InvalidMessage,
            format!(
                "{name} holds a lone surrogate{at}, which UTF-8 and JSON text cannot carry \
                 (decode the bytes it came from with errors='replace', or encode it)"
            ),
        )
        .attr("field", Attr::Str(name.to_owned()))
        .attr("path", Attr::Str(name.to_owned()))
        .into_pyerr(py)
    })
}

/// `user_id` / `anonymous_id`: a str, or an int (database primary keys), sent as a string.
pub(crate) fn id(name: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<String>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(Some(text(name, s)?.to_owned()));
    }
    if value.is_instance_of::<PyInt>() && !value.is_instance_of::<pyo3::types::PyBool>() {
        // The int's value, not a subclass's `__str__`.
        let digits = value
            .py()
            .get_type::<PyInt>()
            .call_method1("__repr__", (value,))?;
        return Ok(Some(digits.cast::<PyString>()?.to_str()?.to_owned()));
    }
    Err(PyTypeError::new_err(format!(
        "{name} must be a str or an int, not {}",
        crate::convert::type_name(value)
    )))
}

pub(crate) fn user(
    py: Python<'_>,
    user_id: Option<&Bound<'_, PyAny>>,
    anonymous_id: Option<&Bound<'_, PyAny>>,
) -> PyResult<User> {
    let ids = (id("user_id", user_id)?, id("anonymous_id", anonymous_id)?);
    User::from_ids(ids.0, ids.1).map_err(|err| {
        OwnedError::new(
            Class::InvalidMessage,
            format!("{err} (pass user_id or anonymous_id)"),
        )
        .attr("field", Attr::Str("userId".into()))
        .into_pyerr(py)
    })
}

/// `properties` / `traits`: a dict (or another Mapping), serialized by the core straight from
/// the Python objects.
pub(crate) fn object_argument<'py>(
    name: &str,
    value: Option<&Bound<'py, PyAny>>,
) -> PyResult<Option<Argument<'py>>> {
    static MAPPING: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    match value.filter(|v| !v.is_none()) {
        None => Ok(None),
        Some(v) if v.is_instance_of::<PyDict>() => Ok(Some(Argument::new(v.clone()))),
        Some(v) if v.is_instance(MAPPING.import(v.py(), "collections.abc", "Mapping")?)? => {
            Ok(Some(Argument::new(v.clone())))
        }
        Some(v) => Err(PyTypeError::new_err(format!(
            "{name} must be a dict, not {}",
            crate::convert::type_name(v)
        ))),
    }
}

/// The optional fields common to every message type, as the core's [`MessageFields`], which
/// every builder applies with `.fields(…)`.
pub(crate) fn common_fields(
    py: Python<'_>,
    timestamp: Option<&Bound<'_, PyAny>>,
    context: Option<&Bound<'_, PyAny>>,
    integrations: Option<&Bound<'_, PyAny>>,
    message_id: Option<&Bound<'_, PyAny>>,
) -> PyResult<MessageFields> {
    let mut fields = MessageFields::default();
    fields.timestamp = timestamp
        .filter(|t| !t.is_none())
        .map(system_time)
        .transpose()?;
    fields.message_id = message_id
        .filter(|m| !m.is_none())
        .map(|m| parse_message_id(py, m))
        .transpose()?;
    fields.context = map(py, "context", context)?;
    fields.integrations = map(py, "integrations", integrations)?;
    Ok(fields)
}

fn map(
    py: Python<'_>,
    name: &str,
    value: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<Map<String, Value>>> {
    let Some(argument) = object_argument(name, value)? else {
        return Ok(None);
    };
    // Written under the message limit first (a value shared many ways stops there), then read
    // back as the map the core's builders take.
    let mut json = Vec::new();
    match write_json_within(&mut json, MAX_MESSAGE_BYTES, &argument) {
        Ok(()) => {}
        Err(JsonLimitError::TooLarge { size, limit }) => {
            return Err(OwnedError::new(
                Class::MessageTooLarge,
                format!(
                    "{name} is at least {size} bytes of JSON, above the {limit}-byte message \
                     limit; trim it"
                ),
            )
            .attr("field", Attr::Str(name.to_owned()))
            .attr("size", Attr::Int(size as u64))
            .attr("limit", Attr::Int(limit as u64))
            .into_pyerr(py));
        }
        Err(err) => {
            return Err(match argument.take_failure() {
                Some(failure) => conversion_error(py, name, failure),
                None => OwnedError::new(Class::InvalidMessage, format!("{name}: {err}"))
                    .attr("field", Attr::Str(name.to_owned()))
                    .into_pyerr(py),
            });
        }
    }
    match serde_json::from_slice::<Value>(&json) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(PyTypeError::new_err(format!("{name} must be a dict"))),
        Err(err) => Err(
            OwnedError::new(Class::InvalidMessage, format!("{name}: {err}"))
                .attr("field", Attr::Str(name.to_owned()))
                .into_pyerr(py),
        ),
    }
}

/// A `datetime`; a naive one is taken as UTC (servers should not depend on local time).
fn system_time(value: &Bound<'_, PyAny>) -> PyResult<SystemTime> {
    static DATETIME: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    static UTC: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let py = value.py();
    if !value.is_instance(DATETIME.import(py, "datetime", "datetime")?)? {
        return Err(PyTypeError::new_err(format!(
            "timestamp must be a datetime.datetime, not {}",
            crate::convert::type_name(value)
        )));
    }
    let mut value = value.clone();
    if value.getattr("tzinfo")?.is_none() {
        let utc = UTC.get_or_try_init(py, || {
            py.import("datetime")?
                .getattr("timezone")?
                .getattr("utc")
                .map(Bound::unbind)
        })?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("tzinfo", utc.bind(py))?;
        value = value.call_method("replace", (), Some(&kwargs))?;
    }
    // `timestamp()` of a subclass can return anything a float can hold: NaN, an infinity, or
    // seconds no `SystemTime` reaches. Each is refused here, not left to panic in the arithmetic.
    let seconds: f64 = value.call_method0("timestamp")?.extract()?;
    let time = Duration::try_from_secs_f64(seconds.abs())
        .ok()
        .and_then(|offset| {
            if seconds >= 0.0 {
                UNIX_EPOCH.checked_add(offset)
            } else {
                UNIX_EPOCH.checked_sub(offset)
            }
        });
    time.ok_or_else(|| {
        OwnedError::new(
            Class::InvalidMessage,
            format!(
                "invalid message: timestamp: its timestamp() returned {seconds}, which is not a \
                 time (pass a datetime between the years 1970 and 9999)"
            ),
        )
        .attr("field", Attr::Str("timestamp".into()))
        .into_pyerr(py)
    })
}

/// A `str` (any non-empty one, checked by the core at capture) or a `uuid.UUID`.
fn parse_message_id(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<MessageId> {
    static UUID: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    let text = if let Ok(s) = value.cast::<PyString>() {
        s.clone()
    } else if value.is_instance(UUID.import(py, "uuid", "UUID")?)? {
        value.str()?
    } else {
        return Err(PyTypeError::new_err(format!(
            "message_id must be a str or uuid.UUID, not {}",
            crate::convert::type_name(value)
        )));
    };
    Ok(MessageId::from(self::text("message_id", &text)?))
}
