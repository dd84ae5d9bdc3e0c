//! Slack incoming-webhook payloads: `text` (the notification fallback) plus Block Kit blocks,
//! within Slack's block limits.

use chrono::SecondsFormat;
use serde_json::{Value, json};

use super::discord::truncate;
use crate::alerting::notification::Notification;

pub const TEXT_MAX: usize = 3_000;
pub const HEADER_MAX: usize = 150;
pub const SECTION_TEXT_MAX: usize = 3_000;
pub const SECTION_FIELDS_MAX: usize = 10;
pub const FIELD_TEXT_MAX: usize = 2_000;

/// Slack's escaping for text in `mrkdwn` and the fallback `text`: without it an event's
/// `<!channel>` pings everyone and `<https://evil|Payment failed>` is a disguised link.
/// Everything a notification carries is shown as written (templates included).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Blocks in one Slack message.
pub const BLOCKS_MAX: usize = 50;

pub fn payload(n: &Notification) -> Value {
    payload_many(std::slice::from_ref(n))
}

/// One message for several notifications: their blocks in order, a divider between two. The
/// caller packs no more than [`blocks_needed`] allows within [`BLOCKS_MAX`].
pub fn payload_many(ns: &[Notification]) -> Value {
    let mut all = Vec::new();
    for (i, n) in ns.iter().enumerate() {
        if i > 0 {
            all.push(json!({"type": "divider"}));
        }
        all.extend(blocks(n));
    }
    let text: Vec<String> = ns.iter().map(Notification::plain_text).collect();
    json!({ "text": truncate(&escape(&text.join("\n\n")), TEXT_MAX), "blocks": all })
}

/// Blocks a notification takes in a packed message (with the divider before it).
pub fn blocks_needed(n: &Notification, first: bool) -> usize {
    blocks(n).len() + usize::from(!first)
}

fn blocks(n: &Notification) -> Vec<Value> {
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": truncate(&n.title, HEADER_MAX), "emoji": true}
    })];
    if !n.description.is_empty() {
        blocks.push(json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": truncate(&escape(&n.description), SECTION_TEXT_MAX)}
        }));
    }
    if !n.fields.is_empty() {
        let fields: Vec<Value> = n
            .fields
            .iter()
            .take(SECTION_FIELDS_MAX)
            .map(|f| {
                json!({"type": "mrkdwn", "text": truncate(&format!("*{}*\n{}", escape(&f.name), escape(&f.value)), FIELD_TEXT_MAX)})
            })
            .collect();
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    let mut context = Vec::new();
    if let Some(user) = &n.user {
        context.push(format!("User: {user}"));
    }
    if let Some(ts) = n.timestamp {
        context.push(ts.to_rfc3339_opts(SecondsFormat::Secs, true));
    }
    if let Some(footer) = &n.footer {
        context.push(footer.clone());
    }
    if !context.is_empty() {
        blocks.push(json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": truncate(&escape(&context.join(" · ")), FIELD_TEXT_MAX)}]
        }));
    }
    blocks
}
