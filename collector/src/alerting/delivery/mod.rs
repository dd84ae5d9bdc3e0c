//! Delivery: the outbox of notifications (from event categories and alert rules), sent to
//! Discord, Slack, signed webhooks and email, exactly once across replicas and restarts.
//!
//! Rows enter the outbox in the same transaction as what caused them (the ingest commit of a
//! matching event; the dispatch marker of an `alert_events` row), under a unique
//! `(channel_id, source_key)`. A worker in each replica leases due rows (`FOR UPDATE SKIP
//! LOCKED` on PostgreSQL), sends them, and records each attempt; a replica that dies leaves its
//! leases to expire, after which another replica sends.

pub mod address;
pub mod discord;
mod pack;
pub mod sender;
pub mod slack;
mod summary;
pub mod webhook;
mod worker;

use std::sync::Arc;

use tokio::sync::Notify;

pub use crate::config::DeliveryConfig;
pub use worker::{DeliveryWorker, dispatch_alert_events, next_state};

use crate::alerting::categories::CategoryCache;
use crate::clock::Clock;
use crate::store::PendingBatch;
use crate::store::delivery::NewDelivery;

/// What the ingest writer needs to enqueue event notifications and wake delivery.
#[derive(Debug, Clone)]
pub struct EventNotifications {
    pub categories: CategoryCache,
    pub wake: Arc<Notify>,
    pub clock: Arc<dyn Clock>,
    /// Messages each category sends one by one per minute (PULSELINE_CATEGORY_MAX_PER_MINUTE).
    pub max_per_minute: u32,
}

impl EventNotifications {
    /// The outbox rows for every categorised event among `batches`.
    pub fn matching(&self, batches: &[PendingBatch], out: &mut Vec<NewDelivery>) {
        let now = self.clock.now();
        for b in batches {
            self.categories.deliveries_for(
                b.project_id,
                &b.messages,
                now,
                self.max_per_minute,
                out,
            );
        }
    }

    /// After the commit: wake the worker so the notification leaves within milliseconds.
    pub fn committed(&self, deliveries: usize) {
        metrics::counter!("pulseline_deliveries_enqueued_total", "source" => "event")
            .increment(deliveries as u64);
        self.wake.notify_one();
    }
}

/// Delivery's shared parts, held in the app state for the API (test action, cache refresh).
#[derive(Debug, Clone)]
pub struct DeliveryHandle {
    pub sender: Arc<sender::Sender>,
    pub notifications: EventNotifications,
    pub config: Arc<DeliveryConfig>,
}
