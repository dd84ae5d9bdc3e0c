//! The arguments every capture method shares (who, when, context, ids), converted to what the
//! core's message builders take.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pulseline::{User, Uuid};
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

/// `user_id` / `anonymous_id`: a str, or an int (database primary keys), sent as a string.
pub(crate) fn id(name: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<String>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(None);
    };
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(Some(s.to_str()?.to_owned()));
    }
    if value.is_instance_of::<PyInt>() && !value.is_instance_of::<pyo3::types::PyBool>() {
        return Ok(Some(value.str()?.to_str()?.to_owned()));
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
    match (id("user_id", user_id)?, id("anonymous_id", anonymous_id)?) {
        (Some(u), Some(a)) => Ok(User::id(u).with_anonymous_id(a)),
        (Some(u), None) => Ok(User::id(u)),
        (None, Some(a)) => Ok(User::anonymous(a)),
        (None, None) => Err(OwnedError::new(
            Class::InvalidMessage,
            "invalid message: userId or anonymousId is required (pass user_id or anonymous_id)",
        )
        .attr("field", Attr::Str("userId".into()))
        .into_pyerr(py)),
    }
}

/// `properties` / `traits`: a dict, serialized by the core straight from the Python objects.
pub(crate) fn object_argument<'py>(
    name: &str,
    value: Option<&Bound<'py, PyAny>>,
) -> PyResult<Option<Argument<'py>>> {
    match value.filter(|v| !v.is_none()) {
        None => Ok(None),
        Some(v) if v.is_instance_of::<PyDict>() => Ok(Some(Argument::new(v.clone()))),
        Some(v) => Err(PyTypeError::new_err(format!(
            "{name} must be a dict, not {}",
            crate::convert::type_name(v)
        ))),
    }
}

/// The optional fields common to every message type.
#[derive(Debug, Default)]
pub(crate) struct Common {
    pub(crate) timestamp: Option<SystemTime>,
    pub(crate) message_id: Option<Uuid>,
    pub(crate) context: Option<Map<String, Value>>,
    pub(crate) integrations: Option<Map<String, Value>>,
}

impl Common {
    pub(crate) fn parse(
        py: Python<'_>,
        timestamp: Option<&Bound<'_, PyAny>>,
        context: Option<&Bound<'_, PyAny>>,
        integrations: Option<&Bound<'_, PyAny>>,
        message_id: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Common> {
        Ok(Common {
            timestamp: timestamp
                .filter(|t| !t.is_none())
                .map(system_time)
                .transpose()?,
            message_id: message_id
                .filter(|m| !m.is_none())
                .map(|m| uuid(py, m))
                .transpose()?,
            context: map(py, "context", context)?,
            integrations: map(py, "integrations", integrations)?,
        })
    }
}

/// Applies [`Common`] to any of the core's message builders (they share the setter names).
macro_rules! with_common {
    ($message:expr, $common:expr) => {{
        let common = $common;
        let mut message = $message;
        if let Some(at) = common.timestamp {
            message = message.timestamp(at);
        }
        if let Some(id) = common.message_id {
            message = message.message_id(id);
        }
        if let Some(context) = common.context {
            message = message.context(context);
        }
        if let Some(integrations) = common.integrations {
            message = message.integrations(integrations);
        }
        message
    }};
}
pub(crate) use with_common;

fn map(
    py: Python<'_>,
    name: &str,
    value: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<Map<String, Value>>> {
    let Some(argument) = object_argument(name, value)? else {
        return Ok(None);
    };
    match serde_json::to_value(&argument) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(PyTypeError::new_err(format!("{name} must be a dict"))),
        Err(err) => Err(match argument.take_failure() {
            Some(failure) => conversion_error(py, name, failure),
            None => OwnedError::new(Class::InvalidMessage, format!("{name}: {err}")).into_pyerr(py),
        }),
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
    let seconds: f64 = value.call_method0("timestamp")?.extract()?;
    let offset = Duration::from_secs_f64(seconds.abs());
    Ok(if seconds >= 0.0 {
        UNIX_EPOCH + offset
    } else {
        UNIX_EPOCH - offset
    })
}

/// A `uuid.UUID` or its string form.
fn uuid(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Uuid> {
    static UUID: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    let text = if value.is_instance(UUID.import(py, "uuid", "UUID")?)? {
        value.str()?
    } else if let Ok(s) = value.cast::<PyString>() {
        s.clone()
    } else {
        return Err(PyTypeError::new_err(format!(
            "message_id must be a str or uuid.UUID, not {}",
            crate::convert::type_name(value)
        )));
    };
    let text = text.to_str()?;
    Uuid::parse_str(text).map_err(|err| {
        OwnedError::new(
            Class::InvalidMessage,
            format!("invalid message: messageId {text:?} is not a UUID ({err})"),
        )
        .attr("field", Attr::Str("messageId".into()))
        .into_pyerr(py)
    })
}
