//! Discord webhook payloads, always within Discord's documented limits: anything longer is cut
//! with an ellipsis, never rejected.

use chrono::SecondsFormat;
use serde_json::{Value, json};

use crate::alerting::notification::Notification;

pub const CONTENT_MAX: usize = 2_000;
pub const EMBEDS_MAX: usize = 10;
/// Characters across all embeds of a message (title, description, fields, footer, author).
pub const EMBEDS_TOTAL_MAX: usize = 6_000;
pub const FIELDS_MAX: usize = 25;
pub const TITLE_MAX: usize = 256;
pub const DESCRIPTION_MAX: usize = 4_096;
pub const FIELD_NAME_MAX: usize = 256;
pub const FIELD_VALUE_MAX: usize = 1_024;
pub const FOOTER_MAX: usize = 2_048;
pub const AUTHOR_NAME_MAX: usize = 256;

const ELLIPSIS: char = '…';

/// At most `max` characters; a cut string ends with an ellipsis.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push(ELLIPSIS);
    out
}

/// Text shown as written where Discord renders markdown (descriptions, fields): `[` is escaped
/// so `[Payment failed](https://evil)` cannot become a disguised link, and backslashes too, so
/// one written by the sender cannot cancel ours.
pub fn plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '[') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Discord rejects empty field names and values.
fn non_empty(s: String) -> String {
    if s.trim().is_empty() {
        "—".to_owned()
    } else {
        s
    }
}

/// A message of one embed for the notification, plus nothing else (`content` stays empty).
pub fn payload(n: &Notification) -> Value {
    payload_many(std::slice::from_ref(n))
}

/// A message of one embed per notification, in order. The caller packs at most
/// [`EMBEDS_MAX`] notifications whose [`embed_chars`] add up to at most [`EMBEDS_TOTAL_MAX`].
pub fn payload_many(ns: &[Notification]) -> Value {
    let embeds: Vec<Value> = ns.iter().map(embed).collect();
    json!({ "embeds": embeds, "allowed_mentions": { "parse": [] } })
}

/// The characters of an embed that count toward Discord's per-message total.
pub fn embed_chars(e: &Value) -> usize {
    let len = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    len(&e["title"])
        + len(&e["description"])
        + len(&e["footer"]["text"])
        + len(&e["author"]["name"])
        + e["fields"].as_array().map_or(0, |fs| {
            fs.iter().map(|f| len(&f["name"]) + len(&f["value"])).sum()
        })
}

/// The notification's embed, within every per-embed limit and alone within the total.
pub fn embed(n: &Notification) -> Value {
    let title = truncate(&n.title, TITLE_MAX);
    let mut description = truncate(&plain(&n.description), DESCRIPTION_MAX);
    let footer = n.footer.as_deref().map(|f| truncate(f, FOOTER_MAX));
    let author = n.user.as_deref().map(|u| truncate(u, AUTHOR_NAME_MAX));
    let mut fields: Vec<(String, String, bool)> = n
        .fields
        .iter()
        .take(FIELDS_MAX)
        .map(|f| {
            (
                non_empty(truncate(&plain(&f.name), FIELD_NAME_MAX)),
                non_empty(truncate(&plain(&f.value), FIELD_VALUE_MAX)),
                f.inline,
            )
        })
        .collect();
    let fixed = title.chars().count()
        + footer.as_deref().map_or(0, |f| f.chars().count())
        + author.as_deref().map_or(0, |a| a.chars().count());
    let fields_len = |fields: &[(String, String, bool)]| -> usize {
        fields
            .iter()
            .map(|(k, v, _)| k.chars().count() + v.chars().count())
            .sum()
    };
    // Over the total: drop trailing fields first (the title and description carry the message),
    // then shorten the description.
    while fixed + description.chars().count() + fields_len(&fields) > EMBEDS_TOTAL_MAX
        && !fields.is_empty()
    {
        fields.pop();
    }
    let used = fixed + fields_len(&fields);
    if used + description.chars().count() > EMBEDS_TOTAL_MAX {
        description = truncate(&description, EMBEDS_TOTAL_MAX.saturating_sub(used));
    }
    let mut embed = json!({
        "title": title,
        "color": n.colour & 0xFF_FFFF,
        "fields": fields.into_iter().map(|(name, value, inline)| json!({"name": name, "value": value, "inline": inline})).collect::<Vec<_>>(),
    });
    if !description.is_empty() {
        embed["description"] = description.into();
    }
    if let Some(f) = footer {
        embed["footer"] = json!({ "text": f });
    }
    if let Some(a) = author {
        embed["author"] = json!({ "name": a });
    }
    if let Some(ts) = n.timestamp {
        embed["timestamp"] = ts.to_rfc3339_opts(SecondsFormat::Millis, true).into();
    }
    if let Some(url) = &n.url {
        embed["url"] = url.clone().into();
    }
    embed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::notification::NotificationField;

    fn chars(v: &Value) -> usize {
        v.as_str().map_or(0, |s| s.chars().count())
    }

    #[test]
    fn oversize_content_is_cut_to_every_limit() {
        let n = Notification {
            title: "t".repeat(1_000),
            description: "d".repeat(10_000),
            colour: 0xFF_00FF,
            fields: (0..40)
                .map(|i| NotificationField {
                    name: format!("{i}{}", "n".repeat(300)),
                    value: "v".repeat(2_000),
                    inline: false,
                })
                .collect(),
            url: None,
            timestamp: None,
            user: Some("u".repeat(300)),
            footer: Some("f".repeat(3_000)),
        };
        let p = payload(&n);
        let e = &p["embeds"][0];
        assert_eq!(chars(&e["title"]), TITLE_MAX);
        assert!(e["title"].as_str().unwrap().ends_with('…'));
        assert_eq!(chars(&e["author"]["name"]), AUTHOR_NAME_MAX);
        let fields = e["fields"].as_array().unwrap();
        assert!(fields.len() <= FIELDS_MAX);
        let total = chars(&e["title"])
            + chars(&e["description"])
            + chars(&e["footer"]["text"])
            + chars(&e["author"]["name"])
            + fields
                .iter()
                .map(|f| chars(&f["name"]) + chars(&f["value"]))
                .sum::<usize>();
        assert!(total <= EMBEDS_TOTAL_MAX, "{total}");
        for f in fields {
            assert!(chars(&f["name"]) <= FIELD_NAME_MAX && chars(&f["value"]) <= FIELD_VALUE_MAX);
        }
    }
}
