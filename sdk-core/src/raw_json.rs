//! Already-serialized JSON as a message's `properties` or `traits`.

use serde::{Serialize, de::IgnoredAny};

use crate::json_limit::{JsonLimitError, write_json_within, write_raw_within};

/// JSON text, checked once and then written into the message as it is.
///
/// For callers that hold serialized JSON already (the browser SDK gets `JSON.stringify`'s
/// output from the page): it is not parsed into a value and serialized again. The text is
/// checked with serde_json's own parser, and capture still checks that it is a JSON object.
///
/// ```
/// use pulseline::{RawJson, Track};
///
/// let properties = RawJson::parse(r#"{"plan":"pro","seats":3}"#)?;
/// let msg = Track::new("user-42", "signup").properties(properties);
/// # let _ = msg;
/// assert!(RawJson::parse("{plan: pro}").is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawJson(Box<str>);

impl RawJson {
    /// Checks that `json` is one JSON value (surrounding whitespace is dropped).
    ///
    /// Validation only walks the text (serde's `IgnoredAny`), so unlike
    /// `serde_json::value::RawValue::from_string` it builds nothing and formats no type
    /// errors, which keeps float formatting out of the browser SDK's wasm.
    pub fn parse(json: impl Into<String>) -> Result<RawJson, serde_json::Error> {
        let json = json.into();
        serde_json::from_str::<IgnoredAny>(&json)?;
        Ok(RawJson(json.trim().into()))
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What `properties` and `traits` accept: any [`Serialize`] value, serialized at capture, or
/// [`RawJson`], written as it is. Implemented for both; there is nothing to implement yourself.
pub trait ToJson {
    /// Appends the value's JSON to `out`, stopping once `out` would pass `limit` bytes.
    #[doc(hidden)]
    fn write_json(&self, out: &mut Vec<u8>, limit: usize) -> Result<(), JsonLimitError>;
}

impl<T: Serialize + ?Sized> ToJson for T {
    fn write_json(&self, out: &mut Vec<u8>, limit: usize) -> Result<(), JsonLimitError> {
        write_json_within(out, limit, self)
    }
}

impl ToJson for RawJson {
    fn write_json(&self, out: &mut Vec<u8>, limit: usize) -> Result<(), JsonLimitError> {
        write_raw_within(out, limit, self.0.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_valid_json_as_written_and_refuses_the_rest() {
        let raw = RawJson::parse(" {\"a\": [1, 2.5, \"x\"], \"b\": null}\n").unwrap();
        assert_eq!(raw.as_str(), "{\"a\": [1, 2.5, \"x\"], \"b\": null}");
        let mut out = Vec::new();
        raw.write_json(&mut out, 1024).unwrap();
        assert_eq!(out, raw.as_str().as_bytes());
        assert!(matches!(
            raw.write_json(&mut out, 40),
            Err(JsonLimitError::TooLarge { limit: 40, .. })
        ));
        for bad in ["", "{", "{\"a\":1}}", "{'a':1}", "[1,]", "{\"a\":1} {}"] {
            assert!(RawJson::parse(bad).is_err(), "{bad:?}");
        }
    }
}
