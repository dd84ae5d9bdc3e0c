//! The collector's answer to a stored batch: `{"rejected": [{"index", "messageId", "error"}]}`.
//!
//! Read with serde_json through one small [`Visitor`] that only `deserialize_any` drives, not
//! with `#[derive(Deserialize)]`: derived impls go through `deserialize_struct` and
//! `deserialize_seq`, whose type-mismatch errors format floats with `core::fmt`, which with the
//! error machinery around it is about 10 KB brotli of the browser SDK's wasm, spent on an error
//! nobody reads. The answer is read leniently: a field of an unexpected type counts as absent.

use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One entry of the collector's `rejected` list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Rejection {
    /// Position of the message in the batch.
    pub(crate) index: Option<usize>,
    /// The refused message's `messageId`.
    pub(crate) message_id: Option<String>,
    /// The collector's explanation.
    pub(crate) error: String,
}

/// The messages a 2xx answer lists as refused; none when the body is not the collector's ack
/// (every 2xx means committed, and an unparsable body cannot un-commit it).
pub(crate) fn rejected(body: &[u8]) -> Vec<Rejection> {
    let Ok(Json::Object(ack)) = serde_json::from_slice::<Json>(body) else {
        return Vec::new();
    };
    let Some(Json::List(entries)) = field(ack, "rejected") else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter_map(|entry| match entry {
            Json::Object(mut fields) => Some(Rejection {
                index: match field_mut(&mut fields, "index") {
                    Some(Json::Number(i)) => usize::try_from(*i).ok(),
                    _ => None,
                },
                message_id: text(&mut fields, "messageId"),
                error: text(&mut fields, "error").unwrap_or_default(),
            }),
            _ => None,
        })
        .collect()
}

fn field(fields: Vec<(String, Json)>, name: &str) -> Option<Json> {
    fields
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, v)| v)
}

fn field_mut<'a>(fields: &'a mut [(String, Json)], name: &str) -> Option<&'a mut Json> {
    fields
        .iter_mut()
        .find(|(key, _)| key == name)
        .map(|(_, v)| v)
}

fn text(fields: &mut [(String, Json)], name: &str) -> Option<String> {
    match field_mut(fields, name)? {
        Json::Text(s) => Some(std::mem::take(s)),
        _ => None,
    }
}

/// The parts of a JSON document an ack needs; anything else is [`Json::Other`].
#[derive(Debug)]
enum Json {
    Other,
    Number(u64),
    Text(String),
    List(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

/// Accepts every JSON value, so serde_json never reaches its "invalid type" error path.
struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Other)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Json, E> {
        Ok(Json::Other)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Json, E> {
        Ok(Json::Other)
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Json, E> {
        Ok(Json::Other)
    }

    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::Text(v.to_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Json>()? {
            items.push(item);
        }
        Ok(Json::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut fields = Vec::new();
        while let Some(key) = map.next_key::<Json>()? {
            match key {
                // Only the ack's own fields are kept; other values are skipped unparsed.
                Json::Text(key)
                    if matches!(key.as_str(), "rejected" | "index" | "messageId" | "error") =>
                {
                    fields.push((key, map.next_value::<Json>()?));
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Json::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_collectors_rejected_list() {
        let body = br#"{"success":true,"accepted":1,"rejected":[
            {"index":1,"messageId":"m2","error":"event is required"},
            {"index":3,"error":"too large","extra":{"a":[1,2.5,null]}}]}"#;
        assert_eq!(
            rejected(body),
            vec![
                Rejection {
                    index: Some(1),
                    message_id: Some("m2".into()),
                    error: "event is required".into()
                },
                Rejection {
                    index: Some(3),
                    message_id: None,
                    error: "too large".into()
                }
            ]
        );
    }

    #[test]
    fn anything_else_lists_nothing_or_reads_leniently() {
        for body in [
            &b""[..],
            b"not json",
            b"[1,2]",
            b"{}",
            br#"{"rejected":{}}"#,
            b"null",
        ] {
            assert_eq!(
                rejected(body),
                vec![],
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        let odd = br#"{"rejected":[{"index":-1,"messageId":7,"error":"x"},"junk"]}"#;
        assert_eq!(
            rejected(odd),
            vec![Rejection {
                index: None,
                message_id: None,
                error: "x".into()
            }]
        );
    }
}
