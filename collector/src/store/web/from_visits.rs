//! A filtered view: one indexed read of the visits that started in the range and match the
//! filters, through the index of one of them ([`super::driver`]). The page breakdown sums
//! which pages those visits viewed (`web_visit_pages`) in SQL; the top row, chart and the
//! other breakdowns are counted here in one pass over the visits: SQLite spent about a
//! microsecond per visit and breakdown on each `COUNT(DISTINCT visitor)` of a `GROUP BY`,
//! eleven times over (docs/dashboard-web.md, "Aggregation"). The visits come as JSON arrays
//! of [`VISITS_PER_ROW`], not a row each: sqlx's SQLite driver hands every row from its worker
//! thread to the caller on its own.

use std::collections::{HashMap, HashSet};

use futures::TryStreamExt;
use serde::Deserialize;
use sqlx::Row;

use super::{BreakdownRow, Dimension, WebQuery, WebReport, WebTotals};
use crate::store::visits::VISIT_DIMENSIONS;
use crate::store::{Backend, Bind, Store, StoreError, query_with};

/// Visits per JSON array the read returns.
const VISITS_PER_ROW: i64 = 2_000;

/// One visit as the read returns it: visitor, start, end, page views, and (with breakdowns)
/// its value of each of [`VISIT_DIMENSIONS`].
#[derive(Deserialize)]
struct VisitRow(String, i64, i64, i64, Vec<String>);

/// Rows of kind 0 are JSON arrays of [`VisitRow`]s; the one row of kind 1 (with breakdowns)
/// is the page breakdown's `[path, visitors, page views]` rows, ranked.
fn report_sql(q: &WebQuery<'_>, backend: Backend, args: &mut Vec<Bind>) -> String {
    args.extend([Bind::Int(q.project), Bind::Int(q.from), Bind::Int(q.to)]);
    let visits = super::driver::visits_cte(q.filters, q.driver, args);
    let (array, agg) = match backend {
        Backend::Sqlite => ("json_array", "json_group_array"),
        Backend::Postgres => ("json_build_array", "json_agg"),
    };
    let values = match q.breakdown_rows {
        Some(_) => VISIT_DIMENSIONS
            .iter()
            .map(|d| d.key())
            .collect::<Vec<_>>()
            .join(", "),
        None => String::new(),
    };
    args.push(Bind::Int(VISITS_PER_ROW));
    let mut sql = format!(
        "WITH {visits}
        SELECT CAST(0 AS BIGINT) AS k,
               CAST({agg}({array}(visitor, start_ts, end_ts, pageviews, {array}({values})))
                    AS TEXT) AS j
        FROM (SELECT m.*, (ROW_NUMBER() OVER ()) / ${} AS chunk FROM m) c
        GROUP BY chunk",
        args.len()
    );
    if let Some(rows) = q.breakdown_rows {
        args.push(Bind::Int(rows));
        sql.push_str(&format!(
            "
        UNION ALL
        SELECT CAST(1 AS BIGINT), CAST({agg}({array}(path, visitors, n)) AS TEXT)
        FROM (
            SELECT x.path AS path, COUNT(DISTINCT m.visitor) AS visitors,
                   CAST(SUM(x.pageviews) AS BIGINT) AS n,
                   ROW_NUMBER() OVER (
                       ORDER BY COUNT(DISTINCT m.visitor) DESC, SUM(x.pageviews) DESC, x.path
                   ) AS r
            FROM m JOIN web_visit_pages x ON x.visit_id = m.id
            GROUP BY x.path
        ) p WHERE r <= ${}",
            args.len()
        ));
    }
    sql
}

/// One breakdown value's visitors (as numbers of [`Tally::visitor`]) and visits.
#[derive(Default)]
struct Count {
    visitors: HashSet<u32>,
    visits: i64,
}

/// The sums of a filtered view, one visit at a time.
struct Tally<'q> {
    buckets: &'q [(i64, i64)],
    /// Each distinct visitor's number: their count is the top row's visitors.
    numbers: HashMap<String, u32>,
    totals: WebTotals,
    series: Vec<HashSet<u32>>,
    /// Per visit dimension (None without breakdowns), per value.
    values: Option<Vec<HashMap<String, Count>>>,
    pages: Vec<BreakdownRow>,
}

impl<'q> Tally<'q> {
    fn new(q: &WebQuery<'q>) -> Self {
        Self {
            buckets: q.buckets,
            numbers: HashMap::new(),
            totals: WebTotals::default(),
            series: q.buckets.iter().map(|_| HashSet::new()).collect(),
            values: q
                .breakdown_rows
                .map(|_| VISIT_DIMENSIONS.iter().map(|_| HashMap::new()).collect()),
            pages: Vec::new(),
        }
    }

    fn visitor(&mut self, visitor: &str) -> u32 {
        if let Some(n) = self.numbers.get(visitor) {
            return *n;
        }
        let n = self.numbers.len() as u32;
        self.numbers.insert(visitor.to_owned(), n);
        n
    }

    /// One row of [`report_sql`].
    fn add(&mut self, kind: i64, json: &str) -> Result<(), serde_json::Error> {
        if kind == 1 {
            let pages: Vec<(String, i64, i64)> = serde_json::from_str(json)?;
            self.pages.extend(
                pages
                    .into_iter()
                    .map(|(value, visitors, count)| BreakdownRow {
                        value,
                        visitors,
                        count,
                    }),
            );
            return Ok(());
        }
        let visits: Vec<VisitRow> = serde_json::from_str(json)?;
        for VisitRow(visitor, start, end, pageviews, values) in visits {
            self.visit(&visitor, start, end, pageviews, &values);
        }
        Ok(())
    }

    fn visit(&mut self, visitor: &str, start: i64, end: i64, pageviews: i64, values: &[String]) {
        let who = self.visitor(visitor);
        self.totals.visits += 1;
        self.totals.pageviews += pageviews;
        self.totals.bounces += i64::from(pageviews == 1);
        self.totals.duration_ms += end - start;
        // A visit counts in the bucket holding its start.
        if let Some(i) = super::from_rollups::bucket_of(self.buckets, start) {
            self.series[i].insert(who);
        }
        if let Some(counts) = &mut self.values {
            for (counts, value) in counts.iter_mut().zip(values) {
                let count = match counts.get_mut(value.as_str()) {
                    Some(count) => count,
                    None => counts.entry(value.clone()).or_default(),
                };
                count.visitors.insert(who);
                count.visits += 1;
            }
        }
    }

    fn report(self, rows: Option<i64>) -> WebReport {
        let mut report = WebReport {
            totals: WebTotals {
                visitors: self.numbers.len() as i64,
                ..self.totals
            },
            series: self.series.iter().map(|s| s.len() as i64).collect(),
            breakdowns: Vec::new(),
        };
        let (Some(values), Some(rows)) = (self.values, rows) else {
            return report;
        };
        let mut pages = self.pages;
        super::sort_rows(&mut pages);
        report.breakdowns = Dimension::ALL.iter().map(|d| (*d, Vec::new())).collect();
        for (dim, list) in &mut report.breakdowns {
            if *dim == Dimension::Page {
                *list = std::mem::take(&mut pages);
                continue;
            }
            let Some(d) = VISIT_DIMENSIONS.iter().position(|v| v == dim) else {
                continue;
            };
            *list = values[d]
                .iter()
                .map(|(value, c)| BreakdownRow {
                    value: value.clone(),
                    visitors: c.visitors.len() as i64,
                    count: c.visits,
                })
                .collect();
            super::sort_rows(list);
            list.truncate(usize::try_from(rows).unwrap_or(0));
        }
        report
    }
}

impl Store {
    pub(super) async fn web_report_from_visits(
        &self,
        q: &WebQuery<'_>,
    ) -> Result<WebReport, StoreError> {
        let mut args = Vec::new();
        let sql = report_sql(q, self.backend(), &mut args);
        let mut tally = Tally::new(q);
        with_db!(self, read_pool, |pool| {
            let mut rows = query_with(sql, &args).fetch(pool);
            while let Some(r) = rows.try_next().await? {
                let (kind, json): (i64, Option<String>) = (r.try_get(0)?, r.try_get(1)?);
                if let Some(json) = json {
                    tally
                        .add(kind, &json)
                        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
                }
            }
        });
        Ok(tally.report(q.breakdown_rows))
    }
}
