//! How the read API shows a stored event: the message as sent, with the collector's values.

use std::collections::BTreeMap;

use chrono::SecondsFormat;
use serde_json::value::RawValue;

use super::StoredEvent;

impl StoredEvent {
    /// The message as sent, with the stored values of the fields the collector may have filled.
    /// Fields are copied as JSON text, never parsed into values, so every number keeps its digits.
    pub fn render(self) -> Box<RawValue> {
        let mut obj: BTreeMap<String, Box<RawValue>> = match serde_json::from_str(&self.body) {
            Ok(fields) => fields,
            Err(err) => {
                // Ingest stores only JSON objects; should a row be damaged, its columns still say
                // what the event was rather than returning it empty.
                tracing::error!(seq = self.seq, error = %err, "a stored message body is not a JSON object");
                let mut obj = BTreeMap::new();
                let columns = [
                    ("event", self.event.as_deref()),
                    ("userId", self.user_id.as_deref()),
                    ("anonymousId", self.anonymous_id.as_deref()),
                ];
                for (field, value) in columns {
                    if let Some(v) = value {
                        obj.insert(field.to_owned(), raw_string(v));
                    }
                }
                obj
            }
        };
        let timestamp = self.timestamp.to_rfc3339_opts(SecondsFormat::Millis, true);
        let received_at = self
            .received_at
            .to_rfc3339_opts(SecondsFormat::Millis, true);
        obj.insert("messageId".into(), raw_string(&self.message_id));
        obj.insert("type".into(), raw_string(&self.kind));
        obj.insert("timestamp".into(), raw_string(&timestamp));
        obj.insert("receivedAt".into(), raw_string(&received_at));
        serde_json::value::to_raw_value(&obj).unwrap_or_else(|_| raw_string(""))
    }
}

fn raw_string(s: &str) -> Box<RawValue> {
    // Serializing a string cannot fail; the fallback only keeps this free of panics.
    serde_json::value::to_raw_value(s).unwrap_or_else(|_| RawValue::NULL.to_owned())
}
