//! `pulseline::Error` (and conversion failures) to the Python exception hierarchy defined in
//! `pulseline/errors.py`. The one place that knows which exception each error becomes.

use pyo3::{
    exceptions::{PyOSError, PyRuntimeError},
    prelude::*,
    sync::PyOnceLock,
    types::{PyDict, PyType},
};

use pulseline::ConversionFailure;

use crate::convert::{Failure, FailureKind};

/// The Python exception class an error maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Pulseline,
    Config,
    InvalidMessage,
    MessageTooLarge,
    UnsupportedType,
    Http,
    Transport,
    Rejected,
    DiskBuffer,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::Pulseline => "PulselineError",
            Class::Config => "ConfigError",
            Class::InvalidMessage => "InvalidMessageError",
            Class::MessageTooLarge => "MessageTooLargeError",
            Class::UnsupportedType => "UnsupportedTypeError",
            Class::Http => "HttpError",
            Class::Transport => "TransportError",
            Class::Rejected => "RejectedError",
            Class::DiskBuffer => "DiskBufferError",
        }
    }
}

/// An attribute value of an exception.
#[derive(Debug, Clone)]
pub(crate) enum Attr {
    Str(String),
    Int(u64),
    Seconds(Option<f64>),
}

/// An error detached from Rust lifetimes and from the GIL: made on any thread (the worker's
/// `on_error` hook included), turned into a Python exception later.
#[derive(Debug, Clone)]
pub(crate) struct OwnedError {
    pub(crate) class: Class,
    pub(crate) message: String,
    pub(crate) attrs: Vec<(&'static str, Attr)>,
    /// `(errno, description)` of an I/O error, raised as the exception's `__cause__`.
    pub(crate) os_cause: Option<(Option<i32>, String)>,
}

impl OwnedError {
    pub(crate) fn new(class: Class, message: impl Into<String>) -> Self {
        OwnedError {
            class,
            message: message.into(),
            attrs: Vec::new(),
            os_cause: None,
        }
    }

    pub(crate) fn attr(mut self, name: &'static str, value: Attr) -> Self {
        self.attrs.push((name, value));
        self
    }

    pub(crate) fn into_pyerr(self, py: Python<'_>) -> PyErr {
        match self.instantiate(py) {
            Ok(exception) => PyErr::from_value(exception),
            Err(err) => err,
        }
    }

    /// The exception object (also what `on_error` callbacks receive).
    pub(crate) fn instantiate<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let class = exception_class(py, self.class)?;
        let kwargs = PyDict::new(py);
        for (name, value) in &self.attrs {
            match value {
                Attr::Str(s) => kwargs.set_item(*name, s)?,
                Attr::Int(i) => kwargs.set_item(*name, i)?,
                Attr::Seconds(s) => kwargs.set_item(*name, s)?,
            }
        }
        let exception = class.call((&self.message,), Some(&kwargs))?;
        if let Some((errno, description)) = &self.os_cause {
            let cause = match errno {
                Some(errno) => PyOSError::new_err((*errno, description.clone())),
                None => PyOSError::new_err(description.clone()),
            };
            exception.setattr("__cause__", cause.value(py))?;
        }
        Ok(exception)
    }
}

impl From<&pulseline::Error> for OwnedError {
    fn from(error: &pulseline::Error) -> Self {
        use pulseline::Error as E;
        let message = error.to_string();
        match error {
            E::InvalidMessage { field, reason } => OwnedError::new(Class::InvalidMessage, message)
                .attr("field", Attr::Str((*field).into()))
                .attr("reason", Attr::Str((*reason).into())),
            E::MessageTooLarge { size, limit } => OwnedError::new(Class::MessageTooLarge, message)
                .attr("field", Attr::Str("message".into()))
                .attr("size", Attr::Int(*size as u64))
                .attr("limit", Attr::Int(*limit as u64)),
            E::Serialize { field, .. } => OwnedError::new(Class::InvalidMessage, message)
                .attr("field", Attr::Str((*field).into())),
            E::Http {
                status,
                retry_after,
                body,
            } => OwnedError::new(Class::Http, message)
                .attr("status", Attr::Int(u64::from(*status)))
                .attr(
                    "retry_after",
                    Attr::Seconds(retry_after.map(|d| d.as_secs_f64())),
                )
                .attr("body", Attr::Str(body.clone())),
            E::Transport { kind, .. } => {
                OwnedError::new(Class::Transport, message).attr("kind", Attr::Str(kind.to_string()))
            }
            E::Rejected { message_id, reason } => OwnedError::new(Class::Rejected, message)
                .attr("message_id", Attr::Str(message_id.clone()))
                .attr("reason", Attr::Str(reason.clone())),
            E::Disk { path, source } => {
                let mut e = OwnedError::new(Class::DiskBuffer, message)
                    .attr("path", Attr::Str(path.display().to_string()));
                e.os_cause = Some((source.raw_os_error(), source.to_string()));
                e
            }
            E::CorruptRecord { path, offset } => OwnedError::new(Class::DiskBuffer, message)
                .attr("path", Attr::Str(path.display().to_string()))
                .attr("offset", Attr::Int(*offset)),
            E::Config { .. } => OwnedError::new(Class::Config, message),
            _ => OwnedError::new(Class::Pulseline, message),
        }
    }
}

/// Runs a method body, turning a panic (a bug: no input should reach one) into a
/// `PulselineError` instead of pyo3's `PanicException`, which is a `BaseException` that
/// `except Exception` in the caller's code would not catch.
pub(crate) fn without_panic<T>(py: Python<'_>, body: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(OwnedError::new(
                Class::Pulseline,
                format!("pulseline internal error: {what} (a bug in pulseline; please report it)"),
            )
            .into_pyerr(py))
        }
    }
}

/// The exception for a value of `argument` that could not be converted to JSON.
pub(crate) fn conversion_error(py: Python<'_>, argument: &str, failure: Failure) -> PyErr {
    let path = failure.path.render(argument);
    let kind = match failure.kind {
        // The user's own code raised (an Enum property, a broken `isoformat`): let it through,
        // with a note (Python 3.11+) saying which value was being converted.
        FailureKind::Python(err) => {
            if let Ok(add_note) = err.value(py).getattr("add_note") {
                let _ = add_note.call1((format!("while pulseline converted {path}"),));
            }
            return err;
        }
        FailureKind::Value(kind) => kind,
    };
    let message = kind.message(&path);
    let error = match kind {
        ConversionFailure::Unsupported {
            what: type_name, ..
        }
        | ConversionFailure::NonStringKey { type_name }
        | ConversionFailure::NotAPair { type_name } => {
            OwnedError::new(Class::UnsupportedType, message)
                .attr("path", Attr::Str(path))
                .attr("type_name", Attr::Str(type_name))
        }
        _ => OwnedError::new(Class::InvalidMessage, message)
            .attr("field", Attr::Str(argument.to_owned()))
            .attr("path", Attr::Str(path)),
    };
    error.into_pyerr(py)
}

fn exception_class(py: Python<'_>, class: Class) -> PyResult<Bound<'_, PyType>> {
    static ERRORS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let module = ERRORS.get_or_try_init(py, || {
        py.import("pulseline.errors").map(|m| m.into_any().unbind())
    })?;
    module
        .bind(py)
        .getattr(class.name())?
        .cast_into::<PyType>()
        .map_err(|_| {
            PyRuntimeError::new_err(format!("pulseline.errors.{} is not a class", class.name()))
        })
}
