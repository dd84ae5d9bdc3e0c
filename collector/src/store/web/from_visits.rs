//! A filtered view: one indexed read of the visits that started in the range and match the
//! filters, through the index of one of them ([`super::driver`]), streamed into a [`Tally`]
//! that counts every number of the view in one pass. A page filter, and the page breakdown,
//! also read the page views of those visits (by visitor and time).

use futures::TryStreamExt;
use sqlx::Row;

use super::tally::Tally;
use super::{WebQuery, WebReport};
use crate::store::visits::VISIT_DIMENSIONS;
use crate::store::{Bind, Store, StoreError, query_with};

/// One statement: the selected visits (kind 0: visitor, start, end, page views and the visit
/// dimensions), then, with breakdowns, their page views (kind 1: visitor and path).
fn report_sql(q: &WebQuery<'_>, args: &mut Vec<Bind>) -> String {
    args.extend([Bind::Int(q.project), Bind::Int(q.from), Bind::Int(q.to)]);
    let visits = super::driver::visits_cte(q.filters, q.driver, args);
    let with_breakdowns = q.breakdown_rows.is_some();
    let dims: Vec<&str> = VISIT_DIMENSIONS
        .iter()
        .map(|d| if with_breakdowns { d.key() } else { "''" })
        .collect();
    let mut sql = format!(
        "WITH {visits}
        SELECT CAST(0 AS BIGINT) AS kind, visitor, start_ts, end_ts, pageviews, {} FROM m",
        dims.join(", ")
    );
    if with_breakdowns {
        let blanks = vec!["''"; VISIT_DIMENSIONS.len() - 1].join(", ");
        sql.push_str(&format!(
            "
        UNION ALL
        SELECT CAST(1 AS BIGINT), p.visitor, p.ts, p.ts, CAST(0 AS BIGINT), p.path, {blanks}
        FROM m JOIN web_pageviews p ON p.project_id = m.project_id
             AND p.visitor = m.visitor AND p.ts >= m.start_ts AND p.ts <= m.end_ts"
        ));
    }
    sql
}

/// Adds one row of [`report_sql`] to the tally.
fn feed<R: Row>(t: &mut Tally<'_>, r: &R) -> Result<(), sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> &'r str: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let kind: i64 = r.try_get(0)?;
    let visitor: &str = r.try_get(1)?;
    if kind == 1 {
        t.page_view(visitor, r.try_get(5)?);
        return Ok(());
    }
    let mut values = [""; 11];
    for (i, v) in values.iter_mut().enumerate() {
        *v = r.try_get(5 + i)?;
    }
    t.visit(visitor, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?, values);
    Ok(())
}

impl Store {
    pub(super) async fn web_report_from_visits(
        &self,
        q: &WebQuery<'_>,
    ) -> Result<WebReport, StoreError> {
        let mut args = Vec::new();
        let sql = report_sql(q, &mut args);
        let mut tally = Tally::new(q.buckets, q.breakdown_rows.is_some());
        with_db!(self, read_pool, |pool| {
            let mut rows = query_with(sql, &args).fetch(pool);
            while let Some(r) = rows.try_next().await? {
                feed(&mut tally, &r)?;
            }
        });
        Ok(tally.finish(q.breakdown_rows))
    }
}
