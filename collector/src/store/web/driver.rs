//! Which of a filtered view's filters it reads its visits through (docs/dashboard-web.md,
//! "Filtered views"): the one that selects the fewest, among those with an index (migration
//! 0043), counted from the day rows; and where a row budget cuts that read.

use super::Dimension;
use crate::domain::ProjectId;
use crate::store::{Bind, Store, StoreError, query_with};

/// Visit dimensions with an index on (project, value, start) in `web_visits` (migration 0043).
/// Browser, OS and device have none: each of their values holds a large share of the visits.
const INDEXED: [Dimension; 8] = [
    Dimension::Source,
    Dimension::Referrer,
    Dimension::UtmSource,
    Dimension::UtmMedium,
    Dimension::UtmCampaign,
    Dimension::Country,
    Dimension::EntryPage,
    Dimension::ExitPage,
];

/// How a filtered view finds its visits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Driver {
    /// Every visit that started in the range (index on project and start), filtered in SQL.
    #[default]
    Start,
    /// The visits of the filter at this position, a visit dimension, through its index.
    Visit(usize),
    /// The visits that viewed the page of the filter at this position (`web_visit_pages`, index
    /// on project, path and visit start).
    Page(usize),
}

/// The selected visits as the materialized CTE `m`, over `[$2, $3)` of project `$1` (already
/// bound in `args`). Filters other than the driver are written so that no index serves them
/// (`|| ''`): the driver's index is the one read.
pub(super) fn visits_cte(
    filters: &[(Dimension, String)],
    driver: Driver,
    args: &mut Vec<Bind>,
) -> String {
    let mut conditions = String::new();
    let mut source = "SELECT v.* FROM web_visits v WHERE v.project_id = $1".to_owned();
    for (i, (dim, value)) in filters.iter().enumerate() {
        args.push(Bind::Text(value.clone()));
        let n = args.len();
        match (dim, driver) {
            (Dimension::Page, Driver::Page(d)) if d == i => {
                // The visits that viewed the page, by their start (migration 0057); `CROSS
                // JOIN` keeps SQLite reading them through that index, not the visits' own.
                source = format!(
                    "SELECT v.* FROM web_visit_pages x CROSS JOIN web_visits v
                     WHERE x.project_id = $1 AND x.path = ${n} AND x.start_ts >= $2
                       AND x.start_ts < $3 AND v.id = x.visit_id AND v.project_id = $1"
                );
            }
            (Dimension::Page, _) => {
                conditions.push_str(&format!(
                    " AND EXISTS (SELECT 1 FROM web_visit_pages x
                        WHERE x.visit_id = v.id AND x.path = ${n})"
                ));
            }
            (_, Driver::Visit(d)) if d == i => {
                conditions.push_str(&format!(" AND v.{} = ${n}", dim.key()));
            }
            _ => conditions.push_str(&format!(" AND v.{} || '' = ${n}", dim.key())),
        }
    }
    format!("m AS MATERIALIZED ({source} AND v.start_ts >= $2 AND v.start_ts < $3{conditions})")
}

impl Store {
    /// The filter of `filters` that selects the fewest visits of `[from, to)` and has an
    /// index, by the day rows (a page's page views bound the visits that viewed it); `Start`
    /// when none has one. The day rows only guide the choice: the answer does not depend on it.
    pub async fn web_driver(
        &self,
        project_id: ProjectId,
        from: i64,
        to: i64,
        filters: &[(Dimension, String)],
    ) -> Result<Driver, StoreError> {
        let mut best: Option<(i64, Driver)> = None;
        for (i, (dim, value)) in filters.iter().enumerate() {
            let (driver, count) = match dim {
                Dimension::Page => (Driver::Page(i), "pageviews"),
                d if INDEXED.contains(d) => (Driver::Visit(i), "visits"),
                _ => continue,
            };
            let n: i64 = with_db!(self, read_pool, |pool| {
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT CAST(COALESCE(SUM({count}), 0) AS BIGINT) FROM web_daily
                     WHERE project_id = $1 AND dim = $2 AND day >= $3 AND day < $4
                       AND value = $5"
                )))
                .bind(project_id)
                .bind(dim.key())
                .bind(from)
                .bind(to)
                .bind(value)
                .fetch_one(pool)
                .await?
            });
            if best.is_none_or(|(m, _)| n < m) {
                best = Some((n, driver));
            }
        }
        Ok(best.map_or(Driver::Start, |(_, d)| d))
    }

    /// When the driver's read of `[from, to)` holds more than `max` visits: the time from
    /// which its latest `max` start, which a view then reads from. One indexed read of at
    /// most `max + 1` entries.
    pub async fn web_visits_cutoff(
        &self,
        project_id: ProjectId,
        from: i64,
        to: i64,
        filters: &[(Dimension, String)],
        driver: Driver,
        max: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut args = vec![Bind::Int(project_id), Bind::Int(from), Bind::Int(to)];
        let sql = match driver {
            Driver::Start => "SELECT start_ts FROM web_visits
                 WHERE project_id = $1 AND start_ts >= $2 AND start_ts < $3
                 ORDER BY start_ts DESC LIMIT 1 OFFSET $4"
                .to_owned(),
            Driver::Visit(i) => {
                args.push(Bind::Text(filters[i].1.clone()));
                format!(
                    "SELECT start_ts FROM web_visits
                     WHERE project_id = $1 AND {} = $5 AND start_ts >= $2 AND start_ts < $3
                     ORDER BY start_ts DESC LIMIT 1 OFFSET $4",
                    filters[i].0.key()
                )
            }
            Driver::Page(i) => {
                args.push(Bind::Text(filters[i].1.clone()));
                "SELECT start_ts FROM web_visit_pages
                 WHERE project_id = $1 AND path = $5 AND start_ts >= $2 AND start_ts < $3
                 ORDER BY start_ts DESC LIMIT 1 OFFSET $4"
                    .to_owned()
            }
        };
        args.insert(3, Bind::Int(max));
        let r: Option<i64> = with_db!(self, read_pool, |pool| {
            use sqlx::Row;
            query_with(sql, &args)
                .fetch_optional(pool)
                .await?
                .map(|r| r.get(0))
        });
        // The entry past the limit is at r: read from just after it.
        Ok(r.map(|at| at + 1))
    }
}
