//! The Web page's visits kept at ingest (migration 0034, docs/dashboard-web.md): one row per
//! visit in `web_visits`, and per-hour rollups in `web_hourly` that the page reads instead of
//! page views.
//!
//! Ingest only queues each stored page view (`web_visit_pending`, filled by a trigger on
//! `web_pageviews`, in the ingest transaction); [`Store::fold_web_visits`] folds the queue in,
//! right after commits and before every read of the page, one transaction per chunk. For each
//! visitor it touches, it reads the stored visits around the new page views (a late one may
//! extend a visit or bridge two), recomputes them from that visitor's page views in the span,
//! and moves the rollups by the difference. HyperLogLog sketches cannot forget a visitor: a
//! rollup row that lost one (a visit moved to another hour or value, a person deleted) has its
//! sketch rebuilt from the rows of its hour.

pub mod sketch;

use std::collections::BTreeMap;

use sqlx::FromRow;

use super::web::{Dimension, VISIT_GAP_MS};
use super::{Backend, HOUR_MS, Store, StoreError};
use sketch::Visitors;

/// Queued page views folded per transaction: small, so that SQLite's one writer goes back to
/// ingest commits between chunks.
const FOLD_CHUNK: i64 = 250;

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
struct Visit {
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

fn hour_of(ts: i64) -> i64 {
    ts - ts.rem_euclid(HOUR_MS)
}

/// (project, hour, dim, value): one `web_hourly` row.
type Key = (i64, i64, &'static str, String);

#[derive(Debug, Default)]
struct Delta {
    visits: i64,
    pageviews: i64,
    bounces: i64,
    duration_ms: i64,
    add: Vec<String>,
    /// The row lost a visitor: its sketch is rebuilt from its hour's rows.
    rebuild: bool,
}

/// What one chunk changes in `web_hourly`, in key order (so that PostgreSQL writers lock rows
/// in one order).
#[derive(Debug, Default)]
struct Plan {
    rows: BTreeMap<Key, Delta>,
}

impl Plan {
    fn row(&mut self, project: i64, hour: i64, dim: &'static str, value: &str) -> &mut Delta {
        self.rows
            .entry((project, hour, dim, value.to_owned()))
            .or_default()
    }

    /// A page view stored (or removed): the hour's page views and who viewed a page, overall
    /// and for its path.
    fn page_view(&mut self, project: i64, visitor: &str, ts: i64, path: &str, removed: bool) {
        for (dim, value) in [("", ""), (Dimension::Page.key(), path)] {
            let d = self.row(project, hour_of(ts), dim, value);
            if removed {
                d.pageviews -= 1;
                d.rebuild = true;
            } else {
                d.pageviews += 1;
                d.add.push(visitor.to_owned());
            }
        }
    }

    /// A visit added (`sign` 1) or taken back (-1), in the hour it starts.
    fn visit(&mut self, project: i64, visitor: &str, v: &Visit, sign: i64) {
        let hour = hour_of(v.start_ts);
        let bounce = i64::from(v.pageviews == 1);
        let duration = v.end_ts - v.start_ts;
        let total = self.row(project, hour, "", "");
        total.visits += sign;
        total.bounces += sign * bounce;
        total.duration_ms += sign * duration;
        for (dim, value) in VISIT_DIMENSIONS.iter().zip(&v.values) {
            let d = self.row(project, hour, dim.key(), value);
            d.visits += sign;
            d.pageviews += sign * v.pageviews;
            d.bounces += sign * bounce;
            d.duration_ms += sign * duration;
            if sign > 0 {
                d.add.push(visitor.to_owned());
            } else {
                d.rebuild = true;
            }
        }
    }
}

impl Store {
    /// Folds every queued page view into the visits and their rollups; returns how many.
    pub async fn fold_web_visits(&self) -> Result<u64, StoreError> {
        self.fold_web_visits_until(None).await
    }

    /// Like [`Self::fold_web_visits`], but stops after the chunk that ends past `deadline`:
    /// the background fold leaves SQLite's writer to ingest most of the time.
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
                return Ok(total);
            }
        }
    }

    /// Whether page views wait to be folded (a cheap read, so an idle collector never opens
    /// a write transaction for nothing).
    pub async fn web_visits_pending(&self) -> Result<bool, StoreError> {
        let row: Option<i64> = with_db!(self, read_pool, |pool| {
            sqlx::query_scalar("SELECT id FROM web_visit_pending LIMIT 1")
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
            let pending: Vec<(i64, i64, String, i64, String, i64)> = sqlx::query_as(
                "DELETE FROM web_visit_pending WHERE id IN (
                     SELECT id FROM web_visit_pending ORDER BY id LIMIT $1)
                 RETURNING id, project_id, visitor, ts, path, removed",
            )
            .bind(FOLD_CHUNK)
            .fetch_all(&mut *tx)
            .await?;
            let mut plan = Plan::default();
            let mut touched: BTreeMap<(i64, String), (i64, i64)> = BTreeMap::new();
            for (_, project, visitor, ts, path, removed) in &pending {
                plan.page_view(*project, visitor, *ts, path, *removed != 0);
                let span = touched
                    .entry((*project, visitor.clone()))
                    .or_insert((*ts, *ts));
                *span = (span.0.min(*ts), span.1.max(*ts));
            }
            for ((project, visitor), (first, last)) in &touched {
                let (lo, hi) = (first - VISIT_GAP_MS, last + VISIT_GAP_MS);
                // The visits within the gap of a changed page view: those starting in the
                // window, and the one before it if it reaches in.
                let mut old: Vec<StoredVisit> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT id, {VISIT_COLUMNS} FROM web_visits
                     WHERE project_id = $1 AND visitor = $2 AND start_ts >= $3 AND start_ts <= $4"
                )))
                .bind(project)
                .bind(visitor)
                .bind(lo)
                .bind(hi)
                .fetch_all(&mut *tx)
                .await?;
                let before: Option<StoredVisit> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT id, {VISIT_COLUMNS} FROM web_visits
                     WHERE project_id = $1 AND visitor = $2 AND start_ts < $3
                     ORDER BY start_ts DESC LIMIT 1"
                )))
                .bind(project)
                .bind(visitor)
                .bind(lo)
                .fetch_optional(&mut *tx)
                .await?;
                old.extend(before.filter(|v| v.end_ts >= lo));
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
                    plan.visit(*project, visitor, v, -1);
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
                    plan.visit(*project, visitor, v, 1);
                }
            }
            for ((project, hour, dim, value), d) in plan.rows {
                let current: Option<(i64, i64, i64, i64, Vec<u8>)> = sqlx::query_as(
                    "SELECT visits, pageviews, bounces, duration_ms, visitors FROM web_hourly
                     WHERE project_id = $1 AND hour = $2 AND dim = $3 AND value = $4",
                )
                .bind(project)
                .bind(hour)
                .bind(dim)
                .bind(&value)
                .fetch_optional(&mut *tx)
                .await?;
                let (visits, pageviews, bounces, duration, blob) =
                    current.unwrap_or((0, 0, 0, 0, Vec::new()));
                let (visits, pageviews) = (visits + d.visits, pageviews + d.pageviews);
                if visits <= 0 && pageviews <= 0 {
                    sqlx::query(
                        "DELETE FROM web_hourly
                         WHERE project_id = $1 AND hour = $2 AND dim = $3 AND value = $4",
                    )
                    .bind(project)
                    .bind(hour)
                    .bind(dim)
                    .bind(&value)
                    .execute(&mut *tx)
                    .await?;
                    continue;
                }
                let mut sketch = Visitors::default();
                if d.rebuild {
                    let sql = match dim {
                        "" => "SELECT visitor FROM web_pageviews
                               WHERE project_id = $1 AND ts >= $2 AND ts < $3 AND $4 = ''"
                            .to_owned(),
                        "page" => "SELECT visitor FROM web_pageviews
                                   WHERE project_id = $1 AND ts >= $2 AND ts < $3 AND path = $4"
                            .to_owned(),
                        // One of VISIT_DIMENSIONS' keys: a column name, never input.
                        column => format!(
                            "SELECT visitor FROM web_visits WHERE project_id = $1
                               AND start_ts >= $2 AND start_ts < $3 AND {column} = $4"
                        ),
                    };
                    let who: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                        .bind(project)
                        .bind(hour)
                        .bind(hour + HOUR_MS)
                        .bind(&value)
                        .fetch_all(&mut *tx)
                        .await?;
                    sketch.insert_all(who.iter().map(String::as_str));
                } else {
                    sketch.merge_bytes(&blob);
                    sketch.insert_all(d.add.iter().map(String::as_str));
                }
                sqlx::query(
                    "INSERT INTO web_hourly (project_id, hour, dim, value, visits, pageviews,
                                             bounces, duration_ms, visitors)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     ON CONFLICT (project_id, dim, hour, value) DO UPDATE SET
                         visits = excluded.visits, pageviews = excluded.pageviews,
                         bounces = excluded.bounces, duration_ms = excluded.duration_ms,
                         visitors = excluded.visitors",
                )
                .bind(project)
                .bind(hour)
                .bind(dim)
                .bind(&value)
                .bind(visits)
                .bind(pageviews)
                .bind(bounces + d.bounces)
                .bind(duration + d.duration_ms)
                .bind(sketch.to_bytes())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(pending.len() as u64)
        })
    }
}
