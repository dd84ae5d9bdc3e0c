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
mod plan;
mod rebuild;
pub mod sketch;

use std::collections::{BTreeMap, HashMap};

use sqlx::FromRow;

use super::web::{Dimension, VISIT_GAP_MS};
use super::{Backend, Store, StoreError};
use days::Zones;
use plan::{Plan, apply_plan};

/// Queued page views folded per transaction: enough that rollup rows touched by many page
/// views are written once, few enough that SQLite's one writer goes back to ingest quickly.
pub const FOLD_CHUNK: i64 = 1_000;

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
        self.fold_web_visits_until(None).await
    }

    /// Like [`Self::fold_web_visits`], but stops after the chunk that ends past `deadline`.
    pub async fn fold_web_visits_until(
        &self,
        deadline: Option<std::time::Instant>,
    ) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let n = self.fold_chunk().await?;
            total += n;
            let late = deadline.is_some_and(|d| std::time::Instant::now() >= d);
            if n < FOLD_CHUNK as u64 || late {
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

    async fn fold_chunk(&self) -> Result<u64, StoreError> {
        with_db!(self, write_pool, |pool, backend| {
            let mut tx = pool.begin().await?;
            if backend == Backend::Postgres {
                // Replicas fold one at a time: two folding one visitor would each see the
                // other's visits half-written.
                sqlx::query("SELECT pg_advisory_xact_lock(7021)")
                    .execute(&mut *tx)
                    .await?;
            }
            // A write first: SQLite takes the write lock before this transaction reads.
            let pending: Vec<Pending> = sqlx::query_as(
                "DELETE FROM web_visit_pending WHERE id IN (
                     SELECT id FROM web_visit_pending ORDER BY id LIMIT $1)
                 RETURNING id, project_id, seq, visitor, ts, path, removed",
            )
            .bind(FOLD_CHUNK)
            .fetch_all(&mut *tx)
            .await?;
            if pending.is_empty() {
                tx.commit().await?;
                return Ok(0);
            }
            let mut projects: Vec<i64> = pending.iter().map(|p| p.project_id).collect();
            projects.sort_unstable();
            projects.dedup();
            let zones: Vec<(i64, String)> =
                sqlx::query_as(sqlx::AssertSqlSafe(Zones::sql(projects.iter().copied())))
                    .fetch_all(&mut *tx)
                    .await?;
            let zones = Zones::new(zones);
            let rebuilding: Rebuilding = sqlx::query_as::<_, (i64, i64, i64)>(
                "SELECT project_id, visit_cursor, seq_cursor FROM web_rebuild",
            )
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(p, v, s)| (p, (v, s)))
            .collect();
            let mut plan = Plan::default();
            let mut touched: BTreeMap<(i64, String), (i64, i64)> = BTreeMap::new();
            for p in &pending {
                let removed = p.removed != 0;
                // A rebuild counts the folded page views it reaches: those it passed while
                // they were queued are the fold's to count, the others its own.
                let counted = rebuilding
                    .get(&p.project_id)
                    .is_none_or(|(_, seq_cursor)| p.seq <= *seq_cursor);
                if counted {
                    let tz = zones.of(p.project_id);
                    plan.page_view(&tz, p.project_id, &p.visitor, p.ts, &p.path, removed);
                }
                let span = touched
                    .entry((p.project_id, p.visitor.clone()))
                    .or_insert((p.ts, p.ts));
                *span = (span.0.min(p.ts), span.1.max(p.ts));
            }
            for ((project, visitor), (first, last)) in &touched {
                let tz = zones.of(*project);
                let visit_cursor = rebuilding.get(project).map(|r| r.0);
                let (lo, hi) = (first - VISIT_GAP_MS, last + VISIT_GAP_MS);
                // The visits within the gap of a changed page view: those starting in the
                // window, and the one before it if it reaches in (one statement).
                let old: Vec<StoredVisit> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT id, {VISIT_COLUMNS} FROM web_visits
                     WHERE project_id = $1 AND visitor = $2 AND start_ts >= $3 AND start_ts <= $4
                     UNION ALL
                     SELECT * FROM (SELECT id, {VISIT_COLUMNS} FROM web_visits
                         WHERE project_id = $1 AND visitor = $2 AND start_ts < $3
                         ORDER BY start_ts DESC LIMIT 1) b WHERE end_ts >= $3"
                )))
                .bind(project)
                .bind(visitor)
                .bind(lo)
                .bind(hi)
                .fetch_all(&mut *tx)
                .await?;
                let from = old.iter().map(|v| v.start_ts).fold(*first, i64::min);
                let to = old.iter().map(|v| v.end_ts).fold(*last, i64::max);
                let pvs: Vec<PageView> = sqlx::query_as(
                    "SELECT ts, path, referrer, source, utm_source, utm_medium, utm_campaign,
                            country, browser, os, device
                     FROM web_pageviews
                     WHERE project_id = $1 AND visitor = $2 AND ts >= $3 AND ts <= $4
                     ORDER BY ts, seq",
                )
                .bind(project)
                .bind(visitor)
                .bind(from)
                .bind(to)
                .fetch_all(&mut *tx)
                .await?;
                let mut new = cut(&pvs);
                // Visits that did not change stay as they are.
                let mut gone = Vec::new();
                for v in old {
                    let id = v.id;
                    let v = Visit::from(v);
                    match new.iter().position(|n| *n == v) {
                        Some(i) => {
                            new.swap_remove(i);
                        }
                        None => gone.push((id, v)),
                    }
                }
                for (id, v) in &gone {
                    sqlx::query("DELETE FROM web_visits WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    if visit_cursor.is_none_or(|c| *id <= c) {
                        plan.visit(&tz, *project, visitor, v, -1);
                    }
                }
                for v in &new {
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "INSERT INTO web_visits (project_id, visitor, {VISIT_COLUMNS})
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                                 $15, $16)"
                    )))
                    .bind(project)
                    .bind(visitor)
                    .bind(v.start_ts)
                    .bind(v.end_ts)
                    .bind(v.pageviews);
                    for value in &v.values {
                        q = q.bind(value);
                    }
                    q.execute(&mut *tx).await?;
                    // A new visit's id is past any rebuild's cursor: the rebuild counts it.
                    if visit_cursor.is_none() {
                        plan.visit(&tz, *project, visitor, v, 1);
                    }
                }
            }
            apply_plan!(tx, plan);
            tx.commit().await?;
            Ok(pending.len() as u64)
        })
    }
}
