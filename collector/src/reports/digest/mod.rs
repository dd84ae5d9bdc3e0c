//! The weekly digest (docs/digest.md): every Monday after 00:00 in a project's time zone, the
//! past week against the week before, e-mailed to each member who turned it on and posted to
//! the project's digest channel (Discord or Slack), once per project and week across replicas
//! and restarts.
//!
//! Once: the scheduler writes a `digest_weeks` row (primary key: project, week) in the same
//! transaction as the week's e-mail rows and channel delivery; a replica that loses the race
//! writes nothing. E-mails then leave through their own leased outbox (`digest_emails`), the
//! channel message through the delivery outbox like any notification.

pub mod content;
mod email;
pub mod render;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

pub use content::{Digest, Week, last_complete_week, project_tz};
pub use email::{EmailError, configured as email_configured};

use crate::clock::Clock;
use crate::config::DeliveryConfig;
use crate::domain::ProjectId;
use crate::store::delivery::NewDelivery;
use crate::store::digest::{DigestEmailNext, DigestProject};
use crate::store::{Store, StoreError};

/// Previews one member may ask for per hour ("send me a preview now"), per replica.
pub const DIGEST_PREVIEWS_PER_HOUR: u32 = 3;
/// Weeks of digests (and their finished e-mails) kept per project; older ones are dropped
/// when a new week is recorded.
pub const DIGEST_KEEP_WEEKS: i64 = 13;
/// Digest e-mails one replica leases per pass.
const EMAIL_BATCH: i64 = 16;

/// The digest's scheduler and e-mail sender of one replica.
#[derive(Debug, Clone)]
pub struct DigestScheduler {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<DeliveryConfig>,
    /// Wakes the delivery worker when a channel digest was queued.
    pub wake: Arc<Notify>,
    /// The dashboard's address for the digest's link (PULSELINE_PUBLIC_URL).
    pub dashboard_url: Option<String>,
    /// This replica's lease owner name.
    pub owner: String,
}

impl DigestScheduler {
    /// Runs a pass every `interval` until the task is aborted; a failing pass is logged and
    /// retried at the next tick.
    pub fn spawn(self, interval: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(50)));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Err(e) = self.pass().await {
                    tracing::warn!(error = %e, "weekly digest pass failed; retrying");
                }
            }
        })
    }

    /// Records every project's digest that is due, then sends the e-mails that are due.
    pub async fn pass(&self) -> Result<(), StoreError> {
        let now = self.clock.now();
        // One project's failure (a query error mid-digest) must not hold back the others.
        for project in self.store.digest_projects().await? {
            if let Err(e) = self.schedule(&project, now).await {
                tracing::warn!(project = project.id, error = %e, "recording a digest failed; retrying");
            }
        }
        self.send_due_emails().await
    }

    /// Records the project's last complete week if no replica has yet. A week with nobody to
    /// receive it is recorded too (without content), so a member who opts in mid-week gets
    /// the next Monday's digest, not last week's a few days late.
    async fn schedule(&self, p: &DigestProject, now: DateTime<Utc>) -> Result<(), StoreError> {
        let Ok(week) = last_complete_week(now, &project_tz(&p.timezone)) else {
            return Ok(());
        };
        if p.last_week_start.is_some_and(|done| done >= week.start) {
            return Ok(());
        }
        // Without SMTP no e-mail could leave: none is queued (the dashboard says so).
        let recipients = if email::configured(&self.config) {
            self.store.digest_recipients(p.id).await?
        } else {
            Vec::new()
        };
        let channel = self.digest_channel(p.id).await?;
        // A project made after the week ended has nothing to report on it.
        let nothing_to_report = p.created_at >= week.end;
        let keep_from = week.start - DIGEST_KEEP_WEEKS * 7 * 86_400_000;
        if nothing_to_report || recipients.is_empty() && channel.is_none() {
            if self
                .store
                .record_digest_week(p.id, week.start, None, &[], None, now)
                .await?
            {
                self.store.forget_digest_weeks(p.id, keep_from).await?;
            }
            return Ok(());
        }
        let digest = content::compute(&self.store, p.id, &p.name, &p.timezone, week, now).await?;
        let json = serde_json::to_string(&digest).unwrap_or_default();
        let delivery = channel.map(|channel_id| NewDelivery {
            project_id: p.id,
            channel_id,
            source_key: format!("digest:{}", week.start),
            content: serde_json::to_string(&render::notification(
                &digest,
                self.dashboard_url.as_deref(),
                now,
            ))
            .unwrap_or_default(),
            now,
            event_message_id: None,
            cap: None,
        });
        let recorded = self
            .store
            .record_digest_week(
                p.id,
                week.start,
                Some(&json),
                &recipients,
                delivery.as_ref(),
                now,
            )
            .await?;
        if recorded {
            self.store.forget_digest_weeks(p.id, keep_from).await?;
            metrics::counter!("pulseline_digests_recorded_total").increment(1);
            if delivery.is_some() {
                self.wake.notify_one();
            }
        }
        Ok(())
    }

    /// The project's digest channel, if it is still one of the project's channels.
    async fn digest_channel(&self, project: ProjectId) -> Result<Option<i64>, StoreError> {
        let Some(id) = self.store.digest_channel_id(project).await? else {
            return Ok(None);
        };
        Ok(self.store.channel(project, id).await?.map(|c| c.id))
    }

    async fn send_due_emails(&self) -> Result<(), StoreError> {
        let now = self.clock.now();
        if !self.store.digest_emails_due(now).await? {
            return Ok(());
        }
        let lease = chrono::Duration::milliseconds(self.config.lease_ms as i64);
        let due = self
            .store
            .claim_digest_emails(&self.owner, now, now + lease, EMAIL_BATCH)
            .await?;
        for e in due {
            let next = match serde_json::from_str::<Digest>(&e.content) {
                Ok(d) => {
                    let url = self.dashboard_url.as_deref();
                    let sent = email::send(
                        &self.config,
                        &e.email,
                        &render::subject(&d),
                        render::text(&d, url),
                        render::html(&d, url),
                    )
                    .await;
                    self.next_state(sent, e.attempts + 1)
                }
                Err(err) => DigestEmailNext::Dead(format!("unreadable digest content: {err}")),
            };
            let outcome = match &next {
                DigestEmailNext::Sent => "sent",
                DigestEmailNext::RetryAt(..) => "failed",
                DigestEmailNext::Dead(reason) => {
                    tracing::warn!(project = e.project_id, %reason, "digest e-mail given up");
                    "dead"
                }
            };
            metrics::counter!("pulseline_digest_emails_total", "outcome" => outcome).increment(1);
            if !self
                .store
                .finish_digest_email(e.id, &self.owner, &next, self.clock.now())
                .await?
            {
                tracing::warn!(
                    email = e.id,
                    "digest e-mail lease lost before its outcome was recorded"
                );
            }
        }
        Ok(())
    }

    /// Retries with doubling waits (PULSELINE_DELIVERY_RETRY_MIN_MS … _MAX_MS) up to
    /// PULSELINE_DELIVERY_MAX_ATTEMPTS, like every other delivery.
    fn next_state(&self, sent: Result<(), EmailError>, attempts: i64) -> DigestEmailNext {
        match sent {
            Ok(()) => DigestEmailNext::Sent,
            Err(e) if !e.retryable || attempts >= i64::from(self.config.max_attempts) => {
                DigestEmailNext::Dead(e.message)
            }
            Err(e) => {
                let shift = u32::try_from(attempts - 1).unwrap_or(0).min(30);
                let wait = self
                    .config
                    .retry_min_ms
                    .saturating_mul(1 << shift)
                    .min(self.config.retry_max_ms);
                let at = self.clock.now() + chrono::Duration::milliseconds(wait as i64);
                DigestEmailNext::RetryAt(at, e.message)
            }
        }
    }
}

/// The project's current digest (its last complete week), or why it has none.
pub async fn preview(
    store: &Store,
    project: ProjectId,
    now: DateTime<Utc>,
) -> Result<Result<Digest, EmailError>, StoreError> {
    let (name, timezone, _) = store.digest_project(project).await?.unwrap_or_default();
    let Ok(week) = last_complete_week(now, &project_tz(&timezone)) else {
        return Ok(Err(EmailError {
            message: format!("the project's time zone {timezone} gives no week"),
            retryable: false,
        }));
    };
    let digest = content::compute(store, project, &name, &timezone, week, now).await?;
    Ok(Ok(digest))
}

/// Renders and sends a [`preview`] to one address now, recording nothing: the week's own
/// digest still goes out as scheduled.
pub async fn send_preview(
    config: &DeliveryConfig,
    to: &str,
    preview: Result<Digest, EmailError>,
    dashboard_url: Option<&str>,
) -> Result<Digest, EmailError> {
    let digest = preview?;
    let subject = format!("[Preview] {}", render::subject(&digest));
    email::send(
        config,
        to,
        &subject,
        render::text(&digest, dashboard_url),
        render::html(&digest, dashboard_url),
    )
    .await
    .map(|()| digest)
}
