//! A notification before it meets a channel: what both event categories and alert rules hand to
//! delivery. Each channel (Discord, Slack, webhook, email) renders it within its own limits.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

/// One name/value line of a notification (a Discord embed field, a Slack section field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NotificationField {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub inline: bool,
}

/// Channel-neutral content, stored in the outbox row as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Notification {
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// 0xRRGGBB.
    pub colour: u32,
    #[serde(default)]
    pub fields: Vec<NotificationField>,
    #[serde(default)]
    pub url: Option<String>,
    /// When the event happened (RFC 3339).
    #[serde(default)]
    pub timestamp: Option<DateTime<Utc>>,
    /// Who did it (the event's userId or anonymousId).
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub footer: Option<String>,
}

/// Values up to this many characters are shown side by side (Discord inline fields).
const INLINE_VALUE_CHARS: usize = 40;

impl Notification {
    /// Plain text: Slack's fallback `text`, email bodies, logs.
    pub fn plain_text(&self) -> String {
        let mut out = self.title.clone();
        if !self.description.is_empty() {
            out.push_str("\n\n");
            out.push_str(&self.description);
        }
        if !self.fields.is_empty() {
            out.push('\n');
            for f in &self.fields {
                out.push_str(&format!("\n{}: {}", f.name, f.value));
            }
        }
        if let Some(user) = &self.user {
            out.push_str(&format!("\n\nUser: {user}"));
        }
        if let Some(ts) = self.timestamp {
            out.push_str(&format!(
                "\nAt: {}",
                ts.to_rfc3339_opts(SecondsFormat::Millis, true)
            ));
        }
        if let Some(url) = &self.url {
            out.push_str(&format!("\n{url}"));
        }
        out
    }
}

/// An event's properties as sent: each value is its JSON text, so a number keeps its digits
/// (`1.10`, a 128-bit id) where a parsed value would print a float's rendering.
pub type Properties = BTreeMap<String, Box<RawValue>>;

/// The `properties` object of a stored message (empty when absent or not an object).
pub fn properties_of(body: &str) -> Properties {
    #[derive(Deserialize)]
    struct Sent {
        properties: Option<Properties>,
    }
    serde_json::from_str::<Sent>(body)
        .ok()
        .and_then(|s| s.properties)
        .unwrap_or_default()
}

/// A property value as a person reads it: strings without quotes, everything else as JSON.
pub fn display_value(v: &RawValue) -> String {
    let text = v.get();
    if text.starts_with('"') {
        serde_json::from_str(text).unwrap_or_default()
    } else {
        text.to_owned()
    }
}

/// Fields from an event's properties, in key order.
pub fn fields_from_properties(properties: &Properties) -> Vec<NotificationField> {
    properties
        .iter()
        .map(|(k, v)| {
            let value = display_value(v);
            NotificationField {
                inline: value.chars().count() <= INLINE_VALUE_CHARS,
                name: k.clone(),
                value,
            }
        })
        .collect()
}

/// Replaces `{name}` with the property `name` (dots reach into objects: `{plan.tier}`), and
/// `{event}` / `{user}` with the event's name and user. Unknown placeholders stay as written,
/// so a typo is visible in the message rather than silently blank.
pub fn render_template(
    template: &str,
    properties: &Properties,
    event: &str,
    user: Option<&str>,
) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = after[..close].trim();
        let value = match name {
            "event" => Some(event.to_owned()),
            "user" => user.map(str::to_owned),
            _ => lookup(properties, name).map(display_value),
        };
        match value {
            Some(v) => out.push_str(&v),
            None => out.push_str(&rest[open..open + close + 2]),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

fn lookup<'a>(properties: &'a Properties, path: &str) -> Option<&'a RawValue> {
    if let Some(v) = properties.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut current: &RawValue = properties.get(parts.next()?)?;
    for part in parts {
        current = crate::analytics::field(current, part)?;
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates_fill_properties_and_keep_unknown_placeholders() {
        let props = properties_of(
            &json!({"properties": {"amount": 42.5, "plan": {"tier": "pro"}, "name": "Ada"}})
                .to_string(),
        );
        assert_eq!(
            render_template(
                "{name} paid {amount} on {plan.tier} ({event}, {user}) {nope}",
                &props,
                "payment.succeeded",
                Some("u1")
            ),
            "Ada paid 42.5 on pro (payment.succeeded, u1) {nope}"
        );
        assert_eq!(
            render_template("open {brace", &props, "e", None),
            "open {brace"
        );
    }

    #[test]
    fn numbers_show_the_digits_sent() {
        let props = properties_of(
            r#"{"properties":{"price":1.10,"id":340282366920938463463374607431768211455,"o":{"n":2.50}}}"#,
        );
        assert_eq!(
            render_template("{price} {id} {o.n}", &props, "e", None),
            "1.10 340282366920938463463374607431768211455 2.50"
        );
        let fields = fields_from_properties(&props);
        assert_eq!(fields[1].name, "o");
        assert_eq!(fields[1].value, r#"{"n":2.50}"#);
        assert_eq!(fields[2].value, "1.10");
    }
}
