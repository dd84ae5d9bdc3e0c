//! Suppression at ingest: after a person's data is deleted with `suppress=true`, their new
//! messages are accepted and dropped (Segment's "delete and suppress").
//!
//! Ingest must not pay a query per message, so every suppressed id lives in memory, by project:
//! a batch of a project with none costs one hash lookup, and each message of a project with some
//! costs two set lookups (userId, anonymousId). The cache is reloaded at once when this replica
//! changes a suppression, and every [`SUPPRESSION_REFRESH`] for changes made through others.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::domain::{Message, ProjectId};
use crate::state::snapshot::Snapshot;
use crate::store::{Store, StoreError};

/// How often each replica reloads the suppressed ids (changes made through another replica
/// apply after at most this long; through this one, at once).
pub const SUPPRESSION_REFRESH: Duration = Duration::from_secs(5);

/// Suppressed person ids by project, shared by the ingest handlers and the persons API.
#[derive(Debug, Clone, Default)]
pub struct SuppressionCache(Arc<Snapshot<HashMap<ProjectId, HashSet<String>>>>);

impl SuppressionCache {
    pub async fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let reload = self.0.begin();
        let mut by_project: HashMap<ProjectId, HashSet<String>> = HashMap::new();
        for (project, id) in store.all_suppressions().await? {
            by_project.entry(project).or_default().insert(id);
        }
        self.0.finish(reload, by_project);
        Ok(())
    }

    /// Removes the messages of suppressed persons; how many it removed.
    pub fn drop_suppressed(&self, project: ProjectId, messages: &mut Vec<Message>) -> usize {
        self.0.with(|map| {
            let Some(ids) = map.get(&project) else {
                return 0;
            };
            let before = messages.len();
            messages.retain(|m| {
                let suppressed =
                    |id: &Option<String>| id.as_ref().is_some_and(|id| ids.contains(id));
                !(suppressed(&m.user_id) || suppressed(&m.anonymous_id))
            });
            before - messages.len()
        })
    }
}

/// Keeps the cache fresh with changes made through other replicas.
pub fn spawn_refresh(store: Store, cache: SuppressionCache) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(SUPPRESSION_REFRESH);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(e) = cache.reload(&store).await {
                tracing::warn!(error = %e, "reloading suppressed persons failed; retrying");
            }
        }
    })
}
