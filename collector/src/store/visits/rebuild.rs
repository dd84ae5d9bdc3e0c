//! Rebuilding rollups from the stored visits and page views: the sketches of day rows that
//! lost a visitor (`web_daily_dirty`), and every rollup of a project whose time zone changed
//! (`web_rebuild`), a chunk per transaction.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use sqlx_macros::FromRow;

use super::days::{Zones, next_day};
use super::plan::ROWS_PER_STATEMENT;
use super::plan::{Plan, apply_plan};
use super::sketch::Visitors;
use super::sql;
use super::{
    FOLD_CHUNK, FillStep, HEAVY_PAIR_FILTERS, PAIR_FILTERS, PairRecount, StoredVisit,
    VISIT_COLUMNS, VISIT_DIMENSIONS, Visit,
};
use crate::store::web::Dimension;
use crate::store::{Backend, Store, StoreError};

/// Dirty day rows whose sketches one transaction rebuilds.
pub(crate) const DIRTY_CHUNK: i64 = 500;

/// Heavy value-days whose pair rows one transaction fills from their visits
/// (`web_pairs_fill`): on crossing, each reads about `PULSELINE_WEB_PAIR_HEAVY_VISITS` visits;
/// after the upgrade, up to a whole day's visits of one value.
pub(crate) const FILL_CHUNK: i64 = 20;

/// The read of a dirty row's visitors (`$1` project, `$2` value, `$3`..`$4` its day) through
/// an index of its value (migrations 0043): a page's page views, or the visits that start
/// with a value of an indexed dimension. `None` for '', browser, OS and device, whose rows
/// hold a large share of the day anyway.
fn indexed_column(dim: &str) -> Option<&'static str> {
    use crate::store::web::Dimension;
    match Dimension::from_key(dim)? {
        Dimension::Page => Some(
            "SELECT visitor FROM web_pageviews
             WHERE project_id = $1 AND path = $2 AND ts >= $3 AND ts < $4",
        ),
        Dimension::EntryPage => Some(
            "SELECT visitor FROM web_visits
             WHERE project_id = $1 AND entry_page = $2 AND start_ts >= $3 AND start_ts < $4",
        ),
        Dimension::ExitPage => Some(
            "SELECT visitor FROM web_visits
             WHERE project_id = $1 AND exit_page = $2 AND start_ts >= $3 AND start_ts < $4",
        ),
        Dimension::Source => Some(
            "SELECT visitor FROM web_visits
             WHERE project_id = $1 AND source = $2 AND start_ts >= $3 AND start_ts < $4",
        ),
        Dimension::Referrer => Some(
            "SELECT visitor FROM web_visits
             WHERE project_id = $1 AND referrer = $2 AND start_ts >= $3 AND start_ts < $4",
        ),
        Dimension::UtmSource => Some(
            "SELECT visitor FROM web_visits
             WHERE project_id = $1 AND utm_source = $2 AND start_ts >= $3 AND start_ts < $4",
        ),
        Dimension::UtmMedium => Some(
            "SELECT visitor FROM web_visits
             WHERE project_id = $1 AND utm_medium = $2 AND start_ts >= $3 AND start_ts < $4",
        ),
        Dimension::UtmCampaign => Some(
            "SELECT visitor FROM web_visits
             WHERE project_id = $1 AND utm_campaign = $2 AND start_ts >= $3 AND start_ts < $4",
        ),
        Dimension::Country => Some(
            "SELECT visitor FROM web_visits
             WHERE project_id = $1 AND country = $2 AND start_ts >= $3 AND start_ts < $4",
        ),
        Dimension::Browser | Dimension::Os | Dimension::Device => None,
    }
}

/// The column of a pair row's breakdown `dim` when it is a visit dimension with an index of
/// its value (migration 0043: not page, browser, OS or device), as the constant it matches.
fn own_index(dim: &str) -> Option<&'static str> {
    use crate::store::web::Dimension;
    let d = Dimension::from_key(dim)?;
    (d != Dimension::Page && indexed_column(dim).is_some()).then(|| d.key())
}

#[derive(Debug, FromRow)]
struct DayVisit {
    visitor: String,
    #[sqlx(flatten)]
    visit: StoredVisit,
}

/// A fill's pair rows as it counts them: per breakdown and value, the sums (visits, page
/// views, bounces, duration) and the visitor sketch.
type FillRows<'a> = BTreeMap<(&'a str, String), ([i64; 4], Visitors)>;

/// Counts visit `v` of `visitor` in the fill row `key`.
fn count_visit<'a>(rows: &mut FillRows<'a>, key: (&'a str, String), visitor: &str, v: &Visit) {
    let r = rows.entry(key).or_default();
    r.0[0] += 1;
    r.0[1] += v.pageviews;
    r.0[2] += i64::from(v.pageviews == 1);
    r.0[3] += v.end_ts - v.start_ts;
    r.1.insert_all([visitor]);
}

/// Counts `n` page views of `visitor` on `path` in the fill's page row.
fn count_page_views(rows: &mut FillRows<'_>, path: String, visitor: &str, n: i64) {
    let r = rows.entry((Dimension::Page.key(), path)).or_default();
    r.0[1] += n;
    r.1.insert_all([visitor]);
}

/// Writes the pair rows a fill counted for filter `fdim` = `fvalue` on `day` (`rows`: per
/// breakdown and value, its sums and visitor sketch) in place of any there, and marks the
/// value's day row `paired`.
macro_rules! write_fill {
    ($tx:expr, ($project:expr, $day:expr), ($fdim:expr, $fvalue:expr), $rows:expr) => {{
        let (project, day, fdim, fvalue): (i64, i64, &str, &str) = ($project, $day, $fdim, $fvalue);
        sqlx::query(sqlx::AssertSqlSafe(sql::delete_day_pairs()))
            .bind(project)
            .bind(fdim)
            .bind(fvalue)
            .bind(day)
            .execute(&mut *$tx)
            .await?;
        let rows: Vec<_> = $rows.into_iter().collect();
        for group in rows.chunks(ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO web_daily_pairs (project_id, fdim, fvalue, dim, day, value,
                     visits, pageviews, bounces, duration_ms, visitors) ",
            );
            q.push_values(group, |mut b, ((other, v), (sums, sketch))| {
                b.push_bind(project)
                    .push_bind(fdim)
                    .push_bind(fvalue)
                    .push_bind(*other)
                    .push_bind(day)
                    .push_bind(v.as_str());
                for n in sums {
                    b.push_bind(*n);
                }
                b.push_bind(sketch.to_bytes());
            });
            q.build().persistent(false).execute(&mut *$tx).await?;
        }
        sqlx::query(
            "UPDATE web_daily SET paired = 1
             WHERE project_id = $1 AND dim = $2 AND day = $3 AND value = $4",
        )
        .bind(project)
        .bind(fdim)
        .bind(day)
        .bind(fvalue)
        .execute(&mut *$tx)
        .await?;
    }};
}

/// Fills the pair rows of page filter `$value` on `$day` (to `$end`; a `web_pairs_fill` entry
/// of dim `page`) from the visits that started in the day and viewed the page, as the visits
/// reader counts them (`web/from_visits.rs`): their totals (dim `''`), their values of every
/// visit dimension, and the page views of every page they viewed (`web_visit_pages`).
macro_rules! fill_page_day {
    ($tx:expr, $project:expr, ($day:expr, $end:expr), $value:expr) => {{
        let (project, day, end, value) = ($project, $day, $end, $value);
        let visits: Vec<DayVisit> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT visitor, id, {VISIT_COLUMNS} FROM web_visits WHERE id IN ({})",
            sql::VISITS_OF_PAGE
        )))
        .bind(project)
        .bind(value)
        .bind(day)
        .bind(end)
        .fetch_all(&mut *$tx)
        .await?;
        let pages: Vec<(i64, String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT visit_id, path, pageviews FROM web_visit_pages WHERE visit_id IN ({})",
            sql::VISITS_OF_PAGE
        )))
        .bind(project)
        .bind(value)
        .bind(day)
        .bind(end)
        .fetch_all(&mut *$tx)
        .await?;
        let mut rows = FillRows::new();
        let mut visitor_of: HashMap<i64, &str> = HashMap::new();
        for d in &visits {
            visitor_of.insert(d.visit.id, d.visitor.as_str());
            let v = Visit::from_stored(&d.visit);
            count_visit(&mut rows, ("", String::new()), &d.visitor, &v);
            for (dim, other) in VISIT_DIMENSIONS.iter().zip(&v.values) {
                count_visit(&mut rows, (dim.key(), other.clone()), &d.visitor, &v);
            }
        }
        for (visit, path, pageviews) in pages {
            if let Some(visitor) = visitor_of.get(&visit) {
                count_page_views(&mut rows, path, visitor, pageviews);
            }
        }
        // None should be there (the fold drops them when it changes the day); a clean slate
        // keeps the fill exact regardless.
        write_fill!($tx, (project, day), (Dimension::Page.key(), value), rows);
    }};
}

impl Store {
    /// Rebuilds the sketches of up to [`DIRTY_CHUNK`] dirty day rows from their day's visits
    /// (or page views, for the '' and page rows): one read of each day involved.
    pub(crate) async fn rebuild_dirty_sketches(&self) -> Result<u64, StoreError> {
        with_db!(self, write_pool, |pool, backend| {
            let mut tx = pool.begin().await?;
            if backend == Backend::Postgres {
                sqlx::query(crate::store::web::WEB_FOLD_LOCK)
                    .execute(&mut *tx)
                    .await?;
            }
            let dirty: Vec<(i64, i64, String, String)> = sqlx::query_as(
                "DELETE FROM web_daily_dirty WHERE (project_id, day, dim, value) IN (
                     SELECT project_id, day, dim, value FROM web_daily_dirty
                     ORDER BY project_id, day LIMIT $1)
                 RETURNING project_id, day, dim, value",
            )
            .bind(DIRTY_CHUNK)
            .fetch_all(&mut *tx)
            .await?;
            let mut by_day: BTreeMap<(i64, i64), Vec<(String, String)>> = BTreeMap::new();
            for (project, day, dim, value) in &dirty {
                by_day
                    .entry((*project, *day))
                    .or_default()
                    .push((dim.clone(), value.clone()));
            }
            let zones: Vec<(i64, String)> =
                sqlx::query_as(sqlx::AssertSqlSafe(Zones::sql(by_day.keys().map(|k| k.0))))
                    .fetch_all(&mut *tx)
                    .await?;
            let zones = Zones::new(zones);
            for ((project, day), rows) in by_day {
                let end = next_day(&zones.of(project), day);
                // A row of an indexed value (a page, or a visit value the filters index) is
                // recounted from its own page views or visits; the others from the whole day.
                let (own, rows): (Vec<_>, Vec<_>) = rows
                    .into_iter()
                    .partition(|(dim, _)| indexed_column(dim).is_some());
                for (dim, value) in own {
                    let read = indexed_column(&dim).expect("partitioned on it");
                    let who: Vec<String> = sqlx::query_scalar(read)
                        .bind(project)
                        .bind(&value)
                        .bind(day)
                        .bind(end)
                        .fetch_all(&mut *tx)
                        .await?;
                    let mut sketch = Visitors::default();
                    sketch.insert_all(who.iter().map(String::as_str));
                    sqlx::query(
                        "UPDATE web_daily SET visitors = $1
                         WHERE project_id = $2 AND dim = $3 AND day = $4 AND value = $5",
                    )
                    .bind(sketch.to_bytes())
                    .bind(project)
                    .bind(&dim)
                    .bind(day)
                    .bind(&value)
                    .execute(&mut *tx)
                    .await?;
                }
                if rows.is_empty() {
                    continue;
                }
                let mut sketches: BTreeMap<(String, String), Visitors> = rows
                    .iter()
                    .map(|r| (r.clone(), Visitors::default()))
                    .collect();
                if rows.iter().any(|(dim, _)| dim.is_empty()) {
                    let views: Vec<(String, String)> = sqlx::query_as(
                        "SELECT visitor, path FROM web_pageviews
                         WHERE project_id = $1 AND ts >= $2 AND ts < $3",
                    )
                    .bind(project)
                    .bind(day)
                    .bind(end)
                    .fetch_all(&mut *tx)
                    .await?;
                    for (visitor, path) in &views {
                        for key in [("", ""), ("page", path.as_str())] {
                            if let Some(s) = sketches.get_mut(&(key.0.to_owned(), key.1.to_owned()))
                            {
                                s.insert_all([visitor.as_str()]);
                            }
                        }
                    }
                }
                if rows.iter().any(|(dim, _)| !dim.is_empty()) {
                    let visits: Vec<DayVisit> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "SELECT visitor, id, {VISIT_COLUMNS} FROM web_visits
                         WHERE project_id = $1 AND start_ts >= $2 AND start_ts < $3"
                    )))
                    .bind(project)
                    .bind(day)
                    .bind(end)
                    .fetch_all(&mut *tx)
                    .await?;
                    for d in visits {
                        let visitor = d.visitor;
                        let v = Visit::from_stored(&d.visit);
                        for (dim, value) in VISIT_DIMENSIONS.iter().zip(v.values) {
                            if let Some(s) = sketches.get_mut(&(dim.key().to_owned(), value)) {
                                s.insert_all([visitor.as_str()]);
                            }
                        }
                    }
                }
                for ((dim, value), sketch) in sketches {
                    sqlx::query(
                        "UPDATE web_daily SET visitors = $1
                         WHERE project_id = $2 AND dim = $3 AND day = $4 AND value = $5",
                    )
                    .bind(sketch.to_bytes())
                    .bind(project)
                    .bind(&dim)
                    .bind(day)
                    .bind(&value)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(dirty.len() as u64)
        })
    }

    /// Rebuilds the sketches of up to [`DIRTY_CHUNK`] dirty pair rows, per day and filter
    /// value, by whichever read holds fewer of the day's visits (both known from `web_daily`):
    /// each row of an indexed breakdown (entry or exit page, source, referrer, UTM fields,
    /// country) from its breakdown value's visits through that value's index, or every row
    /// at once from one read of the filter value's visits (through its index; the day's
    /// visits for browser, OS and device, which have none). A value of `''` (no UTM field, no
    /// referrer) holds most of a day's visits, a heavy exit page a few hundred. Rows of other
    /// breakdowns always take the one read; page rows read that value's visits' page views.
    pub async fn rebuild_dirty_pairs(&self) -> Result<PairRecount, StoreError> {
        with_db!(self, write_pool, |pool, backend| {
            let mut tx = pool.begin().await?;
            if backend == Backend::Postgres {
                sqlx::query(crate::store::web::WEB_FOLD_LOCK)
                    .execute(&mut *tx)
                    .await?;
            }
            type Dirty = (i64, i64, String, String, String, String);
            let dirty: Vec<Dirty> = sqlx::query_as(
                "DELETE FROM web_pairs_dirty
                 WHERE (project_id, day, fdim, fvalue, dim, value) IN (
                     SELECT project_id, day, fdim, fvalue, dim, value FROM web_pairs_dirty
                     ORDER BY project_id, day LIMIT $1)
                 RETURNING project_id, day, fdim, fvalue, dim, value",
            )
            .bind(DIRTY_CHUNK)
            .fetch_all(&mut *tx)
            .await?;
            let mut done = PairRecount {
                rows: dirty.len() as u64,
                visits_read: 0,
            };
            type Group = (i64, i64, &'static str, String);
            let mut groups: BTreeMap<Group, Vec<(String, String)>> = BTreeMap::new();
            for (project, day, fdim, fvalue, dim, value) in &dirty {
                // Only the filter columns of the pair filters are ever written; a name from
                // the table goes into SQL as the constant it matches.
                let Some((f, _)) = PAIR_FILTERS
                    .iter()
                    .chain(&HEAVY_PAIR_FILTERS)
                    .find(|(f, _)| f.key() == fdim)
                else {
                    continue;
                };
                groups
                    .entry((*project, *day, f.key(), fvalue.clone()))
                    .or_default()
                    .push((dim.clone(), value.clone()));
            }
            if groups.is_empty() {
                tx.commit().await?;
                return Ok(done);
            }
            // How many visits each read would hand back: the day row of each filter value
            // (the day's '' row for a filter without an index) and of each indexed row's value.
            let mut keys: Vec<(i64, &str, i64, &str)> = Vec::new();
            for ((project, day, fdim, fvalue), rows) in &groups {
                keys.push(match indexed_column(fdim) {
                    Some(_) => (*project, *fdim, *day, fvalue.as_str()),
                    None => (*project, "", *day, ""),
                });
                for (dim, value) in rows {
                    if own_index(dim).is_some() {
                        keys.push((*project, dim.as_str(), *day, value.as_str()));
                    }
                }
            }
            let sizes: HashMap<(i64, String, i64, String), i64> =
                sqlx::query_as::<_, (i64, String, i64, String, i64)>(sql::day_visits(backend))
                    .bind(serde_json::to_string(&keys).expect("keys serialize"))
                    .fetch_all(&mut *tx)
                    .await?
                    .into_iter()
                    .map(|(p, dim, day, value, visits)| ((p, dim, day, value), visits))
                    .collect();
            let size = |p: i64, dim: &str, day: i64, value: &str| {
                sizes
                    .get(&(p, dim.to_owned(), day, value.to_owned()))
                    .copied()
                    .unwrap_or(0)
            };
            let zones: Vec<(i64, String)> =
                sqlx::query_as(sqlx::AssertSqlSafe(Zones::sql(groups.keys().map(|k| k.0))))
                    .fetch_all(&mut *tx)
                    .await?;
            let zones = Zones::new(zones);
            for ((project, day, fdim, fvalue), rows) in groups {
                let end = next_day(&zones.of(project), day);
                let mut sketches: BTreeMap<(String, String), Visitors> = rows
                    .iter()
                    .map(|r| (r.clone(), Visitors::default()))
                    .collect();
                let whole = match indexed_column(fdim) {
                    Some(_) => size(project, fdim, day, &fvalue),
                    None => size(project, "", day, ""),
                };
                let own: i64 = rows
                    .iter()
                    .filter(|(dim, _)| own_index(dim).is_some())
                    .map(|(dim, value)| size(project, dim, day, value))
                    .sum();
                // Once the value's visits are read for one row they serve every row.
                let one_read = rows
                    .iter()
                    .any(|(dim, _)| dim != "page" && own_index(dim).is_none())
                    || (own > 0 && whole < own);
                if !one_read {
                    // Each indexed row from its value's visits of the day, through that
                    // value's index (the filter through `|| ''`, so no other index is taken):
                    // the filter checked in SQL hands back only the row's visitors.
                    for (dim, value) in &rows {
                        let Some(col) = own_index(dim) else {
                            continue;
                        };
                        let who: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                            "SELECT visitor FROM web_visits
                             WHERE project_id = $1 AND {col} = $2 AND start_ts >= $3
                               AND start_ts < $4 AND {fdim} || '' = $5"
                        )))
                        .bind(project)
                        .bind(value)
                        .bind(day)
                        .bind(end)
                        .bind(&fvalue)
                        .fetch_all(&mut *tx)
                        .await?;
                        done.visits_read += size(project, dim, day, value) as u64;
                        if let Some(s) = sketches.get_mut(&(dim.clone(), value.clone())) {
                            s.insert_all(who.iter().map(String::as_str));
                        }
                    }
                }
                if rows.iter().any(|(dim, _)| dim == "page") {
                    let views: Vec<(String, String)> =
                        sqlx::query_as(sqlx::AssertSqlSafe(format!(
                            "SELECT p.visitor, p.path FROM web_visits v JOIN web_pageviews p
                               ON p.project_id = v.project_id AND p.visitor = v.visitor
                              AND p.ts >= v.start_ts AND p.ts <= v.end_ts
                             WHERE v.project_id = $1 AND v.{fdim} = $2
                               AND v.start_ts >= $3 AND v.start_ts < $4"
                        )))
                        .bind(project)
                        .bind(&fvalue)
                        .bind(day)
                        .bind(end)
                        .fetch_all(&mut *tx)
                        .await?;
                    for (visitor, path) in &views {
                        if let Some(s) = sketches.get_mut(&("page".to_owned(), path.clone())) {
                            s.insert_all([visitor.as_str()]);
                        }
                    }
                }
                if one_read {
                    let visits: Vec<DayVisit> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "SELECT visitor, id, {VISIT_COLUMNS} FROM web_visits
                         WHERE project_id = $1 AND {fdim} = $2
                           AND start_ts >= $3 AND start_ts < $4"
                    )))
                    .bind(project)
                    .bind(&fvalue)
                    .bind(day)
                    .bind(end)
                    .fetch_all(&mut *tx)
                    .await?;
                    done.visits_read += visits.len() as u64;
                    for d in visits {
                        let v = Visit::from_stored(&d.visit);
                        for (dim, value) in VISIT_DIMENSIONS.iter().zip(v.values) {
                            if let Some(s) = sketches.get_mut(&(dim.key().to_owned(), value)) {
                                s.insert_all([d.visitor.as_str()]);
                            }
                        }
                    }
                }
                for ((dim, value), sketch) in sketches {
                    sqlx::query(
                        "UPDATE web_daily_pairs SET visitors = $1
                         WHERE project_id = $2 AND fdim = $3 AND fvalue = $4 AND dim = $5
                           AND day = $6 AND value = $7",
                    )
                    .bind(sketch.to_bytes())
                    .bind(project)
                    .bind(fdim)
                    .bind(&fvalue)
                    .bind(&dim)
                    .bind(day)
                    .bind(&value)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
            Ok(done)
        })
    }

    /// Fills the pair rows of up to [`FILL_CHUNK`] heavy value-days (`web_pairs_fill`: day
    /// rows of a heavy filter dimension that reached `PULSELINE_WEB_PAIR_HEAVY_VISITS` visits)
    /// from that value's visits of the day, through its index, and their folded page views,
    /// then marks the day row `paired`: from then on the fold moves its pair rows with every
    /// chunk. A page's day (dim `page`) waits until the day is over and is counted from the
    /// visits that viewed it (`fill_page_day!`); the fold drops it when the day changes. One
    /// transaction, which takes value-days one at a time and stops after the one that ends
    /// past its budget ([`super::FILL_TX_BUDGET`], [`Store::set_fill_budget`]): a value-day
    /// after the upgrade may read a whole day's visits. Waits, as the rebuild does, while the
    /// project is being rebuilt (the rebuild counts visits past its cursor later: a fill now
    /// would count them twice) or has a person's removal of a folded page view queued (its
    /// visit still holds that page view, which the page pairs would miss).
    pub async fn fill_heavy_pairs(&self) -> Result<FillStep, StoreError> {
        let heavy = self.pair_heavy_visits();
        let budget = self.fill_budget();
        with_db!(self, write_pool, |pool, backend| {
            let mut tx = pool.begin().await?;
            let started = Instant::now();
            if backend == Backend::Postgres {
                sqlx::query(crate::store::web::WEB_FOLD_LOCK)
                    .execute(&mut *tx)
                    .await?;
            }
            let mut step = FillStep::default();
            // A page's days wait until they are over (`PAGE_PAIRS_SETTLED_MS`).
            let settled = super::page_pairs_settled();
            loop {
                if step.taken == FILL_CHUNK as u64 {
                    step.more = true;
                    break;
                }
                // One at a time, each a write first (SQLite's write lock), so the budget can
                // stop between value-days and leave the rest queued. In key order: any other
                // order sorted the whole queue (22,000 value-days at 10 M page views) per claim.
                // `visitor >= ''` holds for every row; it steers SQLite to the partial index of
                // removed rows instead of reading the project's whole page-view queue.
                let next: Option<(i64, String, i64, String)> = sqlx::query_as(
                    "DELETE FROM web_pairs_fill WHERE (project_id, dim, day, value) IN (
                         SELECT f.project_id, f.dim, f.day, f.value FROM web_pairs_fill f
                         WHERE NOT EXISTS (SELECT 1 FROM web_rebuild r
                                           WHERE r.project_id = f.project_id)
                           AND NOT EXISTS (SELECT 1 FROM web_visit_pending p
                                           WHERE p.project_id = f.project_id AND p.removed = 1
                                             AND p.visitor >= '')
                           AND (f.dim <> 'page' OR f.day < $1)
                         ORDER BY f.project_id, f.dim, f.day, f.value LIMIT 1)
                     RETURNING project_id, dim, day, value",
                )
                .bind(settled)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((project, dim, day, value)) = next else {
                    break;
                };
                step.taken += 1;
                'day: {
                    let row: Option<(i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "SELECT {}, CAST(paired AS BIGINT) FROM web_daily
                         WHERE project_id = $1 AND dim = $2 AND day = $3 AND value = $4",
                        sql::DAY_ROW_COUNT
                    )))
                    .bind(project)
                    .bind(&dim)
                    .bind(day)
                    .bind(&value)
                    .fetch_optional(&mut *tx)
                    .await?;
                    // Gone, already paired, or fell back under the threshold since it was queued.
                    if !row.is_some_and(|(count, paired)| paired == 0 && count >= heavy) {
                        break 'day;
                    }
                    let zones: Vec<(i64, String)> =
                        sqlx::query_as(sqlx::AssertSqlSafe(Zones::sql([project].into_iter())))
                            .fetch_all(&mut *tx)
                            .await?;
                    let end = next_day(&Zones::new(zones).of(project), day);
                    if dim == Dimension::Page.key() {
                        fill_page_day!(tx, project, (day, end), value.as_str());
                        break 'day;
                    }
                    // Only the heavy filters' columns go into SQL, as the constants they match.
                    let Some(&(fdim, f)) = HEAVY_PAIR_FILTERS.iter().find(|(d, _)| d.key() == dim)
                    else {
                        break 'day;
                    };
                    let col = fdim.key();
                    let visits: Vec<DayVisit> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                        "SELECT visitor, id, {VISIT_COLUMNS} FROM web_visits
                         WHERE project_id = $1 AND {col} = $2 AND start_ts >= $3 AND start_ts < $4"
                    )))
                    .bind(project)
                    .bind(&value)
                    .bind(day)
                    .bind(end)
                    .fetch_all(&mut *tx)
                    .await?;
                    // Their page views the fold has counted (it adds the ones still queued when
                    // it takes them), as the rebuild reads them.
                    let paths: Vec<(String, String)> =
                        sqlx::query_as(sqlx::AssertSqlSafe(format!(
                            "SELECT v.visitor, p.path FROM web_visits v JOIN web_pageviews p
                           ON p.project_id = v.project_id AND p.visitor = v.visitor
                          AND p.ts >= v.start_ts AND p.ts <= v.end_ts
                         WHERE v.project_id = $1 AND v.{col} = $2
                           AND v.start_ts >= $3 AND v.start_ts < $4
                           AND NOT EXISTS (SELECT 1 FROM web_visit_pending q
                               WHERE q.project_id = $1 AND q.seq = p.seq AND q.removed = 0)"
                        )))
                        .bind(project)
                        .bind(&value)
                        .bind(day)
                        .bind(end)
                        .fetch_all(&mut *tx)
                        .await?;
                    let mut rows = FillRows::new();
                    for d in &visits {
                        let v = Visit::from_stored(&d.visit);
                        for (i, (dim, other)) in VISIT_DIMENSIONS.iter().zip(&v.values).enumerate()
                        {
                            if i != f {
                                count_visit(&mut rows, (dim.key(), other.clone()), &d.visitor, &v);
                            }
                        }
                    }
                    for (visitor, path) in paths {
                        count_page_views(&mut rows, path, &visitor, 1);
                    }
                    // None should be there (the fold writes a heavy value's pairs only once its
                    // day row is paired); a clean slate keeps the fill exact regardless.
                    write_fill!(tx, (project, day), (dim.as_str(), value.as_str()), rows);
                }
                if started.elapsed() >= budget {
                    step.more = true;
                    break;
                }
            }
            tx.commit().await?;
            Ok(step)
        })
    }

    /// Counts the next [`FOLD_CHUNK`] visits and page views of one project whose rollups are
    /// being rebuilt; removes its `web_rebuild` row once both are counted. Page views still
    /// queued are left to the fold (it counts those behind the cursor), and the visits table
    /// only ever holds folded page views. A project with a
    /// person's removed page views still queued waits for the fold to take them (their
    /// removal is counted against the cursor they were queued at).
    pub(crate) async fn rebuild_step(&self) -> Result<bool, StoreError> {
        with_db!(self, write_pool, |pool, backend| {
            let mut tx = pool.begin().await?;
            if backend == Backend::Postgres {
                sqlx::query(crate::store::web::WEB_FOLD_LOCK)
                    .execute(&mut *tx)
                    .await?;
            }
            // A write first (SQLite's write lock), of the row this step advances.
            let row: Option<(i64, i64, i64)> = sqlx::query_as(
                "UPDATE web_rebuild SET visit_cursor = visit_cursor WHERE project_id = (
                     SELECT r.project_id FROM web_rebuild r WHERE NOT EXISTS (
                         SELECT 1 FROM web_visit_pending p
                         WHERE p.project_id = r.project_id AND p.removed <> 0)
                     ORDER BY r.project_id LIMIT 1)
                 RETURNING project_id, visit_cursor, seq_cursor",
            )
            .fetch_optional(&mut *tx)
            .await?;
            let Some((project, visit_cursor, seq_cursor)) = row else {
                tx.commit().await?;
                return Ok(false);
            };
            let zones: Vec<(i64, String)> =
                sqlx::query_as(sqlx::AssertSqlSafe(Zones::sql([project].into_iter())))
                    .fetch_all(&mut *tx)
                    .await?;
            let tz = Zones::new(zones).of(project);
            let visits: Vec<DayVisit> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT visitor, id, {VISIT_COLUMNS} FROM web_visits
                 WHERE project_id = $1 AND id > $2 ORDER BY id LIMIT $3"
            )))
            .bind(project)
            .bind(visit_cursor)
            .bind(FOLD_CHUNK)
            .fetch_all(&mut *tx)
            .await?;
            let views: Vec<(i64, String, i64, String)> = sqlx::query_as(
                "SELECT seq, visitor, ts, path FROM web_pageviews v
                 WHERE project_id = $1 AND seq > $2
                   AND NOT EXISTS (SELECT 1 FROM web_visit_pending q
                       WHERE q.project_id = $1 AND q.seq = v.seq AND q.removed = 0)
                 ORDER BY seq LIMIT $3",
            )
            .bind(project)
            .bind(seq_cursor)
            .bind(FOLD_CHUNK)
            .fetch_all(&mut *tx)
            .await?;
            let done = (visits.len() as i64) < FOLD_CHUNK && (views.len() as i64) < FOLD_CHUNK;
            let next_visit = visits.last().map_or(visit_cursor, |v| v.visit.id);
            let next_seq = views.last().map_or(seq_cursor, |v| v.0);
            // The folded page views of those visits, for the page pairs (the fold counts the
            // ones still queued when it takes them).
            let paths: Vec<(i64, String)> = if visits.is_empty() {
                Vec::new()
            } else {
                sqlx::query_as(
                    "SELECT v.id, p.path FROM web_visits v JOIN web_pageviews p
                       ON p.project_id = v.project_id AND p.visitor = v.visitor
                      AND p.ts >= v.start_ts AND p.ts <= v.end_ts
                     WHERE v.project_id = $1 AND v.id > $2 AND v.id <= $3
                       AND NOT EXISTS (SELECT 1 FROM web_visit_pending q
                           WHERE q.project_id = $1 AND q.seq = p.seq AND q.removed = 0)",
                )
                .bind(project)
                .bind(visit_cursor)
                .bind(next_visit)
                .fetch_all(&mut *tx)
                .await?
            };
            let mut plan = Plan::default();
            let mut by_id = HashMap::with_capacity(visits.len());
            for d in visits {
                let v = Visit::from_stored(&d.visit);
                plan.visit(&tz, project, &d.visitor, &v, 1);
                by_id.insert(d.visit.id, (d.visitor, v));
            }
            for (id, path) in &paths {
                if let Some((visitor, v)) = by_id.get(id) {
                    plan.page_pair(&tz, project, visitor, v, path, 1);
                }
            }
            for (_, visitor, ts, path) in &views {
                plan.page_view(&tz, project, visitor, *ts, path, false);
            }
            apply_plan!(tx, plan, backend, self.pair_heavy_visits());
            if done {
                sqlx::query("DELETE FROM web_rebuild WHERE project_id = $1")
                    .bind(project)
                    .execute(&mut *tx)
                    .await?;
            } else {
                sqlx::query(
                    "UPDATE web_rebuild SET visit_cursor = $1, seq_cursor = $2
                     WHERE project_id = $3",
                )
                .bind(next_visit)
                .bind(next_seq)
                .bind(project)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }
}
