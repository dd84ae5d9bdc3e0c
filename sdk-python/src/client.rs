//! `pulseline._native.Client`: the core client behind a Python class. Capture methods convert
//! their arguments with the GIL held (that is all they do in Python terms); the core's worker
//! thread never touches Python.

use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use pulseline::{Alias, Group, Identify, MessageId, Page, Screen, Track};
use pyo3::{
    prelude::*,
    types::{PyDict, PyList, PyString, PyTuple},
};

use crate::{
    convert::Argument,
    error::{OwnedError, conversion_error, without_panic},
    message::{common_fields, object_argument, text, user},
    options::{Options, option_names, seconds},
    report::{Report, Reports},
    stats::{FlushOutcome, ShutdownOutcome, Stats},
};

/// How long one blocking wait lasts before checking for Ctrl-C.
const SIGNAL_CHECK: Duration = Duration::from_millis(200);
/// `flush()` without a timeout: until everything is resolved (the core's retry budget bounds it).
const NO_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// Sends analytics events to a Pulseline (or any Segment-compatible) collector.
#[pyclass(
    module = "pulseline._native",
    name = "Client",
    subclass,
    frozen,
    weakref
)]
#[derive(Debug)]
pub(crate) struct Client {
    /// Replaced in a forked child (see `_reinitialize_after_fork`); locked only briefly, with
    /// the GIL held, never across Python code or a wait.
    current: Mutex<Current>,
    shutdown_timeout: Duration,
    #[pyo3(get)]
    on_error: Option<Py<PyAny>>,
    #[pyo3(get)]
    on_drop: Option<Py<PyAny>>,
}

#[derive(Debug)]
struct Current {
    core: pulseline::Client,
    reports: Arc<Reports>,
    shut_down: bool,
}

impl Client {
    fn current(&self) -> MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn core(&self) -> pulseline::Client {
        self.current().core.clone()
    }

    /// Runs a capture and maps its result: the `messageId`, or `None` when the message was
    /// dropped (buffer full: counted and reported; client shut down).
    fn capture<'py>(
        &self,
        py: Python<'py>,
        argument: Option<(&str, &Argument<'py>)>,
        capture: impl FnOnce(&pulseline::Client) -> Result<MessageId, pulseline::Error>,
    ) -> PyResult<Option<Bound<'py, PyString>>> {
        match capture(&self.core()) {
            Ok(id) => Ok(Some(PyString::new(py, id.as_str()))),
            Err(pulseline::Error::QueueFull { .. } | pulseline::Error::Closed) => Ok(None),
            Err(err) => {
                if let Some((name, argument)) = argument
                    && let Some(failure) = argument.take_failure()
                {
                    return Err(conversion_error(py, name, failure));
                }
                Err(OwnedError::from(&err).into_pyerr(py))
            }
        }
    }
}

impl Drop for Client {
    /// A client dropped without `shutdown()` delivers what it can within `shutdown_timeout`,
    /// as the core's own drop does, but with the GIL released while it waits.
    fn drop(&mut self) {
        let current = self.current.get_mut().unwrap_or_else(|p| p.into_inner());
        if current.shut_down {
            return;
        }
        let (core, timeout) = (current.core.clone(), self.shutdown_timeout);
        Python::attach(|py| py.detach(|| core.shutdown(timeout)));
    }
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (write_key, host = None, **options))]
    fn new(
        py: Python<'_>,
        write_key: String,
        host: Option<String>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        without_panic(py, || {
            let version = env!("CARGO_PKG_VERSION");
            let Options {
                mut core,
                on_error,
                on_drop,
            } = Options::parse(host, options, version)?;
            let reports = Reports::new();
            reports.install(&mut core);
            let shutdown_timeout = core.shutdown_timeout;
            let client = py
                .detach(|| pulseline::Client::builder(write_key).options(core).build())
                .map_err(|err| OwnedError::from(&err).into_pyerr(py))?;
            Ok(Client {
                current: Mutex::new(Current {
                    core: client,
                    reports,
                    shut_down: false,
                }),
                shutdown_timeout,
                on_error,
                on_drop,
            })
        })
    }

    /// The keyword options `Client()` accepts.
    #[classattr]
    #[pyo3(name = "OPTIONS")]
    fn options<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, option_names())
    }

    /// Captures a `track` (something a user did); returns its `messageId`, or `None` if it was
    /// dropped because the buffer is full or the client is shut down.
    #[pyo3(signature = (user_id, event, properties = None, *, anonymous_id = None, timestamp = None, context = None, integrations = None, message_id = None))]
    #[allow(clippy::too_many_arguments)]
    fn track<'py>(
        &self,
        py: Python<'py>,
        user_id: Option<&Bound<'py, PyAny>>,
        event: &Bound<'py, PyString>,
        properties: Option<&Bound<'py, PyAny>>,
        anonymous_id: Option<&Bound<'py, PyAny>>,
        timestamp: Option<&Bound<'py, PyAny>>,
        context: Option<&Bound<'py, PyAny>>,
        integrations: Option<&Bound<'py, PyAny>>,
        message_id: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyString>>> {
        without_panic(py, || {
            let user = user(py, user_id, anonymous_id)?;
            let message = Track::new(user, text("event", event)?);
            let common = common_fields(py, timestamp, context, integrations, message_id)?;
            let properties = object_argument("properties", properties)?;
            match &properties {
                None => self.capture(py, None, |c| c.track(message.fields(common))),
                Some(p) => self.capture(py, Some(("properties", p)), |c| {
                    c.track(message.properties(p).fields(common))
                }),
            }
        })
    }

    /// Captures an `identify` (who a user is); returns its `messageId` or `None` (see `track`).
    #[pyo3(signature = (user_id, traits = None, *, anonymous_id = None, timestamp = None, context = None, integrations = None, message_id = None))]
    #[allow(clippy::too_many_arguments)]
    fn identify<'py>(
        &self,
        py: Python<'py>,
        user_id: Option<&Bound<'py, PyAny>>,
        traits: Option<&Bound<'py, PyAny>>,
        anonymous_id: Option<&Bound<'py, PyAny>>,
        timestamp: Option<&Bound<'py, PyAny>>,
        context: Option<&Bound<'py, PyAny>>,
        integrations: Option<&Bound<'py, PyAny>>,
        message_id: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyString>>> {
        without_panic(py, || {
            let message = Identify::new(user(py, user_id, anonymous_id)?);
            let common = common_fields(py, timestamp, context, integrations, message_id)?;
            match &object_argument("traits", traits)? {
                None => self.capture(py, None, |c| c.identify(message.fields(common))),
                Some(t) => self.capture(py, Some(("traits", t)), |c| {
                    c.identify(message.traits(t).fields(common))
                }),
            }
        })
    }

    /// Captures a `page` view; returns its `messageId` or `None` (see `track`).
    #[pyo3(signature = (user_id, name = None, properties = None, *, anonymous_id = None, timestamp = None, context = None, integrations = None, message_id = None))]
    #[allow(clippy::too_many_arguments)]
    fn page<'py>(
        &self,
        py: Python<'py>,
        user_id: Option<&Bound<'py, PyAny>>,
        name: Option<&Bound<'py, PyString>>,
        properties: Option<&Bound<'py, PyAny>>,
        anonymous_id: Option<&Bound<'py, PyAny>>,
        timestamp: Option<&Bound<'py, PyAny>>,
        context: Option<&Bound<'py, PyAny>>,
        integrations: Option<&Bound<'py, PyAny>>,
        message_id: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyString>>> {
        without_panic(py, || {
            let mut message = Page::new(user(py, user_id, anonymous_id)?);
            if let Some(name) = name {
                message = message.name(text("name", name)?);
            }
            let common = common_fields(py, timestamp, context, integrations, message_id)?;
            match &object_argument("properties", properties)? {
                None => self.capture(py, None, |c| c.page(message.fields(common))),
                Some(p) => self.capture(py, Some(("properties", p)), |c| {
                    c.page(message.properties(p).fields(common))
                }),
            }
        })
    }

    /// Captures a `screen` view (mobile or desktop app); returns its `messageId` or `None`.
    #[pyo3(signature = (user_id, name = None, properties = None, *, anonymous_id = None, timestamp = None, context = None, integrations = None, message_id = None))]
    #[allow(clippy::too_many_arguments)]
    fn screen<'py>(
        &self,
        py: Python<'py>,
        user_id: Option<&Bound<'py, PyAny>>,
        name: Option<&Bound<'py, PyString>>,
        properties: Option<&Bound<'py, PyAny>>,
        anonymous_id: Option<&Bound<'py, PyAny>>,
        timestamp: Option<&Bound<'py, PyAny>>,
        context: Option<&Bound<'py, PyAny>>,
        integrations: Option<&Bound<'py, PyAny>>,
        message_id: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyString>>> {
        without_panic(py, || {
            let mut message = Screen::new(user(py, user_id, anonymous_id)?);
            if let Some(name) = name {
                message = message.name(text("name", name)?);
            }
            let common = common_fields(py, timestamp, context, integrations, message_id)?;
            match &object_argument("properties", properties)? {
                None => self.capture(py, None, |c| c.screen(message.fields(common))),
                Some(p) => self.capture(py, Some(("properties", p)), |c| {
                    c.screen(message.properties(p).fields(common))
                }),
            }
        })
    }

    /// Captures a `group` (ties a user to a company or team); returns its `messageId` or `None`.
    #[pyo3(signature = (user_id, group_id, traits = None, *, anonymous_id = None, timestamp = None, context = None, integrations = None, message_id = None))]
    #[allow(clippy::too_many_arguments)]
    fn group<'py>(
        &self,
        py: Python<'py>,
        user_id: Option<&Bound<'py, PyAny>>,
        group_id: &Bound<'py, PyAny>,
        traits: Option<&Bound<'py, PyAny>>,
        anonymous_id: Option<&Bound<'py, PyAny>>,
        timestamp: Option<&Bound<'py, PyAny>>,
        context: Option<&Bound<'py, PyAny>>,
        integrations: Option<&Bound<'py, PyAny>>,
        message_id: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyString>>> {
        without_panic(py, || {
            let group_id = crate::message::id("group_id", Some(group_id))?.unwrap_or_default();
            let message = Group::new(user(py, user_id, anonymous_id)?, group_id);
            let common = common_fields(py, timestamp, context, integrations, message_id)?;
            match &object_argument("traits", traits)? {
                None => self.capture(py, None, |c| c.group(message.fields(common))),
                Some(t) => self.capture(py, Some(("traits", t)), |c| {
                    c.group(message.traits(t).fields(common))
                }),
            }
        })
    }

    /// Captures an `alias`: `previous_id` (e.g. an anonymous id) is the same person as
    /// `user_id`. Returns its `messageId` or `None`.
    #[pyo3(signature = (previous_id, user_id, *, timestamp = None, context = None, integrations = None, message_id = None))]
    #[allow(clippy::too_many_arguments)]
    fn alias<'py>(
        &self,
        py: Python<'py>,
        previous_id: &Bound<'py, PyAny>,
        user_id: &Bound<'py, PyAny>,
        timestamp: Option<&Bound<'py, PyAny>>,
        context: Option<&Bound<'py, PyAny>>,
        integrations: Option<&Bound<'py, PyAny>>,
        message_id: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyString>>> {
        without_panic(py, || {
            let previous_id =
                crate::message::id("previous_id", Some(previous_id))?.unwrap_or_default();
            let user_id = crate::message::id("user_id", Some(user_id))?.unwrap_or_default();
            let common = common_fields(py, timestamp, context, integrations, message_id)?;
            self.capture(py, None, |c| {
                c.alias(Alias::new(user_id, previous_id).fields(common))
            })
        })
    }

    /// Waits until every message captured before the call is delivered, dropped, or persisted
    /// to the disk buffer; at most `timeout` seconds (default: until resolved, which the retry
    /// budget bounds). Releases the GIL while waiting.
    #[pyo3(signature = (timeout = None))]
    fn flush(&self, py: Python<'_>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<FlushOutcome> {
        without_panic(py, || {
            // Longer than a year is a year: the deadline below must fit an `Instant`.
            let total = match timeout.filter(|t| !t.is_none()) {
                Some(t) => seconds("timeout", t)?.min(NO_TIMEOUT),
                None => NO_TIMEOUT,
            };
            let core = self.core();
            let deadline = std::time::Instant::now() + total;
            loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                let slice = left.min(SIGNAL_CHECK);
                let outcome = FlushOutcome::from(py.detach(|| core.flush(slice)));
                if !outcome.timed_out() || left <= SIGNAL_CHECK {
                    return Ok(outcome);
                }
                py.check_signals()?;
            }
        })
    }

    /// Stops capturing, delivers what it can within `timeout` seconds (default: the client's
    /// `shutdown_timeout`, 5 s), and leaves the rest in the disk buffer for the next process.
    /// Later captures return `None`. Releases the GIL while waiting.
    #[pyo3(signature = (timeout = None))]
    fn shutdown(
        &self,
        py: Python<'_>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<ShutdownOutcome> {
        without_panic(py, || {
            let timeout = match timeout.filter(|t| !t.is_none()) {
                Some(t) => seconds("timeout", t)?,
                None => self.shutdown_timeout,
            };
            let core = {
                let mut current = self.current();
                current.shut_down = true;
                current.core.clone()
            };
            Ok(py.detach(|| core.shutdown(timeout)).into())
        })
    }

    /// Delivery counters since the client was created.
    fn stats(&self, py: Python<'_>) -> PyResult<Stats> {
        without_panic(py, || Stats::new(py, self.core().stats()))
    }

    /// Stops sending: later captures still validate their arguments and return a `messageId`,
    /// but are dropped (counted as `opted_out` in `stats().dropped`) and reach neither the
    /// network nor the disk buffer. Events captured before the call are still delivered. Not
    /// persisted: store the user's choice and call it again at start-up.
    fn opt_out(&self) {
        self.core().opt_out();
    }

    /// Resumes sending after `opt_out()`. A client created with `disabled=True` stays disabled.
    fn opt_in(&self) {
        self.core().opt_in();
    }

    /// Whether `opt_out()` is in effect.
    #[getter]
    fn is_opted_out(&self) -> bool {
        self.core().is_opted_out()
    }

    /// Whether the client was created with `disabled=True`.
    #[getter]
    fn is_disabled(&self) -> bool {
        self.core().is_disabled()
    }

    /// Whether `shutdown()` was called.
    #[getter]
    fn is_shut_down(&self) -> bool {
        self.current().shut_down
    }

    /// For the package's reporting thread: waits up to `timeout` seconds (GIL released) and
    /// returns `(reports, overflowed)`, each report `("error", exception)` or
    /// `("drop", reason, messages)`; `None` once the client is shut down and nothing is left.
    fn _take_reports<'py>(
        &self,
        py: Python<'py>,
        timeout: f64,
    ) -> PyResult<Option<(Bound<'py, PyList>, u64)>> {
        without_panic(py, || {
            let (reports, shut_down) = {
                let current = self.current();
                (Arc::clone(&current.reports), current.shut_down)
            };
            let wait = Duration::try_from_secs_f64(timeout).unwrap_or(Duration::ZERO);
            let (taken, overflowed) = py.detach(|| reports.take(wait));
            if taken.is_empty() && overflowed == 0 && shut_down {
                return Ok(None);
            }
            let list = PyList::empty(py);
            for report in taken {
                match report {
                    Report::Error(error) => list.append(("error", error.instantiate(py)?))?,
                    Report::Dropped { reason, messages } => {
                        list.append(("drop", reason, messages))?
                    }
                }
            }
            Ok(Some((list, overflowed)))
        })
    }

    /// For `os.register_at_fork(after_in_child=...)`: gives this client a fresh worker in the
    /// child process. What the parent captured before the fork stays the parent's to send.
    fn _reinitialize_after_fork(&self, py: Python<'_>) -> PyResult<()> {
        without_panic(py, || {
            let mut current = self.current();
            if current.shut_down {
                return Ok(());
            }
            let reports = Reports::new();
            let core = current
                .core
                .clone()
                .reinitialize_after_fork_with(|options| reports.install(options))
                .map_err(|err| OwnedError::from(&err).into_pyerr(py))?;
            // The parent's client and report queue were leaked as they were at the fork: dropping
            // them here could wait on a lock or a thread that exists only in the parent.
            std::mem::forget(std::mem::replace(&mut current.core, core));
            std::mem::forget(std::mem::replace(&mut current.reports, reports));
            Ok(())
        })
    }
}
