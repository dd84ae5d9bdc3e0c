//! The one table of the options the language bindings expose: names, defaults and bounds.
//!
//! Python (`Client(**options)`) and Node (`new Client({...})`) map these names to their own
//! naming and units, and each binding's test suite checks that its documented defaults and
//! limits are the ones below, so the three never drift apart again.

use std::time::Duration;

#[cfg(feature = "disk-buffer")]
use crate::DiskBufferOptions;
use crate::{
    ClientOptions,
    limits::{MAX_BATCH_MESSAGES, MAX_REQUEST_BYTES},
};

/// A value of an option in the [`option_table`], typed so each binding states it in its own
/// units (Python: seconds; Node: milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OptionValue {
    /// A length of time.
    Duration(Duration),
    /// A number of things (messages, requests).
    Count(u64),
    /// A number of bytes.
    Bytes(u64),
    /// On or off.
    Flag(bool),
    /// Text, such as the collector's URL.
    Text(String),
    /// No value; the text says what applies instead (e.g. where the disk buffer goes).
    Unset(&'static str),
}

/// One option of the [`option_table`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OptionSpec {
    /// The option's name in snake_case (Python's spelling); Node spells it in camelCase.
    pub name: &'static str,
    /// Its default: what [`ClientOptions::default`] holds.
    pub default: OptionValue,
    /// The largest value that takes effect, if there is one: a larger value is clamped to it.
    pub max: Option<OptionValue>,
}

/// Where the disk buffer goes when no directory is given.
pub const DEFAULT_DISK_BUFFER_DIRECTORY: &str =
    "<user cache dir>/pulseline/<hash of host and write key>";

/// Every option the bindings expose, in the order their documentation lists them, with the
/// defaults of [`ClientOptions::default`] (and [`DiskBufferOptions::default`]).
///
/// ```
/// use pulseline::{OptionValue, option_table};
///
/// let batch = option_table().into_iter().find(|o| o.name == "max_batch_messages").unwrap();
/// assert_eq!(batch.default, OptionValue::Count(1_000));
/// assert_eq!(batch.max, Some(OptionValue::Count(2_500)));
/// ```
pub fn option_table() -> Vec<OptionSpec> {
    // Destructured in full, so a new field of `ClientOptions` does not compile until it is
    // either listed here or named as one the bindings set themselves.
    let ClientOptions {
        host,
        library_name: _,
        library_version: _,
        flush_interval,
        max_batch_messages,
        max_batch_bytes,
        max_buffered_events,
        max_buffered_bytes,
        max_in_flight,
        gzip,
        connect_timeout,
        request_timeout,
        retry_min_delay,
        retry_max_delay,
        max_retry_after,
        max_retry_elapsed,
        shutdown_timeout,
        #[cfg(feature = "disk-buffer")]
            disk_buffer: _,
        disabled,
        on_drop: _,
        on_error: _,
    } = ClientOptions::default();
    use OptionValue::{Bytes, Count, Duration as Time, Flag, Text, Unset};
    let spec = |name, default, max| OptionSpec { name, default, max };
    let mut table = vec![
        spec("host", Text(host), None),
        spec("flush_interval", Time(flush_interval), None),
        spec(
            "max_batch_messages",
            Count(max_batch_messages as u64),
            Some(Count(MAX_BATCH_MESSAGES as u64)),
        ),
        spec(
            "max_batch_bytes",
            Bytes(max_batch_bytes as u64),
            Some(Bytes(MAX_REQUEST_BYTES as u64)),
        ),
        spec(
            "max_buffered_events",
            Count(max_buffered_events as u64),
            None,
        ),
        spec("max_buffered_bytes", Bytes(max_buffered_bytes as u64), None),
        spec("max_in_flight", Count(max_in_flight as u64), None),
        spec("gzip", Flag(gzip), None),
        spec("connect_timeout", Time(connect_timeout), None),
        spec("request_timeout", Time(request_timeout), None),
        spec("retry_min_delay", Time(retry_min_delay), None),
        spec("retry_max_delay", Time(retry_max_delay), None),
        spec("max_retry_after", Time(max_retry_after), None),
        spec("max_retry_elapsed", Time(max_retry_elapsed), None),
        spec("shutdown_timeout", Time(shutdown_timeout), None),
    ];
    #[cfg(feature = "disk-buffer")]
    {
        let DiskBufferOptions {
            directory,
            max_bytes,
            max_age,
            segment_bytes: _,
        } = DiskBufferOptions::default();
        debug_assert!(directory.is_none());
        table.extend([
            spec("disk_buffer", Flag(true), None),
            spec(
                "disk_buffer_directory",
                Unset(DEFAULT_DISK_BUFFER_DIRECTORY),
                None,
            ),
            spec("disk_buffer_max_bytes", Bytes(max_bytes), None),
            spec("disk_buffer_max_age", Time(max_age), None),
        ]);
    }
    table.extend([
        spec("disabled", Flag(disabled), None),
        spec("on_error", Unset("none"), None),
        spec("on_drop", Unset("none"), None),
    ]);
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case() {
        let table = option_table();
        let mut names: Vec<_> = table.iter().map(|o| o.name).collect();
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), table.len());
    }

    #[test]
    fn every_default_is_within_its_bound() {
        for o in option_table() {
            match (&o.default, &o.max) {
                (OptionValue::Count(d), Some(OptionValue::Count(m)))
                | (OptionValue::Bytes(d), Some(OptionValue::Bytes(m))) => {
                    assert!(d <= m, "{}", o.name)
                }
                (_, None) => {}
                other => panic!("{}: bound of another kind: {other:?}", o.name),
            }
        }
    }
}
