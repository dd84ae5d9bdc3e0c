//! The Web page's reads, from `web_pageviews` (migration 0026: one narrow row per page view of
//! a person, bots left out). Visits are cut and aggregated in SQL over the index on
//! (project, time); no page view is loaded into the collector. Definitions:
//! docs/dashboard-web.md.

use sqlx::Row;

use super::{Bind, Store, StoreError, query_with};
use crate::domain::ProjectId;

/// A visitor's page views with no gap longer than this belong to one visit.
pub const VISIT_GAP_MS: i64 = 30 * 60_000;

/// What the page breaks down by, and filters by (the same names in the URL and the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dimension {
    Page,
    EntryPage,
    ExitPage,
    Source,
    Referrer,
    UtmSource,
    UtmMedium,
    UtmCampaign,
    Country,
    Browser,
    Os,
    Device,
}

impl Dimension {
    pub const ALL: [Dimension; 12] = [
        Self::Page,
        Self::EntryPage,
        Self::ExitPage,
        Self::Source,
        Self::Referrer,
        Self::UtmSource,
        Self::UtmMedium,
        Self::UtmCampaign,
        Self::Country,
        Self::Browser,
        Self::Os,
        Self::Device,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Self::Page => "page",
            Self::EntryPage => "entry_page",
            Self::ExitPage => "exit_page",
            Self::Source => "source",
            Self::Referrer => "referrer",
            Self::UtmSource => "utm_source",
            Self::UtmMedium => "utm_medium",
            Self::UtmCampaign => "utm_campaign",
            Self::Country => "country",
            Self::Browser => "browser",
            Self::Os => "os",
            Self::Device => "device",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.key() == key)
    }

    /// Its column in the `visits` CTE. Everything but the page is the visit's: taken from its
    /// first page view (where the visitor came from, on what device).
    fn column(self) -> &'static str {
        match self {
            Self::Page => "path",
            Self::EntryPage => "entry_page",
            Self::ExitPage => "exit_page",
            Self::Source => "v_source",
            Self::Referrer => "v_referrer",
            Self::UtmSource => "v_utm_source",
            Self::UtmMedium => "v_utm_medium",
            Self::UtmCampaign => "v_utm_campaign",
            Self::Country => "v_country",
            Self::Browser => "v_browser",
            Self::Os => "v_os",
            Self::Device => "v_device",
        }
    }
}

/// One query of the page: a range, its filters (all must hold), the chart's buckets
/// (`[start, end)` in unix ms), and how many rows per breakdown (`None`: no breakdowns).
#[derive(Debug)]
pub struct WebQuery<'a> {
    pub project: ProjectId,
    pub from: i64,
    pub to: i64,
    pub filters: &'a [(Dimension, String)],
    pub buckets: &'a [(i64, i64)],
    pub breakdown_rows: Option<i64>,
}

/// Sums over the visits a query selects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebTotals {
    pub visitors: i64,
    pub pageviews: i64,
    pub visits: i64,
    /// Visits of one page view.
    pub bounces: i64,
    /// Sum over visits of last minus first page view time.
    pub duration_ms: i64,
}

/// A breakdown row: `count` is page views for pages, visits for everything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakdownRow {
    pub value: String,
    pub visitors: i64,
    pub count: i64,
}

#[derive(Debug, Default)]
pub struct WebReport {
    pub totals: WebTotals,
    /// Distinct visitors per bucket, in the order of `WebQuery::buckets`.
    pub series: Vec<i64>,
    pub breakdowns: Vec<(Dimension, Vec<BreakdownRow>)>,
}

/// The page views of the range cut into visits: every row carries its visit's attributes.
/// Visits start at the range's start (one that began before is counted from there).
fn visits_sql(filters: &[(Dimension, String)], args: &mut Vec<Bind>) -> String {
    let session_columns = [
        "referrer",
        "source",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "country",
        "browser",
        "os",
        "device",
    ]
    .map(|c| format!("FIRST_VALUE(COALESCE({c}, '')) OVER w AS v_{c}"))
    .join(", ");
    let mut has_page = String::new();
    let mut conditions = String::new();
    for (dim, value) in filters {
        args.push(Bind::Text(value.clone()));
        let n = args.len();
        if *dim == Dimension::Page {
            // A page filter keeps the visits that saw that page, with all their page views.
            has_page = format!(", MAX(CASE WHEN path = ${n} THEN 1 ELSE 0 END) OVER w AS has_page");
            conditions.push_str(" AND has_page = 1");
        } else {
            conditions.push_str(&format!(" AND {} = ${n}", dim.column()));
        }
    }
    format!(
        "pv AS (
            SELECT seq, visitor, ts, path, referrer, source, medium, utm_source, utm_medium,
                   utm_campaign, country, browser, os, device,
                   CASE WHEN LAG(ts) OVER (PARTITION BY visitor ORDER BY ts, seq) >= ts - {VISIT_GAP_MS}
                        THEN 0 ELSE 1 END AS starts
            FROM web_pageviews WHERE project_id = $1 AND ts >= $2 AND ts < $3
        ), numbered AS (
            SELECT pv.*, SUM(starts) OVER (PARTITION BY visitor ORDER BY ts, seq
                                          ROWS UNBOUNDED PRECEDING) AS visit
            FROM pv
        ), visits AS (
            SELECT visitor, ts, path, starts,
                   FIRST_VALUE(path) OVER w AS entry_page, LAST_VALUE(path) OVER w AS exit_page,
                   {session_columns},
                   MAX(ts) OVER w - MIN(ts) OVER w AS v_duration, COUNT(*) OVER w AS v_views
                   {has_page}
            FROM numbered
            WINDOW w AS (PARTITION BY visitor, visit ORDER BY ts, seq
                         ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
        ), m AS (SELECT * FROM visits WHERE 1 = 1{conditions})"
    )
}

fn report_sql(q: &WebQuery<'_>, args: &mut Vec<Bind>) -> String {
    args.extend([Bind::Int(q.project), Bind::Int(q.from), Bind::Int(q.to)]);
    let visits = visits_sql(q.filters, args);
    let mut buckets = Vec::with_capacity(q.buckets.len());
    for (i, (start, end)) in q.buckets.iter().enumerate() {
        args.extend([Bind::Int(i as i64), Bind::Int(*start), Bind::Int(*end)]);
        let n = args.len();
        buckets.push(format!(
            "(CAST(${} AS BIGINT), CAST(${} AS BIGINT), CAST(${n} AS BIGINT))",
            n - 2,
            n - 1
        ));
    }
    let mut sql = format!(
        "WITH {visits}, b(i, s, e) AS (VALUES {})
        SELECT 'totals' AS dim, '' AS value, CAST(COUNT(DISTINCT visitor) AS BIGINT) AS n1,
               CAST(COUNT(*) AS BIGINT) AS n2, CAST(COALESCE(SUM(starts), 0) AS BIGINT) AS n3,
               CAST(COALESCE(SUM(CASE WHEN starts = 1 AND v_views = 1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS n4,
               CAST(COALESCE(SUM(CASE WHEN starts = 1 THEN v_duration ELSE 0 END), 0) AS BIGINT) AS n5
        FROM m
        UNION ALL
        SELECT 'series', '', CAST(b.i AS BIGINT), CAST(COUNT(DISTINCT m.visitor) AS BIGINT), 0, 0, 0
        FROM b LEFT JOIN m ON m.ts >= b.s AND m.ts < b.e GROUP BY b.i",
        buckets.join(", ")
    );
    if let Some(rows) = q.breakdown_rows {
        let groups: Vec<String> = Dimension::ALL
            .iter()
            .map(|d| {
                let only_entries = if *d == Dimension::Page {
                    ""
                } else {
                    " WHERE starts = 1"
                };
                format!(
                    "SELECT '{}' AS dim, {col} AS value, COUNT(DISTINCT visitor) AS visitors,
                            COUNT(*) AS n FROM m{only_entries} GROUP BY {col}",
                    d.key(),
                    col = d.column()
                )
            })
            .collect();
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
    /// Page views of people in `[from, to)`: one index range count, checked against the
    /// dashboard's scan limit before the page's queries run.
    pub async fn web_pageviews_in(
        &self,
        project_id: ProjectId,
        from: i64,
        to: i64,
    ) -> Result<i64, StoreError> {
        with_db!(self, read_pool, |pool| {
            let r = sqlx::query("SELECT COUNT(*) AS n FROM web_pageviews WHERE project_id = $1 AND ts >= $2 AND ts < $3").bind(project_id).bind(from).bind(to).fetch_one(pool).await?;
            Ok(r.get("n"))
        })
    }

    /// Totals, the visitors chart and the breakdowns of one range, in one statement.
    pub async fn web_report(&self, q: &WebQuery<'_>) -> Result<WebReport, StoreError> {
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
            list.sort_by(|a, b| {
                (b.visitors, b.count)
                    .cmp(&(a.visitors, a.count))
                    .then_with(|| a.value.cmp(&b.value))
            });
        }
        Ok(report)
    }

    /// Visitors with a page view at `since` or later, and the page each of them saw last,
    /// most common first (at most `rows`).
    pub async fn web_realtime(
        &self,
        project_id: ProjectId,
        since: i64,
        rows: i64,
    ) -> Result<(i64, Vec<(String, i64)>), StoreError> {
        let visitors = with_db!(self, read_pool, |pool| {
            let r = sqlx::query("SELECT COUNT(DISTINCT visitor) AS n FROM web_pageviews WHERE project_id = $1 AND ts >= $2").bind(project_id).bind(since).fetch_one(pool).await?;
            Ok::<i64, StoreError>(r.get("n"))
        })?;
        let pages = with_db!(self, read_pool, |pool| {
            let rows = sqlx::query("SELECT path, CAST(COUNT(*) AS BIGINT) AS n FROM (
                SELECT path, ROW_NUMBER() OVER (PARTITION BY visitor ORDER BY ts DESC, seq DESC) AS r
                FROM web_pageviews WHERE project_id = $1 AND ts >= $2
             ) x WHERE r = 1 GROUP BY path ORDER BY n DESC, path LIMIT $3").bind(project_id).bind(since).bind(rows).fetch_all(pool).await?;
            Ok::<Vec<(String, i64)>, StoreError>(
                rows.iter().map(|r| (r.get("path"), r.get("n"))).collect(),
            )
        })?;
        Ok((visitors, pages))
    }

    /// The project's IANA time zone name (migration 0026; `UTC` unless set).
    pub async fn project_timezone(&self, project_id: ProjectId) -> Result<String, StoreError> {
        with_db!(self, read_pool, |pool| {
            let r = sqlx::query("SELECT timezone FROM projects WHERE id = $1")
                .bind(project_id)
                .fetch_optional(pool)
                .await?;
            Ok(r.map(|r| r.get("timezone"))
                .unwrap_or_else(|| "UTC".to_owned()))
        })
    }

    /// Stores a time zone name the caller has checked.
    pub async fn set_project_timezone(
        &self,
        project_id: ProjectId,
        timezone: &str,
    ) -> Result<(), StoreError> {
        with_db!(self, write_pool, |pool| {
            let _r = sqlx::query("UPDATE projects SET timezone = $1 WHERE id = $2")
                .bind(timezone)
                .bind(project_id)
                .execute(pool)
                .await?;
            Ok(())
        })
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
