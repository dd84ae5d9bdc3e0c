//! A filtered view: one indexed read of the visits that started in the range and match the
//! filters, through the index of one of them ([`super::driver`]), aggregated in SQL. A page
//! filter, and the page breakdown, also read which pages those visits viewed
//! (`web_visit_pages`).

use sqlx::Row;

use super::{BreakdownRow, Dimension, WebQuery, WebReport, WebTotals};
use crate::store::{Bind, Store, StoreError, query_with};

fn report_sql(q: &WebQuery<'_>, args: &mut Vec<Bind>) -> String {
    args.extend([Bind::Int(q.project), Bind::Int(q.from), Bind::Int(q.to)]);
    let visits = super::driver::visits_cte(q.filters, q.driver, args);
    // Each visit's bucket by comparisons, not a join of buckets and visits.
    let mut bucket = String::from("CASE");
    for (i, (start, end)) in q.buckets.iter().enumerate() {
        args.extend([Bind::Int(*start), Bind::Int(*end)]);
        let n = args.len();
        bucket.push_str(&format!(
            " WHEN start_ts >= ${} AND start_ts < ${n} THEN {i}",
            n - 1
        ));
    }
    bucket.push_str(" END");
    let mut sql = format!(
        "WITH {visits}
        SELECT 'totals' AS dim, '' AS value, CAST(COUNT(DISTINCT visitor) AS BIGINT) AS n1,
               CAST(COALESCE(SUM(pageviews), 0) AS BIGINT) AS n2, CAST(COUNT(*) AS BIGINT) AS n3,
               CAST(COALESCE(SUM(CASE WHEN pageviews = 1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS n4,
               CAST(COALESCE(SUM(end_ts - start_ts), 0) AS BIGINT) AS n5
        FROM m
        UNION ALL
        SELECT 'series', '', CAST(i AS BIGINT), CAST(COUNT(DISTINCT visitor) AS BIGINT), 0, 0, 0
        FROM (SELECT {bucket} AS i, visitor FROM m) s WHERE i IS NOT NULL GROUP BY i"
    );
    if let Some(rows) = q.breakdown_rows {
        let mut groups: Vec<String> = super::super::visits::VISIT_DIMENSIONS
            .iter()
            .map(|d| {
                format!(
                    "SELECT '{key}' AS dim, {key} AS value, COUNT(DISTINCT visitor) AS visitors,
                            COUNT(*) AS n FROM m GROUP BY {key}",
                    key = d.key()
                )
            })
            .collect();
        groups.push(
            "SELECT 'page' AS dim, x.path AS value, COUNT(DISTINCT m.visitor) AS visitors,
                    SUM(x.pageviews) AS n
             FROM m JOIN web_visit_pages x ON x.visit_id = m.id
             GROUP BY x.path"
                .to_owned(),
        );
        args.push(Bind::Int(rows));
        sql.push_str(&format!(
            "
        UNION ALL
        SELECT dim, value, CAST(visitors AS BIGINT), CAST(n AS BIGINT), 0, 0, 0 FROM (
            SELECT g.*, ROW_NUMBER() OVER (PARTITION BY dim ORDER BY visitors DESC, n DESC, value) AS r
            FROM ({}) g
        ) t WHERE r <= ${}",
            groups.join(" UNION ALL "),
            args.len()
        ));
    }
    sql
}

impl Store {
    pub(super) async fn web_report_from_visits(
        &self,
        q: &WebQuery<'_>,
    ) -> Result<WebReport, StoreError> {
        let mut args = Vec::new();
        let sql = report_sql(q, &mut args);
        let rows: Vec<(String, String, i64, i64, i64, i64, i64)> =
            with_db!(self, read_pool, |pool| {
                query_with(sql, &args)
                    .fetch_all(pool)
                    .await?
                    .iter()
                    .map(report_row)
                    .collect()
            });
        let mut report = WebReport {
            series: vec![0; q.buckets.len()],
            ..WebReport::default()
        };
        if q.breakdown_rows.is_some() {
            report.breakdowns = Dimension::ALL.iter().map(|d| (*d, Vec::new())).collect();
        }
        for (dim, value, n1, n2, n3, n4, n5) in rows {
            match dim.as_str() {
                "totals" => {
                    report.totals = WebTotals {
                        visitors: n1,
                        pageviews: n2,
                        visits: n3,
                        bounces: n4,
                        duration_ms: n5,
                    }
                }
                "series" => {
                    if let Some(v) = report.series.get_mut(n1 as usize) {
                        *v = n2;
                    }
                }
                key => {
                    if let Some(d) = Dimension::from_key(key)
                        && let Some((_, list)) = report.breakdowns.iter_mut().find(|(x, _)| *x == d)
                    {
                        list.push(BreakdownRow {
                            value,
                            visitors: n1,
                            count: n2,
                        });
                    }
                }
            }
        }
        for (_, list) in &mut report.breakdowns {
            super::sort_rows(list);
        }
        Ok(report)
    }
}

fn report_row<R: Row>(r: &R) -> (String, String, i64, i64, i64, i64, i64)
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    (
        r.get("dim"),
        r.get("value"),
        r.get("n1"),
        r.get("n2"),
        r.get("n3"),
        r.get("n4"),
        r.get("n5"),
    )
}
