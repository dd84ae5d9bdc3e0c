//! `Client(write_key, host, **options)` keyword arguments to `pulseline::ClientOptions`: the one
//! place that lists the Python option names. Defaults are the core's (`ClientOptions::default`).

use std::{path::PathBuf, time::Duration};

use pulseline::{ClientOptions, DiskBufferOptions, OptionValue, option_table};
use pyo3::{exceptions::PyTypeError, prelude::*, types::PyDict};

use crate::error::{Class, OwnedError};

/// Every keyword option `Client` accepts: the core's option table, whose names are Python's,
/// but for `host`, which is `Client`'s second positional argument.
pub(crate) fn option_names() -> Vec<&'static str> {
    option_table()
        .into_iter()
        .map(|o| o.name)
        .filter(|&name| name != "host")
        .collect()
}

/// `pulseline._native.OPTION_TABLE`: the core's option table in Python's units, a dict of
/// `name: (default, max)` with durations in seconds, sizes and counts as ints, and `None` where
/// there is no default value or no bound. The test suite checks the documentation against it.
pub(crate) fn python_table(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let table = PyDict::new(py);
    for option in option_table() {
        let default = python_value(py, &option.default)?;
        let max = match &option.max {
            Some(max) => python_value(py, max)?,
            None => py.None().into_bound(py),
        };
        table.set_item(option.name, (default, max))?;
    }
    Ok(table)
}

fn python_value<'py>(py: Python<'py>, value: &OptionValue) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        OptionValue::Duration(d) => d.as_secs_f64().into_pyobject(py)?.into_any(),
        OptionValue::Count(n) | OptionValue::Bytes(n) => n.into_pyobject(py)?.into_any(),
        OptionValue::Flag(b) => b.into_pyobject(py)?.to_owned().into_any(),
        OptionValue::Text(t) => t.into_pyobject(py)?.into_any(),
        _ => py.None().into_bound(py),
    })
}

/// The parsed options: the core's settings plus the Python callbacks, which the binding calls
/// from its reporting thread (never from the worker).
#[derive(Debug)]
pub(crate) struct Options {
    pub(crate) core: ClientOptions,
    pub(crate) on_error: Option<Py<PyAny>>,
    pub(crate) on_drop: Option<Py<PyAny>>,
}

impl Options {
    pub(crate) fn parse(
        host: Option<String>,
        kwargs: Option<&Bound<'_, PyDict>>,
        library_version: &str,
    ) -> PyResult<Options> {
        let mut core = ClientOptions::default();
        core.library_name = "pulseline-python".into();
        core.library_version = library_version.into();
        if let Some(host) = host {
            core.host = host;
        }
        let (mut disk, mut disk_enabled) = (DiskBufferOptions::default(), true);
        let (mut on_error, mut on_drop) = (None, None);
        for (key, value) in kwargs.into_iter().flat_map(|k| k.iter()) {
            let name: String = key.extract()?;
            let o = &mut core;
            match name.as_str() {
                "flush_interval" => o.flush_interval = seconds(&name, &value)?,
                "max_batch_messages" => o.max_batch_messages = count(&name, &value)?,
                "max_batch_bytes" => o.max_batch_bytes = count(&name, &value)?,
                "max_buffered_events" => o.max_buffered_events = count(&name, &value)?,
                "max_buffered_bytes" => o.max_buffered_bytes = count(&name, &value)?,
                "max_in_flight" => o.max_in_flight = count(&name, &value)?,
                "gzip" => o.gzip = flag(&name, &value)?,
                "connect_timeout" => o.connect_timeout = seconds(&name, &value)?,
                "request_timeout" => o.request_timeout = seconds(&name, &value)?,
                "retry_min_delay" => o.retry_min_delay = seconds(&name, &value)?,
                "retry_max_delay" => o.retry_max_delay = seconds(&name, &value)?,
                "max_retry_after" => o.max_retry_after = seconds(&name, &value)?,
                "max_retry_elapsed" => o.max_retry_elapsed = seconds(&name, &value)?,
                "shutdown_timeout" => o.shutdown_timeout = seconds(&name, &value)?,
                "disk_buffer" => disk_enabled = flag(&name, &value)?,
                "disk_buffer_directory" => {
                    if !value.is_none() {
                        let dir: PathBuf = value.extract().map_err(|_| wrong(&name, "a path"))?;
                        disk.directory = Some(dir);
                    }
                }
                "disk_buffer_max_bytes" => {
                    disk.max_bytes = count(&name, &value)? as u64;
                }
                "disk_buffer_max_age" => {
                    disk.max_age = seconds(&name, &value)?;
                }
                "disabled" => o.disabled = flag(&name, &value)?,
                "on_error" => on_error = callback(&name, value)?,
                "on_drop" => on_drop = callback(&name, value)?,
                _ => {
                    return Err(PyTypeError::new_err(format!(
                        "Client() got an unexpected option '{name}'; options are: {}",
                        option_names().join(", ")
                    )));
                }
            }
        }
        // `disk_buffer=False` wins over directory and size settings given alongside it.
        core.disk_buffer = disk_enabled.then_some(disk);
        Ok(Options {
            core,
            on_error,
            on_drop,
        })
    }
}

fn wrong(name: &str, expected: &str) -> PyErr {
    PyTypeError::new_err(format!("option {name} must be {expected}"))
}

fn config_error(py: Python<'_>, message: String) -> PyErr {
    OwnedError::new(Class::Config, message).into_pyerr(py)
}

/// A duration given in seconds (int or float), like `time.sleep` and `socket.settimeout`. More
/// seconds than a `Duration` holds (about 5.8e11 years) is the longest `Duration`: the core
/// treats it as "never" without overflowing a deadline.
pub(crate) fn seconds(name: &str, value: &Bound<'_, PyAny>) -> PyResult<Duration> {
    if value.is_instance_of::<pyo3::types::PyBool>() {
        return Err(wrong(name, "a number of seconds"));
    }
    let secs: f64 = value
        .extract()
        .map_err(|_| wrong(name, "a number of seconds"))?;
    if secs.is_finite() && secs > 0.0 {
        return Ok(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| {
        config_error(
            value.py(),
            format!("option {name} must be a finite, non-negative number of seconds, not {secs}"),
        )
    })
}

fn count(name: &str, value: &Bound<'_, PyAny>) -> PyResult<usize> {
    if value.is_instance_of::<pyo3::types::PyBool>() {
        return Err(wrong(name, "an int"));
    }
    let n: i64 = value.extract().map_err(|_| wrong(name, "an int"))?;
    usize::try_from(n).map_err(|_| {
        config_error(
            value.py(),
            format!("option {name} must not be negative, not {n}"),
        )
    })
}

fn flag(name: &str, value: &Bound<'_, PyAny>) -> PyResult<bool> {
    value
        .cast::<pyo3::types::PyBool>()
        .map(|b| b.is_true())
        .map_err(|_| wrong(name, "True or False"))
}

fn callback(name: &str, value: Bound<'_, PyAny>) -> PyResult<Option<Py<PyAny>>> {
    if value.is_none() {
        Ok(None)
    } else if value.is_callable() {
        Ok(Some(value.unbind()))
    } else {
        Err(wrong(name, "callable or None"))
    }
}
