//! The Web page's visits kept at ingest (migration 0034, docs/dashboard-web.md): one row per
//! visit in `web_visits`, and rollups per day (and hour) of the project's time zone in
//! `web_daily` / `web_hourly` that the page reads instead of page views.
//!
//! Ingest only queues each stored page view (`web_visit_pending`, filled by a trigger on
//! `web_pageviews`, in the ingest transaction). The background fold ([`Store::fold_web_visits`],
//! run by `crate::maintenance`) takes the queue in chunks paced to [`FOLD_TX_BUDGET`] (`fold.rs`):
//! for every visitor of a chunk at once, it reads the stored visits around the new page views
//! (a late one may extend a visit or bridge two), recomputes them from the visitor's page views
//! in the span unless the new ones only append, and moves the rollups by the difference. A HyperLogLog sketch cannot forget a visitor: a day row
//! that lost one (a visit that moved to another value, a person deleted) is queued in
//! `web_daily_dirty` and its sketch rebuilt from its day's rows by [`rebuild`]. The page never
//! folds: it says how far the fold has come.

mod days;
mod fold;
mod plan;
mod rebuild;
pub mod sketch;
mod sql;
pub(crate) use sql::{DAY_ROW_COUNT, VISITS_OF_PAGE};

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use sqlx_macros::FromRow;

use super::web::{Dimension, VISIT_GAP_MS};
use super::{Store, StoreError};

/// Queued page views in the first fold transaction of a process, and what the rebuilds take
/// per transaction.
pub const FOLD_CHUNK: i64 = 1_000;

/// The most queued page views one fold transaction takes: a long queue is folded in chunks
/// this large (each rollup row a chunk touches is read and written once per chunk, so larger
/// chunks write fewer rows per page view), bounding the chunk's memory.
pub const FOLD_CHUNK_MAX: i64 = 50_000;

/// How long one fold transaction aims to hold SQLite's one writer (ingest commits wait that
/// long at most, in the usual case): the next chunk doubles while one takes under half of it
/// and halves when one takes longer, between [`FOLD_CHUNK`] and [`FOLD_CHUNK_MAX`]. Not
/// below [`FOLD_CHUNK`]: a chunk rewrites every rollup row it touches, a cost that hardly
/// shrinks with the chunk, so smaller chunks on a loaded machine would only fall behind.
pub const FOLD_TX_BUDGET: Duration = Duration::from_millis(250);

/// How long one transaction of the heavy-pair fill (`web_pairs_fill`) aims to hold the writer:
/// it takes value-days one at a time and stops after the one that ends past this (always
/// taking at least one), so a chunk of whole busy days after the upgrade cannot hold SQLite's
/// one writer for seconds. The same bound as [`FOLD_TX_BUDGET`], for the same reason.
pub const FILL_TX_BUDGET: Duration = FOLD_TX_BUDGET;

/// What one transaction of the heavy-pair fill did ([`Store::fill_heavy_pairs`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FillStep {
    /// Value-days taken from the queue.
    pub taken: u64,
    /// It stopped at its budget or chunk with entries possibly still queued.
    pub more: bool,
}

/// What one transaction of the dirty pair recount did ([`Store::rebuild_dirty_pairs`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PairRecount {
    /// Dirty pair rows taken from the queue and recounted.
    pub rows: u64,
    /// Visits in the index ranges it read: a row read alone its breakdown value's visits of
    /// the day (as its day row counts them), a filter value read once the visits that read
    /// handed back (page views not counted). What the recount costs grows with this.
    pub visits_read: u64,
}

/// What the background fold has to do ([`Store::web_fold_backlog`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FoldBacklog {
    /// Queued page views, counted up to [`FOLD_CHUNK`].
    pub queued: i64,
    /// Day or pair rows wait for their visitor sketch to be recounted, or pair rows for their
    /// fill (a page's once its day is over).
    pub dirty: bool,
    /// A time zone change is being rebuilt.
    pub rebuilding: bool,
    /// When the oldest queued page view was queued (unix ms, the database's clock).
    pub oldest_queued_at: Option<i64>,
}

impl FoldBacklog {
    pub fn is_empty(&self) -> bool {
        self.queued == 0 && !self.dirty && !self.rebuilding
    }

    /// Whether a fold pass runs now, its work having waited `waited` since the fold first saw
    /// it. A chunk's worth of page views, or a rebuild, goes at once; less waits up to `delay`,
    /// so live traffic is folded seconds at a time: every chunk rewrites each day row it
    /// touches, whatever its size (docs/dashboard-web.md, "The fold's speed").
    pub fn fold_now(&self, waited: Duration, delay: Duration) -> bool {
        self.queued >= FOLD_CHUNK || self.rebuilding || (!self.is_empty() && waited >= delay)
    }
}

/// The chunk size the last fold transaction of this process settled on: where the next pass
/// starts (a pacing hint only; what a chunk counts does not depend on its size).
static FOLD_PACE: AtomicI64 = AtomicI64::new(FOLD_CHUNK);

/// The next chunk's size after one of `size` took `took`.
fn next_size(size: i64, took: Duration) -> i64 {
    if took > FOLD_TX_BUDGET {
        (size / 2).max(FOLD_CHUNK)
    } else if took < FOLD_TX_BUDGET / 2 {
        (size * 2).min(FOLD_CHUNK_MAX)
    } else {
        size
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

/// The bounded filter dimensions kept in pairs with every breakdown (`web_daily_pairs`,
/// migrations 0049 and 0053), with their position in [`VISIT_DIMENSIONS`]: a few values each,
/// so a value's pair rows stay few per day. Each one adds about its values times the day's
/// paths, entry and exit pages to what a fold chunk writes: written unread, six cost the fold
/// about a quarter more CPU than three did when read first (docs/dashboard-web.md, "The
/// fold's speed").
pub(crate) const PAIR_FILTERS: [(Dimension, usize); 6] = [
    (Dimension::Source, 2),
    (Dimension::UtmMedium, 5),
    (Dimension::Country, 7),
    (Dimension::Browser, 8),
    (Dimension::Os, 9),
    (Dimension::Device, 10),
];

/// The unbounded filter dimensions kept in pairs for their heavy values only, with their
/// position in [`VISIT_DIMENSIONS`]: a value gets a day's pair rows once its visits of that day
/// reach [`Store::pair_heavy_visits`] (`web_daily.paired`, migration 0056), so their rows stay
/// at most a day's visits / the threshold values per dimension and day, and a one-chip view
/// reads at most that many visits per day it has no pair rows for.
pub(crate) const HEAVY_PAIR_FILTERS: [(Dimension, usize); 5] = [
    (Dimension::EntryPage, 0),
    (Dimension::ExitPage, 1),
    (Dimension::Referrer, 3),
    (Dimension::UtmSource, 4),
    (Dimension::UtmCampaign, 6),
];

/// How long after a day started its page filters' pair rows may be filled (the longest day,
/// 25 hours, and two more for late page views): a page filter's pair rows are filled from the
/// visits of a day that is over, not moved by the fold, which drops a day's whenever it
/// changes that day's visits (docs/dashboard-web.md, "Page filters"). Filling a day still
/// under way would be dropped again by the next chunk.
pub const PAGE_PAIRS_SETTLED_MS: i64 = 27 * 3_600_000;

/// Page days that started before this (unix ms) are over: their fill may run.
pub(crate) fn page_pairs_settled() -> i64 {
    use crate::clock::Clock;
    crate::clock::SystemClock.now().timestamp_millis() - PAGE_PAIRS_SETTLED_MS
}

/// The default of `PULSELINE_WEB_PAIR_HEAVY_VISITS`: the visits of a day at which a value of
/// [`HEAVY_PAIR_FILTERS`] gets pair rows for it (migration 0056 queues the past at this value).
pub const PAIR_HEAVY_VISITS: i64 = 100;

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
    /// Sets the visits of a day at which a value of a heavy pair filter gets pair rows
    /// (`PULSELINE_WEB_PAIR_HEAVY_VISITS`, at least 1); [`PAIR_HEAVY_VISITS`] unless set.
    pub fn set_pair_heavy_visits(&mut self, visits: i64) {
        let visits = visits.max(1);
        match self {
            Store::Sqlite(s) => s.pair_heavy_visits = visits,
            Store::Postgres(p) => p.pair_heavy_visits = visits,
        }
    }

    /// Sets how long one transaction of the heavy-pair fill aims to take;
    /// [`FILL_TX_BUDGET`] unless set (tests set zero: one value-day per transaction).
    pub fn set_fill_budget(&mut self, budget: Duration) {
        match self {
            Store::Sqlite(s) => s.fill_budget = budget,
            Store::Postgres(p) => p.fill_budget = budget,
        }
    }

    pub(crate) fn fill_budget(&self) -> Duration {
        match self {
            Store::Sqlite(s) => s.fill_budget,
            Store::Postgres(p) => p.fill_budget,
        }
    }

    pub(crate) fn pair_heavy_visits(&self) -> i64 {
        match self {
            Store::Sqlite(s) => s.pair_heavy_visits,
            Store::Postgres(p) => p.pair_heavy_visits,
        }
    }

    /// Folds every queued page view into the visits and their rollups, then rebuilds what
    /// the chunks left dirty; returns how many page views. Each chunk is its own transaction.
    pub async fn fold_web_visits(&self) -> Result<u64, StoreError> {
        self.fold_web_visits_until(None).await
    }

    /// Like [`Self::fold_web_visits`], but stops after the chunk that ends past `deadline`.
    /// Chunks are sized to take about [`FOLD_TX_BUDGET`] each.
    pub async fn fold_web_visits_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<u64, StoreError> {
        let mut total = 0;
        let mut size = FOLD_PACE
            .load(Ordering::Relaxed)
            .clamp(FOLD_CHUNK, FOLD_CHUNK_MAX);
        loop {
            let started = Instant::now();
            let n = self.fold_chunk(size).await?;
            total += n;
            let full = n == size as u64;
            if full {
                // Only a full chunk says how long that size takes.
                size = next_size(size, started.elapsed());
                FOLD_PACE.store(size, Ordering::Relaxed);
            }
            if !full || deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
        }
        self.rebuild_dirty_sketches().await?;
        // Fills are few on live traffic; after the upgrade many wait: as many as time allows.
        while self.fill_heavy_pairs().await?.more && deadline.is_none_or(|d| Instant::now() < d) {}
        self.rebuild_dirty_pairs().await?;
        self.rebuild_step().await?;
        Ok(total)
    }

    /// Folds every queued page view in chunks of exactly `size` (at least 1), then the dirty
    /// rows and rebuilds: what the background fold does with its own chunk sizes, for tests
    /// that check a count does not depend on where chunks cut.
    pub async fn fold_web_visits_in_chunks(&self, size: i64) -> Result<u64, StoreError> {
        let size = size.max(1);
        let mut total = 0;
        loop {
            let n = self.fold_chunk(size).await?;
            total += n;
            if n < size as u64 {
                break;
            }
        }
        while self.rebuild_dirty_sketches().await? > 0 {}
        while self.rebuild_dirty_pairs().await?.rows > 0 {}
        while self.rebuild_step().await? {}
        // After the rebuild: it leaves the fills of its heavy values queued.
        while self.fill_heavy_pairs().await?.taken > 0 {}
        while self.rebuild_dirty_pairs().await?.rows > 0 {}
        Ok(total)
    }

    /// What the fold has to do (a cheap read, so an idle collector never opens a write
    /// transaction for nothing): queued page views counted up to [`FOLD_CHUNK`], and whether
    /// sketches wait for a recount or a time zone rebuild is under way.
    pub async fn web_fold_backlog(&self) -> Result<FoldBacklog, StoreError> {
        let (queued, dirty, rebuilding, oldest_queued_at): (i64, i64, i64, Option<i64>) =
            with_db!(self, read_pool, |pool| {
                sqlx::query_as(
                "SELECT CAST((SELECT COUNT(*) FROM (SELECT 1 FROM web_visit_pending LIMIT $1) AS q)
                             AS BIGINT),
                        CAST(CASE WHEN EXISTS (SELECT 1 FROM web_daily_dirty)
                                    OR EXISTS (SELECT 1 FROM web_pairs_dirty)
                                    OR EXISTS (SELECT 1 FROM web_pairs_fill
                                               WHERE dim <> 'page' OR day < $2)
                                  THEN 1 ELSE 0 END
                             AS BIGINT),
                        CAST(CASE WHEN EXISTS (SELECT 1 FROM web_rebuild) THEN 1 ELSE 0 END
                             AS BIGINT),
                        (SELECT queued_at FROM web_visit_pending ORDER BY id LIMIT 1)",
            )
            .bind(FOLD_CHUNK)
            // A page's day that is not over waits without keeping the fold busy.
            .bind(page_pairs_settled())
            .fetch_one(pool)
            .await?
            });
        Ok(FoldBacklog {
            queued,
            dirty: dirty != 0,
            rebuilding: rebuilding != 0,
            oldest_queued_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_filters_point_at_their_visit_values() {
        for (dim, i) in PAIR_FILTERS.into_iter().chain(HEAVY_PAIR_FILTERS) {
            assert_eq!(VISIT_DIMENSIONS[i], dim);
        }
    }

    #[test]
    fn a_chunks_worth_or_a_rebuild_folds_at_once_and_the_rest_after_the_delay() {
        let delay = Duration::from_secs(2);
        let few = FoldBacklog {
            queued: 3,
            ..Default::default()
        };
        assert!(!few.fold_now(Duration::ZERO, delay));
        assert!(!few.fold_now(delay / 2, delay));
        assert!(few.fold_now(delay, delay));
        let dirty = FoldBacklog {
            dirty: true,
            ..Default::default()
        };
        assert!(!dirty.fold_now(Duration::ZERO, delay));
        assert!(dirty.fold_now(delay, delay));
        let chunk = FoldBacklog {
            queued: FOLD_CHUNK,
            ..Default::default()
        };
        assert!(chunk.fold_now(Duration::ZERO, delay));
        let rebuild = FoldBacklog {
            rebuilding: true,
            ..Default::default()
        };
        assert!(rebuild.fold_now(Duration::ZERO, delay));
        // No delay: every tick folds whatever is there; nothing to do never folds.
        assert!(few.fold_now(Duration::ZERO, Duration::ZERO));
        assert!(!FoldBacklog::default().fold_now(delay * 10, delay));
    }
}
