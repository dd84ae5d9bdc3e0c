//! Event categories: which events become notifications, and how they look. A category matches
//! track events by name, exactly or by a glob (`payment.*`), and sends them to one channel.
//!
//! Matching happens in the ingest writer, inside the commit that stores the event, so an
//! acknowledged event's notification is as durable as the event itself and exactly once per
//! (category, event). The writer reads categories from an in-memory cache refreshed from the
//! database every [`CATEGORY_REFRESH`] (and at once after a change through this replica's API).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use globset::{Glob, GlobMatcher};

use crate::alerting::notification::{
    Notification, fields_from_properties, properties_of, render_template,
};
use crate::domain::{Message, MessageType, ProjectId};
use crate::state::snapshot::Snapshot;
use crate::store::category_cap::CategoryCap;
use crate::store::delivery::{CategoryRecord, NewDelivery};
use crate::store::{Store, StoreError};

/// How often each replica reloads categories changed through another replica.
pub const CATEGORY_REFRESH: Duration = Duration::from_secs(1);
/// Longest category name pattern accepted.
pub const MAX_PATTERN_CHARS: usize = 200;

/// A category name pattern: an exact event name, or a glob when it holds `*`, `?` or `[`.
#[derive(Debug, Clone)]
pub enum EventPattern {
    Exact(String),
    Glob(GlobMatcher),
}

impl EventPattern {
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let pattern = pattern.trim();
        if pattern.is_empty() {
            return Err("pattern must not be empty: give an event name (payment.succeeded) or a glob (payment.*)".into());
        }
        if pattern.chars().count() > MAX_PATTERN_CHARS {
            return Err(format!(
                "pattern is longer than {MAX_PATTERN_CHARS} characters"
            ));
        }
        if pattern.contains(['*', '?', '[', '{']) {
            let glob = Glob::new(pattern).map_err(|e| {
                format!("pattern '{pattern}' is not a valid glob ({e}); use * for any characters, e.g. payment.*")
            })?;
            Ok(Self::Glob(glob.compile_matcher()))
        } else {
            Ok(Self::Exact(pattern.to_owned()))
        }
    }

    pub fn matches(&self, event: &str) -> bool {
        match self {
            Self::Exact(name) => name == event,
            Self::Glob(glob) => glob.is_match(event),
        }
    }
}

#[derive(Debug, Clone)]
struct CompiledCategory {
    record: CategoryRecord,
    pattern: EventPattern,
}

/// Categories by project, shared by the ingest writer and the API.
#[derive(Debug, Clone, Default)]
pub struct CategoryCache(Arc<Snapshot<HashMap<ProjectId, Vec<CompiledCategory>>>>);

impl CategoryCache {
    pub async fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let reload = self.0.begin();
        let all = store.all_categories().await?;
        let mut by_project: HashMap<ProjectId, Vec<CompiledCategory>> = HashMap::new();
        for record in all {
            match EventPattern::parse(&record.pattern) {
                Ok(pattern) => by_project
                    .entry(record.project_id)
                    .or_default()
                    .push(CompiledCategory { record, pattern }),
                Err(e) => tracing::warn!(category = record.id, error = %e, "skipping category"),
            }
        }
        self.0.finish(reload, by_project);
        Ok(())
    }

    /// The outbox rows for the events of one batch that some category matches. Costs one hash
    /// lookup per batch when the project has no categories.
    pub fn deliveries_for(
        &self,
        project_id: ProjectId,
        messages: &[Message],
        now: DateTime<Utc>,
        max_per_minute: u32,
        out: &mut Vec<NewDelivery>,
    ) {
        self.0.with(|map| {
            let Some(categories) = map.get(&project_id) else {
                return;
            };
            Self::match_messages(categories, project_id, messages, now, max_per_minute, out);
        });
    }

    fn match_messages(
        categories: &[CompiledCategory],
        project_id: ProjectId,
        messages: &[Message],
        now: DateTime<Utc>,
        max_per_minute: u32,
        out: &mut Vec<NewDelivery>,
    ) {
        for m in messages {
            if m.kind != MessageType::Track {
                continue;
            }
            let Some(event) = m.event.as_deref() else {
                continue;
            };
            for c in categories.iter().filter(|c| c.pattern.matches(event)) {
                let content = render_event(&c.record, m, event);
                out.push(NewDelivery {
                    project_id,
                    channel_id: c.record.channel_id,
                    source_key: format!("event:{}:{}", c.record.id, m.message_id),
                    content: serde_json::to_string(&content).unwrap_or_default(),
                    now,
                    event_message_id: Some(m.message_id.clone()),
                    cap: Some(CategoryCap {
                        category_id: c.record.id,
                        max_per_minute,
                    }),
                });
            }
        }
    }
}

/// Keeps the cache fresh with changes made through other replicas.
pub fn spawn_refresh(store: Store, cache: CategoryCache) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(CATEGORY_REFRESH);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(e) = cache.reload(&store).await {
                tracing::warn!(error = %e, "reloading event categories failed; retrying");
            }
        }
    })
}

/// The notification of one event: "💰 payment.succeeded" (or the category's templates), the
/// properties as fields, who and when.
pub fn render_event(category: &CategoryRecord, m: &Message, event: &str) -> Notification {
    let properties = &properties_of(&m.body);
    let user = m.user_id.as_deref().or(m.anonymous_id.as_deref());
    let title = match &category.title_template {
        Some(t) if !t.is_empty() => render_template(t, properties, event, user),
        _ => format!("{} {event}", category.emoji).trim().to_owned(),
    };
    let description = category
        .description_template
        .as_deref()
        .map(|t| render_template(t, properties, event, user))
        .unwrap_or_default();
    Notification {
        title,
        description,
        colour: category.colour,
        fields: fields_from_properties(properties),
        url: None,
        timestamp: Some(m.timestamp),
        user: user.map(str::to_owned),
        footer: Some(format!("Pulseline · {}", category.name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_exactly_or_by_glob() {
        let exact = EventPattern::parse("payment.succeeded").unwrap();
        assert!(exact.matches("payment.succeeded"));
        assert!(!exact.matches("payment.succeeded.twice"));
        let glob = EventPattern::parse("payment.*").unwrap();
        assert!(glob.matches("payment.failed"));
        assert!(!glob.matches("signup"));
        assert!(
            EventPattern::parse("pay[")
                .unwrap_err()
                .contains("not a valid glob")
        );
        assert!(
            EventPattern::parse(" ")
                .unwrap_err()
                .contains("must not be empty")
        );
    }
}
