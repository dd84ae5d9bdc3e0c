//! Scheduled work: partitions for the coming days, and retention by each project's plan.
//! Safe with several replicas: the store makes each pass happen once (advisory locks).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::store::{RetentionReport, Store, StoreError};

/// One maintenance pass at `now`.
pub async fn run_once(store: &Store, now: DateTime<Utc>) -> Result<RetentionReport, StoreError> {
    store.prepare_partitions(now).await?;
    let report = store.apply_retention(now).await?;
    if report != RetentionReport::default() {
        tracing::info!(
            events_deleted = report.events_deleted,
            partitions_dropped = report.partitions_dropped,
            "retention pass"
        );
    }
    metrics::counter!("pulseline_retention_events_deleted_total").increment(report.events_deleted);
    Ok(report)
}

/// Runs a pass every `interval` until the task is aborted. A failing pass is logged and
/// retried at the next interval; it never stops ingest.
pub fn spawn(store: Store, clock: Arc<dyn Clock>, interval: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval.max(Duration::from_secs(1)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(e) = run_once(&store, clock.now()).await {
                tracing::warn!(error = %e, "maintenance pass failed; retrying at the next interval");
            }
        }
    })
}
