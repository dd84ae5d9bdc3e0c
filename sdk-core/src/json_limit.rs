//! JSON serialized under a byte limit, stopping as soon as the output passes it.

use std::io;

use serde::Serialize;

/// Why [`write_json_within`] stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsonLimitError {
    /// The output would have grown past `limit` bytes; serialization stopped there, so the
    /// value's JSON is at least `size` bytes.
    #[error("JSON output passed the {limit}-byte limit (stopped at {size} bytes)")]
    TooLarge {
        /// Length the output would have reached with the write that was refused.
        size: usize,
        /// The limit given to [`write_json_within`].
        limit: usize,
    },
    /// The value could not be serialized (a map with non-string keys, a serializer's own error).
    #[error(transparent)]
    Serialize(serde_json::Error),
}

/// Appends `value`'s JSON to `out`, refusing to let `out` grow past `limit` bytes in total.
///
/// The check happens on every write, so a value whose JSON would be enormous (a small
/// structure shared many ways, which expands each time it is reached) costs at most `limit`
/// bytes and the work to produce them before it is refused. Bindings use it for every value
/// that comes from the host language; the message encoder applies
/// [`MAX_MESSAGE_BYTES`](crate::limits::MAX_MESSAGE_BYTES) to `properties` and `traits` this way.
///
/// On error `out` holds a partial value and should be discarded.
///
/// ```
/// use pulseline::{JsonLimitError, write_json_within};
///
/// let mut out = Vec::new();
/// write_json_within(&mut out, 16, &["short"])?;
/// assert_eq!(out, br#"["short"]"#);
///
/// let shared = vec![vec!["x".repeat(10); 10]; 10];
/// let err = write_json_within(&mut Vec::new(), 100, &shared).unwrap_err();
/// assert!(matches!(err, JsonLimitError::TooLarge { limit: 100, size } if size > 100));
/// # Ok::<(), JsonLimitError>(())
/// ```
pub fn write_json_within<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    limit: usize,
    value: &T,
) -> Result<(), JsonLimitError> {
    let mut writer = Bounded {
        out,
        limit,
        refused_at: None,
    };
    let result = serde_json::to_writer(&mut writer, value);
    match (writer.refused_at, result) {
        (Some(size), _) => Err(JsonLimitError::TooLarge { size, limit }),
        (None, Ok(())) => Ok(()),
        (None, Err(err)) => Err(JsonLimitError::Serialize(err)),
    }
}

/// Appends already-serialized JSON under the same rule as [`write_json_within`].
pub(crate) fn write_raw_within(
    out: &mut Vec<u8>,
    limit: usize,
    json: &[u8],
) -> Result<(), JsonLimitError> {
    let size = out.len().saturating_add(json.len());
    if size > limit {
        return Err(JsonLimitError::TooLarge { size, limit });
    }
    out.extend_from_slice(json);
    Ok(())
}

/// A `Vec<u8>` writer that fails the first write that would take it past `limit`.
struct Bounded<'a> {
    out: &'a mut Vec<u8>,
    limit: usize,
    refused_at: Option<usize>,
}

impl io::Write for Bounded<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf).map(|()| buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let size = self.out.len().saturating_add(buf.len());
        if size > self.limit {
            self.refused_at = Some(size);
            // A bare kind, never shown (`refused_at` reports the refusal): a message string
            // would box a `dyn Error` whose `Debug` pulls str escaping into the browser wasm.
            return Err(io::ErrorKind::Other.into());
        }
        self.out.extend_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_limit_counts_what_out_held_before() {
        let mut out = b"{\"a\":".to_vec();
        write_json_within(&mut out, 10, &json!([1, 2])).unwrap();
        assert_eq!(out, b"{\"a\":[1,2]");
        let mut out = b"{\"a\":".to_vec();
        let err = write_json_within(&mut out, 9, &json!([1, 2])).unwrap_err();
        assert!(matches!(
            err,
            JsonLimitError::TooLarge { size: 10, limit: 9 }
        ));
    }

    #[test]
    fn a_value_shared_many_ways_stops_at_the_limit() {
        // Serializes as 2^40 leaves, like a dict holding one dict twice, 40 levels deep.
        struct Node(u32);
        impl Serialize for Node {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self.0 {
                    0 => s.serialize_u8(1),
                    depth => (Node(depth - 1), Node(depth - 1)).serialize(s),
                }
            }
        }
        let node = Node(40);
        let mut out = Vec::new();
        let err = write_json_within(&mut out, 32 * 1024, &node).unwrap_err();
        assert!(matches!(err, JsonLimitError::TooLarge { limit: 32768, .. }));
        assert!(out.len() <= 32 * 1024);
    }

    #[test]
    fn serializer_errors_are_not_reported_as_size() {
        let mut map = std::collections::BTreeMap::new();
        map.insert(vec![1u8], 1);
        let err = write_json_within(&mut Vec::new(), 1024, &map).unwrap_err();
        assert!(matches!(err, JsonLimitError::Serialize(_)));
    }
}
