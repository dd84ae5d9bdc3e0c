//! The per-category flood cap's second half: after a minute in which a category matched more
//! events than PULSELINE_CATEGORY_MAX_PER_MINUTE, one "and N more" message for the rest. The
//! counting happens in the ingest commit (`store::category_cap`).

use chrono::{DateTime, SecondsFormat, Utc};

use crate::alerting::notification::Notification;
use crate::store::category_cap::{CategoryOverflow, minute_end, summary_source_key};
use crate::store::delivery::NewDelivery;
use crate::store::{Store, StoreError, millis};

/// Overflowing minutes summed up per pass.
const SUMMARY_BATCH: i64 = 100;

/// One replica's summary passes; remembers when it last dropped finished counter rows.
#[derive(Debug, Default)]
pub(super) struct CategorySummaries {
    forgotten_minute: i64,
}

impl CategorySummaries {
    /// Enqueues the summary of every finished minute that has one due (each exactly once
    /// across replicas: the `summarized` mark and the outbox key), and once a minute drops
    /// counter rows nobody needs.
    pub(super) async fn pass(
        &mut self,
        store: &Store,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now_ms = millis(now);
        for o in store.category_overflows(now_ms, SUMMARY_BATCH).await? {
            let summary = o.name.as_ref().map(|_| NewDelivery {
                project_id: o.project_id,
                channel_id: o.channel_id,
                source_key: summary_source_key(o.category_id, o.minute),
                content: serde_json::to_string(&summary(&o)).unwrap_or_default(),
                now,
                event_message_id: None,
                cap: None,
            });
            if store.summarize_category_overflow(&o, summary).await? {
                metrics::counter!("pulseline_deliveries_enqueued_total", "source" => "category_summary")
                    .increment(1);
            }
        }
        let minute = now_ms / 60_000;
        if minute != self.forgotten_minute {
            store.forget_category_minutes(now_ms).await?;
            self.forgotten_minute = minute;
        }
        Ok(())
    }
}

/// "📦 Orders: and 1,234 more", saying which minute and why.
fn summary(o: &CategoryOverflow) -> Notification {
    let name = o.name.clone().unwrap_or_default();
    let emoji = o.emoji.clone().unwrap_or_default();
    let more = thousands(o.more);
    let start = crate::store::from_millis(o.minute);
    let hm = |t: DateTime<Utc>| t.format("%H:%M").to_string();
    Notification {
        title: format!("{emoji} {name}: and {more} more").trim().to_owned(),
        description: format!(
            "{more} more {} matched this category from {} to {} UTC. Each category sends at \
             most {} messages a minute one by one (PULSELINE_CATEGORY_MAX_PER_MINUTE); the \
             dashboard lists every event.",
            if o.more == 1 { "event" } else { "events" },
            hm(start),
            hm(minute_end(o.minute)),
            o.sent,
        ),
        colour: o.colour.and_then(|c| u32::try_from(c).ok()).unwrap_or(0) & 0xFF_FFFF,
        fields: Vec::new(),
        url: None,
        timestamp: Some(start),
        user: None,
        footer: Some(format!(
            "Pulseline · {name} · {}",
            start.to_rfc3339_opts(SecondsFormat::Secs, true)
        )),
    }
}

/// 1234567 → "1,234,567".
fn thousands(n: i64) -> String {
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

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn counts_read_with_thousands_separators() {
        assert_eq!(thousands(7), "7");
        assert_eq!(thousands(1_234), "1,234");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
