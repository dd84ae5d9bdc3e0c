//! A notification before it meets a channel: what both event categories and alert rules hand to
//! delivery. Each channel (Discord, Slack, webhook, email) renders it within its own limits.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
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

/// A property value as a person reads it: strings without quotes, everything else as JSON.
pub fn display_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_owned(),
        other => other.to_string(),
    }
}

/// Fields from an event's properties, in key order.
pub fn fields_from_properties(
    properties: &serde_json::Map<String, Value>,
) -> Vec<NotificationField> {
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
    properties: &serde_json::Map<String, Value>,
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

fn lookup<'a>(properties: &'a serde_json::Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = properties.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut current = properties.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates_fill_properties_and_keep_unknown_placeholders() {
        let props = json!({"amount": 42.5, "plan": {"tier": "pro"}, "name": "Ada"});
        let props = props.as_object().unwrap();
        assert_eq!(
            render_template(
                "{name} paid {amount} on {plan.tier} ({event}, {user}) {nope}",
                props,
                "payment.succeeded",
                Some("u1")
            ),
            "Ada paid 42.5 on pro (payment.succeeded, u1) {nope}"
        );
        assert_eq!(
            render_template("open {brace", props, "e", None),
            "open {brace"
        );
    }
}
