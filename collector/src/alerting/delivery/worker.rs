//! The delivery worker of one replica: leases due outbox rows, sends them, records attempts,
//! schedules retries; and turns new `alert_events` rows into outbox rows.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, Utc};
use futures::FutureExt;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

use super::DeliveryConfig;
use super::pack::{CHANNEL_CLAIM_MAX, message_sizes};
use super::sender::{SendOutcome, Sender};
use super::summary::CategorySummaries;
use crate::alerting::notification::{Notification, NotificationField};
use crate::clock::Clock;
use crate::store::delivery::{
    AttemptRecord, CHANNEL_DELETED, ChannelRecord, DeliveryRecord, NewDelivery, NextState,
};
use crate::store::{Store, StoreError};

/// Deliveries one replica leases at a time (and sends concurrently).
pub(crate) const CLAIM_BATCH: i64 = 16;
/// Time kept free at the end of a lease: a send that might end later is not started.
const LEASE_MARGIN: Duration = Duration::from_secs(1);
/// `alert_events` rows dispatched per pass.
const ALERT_BATCH: i64 = 100;

#[derive(Debug)]
pub struct DeliveryWorker {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub sender: Arc<Sender>,
    pub config: Arc<DeliveryConfig>,
    pub wake: Arc<Notify>,
    /// This replica's lease owner name.
    pub owner: String,
}

impl DeliveryWorker {
    /// Runs until `stop` turns true; then finishes the sends in flight and returns.
    pub fn spawn(self, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        let me = Arc::new(self);
        tokio::spawn(async move {
            let poll = Duration::from_millis(me.config.poll_ms.max(10));
            let mut summaries = CategorySummaries::default();
            loop {
                if *stop.borrow() {
                    break;
                }
                if let Err(e) = dispatch_alert_events(&me.store, me.clock.now()).await {
                    tracing::warn!(error = %e, "dispatching alert events failed; retrying");
                }
                if let Err(e) = summaries.pass(&me.store, me.clock.now()).await {
                    tracing::warn!(error = %e, "summing up capped categories failed; retrying");
                }
                let claimed = match me.claim().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming deliveries failed; retrying");
                        Vec::new()
                    }
                };
                if claimed.is_empty() {
                    let wait = me.until_next_due(poll).await;
                    tokio::select! {
                        () = me.wake.notified() => {},
                        () = tokio::time::sleep(wait) => {},
                        _ = stop.changed() => {},
                    }
                    continue;
                }
                // In flight: finished even when a stop arrives meanwhile (the caller bounds
                // the wait by the shutdown grace period).
                // A send starts only if it can finish (timeout) a second before the lease ends.
                let lease = Duration::from_millis(me.config.lease_ms);
                let finish_by = std::time::Instant::now() + lease.saturating_sub(LEASE_MARGIN);
                let mut sends = JoinSet::new();
                for group in me.with_waiting(claimed).await {
                    let me = Arc::clone(&me);
                    sends.spawn(async move { me.deliver_channel(group, finish_by).await });
                }
                while sends.join_next().await.is_some() {}
            }
            tracing::debug!("delivery worker stopped");
        })
    }

    async fn claim(&self) -> Result<Vec<DeliveryRecord>, StoreError> {
        let now = self.clock.now();
        let lease = chrono::Duration::milliseconds(self.config.lease_ms as i64);
        self.store
            .claim_due_deliveries(&self.owner, now, now + lease, CLAIM_BATCH)
            .await
    }

    /// The claimed deliveries grouped by channel (of their project), in order, each group
    /// topped up with that channel's other due deliveries so they can leave packed together.
    async fn with_waiting(&self, claimed: Vec<DeliveryRecord>) -> Vec<Vec<DeliveryRecord>> {
        let mut groups: Vec<Vec<DeliveryRecord>> = Vec::new();
        for d in claimed {
            match groups
                .iter_mut()
                .find(|g| g[0].project_id == d.project_id && g[0].channel_id == d.channel_id)
            {
                Some(g) => g.push(d),
                None => groups.push(vec![d]),
            }
        }
        let now = self.clock.now();
        let lease = chrono::Duration::milliseconds(self.config.lease_ms as i64);
        for g in &mut groups {
            let room = CHANNEL_CLAIM_MAX.saturating_sub(g.len());
            if room == 0 {
                continue;
            }
            let (project_id, channel_id) = (g[0].project_id, g[0].channel_id);
            match self
                .store
                .claim_channel_deliveries(
                    &self.owner,
                    now,
                    now + lease,
                    project_id,
                    channel_id,
                    room as i64,
                )
                .await
            {
                Ok(more) => g.extend(more),
                Err(e) => {
                    tracing::warn!(error = %e, "claiming a channel's waiting deliveries failed")
                }
            }
            g.sort_by_key(|d| (d.next_attempt_at, d.id));
        }
        groups
    }

    async fn until_next_due(&self, poll: Duration) -> Duration {
        match self.store.next_delivery_due().await {
            Ok(Some(at)) => (at - self.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .clamp(Duration::from_millis(5), poll),
            _ => poll,
        }
    }

    /// Sends the deliveries of one channel, in order, packed as many to a message as the
    /// target allows; each packed delivery records the message's outcome as its own attempt.
    async fn deliver_channel(&self, group: Vec<DeliveryRecord>, finish_by: std::time::Instant) {
        let Some(first) = group.first() else { return };
        let started_at = self.clock.now();
        // Only ever the deliveries' own project's channel: an id names a channel only within
        // its project, whatever happened to the channel since the rows were queued.
        let channel = match self.store.channel(first.project_id, first.channel_id).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, channel = first.channel_id, "loading the channel failed");
                self.release_all(&group, started_at).await;
                return;
            }
        };
        let refused = |d: &DeliveryRecord, error: String| AttemptRecord {
            attempt: d.attempts + 1,
            started_at,
            latency_ms: 0,
            status_code: None,
            outcome: "refused".into(),
            response_excerpt: None,
            error: Some(error),
        };
        let Some(channel) = channel else {
            for d in &group {
                self.finish(
                    d,
                    "none",
                    refused(d, CHANNEL_DELETED.into()),
                    NextState::Dead,
                )
                .await;
            }
            return;
        };
        if let Some(reason) = &channel.disabled_reason {
            for d in &group {
                let attempt = refused(d, format!("the channel is disabled: {reason}"));
                self.finish(d, &channel.kind, attempt, NextState::Dead)
                    .await;
            }
            return;
        }
        let mut ready = Vec::with_capacity(group.len());
        for d in group {
            match serde_json::from_str::<Notification>(&d.content) {
                Ok(n) => ready.push((d, n)),
                Err(e) => {
                    let attempt = refused(&d, format!("unreadable notification content: {e}"));
                    self.finish(&d, &channel.kind, attempt, NextState::Dead)
                        .await;
                }
            }
        }
        let (deliveries, notifications): (Vec<_>, Vec<_>) = ready.into_iter().unzip();
        let mut at = 0;
        for size in message_sizes(&channel.kind, &notifications) {
            let (pack, rest) = (&deliveries[at..at + size], &deliveries[at + size..]);
            let sent = self
                .send_pack(&channel, pack, &notifications[at..at + size], finish_by)
                .await;
            at += size;
            // Later notifications wait for the earlier ones, so the channel shows them in order.
            if let Some(wait_until) = sent {
                self.release_all(rest, wait_until).await;
                return;
            }
        }
    }

    /// Sends one packed message and records its outcome for each of its deliveries. `Some(at)`
    /// if the channel cannot take more now (paced, retrying, or disabled): the caller leaves
    /// the channel's remaining deliveries until then.
    async fn send_pack(
        &self,
        channel: &ChannelRecord,
        pack: &[DeliveryRecord],
        notifications: &[Notification],
        finish_by: std::time::Instant,
    ) -> Option<DateTime<Utc>> {
        let started_at = self.clock.now();
        // A panic while talking to one target must not leave its deliveries leased forever
        // with no attempt recorded: it becomes a failed attempt, retried and counted.
        let send_started = std::time::Instant::now();
        let outcome = AssertUnwindSafe(self.sender.send_many(
            channel,
            notifications,
            &format!("msg_{}", pack[0].id),
            Some(finish_by),
        ))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| SendOutcome::Failed {
            error: "sending failed unexpectedly (an internal error; see the collector log)".into(),
            retryable: true,
            latency: send_started.elapsed(),
        });
        if let SendOutcome::Paced(wait) = outcome {
            let at = self.clock.now()
                + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(1));
            self.release_all(pack, at).await;
            return Some(at);
        }
        let mut hold = None;
        let mut disabled = false;
        for d in pack {
            let attempts = u32::try_from(d.attempts + 1).unwrap_or(u32::MAX);
            let (next, disable) = next_state(&outcome, attempts, &self.config, self.clock.now());
            if let Some(reason) = disable.filter(|_| !disabled) {
                disabled = true;
                tracing::warn!(channel = channel.id, %reason, "disabling channel");
                if let Err(e) = self
                    .store
                    .disable_channel(d.project_id, channel.id, &reason, self.clock.now())
                    .await
                {
                    tracing::warn!(error = %e, "disabling the channel failed");
                }
            }
            if let NextState::RetryAt(at) = next {
                hold = Some(hold.map_or(at, |h: DateTime<Utc>| h.max(at)));
            }
            let attempt = attempt_record(&outcome, attempts, started_at);
            self.finish(d, &channel.kind, attempt, next).await;
        }
        // After a disable the rest come back now and find the channel disabled.
        hold.or(disabled.then(|| self.clock.now()))
    }

    async fn release_all(&self, deliveries: &[DeliveryRecord], at: DateTime<Utc>) {
        for d in deliveries {
            if let Err(e) = self.store.release_delivery(d.id, &self.owner, at).await {
                tracing::warn!(error = %e, delivery = d.id, "releasing a delivery failed");
            }
        }
    }

    async fn finish(
        &self,
        d: &DeliveryRecord,
        kind: &str,
        attempt: AttemptRecord,
        next: NextState,
    ) {
        let outcome = match next {
            NextState::Delivered => "delivered",
            NextState::RetryAt(_) => "failed",
            NextState::Dead => "dead",
        };
        metrics::counter!("pulseline_delivery_attempts_total", "channel" => kind.to_owned(), "outcome" => outcome)
            .increment(1);
        metrics::histogram!("pulseline_delivery_latency_seconds", "channel" => kind.to_owned())
            .record(attempt.latency_ms as f64 / 1e3);
        if next == NextState::Delivered {
            let age = (attempt.started_at - d.created_at)
                .num_milliseconds()
                .max(0) as f64
                / 1e3;
            metrics::histogram!("pulseline_delivery_age_seconds").record(age);
        }
        match self
            .store
            .record_attempt(d.id, &self.owner, &attempt, next)
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                delivery = d.id,
                "lease lost before the attempt was recorded (PULSELINE_DELIVERY_LEASE_MS too short?)"
            ),
            Err(e) => tracing::error!(error = %e, delivery = d.id, "recording an attempt failed"),
        }
    }
}

/// What an attempt's outcome means: the delivery's next state, and a reason to disable the
/// channel (a webhook that answers 401/404 is gone; retrying cannot help).
pub fn next_state(
    outcome: &SendOutcome,
    attempts: u32,
    config: &DeliveryConfig,
    now: DateTime<Utc>,
) -> (NextState, Option<String>) {
    let retry = |after: Duration| {
        if attempts >= config.max_attempts {
            NextState::Dead
        } else {
            NextState::RetryAt(
                now + chrono::Duration::from_std(after).unwrap_or(chrono::Duration::hours(1)),
            )
        }
    };
    match outcome {
        SendOutcome::Answered { status, .. } if (200..300).contains(status) => {
            (NextState::Delivered, None)
        }
        SendOutcome::Answered {
            status: 429,
            retry_after,
            ..
        } => (
            retry(retry_after.unwrap_or_else(|| backoff(config, attempts))),
            None,
        ),
        SendOutcome::Answered {
            status: status @ (401 | 404 | 410),
            excerpt,
            ..
        } => (
            NextState::Dead,
            Some(format!(
                "the webhook answered HTTP {status} ({}): it was deleted or its URL/token is wrong. \
                 Fix the URL and re-enable the channel (dashboard: Alerts → Channels → Re-enable; \
                 API: PATCH /api/v1/channels/ID with \"enabled\": true)",
                if excerpt.is_empty() {
                    "no body"
                } else {
                    excerpt
                }
            )),
        ),
        SendOutcome::Answered { status, .. } if *status == 408 || *status >= 500 => {
            (retry(backoff(config, attempts)), None)
        }
        SendOutcome::Answered { .. } => (NextState::Dead, None),
        SendOutcome::Failed {
            retryable: true, ..
        } => (retry(backoff(config, attempts)), None),
        SendOutcome::Failed {
            retryable: false, ..
        } => (NextState::Dead, None),
        SendOutcome::Paced(wait) => (retry(*wait), None),
    }
}

/// The wait before retry number `attempts` (1-based): exponential from the minimum, doubling,
/// with jitter, capped at the maximum. The schedule is backon's.
fn backoff(config: &DeliveryConfig, attempts: u32) -> Duration {
    let max = Duration::from_millis(config.retry_max_ms);
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(config.retry_min_ms))
        .with_max_delay(max)
        .with_factor(2.0)
        .with_jitter()
        .with_max_times(attempts as usize)
        .build()
        .nth(attempts.saturating_sub(1) as usize)
        .unwrap_or(max)
}

fn attempt_record(outcome: &SendOutcome, attempt: u32, started_at: DateTime<Utc>) -> AttemptRecord {
    let ms = |d: &Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    match outcome {
        SendOutcome::Answered {
            status,
            excerpt,
            latency,
            ..
        } => AttemptRecord {
            attempt: i64::from(attempt),
            started_at,
            latency_ms: ms(latency),
            status_code: Some(i64::from(*status)),
            outcome: if (200..300).contains(status) {
                "success"
            } else {
                "http_error"
            }
            .into(),
            response_excerpt: Some(excerpt.clone()),
            error: None,
        },
        SendOutcome::Failed { error, latency, .. } => AttemptRecord {
            attempt: i64::from(attempt),
            started_at,
            latency_ms: ms(latency),
            status_code: None,
            outcome: "error".into(),
            response_excerpt: None,
            error: Some(error.clone()),
        },
        SendOutcome::Paced(_) => AttemptRecord {
            attempt: i64::from(attempt),
            started_at,
            latency_ms: 0,
            status_code: None,
            outcome: "paced".into(),
            response_excerpt: None,
            error: None,
        },
    }
}

/// Turns every `alert_events` row no replica has dispatched into one outbox row per listed
/// channel (of the alert's project). Returns how many rows it dispatched.
pub async fn dispatch_alert_events(store: &Store, now: DateTime<Utc>) -> Result<usize, StoreError> {
    let rows = store.undispatched_alert_events(ALERT_BATCH).await?;
    let mut dispatched = 0;
    for a in rows {
        let channel_ids: Vec<i64> = serde_json::from_str(&a.channel_ids).unwrap_or_default();
        let fields: Vec<NotificationField> = serde_json::from_str(&a.fields).unwrap_or_default();
        let content = Notification {
            title: a.title.clone(),
            description: a.description.clone(),
            colour: u32::try_from(a.colour).unwrap_or(0) & 0xFF_FFFF,
            fields,
            url: a.url.clone(),
            timestamp: Some(a.created_at),
            user: None,
            footer: Some(format!("Pulseline alert · {}", a.kind)),
        };
        let content = serde_json::to_string(&content).unwrap_or_default();
        let mut deliveries = Vec::new();
        for id in channel_ids {
            match store.channel(a.project_id, id).await? {
                Some(_) => deliveries.push(NewDelivery {
                    project_id: a.project_id,
                    channel_id: id,
                    source_key: format!("alert:{}", a.id),
                    content: content.clone(),
                    now,
                    event_message_id: None,
                    cap: None,
                }),
                _ => tracing::warn!(
                    alert_event = a.id,
                    channel = id,
                    "alert names a channel its project does not have; skipped"
                ),
            }
        }
        if store.dispatch_alert_event(a.id, &deliveries, now).await? {
            dispatched += 1;
            metrics::counter!("pulseline_deliveries_enqueued_total", "source" => "alert")
                .increment(deliveries.len() as u64);
        }
    }
    Ok(dispatched)
}
