//! `new Client({ writeKey, host, ...options })` to `pulseline::ClientOptions`: the one place that
//! lists the Node option names. Every default is the core's (`ClientOptions::default`); times
//! are milliseconds, as everywhere in Node.

use std::{path::PathBuf, time::Duration};

use napi::{
    ValueType,
    bindgen_prelude::{FunctionRef, Object, Unknown},
};
use napi_derive::napi;
use pulseline::{DiskBufferOptions, OptionValue};

use crate::error::ErrorSpec;

/// Options of `new Client(options)`. Only `writeKey` is required; every other option has the
/// default stated here (the Rust core's). Times are in milliseconds.
#[napi(object, object_to_js = false)]
pub struct ClientOptions {
    /// The project's write key (`plw_...`), shown when the project is created.
    pub write_key: String,
    /// Base URL of the collector; batches go to `{host}/v1/batch`. Default `http://localhost:8080`.
    pub host: Option<String>,
    /// Longest a captured message waits before its batch is sealed and sent; also the bound on
    /// what a SIGKILL can lose. Default 500 ms.
    pub flush_interval: Option<f64>,
    /// Messages per request (at most 2,500). Default 1,000.
    pub max_batch_messages: Option<f64>,
    /// Uncompressed request body size in bytes (at most 512 KiB). Default 512 KiB.
    pub max_batch_bytes: Option<f64>,
    /// Messages held in memory before the disk buffer takes the overflow (or, without one, new
    /// captures are dropped and counted as `queue_full`). Default 100,000.
    pub max_buffered_events: Option<f64>,
    /// Bytes of serialized messages held in memory, as above. Default 32 MiB.
    pub max_buffered_bytes: Option<f64>,
    /// Requests in flight at once. Default 4.
    pub max_in_flight: Option<f64>,
    /// Gzip request bodies. Default `true`.
    pub gzip: Option<bool>,
    /// TCP/TLS connect timeout. Default 5,000 ms.
    pub connect_timeout: Option<f64>,
    /// Whole-request timeout. Default 10,000 ms.
    pub request_timeout: Option<f64>,
    /// Cap of the first retry's backoff (full jitter, doubling per retry). Default 100 ms.
    pub retry_min_delay: Option<f64>,
    /// Largest backoff cap. Default 10,000 ms.
    pub retry_max_delay: Option<f64>,
    /// Longest `Retry-After` honoured. Default 60,000 ms.
    pub max_retry_after: Option<f64>,
    /// A batch failing for this long stops being retried from memory and waits in the disk
    /// buffer (without one it is dropped as `retries_exhausted`). Default 30,000 ms.
    pub max_retry_elapsed: Option<f64>,
    /// How long `shutdown()` and the exit hooks wait for delivery before persisting what is
    /// left to the disk buffer. Default 5,000 ms.
    pub shutdown_timeout: Option<f64>,
    /// The crash-safe disk buffer: batches are written ahead to segment files and replayed by
    /// the next client after a crash or outage. Default `true`.
    pub disk_buffer: Option<bool>,
    /// Directory of the disk buffer. Default `<user cache dir>/pulseline/<hash of host and write key>` (`0700`).
    pub disk_buffer_directory: Option<String>,
    /// Upper bound of the disk buffer's size in bytes. Default 256 MiB.
    pub disk_buffer_max_bytes: Option<f64>,
    /// Batches older than this are deleted unsent (counted as `expired`). Default 7 days.
    pub disk_buffer_max_age: Option<f64>,
    /// Flush on `beforeExit`, and synchronously on `process.exit()` and SIGTERM, each bounded
    /// by `shutdownTimeout`. Default `true`.
    pub flush_on_exit: Option<bool>,
    /// Send nothing and write no disk buffer, while every method keeps working: captures are
    /// validated, return their `messageId` and are counted as dropped (`opted_out`). For tests
    /// and environments that must not send; `optIn()` does not undo it. Default `false`.
    pub disabled: Option<bool>,
    /// Called on the main thread with each delivery error (an `Error` whose `code` is
    /// `PULSELINE_HTTP`, `PULSELINE_TRANSPORT`, `PULSELINE_REJECTED` or
    /// `PULSELINE_DISK_BUFFER`). Delivery errors never throw. If the callback throws (or its
    /// promise rejects), the error is logged to stderr and ignored. Default: none.
    #[napi(ts_type = "(error: PulselineError) => void")]
    pub on_error: Option<FunctionRef<ErrorSpec, ()>>,
    /// Called with each drop: the reason (`queue_full`, `rejected_by_server`, `client_error`,
    /// `too_large`, `retries_exhausted`, `expired`, `disk_full`, `shutdown`, `unserializable`,
    /// `opted_out`) and the number of messages. Called on the main thread; if it throws, the
    /// error is logged to stderr and ignored. Default: none.
    #[napi(ts_type = "(reason: DropReason, count: number) => void")]
    pub on_drop: Option<FunctionRef<napi::bindgen_prelude::FnArgs<(String, f64)>, ()>>,
}

/// The fields of [`ClientOptions`] as JavaScript names them: `writeKey`, the core's option
/// table in camelCase, and `flushOnExit`. Any other key is a mistake (`maxBatchSize` for
/// `maxBatchMessages`) that would otherwise be silently ignored.
fn option_names() -> Vec<String> {
    let core = pulseline::option_table()
        .into_iter()
        .map(|o| camel_case(o.name));
    std::iter::once("writeKey".to_owned())
        .chain(core)
        .chain(std::iter::once("flushOnExit".to_owned()))
        .collect()
}

/// `max_batch_messages` → `maxBatchMessages`.
fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        match c {
            '_' => upper = true,
            c if upper => {
                out.push(c.to_ascii_uppercase());
                upper = false;
            }
            c => out.push(c),
        }
    }
    out
}

// Exported by `#[napi]`, whose registration unit-test builds leave out.
#[cfg_attr(test, allow(dead_code))]
/// One option of the core's option table, as Node names and measures it.
#[napi(object, object_from_js = false)]
pub struct OptionEntry {
    /// The option's name, e.g. `maxBatchMessages`.
    pub name: String,
    /// What its values measure: `ms`, `bytes`, `count`, `boolean`, `string` or `none`.
    #[napi(ts_type = "'ms' | 'bytes' | 'count' | 'boolean' | 'string' | 'none'")]
    pub unit: String,
    /// Its default: milliseconds for times, bytes or a count for sizes, a boolean or a string;
    /// `null` when unset (e.g. the disk buffer's directory, computed from host and key).
    #[napi(ts_type = "number | boolean | string | null")]
    pub default: serde_json::Value,
    /// The largest value that takes effect (larger ones are clamped), or `null`.
    #[napi(ts_type = "number | null")]
    pub max: serde_json::Value,
}

// Exported by `#[napi]`, whose registration unit-test builds leave out.
#[cfg_attr(test, allow(dead_code))]
/// The core's option table in Node's names and units (times in milliseconds): the defaults
/// and bounds the `ClientOptions` documentation states, which the test suite checks against it.
#[napi]
pub fn option_table() -> Vec<OptionEntry> {
    pulseline::option_table()
        .into_iter()
        .map(|o| OptionEntry {
            name: camel_case(o.name),
            unit: match o.default {
                OptionValue::Duration(_) => "ms",
                OptionValue::Bytes(_) => "bytes",
                OptionValue::Count(_) => "count",
                OptionValue::Flag(_) => "boolean",
                OptionValue::Text(_) => "string",
                _ => "none",
            }
            .to_owned(),
            default: node_value(Some(&o.default)),
            max: node_value(o.max.as_ref()),
        })
        .collect()
}

// Exported by `#[napi]`, whose registration unit-test builds leave out.
#[cfg_attr(test, allow(dead_code))]
fn node_value(value: Option<&OptionValue>) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Some(OptionValue::Duration(d)) => Value::from(d.as_secs_f64() * 1000.0),
        Some(OptionValue::Count(n) | OptionValue::Bytes(n)) => Value::from(*n),
        Some(OptionValue::Flag(b)) => Value::from(*b),
        Some(OptionValue::Text(t)) => Value::from(t.as_str()),
        _ => Value::Null,
    }
}

// Exported by `#[napi]`, whose registration unit-test builds leave out.
#[cfg_attr(test, allow(dead_code))]
/// Longest id (`userId`, `anonymousId`, `groupId`, `previousId`, `messageId`) the collector
/// accepts, in characters: the core's limit. Longer ones are refused at the call.
#[napi]
pub const MAX_ID_CHARS: u32 = pulseline::limits::MAX_ID_CHARS as u32;

// Exported by `#[napi]`, whose registration unit-test builds leave out.
#[cfg_attr(test, allow(dead_code))]
/// Longest `event` or `name` the collector accepts, in characters once trimmed.
#[napi]
pub const MAX_EVENT_NAME_CHARS: u32 = pulseline::limits::MAX_EVENT_NAME_CHARS as u32;

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The write key stays out of logs; the callbacks have no useful representation.
        f.debug_struct("ClientOptions")
            .field("host", &self.host)
            .field("on_error", &self.on_error.is_some())
            .field("on_drop", &self.on_drop.is_some())
            .finish_non_exhaustive()
    }
}

/// The parsed options: the core's settings plus the JavaScript callbacks.
pub(crate) struct Parsed {
    pub(crate) write_key: String,
    pub(crate) core: pulseline::ClientOptions,
    pub(crate) core_shutdown_timeout: Duration,
    pub(crate) flush_on_exit: bool,
    pub(crate) on_error: Option<FunctionRef<ErrorSpec, ()>>,
    pub(crate) on_drop: Option<FunctionRef<napi::bindgen_prelude::FnArgs<(String, f64)>, ()>>,
}

impl ClientOptions {
    /// Reads the options object; a missing `writeKey` or a value of the wrong type is a
    /// `TypeError` with `code: 'PULSELINE_CONFIG'`.
    pub(crate) fn from_unknown(value: Unknown<'_>) -> Result<ClientOptions, ErrorSpec> {
        match value.get_type() {
            Ok(ValueType::Object) => {}
            _ => {
                return Err(ErrorSpec::type_error(
                    "PULSELINE_CONFIG",
                    "new Client() takes an options object, e.g. new Client({ writeKey: 'plw_...', host: 'http://127.0.0.1:8080' })",
                ));
            }
        }
        let object = crate::error::from_unknown::<Object<'_>>(value)
            .and_then(|o| Object::keys(&o))
            .map_err(|e| {
                ErrorSpec::type_error("PULSELINE_CONFIG", format!("invalid options: {}", e.reason))
            })?;
        let names = option_names();
        if let Some(unknown) = object.iter().find(|k| !names.contains(k)) {
            return Err(ErrorSpec::type_error(
                "PULSELINE_CONFIG",
                format!(
                    "unknown option {unknown:?}; the options are {}",
                    names.join(", ")
                ),
            )
            .field("option", crate::error::Field::Str(unknown.clone())));
        }
        crate::error::from_unknown::<ClientOptions>(value).map_err(|e| {
            ErrorSpec::type_error("PULSELINE_CONFIG", format!("invalid options: {}", e.reason))
        })
    }

    pub(crate) fn parse(self) -> Result<Parsed, ErrorSpec> {
        let mut core = pulseline::ClientOptions::default();
        core.library_name = "pulseline-node".into();
        core.library_version = env!("CARGO_PKG_VERSION").into();
        let o = &mut core;
        if let Some(host) = self.host {
            o.host = host;
        }
        set_ms(&mut o.flush_interval, "flushInterval", self.flush_interval)?;
        set_count(
            &mut o.max_batch_messages,
            "maxBatchMessages",
            self.max_batch_messages,
        )?;
        set_count(
            &mut o.max_batch_bytes,
            "maxBatchBytes",
            self.max_batch_bytes,
        )?;
        set_count(
            &mut o.max_buffered_events,
            "maxBufferedEvents",
            self.max_buffered_events,
        )?;
        set_count(
            &mut o.max_buffered_bytes,
            "maxBufferedBytes",
            self.max_buffered_bytes,
        )?;
        set_count(&mut o.max_in_flight, "maxInFlight", self.max_in_flight)?;
        if let Some(gzip) = self.gzip {
            o.gzip = gzip;
        }
        set_ms(
            &mut o.connect_timeout,
            "connectTimeout",
            self.connect_timeout,
        )?;
        set_ms(
            &mut o.request_timeout,
            "requestTimeout",
            self.request_timeout,
        )?;
        set_ms(
            &mut o.retry_min_delay,
            "retryMinDelay",
            self.retry_min_delay,
        )?;
        set_ms(
            &mut o.retry_max_delay,
            "retryMaxDelay",
            self.retry_max_delay,
        )?;
        set_ms(
            &mut o.max_retry_after,
            "maxRetryAfter",
            self.max_retry_after,
        )?;
        set_ms(
            &mut o.max_retry_elapsed,
            "maxRetryElapsed",
            self.max_retry_elapsed,
        )?;
        set_ms(
            &mut o.shutdown_timeout,
            "shutdownTimeout",
            self.shutdown_timeout,
        )?;
        let mut disk = DiskBufferOptions::default();
        disk.directory = self.disk_buffer_directory.map(PathBuf::from);
        let mut max_bytes = disk.max_bytes as usize;
        set_count(
            &mut max_bytes,
            "diskBufferMaxBytes",
            self.disk_buffer_max_bytes,
        )?;
        disk.max_bytes = max_bytes as u64;
        set_ms(
            &mut disk.max_age,
            "diskBufferMaxAge",
            self.disk_buffer_max_age,
        )?;
        // `diskBuffer: false` wins over directory and size settings given alongside it.
        o.disk_buffer = self.disk_buffer.unwrap_or(true).then_some(disk);
        o.disabled = self.disabled.unwrap_or(false);
        Ok(Parsed {
            write_key: self.write_key,
            core_shutdown_timeout: core.shutdown_timeout,
            core,
            flush_on_exit: self.flush_on_exit.unwrap_or(true),
            on_error: self.on_error,
            on_drop: self.on_drop,
        })
    }
}

fn invalid(name: &str, expected: &str, value: f64) -> ErrorSpec {
    ErrorSpec::new(
        crate::error::Constructor::RangeError,
        "PULSELINE_CONFIG",
        format!("option {name} must be {expected}, not {value}"),
    )
    .field("option", crate::error::Field::Str(name.to_owned()))
}

/// A duration in milliseconds.
pub(crate) fn millis(name: &str, ms: f64) -> Result<Duration, ErrorSpec> {
    Duration::try_from_secs_f64(ms / 1000.0)
        .map_err(|_| invalid(name, "a finite, non-negative number of milliseconds", ms))
}

fn set_ms(slot: &mut Duration, name: &str, value: Option<f64>) -> Result<(), ErrorSpec> {
    if let Some(ms) = value {
        *slot = millis(name, ms)?;
    }
    Ok(())
}

fn set_count(slot: &mut usize, name: &str, value: Option<f64>) -> Result<(), ErrorSpec> {
    if let Some(n) = value {
        if !(n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= 2f64.powi(53)) {
            return Err(invalid(name, "a non-negative integer", n));
        }
        *slot = n as usize;
    }
    Ok(())
}
