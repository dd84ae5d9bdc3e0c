//! A digest as people read it: an HTML e-mail with its plain-text part, and a channel-neutral
//! notification that the Discord and Slack senders render (and escape) within their limits.
//! Numbers carry ↑/↓ arrows against the week before; no chart images (see docs/digest.md).

use chrono::{DateTime, Utc};
use jiff::Timestamp;

use super::content::{Change, Digest, Ranked, VitalChange, rating};
use crate::alerting::notification::{Notification, NotificationField};

/// The digest's colour in Discord embeds (Pulseline blue).
const COLOUR: u32 = 0x5865F2;

/// `1,234,567`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// "↑ 25%", "↓ 10%", "→ 0%", or "↑ new" when the week before had none.
pub fn arrow(this: f64, last: f64) -> String {
    if this == last {
        return "→ 0%".to_owned();
    }
    let up = this > last;
    let sign = if up { '↑' } else { '↓' };
    if last == 0.0 {
        return format!("{sign} new");
    }
    let pct = ((this - last) / last * 100.0).abs().round();
    format!("{sign} {pct}%")
}

fn change(c: Change) -> String {
    format!(
        "{} {} (last week {})",
        thousands(c.this_week),
        arrow(c.this_week as f64, c.last_week as f64),
        thousands(c.last_week)
    )
}

fn ranked(r: &Ranked) -> String {
    format!(
        "{}: {} {}",
        r.name,
        thousands(r.this_week),
        arrow(r.this_week as f64, r.last_week as f64)
    )
}

fn vital_value(v: f64, unit: &str) -> String {
    if unit == "ms" {
        format!("{} ms", thousands(v.round() as i64))
    } else {
        format!("{v:.2}")
    }
}

fn vital(v: &VitalChange) -> String {
    let this = v.this_week.map_or("no data".to_owned(), |p| {
        format!("{} ({})", vital_value(p, &v.unit), rating(&v.metric, p))
    });
    let mut line = format!("{} p75 {this}", v.metric);
    match (v.this_week, v.last_week) {
        (Some(now), Some(before)) => {
            let (r_now, r_before) = (rating(&v.metric, now), rating(&v.metric, before));
            line.push_str(&format!(
                ", last week {} {}",
                vital_value(before, &v.unit),
                arrow(now, before)
            ));
            if r_now != r_before {
                line.push_str(&format!(", {r_before} → {r_now}"));
            }
        }
        (None, Some(before)) => {
            line.push_str(&format!(", last week {}", vital_value(before, &v.unit)))
        }
        _ => {}
    }
    if v.truncated {
        line.push_str(" (from a sample of the week)");
    }
    line
}

fn quota(d: &Digest) -> String {
    match d.quota.limit {
        Some(limit) if limit > 0 => format!(
            "{} of {} events in {} ({:.1}%)",
            thousands(d.quota.used),
            thousands(limit),
            d.quota.month,
            d.quota.used as f64 * 100.0 / limit as f64
        ),
        _ => format!(
            "{} events in {} (no monthly limit)",
            thousands(d.quota.used),
            d.quota.month
        ),
    }
}

/// "Mon 23 Nov 2026 – Sun 29 Nov 2026" in the project's zone.
pub fn week_label(d: &Digest) -> String {
    let tz = super::content::project_tz(&d.timezone);
    let day = |ms: i64| {
        Timestamp::from_millisecond(ms)
            .map(|t| {
                t.to_zoned_datetime(tz.clone())
                    .strftime("%a %-d %b %Y")
                    .to_string()
            })
            .unwrap_or_default()
    };
    format!("{} – {}", day(d.week_start), day(d.week_end - 1))
}

pub fn subject(d: &Digest) -> String {
    format!("Weekly digest: {} · {}", d.project, week_label(d))
}

/// The sections of a digest as (heading, lines): one order for every format.
fn sections(d: &Digest) -> Vec<(&'static str, Vec<String>)> {
    let or_none = |v: Vec<String>, none: &str| {
        if v.is_empty() {
            vec![none.to_owned()]
        } else {
            v
        }
    };
    vec![
        ("Events", vec![change(d.events)]),
        ("Active users", vec![change(d.active_users)]),
        (
            "Top events",
            or_none(d.top_events.iter().map(ranked).collect(), "no events"),
        ),
        (
            "Top pages",
            or_none(d.top_pages.iter().map(ranked).collect(), "no page views"),
        ),
        (
            "Web Vitals",
            or_none(d.vitals.iter().map(vital).collect(), "no Web Vitals"),
        ),
        (
            "Alerts",
            vec![
                format!("fired: {}", change(d.alerts_fired)),
                format!("resolved: {}", change(d.alerts_resolved)),
            ],
        ),
        ("Quota", vec![quota(d)]),
    ]
}

fn intro(d: &Digest) -> String {
    format!(
        "{} ({}), against the week before.",
        week_label(d),
        d.timezone
    )
}

/// The plain-text part.
pub fn text(d: &Digest, dashboard: Option<&str>) -> String {
    let mut out = format!("Weekly digest: {}\n{}\n", d.project, intro(d));
    for (heading, lines) in sections(d) {
        out.push_str(&format!("\n{heading}\n"));
        for l in lines {
            out.push_str(&format!("  {l}\n"));
        }
    }
    if let Some(url) = dashboard {
        out.push_str(&format!("\nDashboard: {url}\n"));
    }
    out.push_str(
        "\nYou get this because you turned on the weekly digest for this project; turn it off \
         on the project's Digest page in the dashboard.\n",
    );
    out
}

/// Text shown as text in HTML: event names and paths come from the public write key.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The HTML part: a plain table layout that mail clients render without styles sheets.
pub fn html(d: &Digest, dashboard: Option<&str>) -> String {
    let mut out = format!(
        "<!DOCTYPE html><html><body style=\"font-family:sans-serif;color:#222\">\
         <h1 style=\"font-size:20px\">Weekly digest: {}</h1><p>{}</p>",
        escape_html(&d.project),
        escape_html(&intro(d))
    );
    for (heading, lines) in sections(d) {
        out.push_str(&format!(
            "<h2 style=\"font-size:16px;margin-bottom:4px\">{}</h2><ul>",
            escape_html(heading)
        ));
        for l in lines {
            out.push_str(&format!("<li>{}</li>", escape_html(&l)));
        }
        out.push_str("</ul>");
    }
    if let Some(url) = dashboard {
        out.push_str(&format!(
            "<p><a href=\"{}\">Open the dashboard</a></p>",
            escape_html(url)
        ));
    }
    out.push_str(
        "<p style=\"color:#777;font-size:12px\">You get this because you turned on the \
         weekly digest for this project; turn it off on the project's Digest page in the \
         dashboard.</p></body></html>",
    );
    out
}

/// The digest for a Discord or Slack channel: one field per section. The senders escape
/// every field (no masked links, no mentions) and cut it to the target's limits.
pub fn notification(d: &Digest, dashboard: Option<&str>, now: DateTime<Utc>) -> Notification {
    Notification {
        title: format!("📊 Weekly digest: {}", d.project),
        description: intro(d),
        colour: COLOUR,
        fields: sections(d)
            .into_iter()
            .map(|(heading, lines)| NotificationField {
                inline: lines.len() == 1 && lines[0].chars().count() <= 60,
                name: heading.to_owned(),
                value: lines.join("\n"),
            })
            .collect(),
        url: dashboard.map(str::to_owned),
        timestamp: Some(now),
        user: None,
        footer: Some("Pulseline weekly digest".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrows_and_thousands() {
        assert_eq!(arrow(12.0, 10.0), "↑ 20%");
        assert_eq!(arrow(5.0, 10.0), "↓ 50%");
        assert_eq!(arrow(3.0, 0.0), "↑ new");
        assert_eq!(arrow(4.0, 4.0), "→ 0%");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(
            escape_html("<script>&\"'"),
            "&lt;script&gt;&amp;&quot;&#39;"
        );
    }
}
