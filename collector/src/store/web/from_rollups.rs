//! A view without filters, from the day rows of `web_daily` (and, for one-day charts, the hour
//! rows of `web_hourly`), migration 0034: sums computed in SQL, visitor sketches merged only for
//! the total, the chart's buckets and the rows a breakdown shows. The cost is the range's day
//! rows, not its page views.

use std::collections::HashMap;

use futures::{StreamExt, TryStreamExt, stream};

use super::{BreakdownRow, Dimension, TotalsRows, WebQuery, WebReport, WebTotals};
use crate::store::visits::sketch::Visitors;
use crate::store::visits::{DAY_ROW_COUNT, VISITS_OF_PAGE};
use crate::store::{Bind, HOUR_MS, Store, StoreError, query_with};

/// Candidate values a breakdown reads per round, most counted first, times the rows it shows.
const CANDIDATES_PER_ROW: i64 = 2;
/// Rounds a breakdown reads at most: past them, values tied at the bottom of the list (as many
/// visitors as visits) keep the order of their counts.
const MAX_ROUNDS: i64 = 5;

/// A pair filter, its value, and the spans of the days whose visits are read with its pair
/// rows (those it has no pair rows for).
type Within<'a> = (Dimension, &'a str, &'a [(i64, i64)]);

/// Breakdowns of one view read at once: each is a few statements on a read connection, so
/// two use both cores of a small machine and leave the pool's other connections to other
/// requests.
const BREAKDOWN_READS: usize = 2;

/// day, visits, page views, bounces, duration (ms), visitor sketch.
type DayRow = (i64, i64, i64, i64, i64, Vec<u8>);

/// The bucket of `[start, end)` spans (sorted, adjacent) that holds `at`.
pub(super) fn bucket_of(buckets: &[(i64, i64)], at: i64) -> Option<usize> {
    let i = buckets
        .partition_point(|(start, _)| *start <= at)
        .checked_sub(1)?;
    (at < buckets[i].1).then_some(i)
}

/// A visit a page filter's view reads for a day without pair rows: visitor, start, end, page
/// views.
type PageVisit = (String, i64, i64, i64);

/// The top row and chart by day of a filtered view from its day (or pair) rows and, for a page
/// filter's days without pair rows, its visits.
fn totals_of(q: &WebQuery<'_>, days: &[DayRow], visits: &[PageVisit]) -> WebReport {
    let mut totals = WebTotals::default();
    let mut everyone = Visitors::default();
    let mut per_bucket = vec![Visitors::default(); q.buckets.len()];
    let mut bucket_visits = vec![0; q.buckets.len()];
    for (day, visits, pageviews, bounces, duration_ms, sketch) in days {
        totals.visits += visits;
        totals.pageviews += pageviews;
        totals.bounces += bounces;
        totals.duration_ms += duration_ms;
        everyone.merge_bytes(sketch);
        if let Some(i) = bucket_of(q.buckets, *day) {
            per_bucket[i].merge_bytes(sketch);
            bucket_visits[i] += visits;
        }
    }
    for (visitor, start, end, pageviews) in visits {
        totals.visits += 1;
        totals.pageviews += pageviews;
        totals.bounces += i64::from(*pageviews == 1);
        totals.duration_ms += end - start;
        everyone.insert_all([visitor.as_str()]);
        if let Some(i) = bucket_of(q.buckets, *start) {
            per_bucket[i].insert_all([visitor.as_str()]);
            bucket_visits[i] += 1;
        }
    }
    // Each visit has one visitor: the estimate never says more than the visits.
    totals.visitors = everyone.count().min(totals.visits);
    WebReport {
        totals,
        series: per_bucket
            .iter()
            .map(Visitors::count)
            .zip(bucket_visits)
            .map(|(n, v)| n.min(v))
            .collect(),
        breakdowns: Vec::new(),
    }
}

impl Store {
    pub(super) async fn web_report_from_rollups(
        &self,
        q: &WebQuery<'_>,
    ) -> Result<WebReport, StoreError> {
        let days = self.day_rows(q, "", "").await?;
        let mut totals = WebTotals::default();
        let mut everyone = Visitors::default();
        let mut per_bucket = vec![Visitors::default(); q.buckets.len()];
        let hourly = q.buckets.iter().any(|(s, e)| e - s <= HOUR_MS);
        for (day, visits, pageviews, bounces, duration_ms, sketch) in &days {
            totals.visits += visits;
            totals.pageviews += pageviews;
            totals.bounces += bounces;
            totals.duration_ms += duration_ms;
            everyone.merge_bytes(sketch);
            if !hourly && let Some(i) = bucket_of(q.buckets, *day) {
                per_bucket[i].merge_bytes(sketch);
            }
        }
        if hourly {
            let hours: Vec<(i64, Vec<u8>)> = with_db!(self, read_pool, |pool| {
                sqlx::query_as(
                    "SELECT hour, visitors FROM web_hourly
                     WHERE project_id = $1 AND hour >= $2 AND hour < $3",
                )
                .bind(q.project)
                .bind(q.from)
                .bind(q.to)
                .fetch_all(pool)
                .await?
            });
            for (hour, sketch) in &hours {
                if let Some(i) = bucket_of(q.buckets, *hour) {
                    per_bucket[i].merge_bytes(sketch);
                }
            }
        }
        // Each visitor viewed a page: the estimate never says more than the page views.
        totals.visitors = everyone.count().min(totals.pageviews);
        let mut report = WebReport {
            totals,
            series: per_bucket.iter().map(Visitors::count).collect(),
            breakdowns: Vec::new(),
        };
        let Some(limit) = q.breakdown_rows else {
            return Ok(report);
        };
        report.breakdowns = stream::iter(Dimension::ALL)
            .map(|dim| async move {
                Ok::<_, StoreError>((dim, self.top_rows(q, dim, None, limit).await?))
            })
            .buffered(BREAKDOWN_READS)
            .try_collect()
            .await?;
        Ok(report)
    }

    /// The top row and the chart by day of the visits whose `dim` is `value` (a visit
    /// dimension), from its day rows: `q.buckets` must be days.
    pub async fn web_value_totals(
        &self,
        q: &WebQuery<'_>,
        rows: TotalsRows<'_>,
    ) -> Result<WebReport, StoreError> {
        Ok(totals_of(q, &self.totals_rows(q, rows).await?, &[]))
    }

    /// The top row and the chart by day of the visits that viewed page `path`: its pair
    /// rows' totals (dim `''`, filled for the days that are over,
    /// [`Self::web_unpaired_spans`]) and its visits that started in `unpaired`.
    /// `q.buckets` must be days.
    pub async fn web_page_totals(
        &self,
        q: &WebQuery<'_>,
        path: &str,
        unpaired: &[(i64, i64)],
    ) -> Result<WebReport, StoreError> {
        let days = self
            .pair_day_rows(q, (Dimension::Page.key(), path), ("", ""))
            .await?;
        let mut visits: Vec<PageVisit> = Vec::new();
        for (start, end) in unpaired {
            let mut rows: Vec<PageVisit> = with_db!(self, read_pool, |pool| {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT visitor, start_ts, end_ts, pageviews FROM web_visits WHERE id IN ({})",
                    VISITS_OF_PAGE
                )))
                .bind(q.project)
                .bind(path)
                .bind(*start)
                .bind(*end)
                .fetch_all(pool)
                .await?
            });
            visits.append(&mut rows);
        }
        Ok(totals_of(q, &days, &visits))
    }

    /// The range's day rows of `rows`: day, visits, page views, bounces, duration and the
    /// visitor sketch. A pair row's key leads with its filter: one short range of it per day.
    async fn totals_rows(
        &self,
        q: &WebQuery<'_>,
        rows: TotalsRows<'_>,
    ) -> Result<Vec<DayRow>, StoreError> {
        match rows {
            TotalsRows::Value(dim, value) => self.day_rows(q, dim.key(), value).await,
            TotalsRows::Pair((fdim, fvalue), (dim, value)) => {
                self.pair_day_rows(q, (fdim.key(), fvalue), (dim.key(), value))
                    .await
            }
        }
    }

    /// The range's pair rows of filter `fdim` = `fvalue` and `dim` = `value`, one per day.
    async fn pair_day_rows(
        &self,
        q: &WebQuery<'_>,
        (fdim, fvalue): (&str, &str),
        (dim, value): (&str, &str),
    ) -> Result<Vec<DayRow>, StoreError> {
        Ok(with_db!(self, read_pool, |pool| {
            sqlx::query_as(
                "SELECT day, visits, pageviews, bounces, duration_ms, visitors
                 FROM web_daily_pairs
                 WHERE project_id = $1 AND fdim = $2 AND fvalue = $3 AND dim = $4
                   AND day >= $5 AND day < $6 AND value = $7",
            )
            .bind(q.project)
            .bind(fdim)
            .bind(fvalue)
            .bind(dim)
            .bind(q.from)
            .bind(q.to)
            .bind(value)
            .fetch_all(pool)
            .await?
        }))
    }

    /// The day rows of `(dim, value)` in the range: day, visits, page views, bounces,
    /// duration and the visitor sketch.
    async fn day_rows(
        &self,
        q: &WebQuery<'_>,
        dim: &str,
        value: &str,
    ) -> Result<Vec<DayRow>, StoreError> {
        Ok(with_db!(self, read_pool, |pool| {
            sqlx::query_as(
                "SELECT day, visits, pageviews, bounces, duration_ms, visitors FROM web_daily
                 WHERE project_id = $1 AND dim = $2 AND day >= $3 AND day < $4 AND value = $5",
            )
            .bind(q.project)
            .bind(dim)
            .bind(q.from)
            .bind(q.to)
            .bind(value)
            .fetch_all(pool)
            .await?
        }))
    }

    /// The spans (`[start, end)`, merged where adjacent) of the days of the range on which
    /// `fvalue` of a heavy pair filter, or page `fvalue` (`fdim` page), has no pair rows
    /// (`web_daily.paired`, migrations 0056 and 0059), whose visits a one-chip view reads with
    /// its pair rows. `None` when those days hold more than `budget` visits (a page's day row
    /// counts its page views, which bound them; fills still queued), or when no day of the
    /// range has pair rows: the view then reads visits as other filtered views do, in one
    /// statement for all breakdowns (a breakdown from pair rows and visits reads the visits
    /// once per round). `q.buckets` must be days.
    pub async fn web_unpaired_spans(
        &self,
        q: &WebQuery<'_>,
        fdim: Dimension,
        fvalue: &str,
        budget: i64,
    ) -> Result<Option<Vec<(i64, i64)>>, StoreError> {
        let days: Vec<(i64, i64, i64)> = with_db!(self, read_pool, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT day, {DAY_ROW_COUNT}, CAST(paired AS BIGINT) FROM web_daily
                 WHERE project_id = $1 AND dim = $2 AND day >= $3 AND day < $4 AND value = $5"
            )))
            .bind(q.project)
            .bind(fdim.key())
            .bind(q.from)
            .bind(q.to)
            .bind(fvalue)
            .fetch_all(pool)
            .await?
        });
        let paired: Vec<i64> = days.iter().filter(|d| d.2 != 0).map(|d| d.0).collect();
        let others: i64 = days.iter().filter(|d| d.2 == 0).map(|d| d.1).sum();
        if paired.is_empty() || others > budget {
            return Ok(None);
        }
        // Every day without pair rows, with a day row or not: a visit that viewed a page may
        // have started on a day without page views of it (a visit value's day without a row
        // has no visits: its index range is empty).
        let mut spans: Vec<(i64, i64)> = Vec::new();
        for (start, end) in q.buckets {
            if paired.contains(start) {
                continue;
            }
            match spans.last_mut() {
                Some(last) if last.1 == *start => last.1 = *end,
                _ => spans.push((*start, *end)),
            }
        }
        Ok(Some(spans))
    }

    /// The breakdowns of the visits whose `fdim` (one of the pair filters) is `fvalue`, from
    /// their pair rows (`web_daily_pairs`, migrations 0049, 0053 and 0056) as the unfiltered
    /// breakdowns come from the day rows, plus, for a heavy filter, its visits that started
    /// in `unpaired` (the days it has no pair rows for, [`Self::web_unpaired_spans`]);
    /// `fdim`'s own breakdown is the one row of `totals` (that value's day rows). `q.buckets`
    /// must be days.
    pub async fn web_pair_breakdowns(
        &self,
        q: &WebQuery<'_>,
        fdim: Dimension,
        fvalue: &str,
        totals: &WebTotals,
        limit: i64,
        unpaired: &[(i64, i64)],
    ) -> Result<Vec<(Dimension, Vec<BreakdownRow>)>, StoreError> {
        stream::iter(Dimension::ALL)
            .map(|dim| async move {
                // A page filter's own breakdown is every page its visits viewed.
                let rows = if dim == fdim && fdim != Dimension::Page {
                    (totals.visits > 0)
                        .then(|| BreakdownRow {
                            value: fvalue.to_owned(),
                            visitors: totals.visitors,
                            count: totals.visits,
                        })
                        .into_iter()
                        .collect()
                } else {
                    self.top_rows(q, dim, Some((fdim, fvalue, unpaired)), limit)
                        .await?
                };
                Ok::<_, StoreError>((dim, rows))
            })
            .buffered(BREAKDOWN_READS)
            .try_collect()
            .await
    }

    /// How many pair rows of `fdim` = `fvalue` the range holds, counted up to `max + 1`.
    pub async fn web_pair_rows(
        &self,
        q: &WebQuery<'_>,
        fdim: Dimension,
        fvalue: &str,
        max: i64,
    ) -> Result<i64, StoreError> {
        Ok(with_db!(self, read_pool, |pool| {
            sqlx::query_scalar(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM (SELECT 1 FROM web_daily_pairs
                     WHERE project_id = $1 AND fdim = $2 AND fvalue = $3
                       AND day >= $4 AND day < $5 LIMIT $6) x",
            )
            .bind(q.project)
            .bind(fdim.key())
            .bind(fvalue)
            .bind(q.from)
            .bind(q.to)
            .bind(max + 1)
            .fetch_one(pool)
            .await?
        }))
    }

    /// The `limit` values with the most visitors, of all visits or (`within`) of those with a
    /// pair filter's value, from its pair rows and its visits that started in the given spans.
    /// A value's visitors never exceed its count (page views, or visits), so candidates come
    /// by count, summed in SQL, a round at a time, and their sketches are merged until no
    /// value left could still make the list.
    async fn top_rows(
        &self,
        q: &WebQuery<'_>,
        dim: Dimension,
        within: Option<Within<'_>>,
        limit: i64,
    ) -> Result<Vec<BreakdownRow>, StoreError> {
        // `$1`..`$4` project, dim and range, then the pair filter's `$5`, `$6` if any.
        let (table, pair) = match within {
            Some(_) => ("web_daily_pairs", " AND fdim = $5 AND fvalue = $6"),
            None => ("web_daily", ""),
        };
        let head = |args: &mut Vec<Bind>| {
            args.extend([
                Bind::Int(q.project),
                Bind::Text(dim.key().to_owned()),
                Bind::Int(q.from),
                Bind::Int(q.to),
            ]);
            if let Some((fdim, fvalue, _)) = within {
                args.extend([
                    Bind::Text(fdim.key().to_owned()),
                    Bind::Text(fvalue.to_owned()),
                ]);
            }
        };
        // The filter's visits (value, visitor) of the days without pair rows: one range of its
        // index per span, each visit once for a visit dimension, each of its page views for
        // pages. Spans are bound after the head's `$6`.
        let unpaired = |args: &mut Vec<Bind>| -> Option<String> {
            let (fdim, _, spans) = within?;
            if spans.is_empty() {
                return None;
            }
            let fcol = fdim.key();
            // value, visitor and what it adds to the count (`c`).
            let (select, join) = match (fdim, dim) {
                // The pages a page filter's visits viewed: as the visits reader counts them.
                (Dimension::Page, Dimension::Page) => (
                    "x.path AS value, v.visitor AS visitor, x.pageviews AS c".to_owned(),
                    " JOIN web_visit_pages x ON x.visit_id = v.id",
                ),
                (_, Dimension::Page) => (
                    "p.path AS value, p.visitor AS visitor, 1 AS c".to_owned(),
                    " JOIN web_pageviews p ON p.project_id = v.project_id
                          AND p.visitor = v.visitor AND p.ts >= v.start_ts AND p.ts <= v.end_ts",
                ),
                _ => (
                    format!("v.{} AS value, v.visitor AS visitor, 1 AS c", dim.key()),
                    "",
                ),
            };
            let parts: Vec<String> = spans
                .iter()
                .map(|(start, end)| {
                    args.extend([Bind::Int(*start), Bind::Int(*end)]);
                    let n = args.len();
                    let (from, to) = (n - 1, n);
                    let filter = if fdim == Dimension::Page {
                        format!(
                            "v.id IN (SELECT visit_id FROM web_visit_pages
                                      WHERE project_id = $1 AND path = $6
                                        AND start_ts >= ${from} AND start_ts < ${to})"
                        )
                    } else {
                        format!(
                            "v.project_id = $1 AND v.{fcol} = $6
                             AND v.start_ts >= ${from} AND v.start_ts < ${to}"
                        )
                    };
                    format!("SELECT {select} FROM web_visits v{join} WHERE {filter}")
                })
                .collect();
            Some(parts.join(" UNION ALL "))
        };
        let count = if dim == Dimension::Page {
            "pageviews"
        } else {
            "visits"
        };
        let round = limit * CANDIDATES_PER_ROW;
        let mut top: Vec<BreakdownRow> = Vec::new();
        let mut offset = 0;
        loop {
            let mut args = Vec::new();
            head(&mut args);
            let visits = unpaired(&mut args);
            args.extend([Bind::Int(round), Bind::Int(offset)]);
            let sql = match &visits {
                None => format!(
                    "SELECT value, CAST(SUM({count}) AS BIGINT) AS n FROM {table}
                     WHERE project_id = $1 AND dim = $2 AND day >= $3 AND day < $4{pair}
                     GROUP BY value HAVING SUM({count}) > 0
                     ORDER BY n DESC, value LIMIT ${} OFFSET ${}",
                    args.len() - 1,
                    args.len()
                ),
                Some(visits) => format!(
                    "SELECT value, CAST(SUM(c) AS BIGINT) AS n FROM (
                         SELECT value, {count} AS c FROM {table}
                         WHERE project_id = $1 AND dim = $2 AND day >= $3 AND day < $4{pair}
                         UNION ALL
                         SELECT value, c FROM ({visits}) u
                     ) x
                     GROUP BY value HAVING SUM(c) > 0
                     ORDER BY n DESC, value LIMIT ${} OFFSET ${}",
                    args.len() - 1,
                    args.len()
                ),
            };
            let candidates: Vec<(String, i64)> = with_db!(self, read_pool, |pool| {
                use sqlx::Row;
                query_with(sql, &args)
                    .fetch_all(pool)
                    .await?
                    .iter()
                    .map(|r| (r.get("value"), r.get("n")))
                    .collect()
            });
            if candidates.is_empty() {
                break;
            }
            let mut args = Vec::new();
            head(&mut args);
            let mut marks = Vec::with_capacity(candidates.len());
            for (value, _) in &candidates {
                args.push(Bind::Text(value.clone()));
                marks.push(format!("${}", args.len()));
            }
            let sql = format!(
                "SELECT value, visitors FROM {table}
                 WHERE project_id = $1 AND dim = $2 AND day >= $3 AND day < $4{pair}
                   AND value IN ({})",
                marks.join(", ")
            );
            let sketches: Vec<(String, Vec<u8>)> = with_db!(self, read_pool, |pool| {
                use sqlx::Row;
                query_with(sql, &args)
                    .fetch_all(pool)
                    .await?
                    .iter()
                    .map(|r| (r.get("value"), r.get("visitors")))
                    .collect()
            });
            let mut merged: HashMap<&str, Visitors> = HashMap::new();
            for (value, blob) in &sketches {
                merged.entry(value).or_default().merge_bytes(blob);
            }
            let mut who: Vec<(String, String)> = Vec::new();
            let mut args = Vec::new();
            head(&mut args);
            if let Some(visits) = unpaired(&mut args) {
                let mut marks = Vec::with_capacity(candidates.len());
                for (value, _) in &candidates {
                    args.push(Bind::Text(value.clone()));
                    marks.push(format!("${}", args.len()));
                }
                let sql = format!(
                    "SELECT value, visitor FROM ({visits}) u WHERE value IN ({})",
                    marks.join(", ")
                );
                who = with_db!(self, read_pool, |pool| {
                    use sqlx::Row;
                    query_with(sql, &args)
                        .fetch_all(pool)
                        .await?
                        .iter()
                        .map(|r| (r.get("value"), r.get("visitor")))
                        .collect()
                });
            }
            for (value, visitor) in &who {
                merged
                    .entry(value.as_str())
                    .or_default()
                    .insert_all([visitor.as_str()]);
            }
            let last_count = candidates.last().map_or(0, |c| c.1);
            let full_round = candidates.len() as i64 == round;
            for (value, n) in &candidates {
                let visitors = merged.get(value.as_str()).map_or(0, Visitors::count);
                top.push(BreakdownRow {
                    value: value.clone(),
                    visitors: visitors.min(*n),
                    count: *n,
                });
            }
            super::sort_rows(&mut top);
            top.truncate(usize::try_from(limit).unwrap_or(0));
            let settled =
                top.len() as i64 >= limit && top.last().is_some_and(|r| r.visitors > last_count);
            if !full_round || settled || offset / round + 1 >= MAX_ROUNDS {
                break;
            }
            offset += round;
        }
        Ok(top)
    }
}
