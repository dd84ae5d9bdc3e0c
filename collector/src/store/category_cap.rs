//! The per-category flood cap's storage (migration 0011): per category and minute of receipt,
//! how many events matched and how many became their own message. Counted in the ingest
//! transaction (the row lock on PostgreSQL makes replicas take turns), so the cap holds across
//! replicas; the "and N more" summary enters the outbox once, guarded by `summarized` and the
//! outbox's unique key.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::delivery::{NewDelivery, Outbox};
use super::{Store, StoreError, millis};
use crate::domain::ProjectId;

const MINUTE_MS: i64 = 60_000;

/// Which category an event notification comes from, and its cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CategoryCap {
    pub category_id: i64,
    /// Messages per minute this category may send one by one.
    pub max_per_minute: u32,
}

pub(super) const COUNT_SQL: &str = "INSERT INTO category_minutes
         (category_id, minute, project_id, channel_id, matched, sent, summarized)
     VALUES ($1, $2, $3, $4, $5, 0, 0)
     ON CONFLICT (category_id, minute) DO UPDATE
         SET matched = category_minutes.matched + excluded.matched
     RETURNING sent";
pub(super) const SENT_SQL: &str =
    "UPDATE category_minutes SET sent = sent + $3 WHERE category_id = $1 AND minute = $2";

/// The capped deliveries of one commit, grouped by (category, minute) in key order (so
/// concurrent PostgreSQL commits lock counter rows in the same order and cannot deadlock).
pub(super) fn groups<'a>(
    deliveries: impl Iterator<Item = &'a NewDelivery>,
) -> BTreeMap<(i64, i64), Vec<usize>> {
    let mut groups: BTreeMap<(i64, i64), Vec<usize>> = BTreeMap::new();
    for (i, d) in deliveries.enumerate() {
        if let Some(cap) = d.cap {
            let at = millis(d.now);
            groups
                .entry((cap.category_id, at - at.rem_euclid(MINUTE_MS)))
                .or_default()
                .push(i);
        }
    }
    groups
}

/// Of `n` new matches, how many may still be sent one by one when `sent` already were.
pub(super) fn allowed(d: &NewDelivery, sent: i64, n: usize) -> usize {
    let max = i64::from(d.cap.map_or(u32::MAX, |c| c.max_per_minute));
    (max - sent).clamp(0, n as i64) as usize
}

/// The deliveries `keep` marks; the others are counted as capped.
pub(super) fn kept<T>(deliveries: Vec<T>, keep: Vec<bool>) -> Vec<T> {
    let capped = keep.iter().filter(|k| !**k).count();
    if capped > 0 {
        metrics::counter!("pulseline_notifications_capped_total").increment(capped as u64);
    }
    deliveries
        .into_iter()
        .zip(keep)
        .filter_map(|(d, k)| k.then_some(d))
        .collect()
}

/// A finished minute in which a category matched more events than it sent.
#[derive(Debug, Clone)]
pub struct CategoryOverflow {
    pub category_id: i64,
    /// Unix ms of the minute's start.
    pub minute: i64,
    pub project_id: ProjectId,
    pub channel_id: i64,
    pub sent: i64,
    pub more: i64,
    /// The category's look, `None` when it was deleted since.
    pub name: Option<String>,
    pub emoji: Option<String>,
    pub colour: Option<i64>,
}

impl Store {
    /// Minutes that ended by `now` (unix ms) with unsent matches and no summary yet.
    pub async fn category_overflows(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<CategoryOverflow>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let rows = sqlx::query(
                "SELECT m.category_id, m.minute, m.project_id, m.channel_id, m.sent,
                    m.matched - m.sent AS more, c.name, c.emoji, c.colour
             FROM category_minutes m
             LEFT JOIN event_categories c ON c.id = m.category_id
             WHERE m.summarized = 0 AND m.matched > m.sent AND m.minute <= $1 - $2
             ORDER BY m.minute LIMIT $3",
            )
            .bind(now)
            .bind(MINUTE_MS)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows
                .iter()
                .map(|r| CategoryOverflow {
                    category_id: r.get("category_id"),
                    minute: r.get("minute"),
                    project_id: r.get("project_id"),
                    channel_id: r.get("channel_id"),
                    sent: r.get("sent"),
                    more: r.get("more"),
                    name: r.get("name"),
                    emoji: r.get("emoji"),
                    colour: r.get("colour"),
                })
                .collect())
        })
    }

    /// Marks the overflow summarized and, if this call was the one to do it, enqueues
    /// `summary` (`None`: the category is gone, nothing to send). Returns whether it did.
    pub async fn summarize_category_overflow(
        &self,
        o: &CategoryOverflow,
        summary: Option<NewDelivery>,
    ) -> Result<bool, StoreError> {
        const MARK_SUMMARIZED: &str = "UPDATE category_minutes SET summarized = 1
                    WHERE category_id = $1 AND minute = $2 AND summarized = 0";
        let deliveries: Vec<NewDelivery> = summary.into_iter().collect();
        with_db!(self, write_pool, |pool| {
            let mut tx = pool.begin().await?;
            let marked = sqlx::query(MARK_SUMMARIZED)
                .bind(o.category_id)
                .bind(o.minute)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if marked == 0 {
                return Ok(false);
            }
            tx.insert_deliveries(&deliveries).await?;
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Drops counter rows of minutes that ended by `now` and need nothing more.
    pub async fn forget_category_minutes(&self, now: i64) -> Result<u64, StoreError> {
        with_db!(self, write_pool, |pool| {
            let done = sqlx::query(
                "DELETE FROM category_minutes
             WHERE minute <= $1 - $2 AND (summarized = 1 OR matched = sent)",
            )
            .bind(now)
            .bind(MINUTE_MS)
            .execute(pool)
            .await?;
            Ok(done.rows_affected())
        })
    }
}

/// The summary's outbox key: one per category, minute and channel.
pub fn summary_source_key(category_id: i64, minute: i64) -> String {
    format!("event-summary:{category_id}:{minute}")
}

/// When a minute (unix ms of its start) ended.
pub fn minute_end(minute: i64) -> DateTime<Utc> {
    super::from_millis(minute + MINUTE_MS)
}
