//! The Web page's visits kept at ingest (migration 0034, docs/dashboard-web.md): one row per
//! visit in `web_visits`, and rollups per day (and hour) of the project's time zone in
//! `web_daily` / `web_hourly` that the page reads instead of page views.
//!
//! Ingest only queues each stored page view (`web_visit_pending`, filled by a trigger on
//! `web_pageviews`, in the ingest transaction). The background fold ([`Store::fold_web_visits`],
//! run by `crate::maintenance`) takes the queue [`FOLD_CHUNK`] page views per transaction: for
//! each visitor it touches, it reads the stored visits around the new page views (a late one may
//! extend a visit or bridge two), recomputes them from that visitor's page views in the span, and
//! moves the rollups by the difference. A HyperLogLog sketch cannot forget a visitor: a day row
//! that lost one (a visit that moved to another value, a person deleted) is queued in
//! `web_daily_dirty` and its sketch rebuilt from its day's rows by [`rebuild`]. The page never
//! folds: it says how far the fold has come.

mod days;
mod fold;
mod plan;
mod rebuild;
pub mod sketch;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sqlx::FromRow;

use super::web::{Dimension, VISIT_GAP_MS};
use super::{Store, StoreError};

/// Queued page views folded per transaction at first, and the fewest it goes down to: a
/// short queue is folded in one small transaction.
pub const FOLD_CHUNK: i64 = 1_000;

/// The most page views one transaction folds. A long queue is folded in large chunks, since
/// each rollup row a chunk touches is read and written (sketch included) once per chunk.
pub const FOLD_CHUNK_MAX: i64 = 64_000;

/// How long one fold transaction may hold the database: SQLite has one writer, so ingest
/// waits up to this for it. The chunk size grows while chunks take well under it and shrinks
/// when one takes longer ([`FoldPace`]).
pub const FOLD_TX_BUDGET: Duration = Duration::from_millis(250);

/// The chunk size the fold has settled at, kept by the caller from one pass to the next so
/// a long queue is not started again at [`FOLD_CHUNK`] every pass.
#[derive(Debug, Clone, Copy)]
pub struct FoldPace {
    chunk: i64,
}

impl Default for FoldPace {
    fn default() -> Self {
        Self { chunk: FOLD_CHUNK }
    }
}

impl FoldPace {
    /// Page views the next chunk takes.
    pub fn chunk(&self) -> i64 {
        self.chunk
    }

    /// After a full chunk that took `took`: aim at three quarters of [`FOLD_TX_BUDGET`]
    /// (the time a chunk takes grows about linearly with its size), at most doubling at once.
    fn after(&mut self, took: Duration) {
        let target = FOLD_TX_BUDGET.as_secs_f64() * 0.75;
        let scaled = (self.chunk as f64 * target / took.as_secs_f64().max(1e-3)) as i64;
        self.chunk = scaled.min(self.chunk * 2).clamp(FOLD_CHUNK, FOLD_CHUNK_MAX);
    }
}

/// The visit dimensions (every breakdown but `page`): their `Dimension::key` is also their
/// column in `web_visits` and their `dim` in `web_hourly`.
pub(crate) const VISIT_DIMENSIONS: [Dimension; 11] = [
    Dimension::EntryPage,
    Dimension::ExitPage,
    Dimension::Source,
    Dimension::Referrer,
    Dimension::UtmSource,
    Dimension::UtmMedium,
    Dimension::UtmCampaign,
    Dimension::Country,
    Dimension::Browser,
    Dimension::Os,
    Dimension::Device,
];

const VISIT_COLUMNS: &str = "start_ts, end_ts, pageviews, entry_page, exit_page, source, \
     referrer, utm_source, utm_medium, utm_campaign, country, browser, os, device";

#[derive(Debug, FromRow)]
struct StoredVisit {
    id: i64,
    start_ts: i64,
    end_ts: i64,
    pageviews: i64,
    entry_page: String,
    exit_page: String,
    source: String,
    referrer: String,
    utm_source: String,
    utm_medium: String,
    utm_campaign: String,
    country: String,
    browser: String,
    os: String,
    device: String,
}

#[derive(Debug, FromRow)]
struct PageView {
    ts: i64,
    path: String,
    referrer: Option<String>,
    source: Option<String>,
    utm_source: Option<String>,
    utm_medium: Option<String>,
    utm_campaign: Option<String>,
    country: Option<String>,
    browser: Option<String>,
    os: Option<String>,
    device: Option<String>,
}

/// A visit: its span, page views, and its value of each of [`VISIT_DIMENSIONS`] in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Visit {
    start_ts: i64,
    end_ts: i64,
    pageviews: i64,
    values: [String; 11],
}

impl Visit {
    fn from_stored(v: &StoredVisit) -> Self {
        Self {
            start_ts: v.start_ts,
            end_ts: v.end_ts,
            pageviews: v.pageviews,
            values: [
                v.entry_page.clone(),
                v.exit_page.clone(),
                v.source.clone(),
                v.referrer.clone(),
                v.utm_source.clone(),
                v.utm_medium.clone(),
                v.utm_campaign.clone(),
                v.country.clone(),
                v.browser.clone(),
                v.os.clone(),
                v.device.clone(),
            ],
        }
    }
}

impl From<StoredVisit> for Visit {
    fn from(v: StoredVisit) -> Self {
        Self {
            start_ts: v.start_ts,
            end_ts: v.end_ts,
            pageviews: v.pageviews,
            values: [
                v.entry_page,
                v.exit_page,
                v.source,
                v.referrer,
                v.utm_source,
                v.utm_medium,
                v.utm_campaign,
                v.country,
                v.browser,
                v.os,
                v.device,
            ],
        }
    }
}

/// A visitor's page views (in time order) cut where the gap exceeds [`VISIT_GAP_MS`].
fn cut(pvs: &[PageView]) -> Vec<Visit> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 0..pvs.len() {
        let ends = pvs
            .get(i + 1)
            .is_none_or(|n| n.ts - pvs[i].ts > VISIT_GAP_MS);
        if !ends {
            continue;
        }
        let (first, last) = (&pvs[start], &pvs[i]);
        let v = |x: &Option<String>| x.clone().unwrap_or_default();
        out.push(Visit {
            start_ts: first.ts,
            end_ts: last.ts,
            pageviews: (i + 1 - start) as i64,
            values: [
                first.path.clone(),
                last.path.clone(),
                v(&first.source),
                v(&first.referrer),
                v(&first.utm_source),
                v(&first.utm_medium),
                v(&first.utm_campaign),
                v(&first.country),
                v(&first.browser),
                v(&first.os),
                v(&first.device),
            ],
        });
        start = i + 1;
    }
    out
}

/// A queued page view: stored (or removed, `removed` = 1) and not yet folded.
#[derive(Debug, FromRow)]
struct Pending {
    project_id: i64,
    seq: i64,
    visitor: String,
    ts: i64,
    path: String,
    removed: i64,
}

/// Projects whose rollups are being rebuilt (`web_rebuild`): (visit id, page view seq) counted
/// so far. The fold leaves to the rebuild what it has not reached yet.
type Rebuilding = HashMap<i64, (i64, i64)>;

impl Store {
    /// Folds every queued page view into the visits and their rollups, then rebuilds what
    /// the chunks left dirty; returns how many page views. Each chunk is its own transaction.
    pub async fn fold_web_visits(&self) -> Result<u64, StoreError> {
        self.fold_web_visits_until(None, &mut FoldPace::default())
            .await
    }

    /// Like [`Self::fold_web_visits`], but stops after the chunk that ends past `deadline`;
    /// chunks are sized by `pace`, which it updates.
    pub async fn fold_web_visits_until(
        &self,
        deadline: Option<Instant>,
        pace: &mut FoldPace,
    ) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let started = Instant::now();
            let size = pace.chunk();
            let n = self.fold_chunk(size).await?;
            total += n;
            if n < size as u64 {
                break;
            }
            pace.after(started.elapsed());
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
        }
        self.rebuild_dirty_sketches().await?;
        self.rebuild_step().await?;
        Ok(total)
    }

    /// Whether the fold has work: queued page views, dirty sketches or a rebuild (a cheap
    /// read, so an idle collector never opens a write transaction for nothing).
    pub async fn web_visits_pending(&self) -> Result<bool, StoreError> {
        let row: Option<i64> = with_db!(self, read_pool, |pool| {
            sqlx::query_scalar(
                "SELECT CAST(1 AS BIGINT) WHERE EXISTS (SELECT 1 FROM web_visit_pending)
                    OR EXISTS (SELECT 1 FROM web_daily_dirty)
                    OR EXISTS (SELECT 1 FROM web_rebuild)",
            )
            .fetch_optional(pool)
            .await?
        });
        Ok(row.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chunk_grows_while_chunks_are_quick_and_shrinks_when_one_is_slow() {
        let mut pace = FoldPace::default();
        pace.after(Duration::from_millis(1));
        assert_eq!(pace.chunk(), 2 * FOLD_CHUNK, "at most doubling");
        for _ in 0..20 {
            pace.after(Duration::from_millis(1));
        }
        assert_eq!(pace.chunk(), FOLD_CHUNK_MAX);
        // Twice the budget: the next chunk aims at three quarters of it.
        pace.after(FOLD_TX_BUDGET * 2);
        assert_eq!(pace.chunk(), FOLD_CHUNK_MAX * 3 / 8);
        for _ in 0..20 {
            pace.after(FOLD_TX_BUDGET * 10);
        }
        assert_eq!(pace.chunk(), FOLD_CHUNK);
    }
}
