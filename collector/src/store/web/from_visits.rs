//! A filtered view: one indexed read of the visits that started in the range and match the
//! filters, through the index of one of them ([`super::driver`]). The page breakdown sums
//! which pages those visits viewed (`web_visit_pages`) in SQL; the top row, chart and the
//! other breakdowns are counted here in one pass over the visits as they stream in: SQLite
//! spent about a microsecond per visit and breakdown on each `COUNT(DISTINCT visitor)` of a
//! `GROUP BY`, eleven times over (docs/dashboard-web.md, "Aggregation").

use std::collections::{HashMap, HashSet};

use futures::TryStreamExt;
use sqlx::Row;

use super::{BreakdownRow, Dimension, WebQuery, WebReport, WebTotals};
use crate::store::visits::VISIT_DIMENSIONS;
use crate::store::{Bind, Store, StoreError, query_with};

/// Rows of kind 0 are visits (visitor, start, end, page views, then the value of each of
/// [`VISIT_DIMENSIONS`]); rows of kind 1 are the page breakdown's (path, visitors, page
/// views), already ranked.
fn report_sql(q: &WebQuery<'_>, args: &mut Vec<Bind>) -> String {
    args.extend([Bind::Int(q.project), Bind::Int(q.from), Bind::Int(q.to)]);
    let visits = super::driver::visits_cte(q.filters, q.driver, args);
    let values: Vec<&str> = VISIT_DIMENSIONS.iter().map(|d| d.key()).collect();
    let mut sql = format!(
        "WITH {visits}
        SELECT CAST(0 AS BIGINT) AS k, visitor, CAST(start_ts AS BIGINT) AS a,
               CAST(end_ts AS BIGINT) AS b, CAST(pageviews AS BIGINT) AS c, {}
        FROM m",
        values.join(", ")
    );
    if let Some(rows) = q.breakdown_rows {
        args.push(Bind::Int(rows));
        let blanks = vec!["''"; values.len() - 1].join(", ");
        sql.push_str(&format!(
            "
        UNION ALL
        SELECT CAST(1 AS BIGINT), path, CAST(visitors AS BIGINT), CAST(n AS BIGINT),
               CAST(0 AS BIGINT), path, {blanks}
        FROM (
            SELECT x.path AS path, COUNT(DISTINCT m.visitor) AS visitors,
                   SUM(x.pageviews) AS n,
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

    fn add<R: Row>(&mut self, r: &R) -> Result<(), sqlx::Error>
    where
        usize: sqlx::ColumnIndex<R>,
        i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> &'r str: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    {
        let kind: i64 = r.try_get(0)?;
        let (a, b, c): (i64, i64, i64) = (r.try_get(2)?, r.try_get(3)?, r.try_get(4)?);
        if kind == 1 {
            self.pages.push(BreakdownRow {
                value: r.try_get::<&str, _>(1)?.to_owned(),
                visitors: a,
                count: b,
            });
            return Ok(());
        }
        let who = self.visitor(r.try_get(1)?);
        let (start, end, pageviews) = (a, b, c);
        self.totals.visits += 1;
        self.totals.pageviews += pageviews;
        self.totals.bounces += i64::from(pageviews == 1);
        self.totals.duration_ms += end - start;
        // Buckets are in time order; a visit counts in the one holding its start.
        let i = self.buckets.partition_point(|(s, _)| *s <= start);
        if i > 0 && start < self.buckets[i - 1].1 {
            self.series[i - 1].insert(who);
        }
        if let Some(values) = &mut self.values {
            for (d, counts) in values.iter_mut().enumerate() {
                let value: &str = r.try_get(5 + d)?;
                let count = match counts.get_mut(value) {
                    Some(count) => count,
                    None => counts.entry(value.to_owned()).or_default(),
                };
                count.visitors.insert(who);
                count.visits += 1;
            }
        }
        Ok(())
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
        let sql = report_sql(q, &mut args);
        let mut tally = Tally::new(q);
        with_db!(self, read_pool, |pool| {
            let mut rows = query_with(sql, &args).fetch(pool);
            while let Some(r) = rows.try_next().await? {
                tally.add(&r)?;
            }
        });
        Ok(tally.report(q.breakdown_rows))
    }
}
