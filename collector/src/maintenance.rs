//! Scheduled work: partitions for the coming days, retention by each project's plan, and
//! removing expired invitations and dashboard sessions.
//! Safe with several replicas: the store makes each pass happen once (advisory locks).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::store::{RetentionReport, Store, StoreError};

/// One maintenance pass at `now`.
pub async fn run_once(store: &Store, now: DateTime<Utc>) -> Result<RetentionReport, StoreError> {
    store.prepare_partitions(now).await?;
    // Page views about to expire are counted in the Web page's rollups first: the fold's own
    // bounded pass, the one its tick runs (an unbounded fold here held SQLite's write lock
    // long enough to time out a CLI command beside the server).
    fold_web_visits(store).await?;
    let report = store.apply_retention(now).await?;
    // Days of a project whose time zone changed and whose re-keying did not finish.
    let days = store.rebuild_local_days(now.timestamp_millis()).await?;
    if days > 0 {
        tracing::info!(days, "active-user days re-keyed to the project's time zone");
    }
    // A day's cookieless salt goes when the day ends, also when no cookieless message came.
    store.delete_salts_before(now.date_naive()).await?;
    // Expired invitations can no longer be accepted; nothing reads them.
    let expired =
        now - chrono::Duration::days(crate::routes::dashboard::invitations::INVITATION_TTL_DAYS);
    store.delete_expired_invitations(expired).await?;
    // Logins are refused after expiry anyway; without this their rows would stay forever.
    let sessions = store.delete_expired_sessions(now).await?;
    if sessions > 0 {
        tracing::info!(sessions, "expired dashboard sessions removed");
    }
    // Web Vitals stored before their rollup existed (migration 0041): one chunk per
    // transaction, so ingest waits at most one chunk for the writer.
    while store.backfill_vitals().await? {}
    // Tracked properties whose rollup is not complete yet (a settings change starts the same
    // loop at once; this resumes one cut short by a restart).
    while store.backfill_props().await? {}
    if report != RetentionReport::default() {
        tracing::info!(
            events_deleted = report.events_deleted,
            partitions_dropped = report.partitions_dropped,
            deliveries_deleted = report.deliveries_deleted,
            alerts_deleted = report.alerts_deleted,
            "retention pass"
        );
    }
    metrics::counter!("pulseline_retention_events_deleted_total").increment(report.events_deleted);
    metrics::counter!("pulseline_retention_deliveries_deleted_total")
        .increment(report.deliveries_deleted);
    metrics::counter!("pulseline_retention_alerts_deleted_total").increment(report.alerts_deleted);
    Ok(report)
}

/// How often SQLite's WAL is checkpointed in the background. Often, so that each checkpoint
/// (pages copied into the database file, then an fsync of it) is small: a large one delays the
/// ingest commits' own WAL syncs behind it. Measured at 32 connections, alternating runs: p99
/// 36–44 ms at 25 ms against 66–84 ms at 100 ms and 78 ms at 200 ms, the same throughput; 10 ms
/// wrote 10% more bytes per event for no better tail. An idle check costs one statement.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(25);

/// How often the background fold looks for stored page views to fold into the Web page's
/// visits and rollups (crate::store::visits). The page never folds: it says how far behind
/// the fold is.
const WEB_FOLD_INTERVAL: Duration = Duration::from_millis(200);

/// A fold pass stops after the chunk that ends past this (each chunk is its own transaction,
/// so ingest commits go between them); the next tick goes on.
const WEB_FOLD_BUDGET: Duration = Duration::from_secs(1);

/// How long queued page views wait before a maintenance pass folds them itself: longer than
/// any sensible `PULSELINE_WEB_FOLD_DELAY_MS`, so the pass only catches what the tick left
/// (page views queued before a restart), before retention runs.
const MAINTENANCE_FOLD_AGE: Duration = Duration::from_secs(60);

async fn fold_web_visits(store: &Store) -> Result<(), StoreError> {
    let backlog = store.web_fold_backlog().await?;
    // What the tick would fold by now: a backlog it folds at once, or page views that have
    // waited longer than any fold delay should let them (queued before a restart, say). A few
    // fresh ones are left to the tick's delay: this pass also runs at startup and every hour,
    // and folding them here would cut the delay short at random.
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let waited = backlog.oldest_queued_at.map_or(Duration::ZERO, |at| {
        Duration::from_millis(wall.saturating_sub(at).max(0) as u64)
    });
    if backlog.fold_now(waited, MAINTENANCE_FOLD_AGE) {
        fold_pass(store).await?;
    }
    Ok(())
}

async fn fold_pass(store: &Store) -> Result<(), StoreError> {
    let deadline = std::time::Instant::now() + WEB_FOLD_BUDGET;
    store.fold_web_visits_until(Some(deadline)).await?;
    Ok(())
}

/// The fold's tick: folds once the backlog asks for it
/// ([`crate::store::visits::FoldBacklog::fold_now`]), `waiting` being when this tick first saw
/// work that had to wait.
async fn fold_tick(
    store: &Store,
    delay: Duration,
    waiting: &mut Option<std::time::Instant>,
) -> Result<(), StoreError> {
    let backlog = store.web_fold_backlog().await?;
    if backlog.is_empty() {
        *waiting = None;
        return Ok(());
    }
    let since = *waiting.get_or_insert_with(std::time::Instant::now);
    if backlog.fold_now(since.elapsed(), delay) {
        *waiting = None;
        fold_pass(store).await?;
    }
    Ok(())
}

/// Runs a pass every `interval`, and WAL checkpoints more often, until the task is aborted;
/// folds page views as [`fold_tick`] decides, with `fold_delay` (`PULSELINE_WEB_FOLD_DELAY_MS`).
/// A failing pass is logged and retried at the next tick; it never stops ingest.
pub fn spawn(
    store: Store,
    clock: Arc<dyn Clock>,
    interval: Duration,
    fold_delay: Duration,
) -> tokio::task::JoinHandle<()> {
    use tokio::time::{MissedTickBehavior, interval as every};
    tokio::spawn(async move {
        let mut passes = every(interval.max(Duration::from_secs(1)));
        let mut checkpoints = every(CHECKPOINT_INTERVAL);
        let mut folds = every(WEB_FOLD_INTERVAL);
        passes.set_missed_tick_behavior(MissedTickBehavior::Delay);
        checkpoints.set_missed_tick_behavior(MissedTickBehavior::Delay);
        folds.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut fold_waiting = None;
        loop {
            tokio::select! {
                _ = passes.tick() => {
                    if let Err(e) = run_once(&store, clock.now()).await {
                        tracing::warn!(error = %e, "maintenance pass failed; retrying at the next interval");
                    }
                }
                _ = folds.tick() => {
                    if let Err(e) = fold_tick(&store, fold_delay, &mut fold_waiting).await {
                        tracing::warn!(error = %e, "folding page views into visits failed; the next tick retries");
                    }
                }
                _ = checkpoints.tick() => {
                    if let Err(e) = store.checkpoint().await {
                        tracing::debug!(error = %e, "WAL checkpoint failed; the next one retries");
                    }
                }
            }
        }
    })
}
