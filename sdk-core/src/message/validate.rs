//! Checks of ids and names, with the collector's limits and its words.

use crate::{
    Error,
    limits::{MAX_EVENT_NAME_CHARS, MAX_ID_CHARS},
};

/// A required id: not empty, and within [`MAX_ID_CHARS`].
pub(super) fn id_within_limit(field: &'static str, value: &str) -> Result<(), Error> {
    if value.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    within_id_limit(field, value)
}

/// Counted in characters, as the collector counts them (a string of at most that many bytes
/// is within it without counting: capture is the caller's hot path).
pub(super) fn within_id_limit(field: &'static str, value: &str) -> Result<(), Error> {
    if value.len() > MAX_ID_CHARS && value.chars().nth(MAX_ID_CHARS).is_some() {
        return Err(invalid(field, ID_TOO_LONG));
    }
    Ok(())
}

/// An `event` or `name`: the collector trims it, then refuses it empty or over
/// [`MAX_EVENT_NAME_CHARS`]. It is sent as given.
pub(super) fn event_name(field: &'static str, value: &str) -> Result<(), Error> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(invalid(field, "must not be empty or only whitespace"));
    }
    if trimmed.len() > MAX_EVENT_NAME_CHARS && trimmed.chars().nth(MAX_EVENT_NAME_CHARS).is_some() {
        return Err(invalid(field, NAME_TOO_LONG));
    }
    Ok(())
}

/// The reasons for over-long values; a test ties their figures to the limits.
pub(super) const ID_TOO_LONG: &str = "must be at most 200 characters";
pub(super) const NAME_TOO_LONG: &str = "must be at most 200 characters once trimmed";

pub(super) fn invalid(field: &'static str, reason: &'static str) -> Error {
    Error::InvalidMessage { field, reason }
}
