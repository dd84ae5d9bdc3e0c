//! The Web page's reads (definitions: docs/dashboard-web.md). Visits are kept at ingest
//! ([`super::visits`], migration 0034): a view without filters reads the day and hour rollups
//! ([`from_rollups`]), a filtered one the matching visits of the range through one filter's
//! index ([`from_visits`], [`driver`]; the top row and chart of one visit filter over days come
//! from its day rows); realtime reads the last minutes of `web_pageviews` (migration 0026).

mod driver;
mod from_rollups;
mod from_visits;

pub use driver::Driver;

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

    /// Whether a single filter on this dimension has pair rows with every breakdown
    /// (`web_daily_pairs`, migrations 0049 and 0053): source, UTM medium, country, browser,
    /// OS and device.
    pub fn has_pairs(self) -> bool {
        super::visits::PAIR_FILTERS.iter().any(|(d, _)| *d == self)
    }

    /// Whether a single filter on this dimension has pair rows on the days its value is heavy
    /// (migration 0056): referrer, UTM source, UTM campaign, entry and exit page.
    pub fn has_heavy_pairs(self) -> bool {
        super::visits::HEAVY_PAIR_FILTERS
            .iter()
            .any(|(d, _)| *d == self)
    }
}

/// Rollup rows that hold a filtered view's top row and chart whole, over days: the visits
/// that started in each day with the filters' values, and a sketch of their visitors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotalsRows<'a> {
    /// One filter on a visit's value: that value's `web_daily` rows.
    Value(Dimension, &'a str),
    /// Two filters on visit values, the first on a dimension with pair rows for every value
    /// ([`Dimension::has_pairs`]): its `web_daily_pairs` rows of the second's value.
    Pair((Dimension, &'a str), (Dimension, &'a str)),
}

impl<'a> TotalsRows<'a> {
    /// The rows that hold the top row and chart of `filters`, if any.
    pub fn of(filters: &'a [(Dimension, String)]) -> Option<Self> {
        let visit_value =
            |(d, v): &'a (Dimension, String)| (*d != Dimension::Page).then_some((*d, v.as_str()));
        match filters {
            [one] => visit_value(one).map(|(dim, value)| Self::Value(dim, value)),
            [a, b] => {
                let (a, b) = (visit_value(a)?, visit_value(b)?);
                if a.0 == b.0 {
                    None
                } else if a.0.has_pairs() {
                    Some(Self::Pair(a, b))
                } else if b.0.has_pairs() {
                    Some(Self::Pair(b, a))
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// The one filter of a [`TotalsRows::Value`].
    pub fn single(self) -> Option<(Dimension, &'a str)> {
        match self {
            Self::Value(dim, value) => Some((dim, value)),
            Self::Pair(..) => None,
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
    /// Which filter a read of visits goes through ([`Store::web_driver`]).
    pub driver: Driver,
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

/// The fold's lag for one project ([`Store::web_behind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebBehind {
    pub pageviews: i64,
    pub since: Option<i64>,
    pub rebuilding: bool,
    /// Some rows' visitor sketches still count a visitor who left them.
    pub recounting: bool,
}

#[derive(Debug, Default)]
pub struct WebReport {
    pub totals: WebTotals,
    /// Distinct visitors per bucket, in the order of `WebQuery::buckets`.
    pub series: Vec<i64>,
    pub breakdowns: Vec<(Dimension, Vec<BreakdownRow>)>,
}

impl Store {
    /// How many rollup rows the unfiltered view of `[from, to)` reads, counted up to
    /// `max + 1` (so the count itself stays bounded).
    pub async fn web_rollup_rows(
        &self,
        project_id: ProjectId,
        from: i64,
        to: i64,
        max: i64,
    ) -> Result<i64, StoreError> {
        // One range of `web_daily_counts` per dimension (migration 0058), not every day row
        // the project keeps.
        let mut args = vec![Bind::Int(project_id), Bind::Int(from), Bind::Int(to)];
        let mut marks = Vec::new();
        for dim in std::iter::once("").chain(Dimension::ALL.map(Dimension::key)) {
            args.push(Bind::Text(dim.to_owned()));
            marks.push(format!("${}", args.len()));
        }
        args.push(Bind::Int(max + 1));
        let sql = format!(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM (SELECT 1 FROM web_daily
                 WHERE project_id = $1 AND dim IN ({}) AND day >= $2 AND day < $3 LIMIT ${}) x",
            marks.join(", "),
            args.len()
        );
        with_db!(self, read_pool, |pool| {
            let r = query_with(sql, &args).fetch_one(pool).await?;
            Ok(r.get("n"))
        })
    }

    /// How far behind the fold is for the project: its queued page views (counted up to
    /// `max`), when the oldest was queued (unix ms), whether its rollups are being rebuilt
    /// after a time zone change, and whether some sketches wait to be recounted. `None` when
    /// it is up to date.
    pub async fn web_behind(
        &self,
        project_id: ProjectId,
        max: i64,
    ) -> Result<Option<WebBehind>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let r = sqlx::query(
                "SELECT (SELECT CAST(COUNT(*) AS BIGINT) FROM (SELECT 1 FROM web_visit_pending
                             WHERE project_id = $1 LIMIT $2) x) AS n,
                        (SELECT queued_at FROM web_visit_pending WHERE project_id = $1
                         ORDER BY id LIMIT 1) AS since,
                        (SELECT CAST(COUNT(*) AS BIGINT) FROM web_rebuild
                         WHERE project_id = $1) AS rebuilding,
                        (SELECT CAST(COUNT(*) AS BIGINT) FROM (SELECT 1 FROM web_daily_dirty
                             WHERE project_id = $1 LIMIT 1) y)
                        + (SELECT CAST(COUNT(*) AS BIGINT) FROM (SELECT 1 FROM web_pairs_dirty
                             WHERE project_id = $1 LIMIT 1) z) AS dirty",
            )
            .bind(project_id)
            .bind(max)
            .fetch_one(pool)
            .await?;
            let pageviews: i64 = r.get("n");
            let rebuilding: i64 = r.get("rebuilding");
            let dirty: i64 = r.get("dirty");
            Ok(
                (pageviews > 0 || rebuilding > 0 || dirty > 0).then(|| WebBehind {
                    pageviews,
                    since: r.get("since"),
                    rebuilding: rebuilding > 0,
                    recounting: dirty > 0,
                }),
            )
        })
    }

    /// Totals, the visitors chart and the breakdowns of one range: from the day rollups
    /// without filters (unless they are being rebuilt), else from the range's visits.
    pub async fn web_report(
        &self,
        q: &WebQuery<'_>,
        rollups: bool,
    ) -> Result<WebReport, StoreError> {
        if q.filters.is_empty() && rollups {
            self.web_report_from_rollups(q).await
        } else {
            self.web_report_from_visits(q).await
        }
    }

    /// Visitors with a page view at `since` or later, and the page each of them saw last,
    /// most common first (at most `rows`). One read of the window through the time index:
    /// each visitor's last page view is one row, so the visitors are the sum over pages. (A
    /// `COUNT(DISTINCT visitor)` of its own was planned by SQLite 3.51 as a scan of the
    /// project's every page view by visitor, to skip a sort: ~0.3 s at 10 M page views.)
    pub async fn web_realtime(
        &self,
        project_id: ProjectId,
        since: i64,
        rows: i64,
    ) -> Result<(i64, Vec<(String, i64)>), StoreError> {
        let found: Vec<(String, i64, i64)> = with_db!(self, read_pool, |pool| {
            sqlx::query_as(
                "SELECT path, n, CAST(SUM(n) OVER () AS BIGINT) AS visitors FROM (
                     SELECT path, CAST(COUNT(*) AS BIGINT) AS n FROM (
                         SELECT path, ROW_NUMBER() OVER (
                                    PARTITION BY visitor ORDER BY ts DESC, seq DESC) AS r
                         FROM web_pageviews WHERE project_id = $1 AND ts >= $2
                     ) x WHERE r = 1 GROUP BY path
                 ) p ORDER BY n DESC, path LIMIT $3",
            )
            .bind(project_id)
            .bind(since)
            .bind(rows)
            .fetch_all(pool)
            .await?
        });
        let visitors = found.first().map_or(0, |r| r.2);
        Ok((
            visitors,
            found.into_iter().map(|(path, n, _)| (path, n)).collect(),
        ))
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
}

/// The fold's lock on PostgreSQL: every fold, rebuild and fill transaction takes it (replicas
/// fold one at a time), and so does a time zone change, so that no fold chunk applies days of
/// the old zone after the rollups went.
pub(super) const WEB_FOLD_LOCK: &str = "SELECT pg_advisory_xact_lock(7021)";

/// What a time zone change does to the Web page's rollups (days of the old zone), in its
/// transaction: they go, and the fold rebuilds them from the stored visits and page views
/// (`web_rebuild`, [`super::visits`]); the page reads visits meanwhile.
pub(super) const RESET_WEB_ROLLUPS: [&str; 8] = [
    "DELETE FROM web_daily WHERE project_id = $1",
    "DELETE FROM web_daily_pairs WHERE project_id = $1",
    "DELETE FROM web_pairs_dirty WHERE project_id = $1",
    "DELETE FROM web_pairs_fill WHERE project_id = $1",
    "DELETE FROM web_hourly WHERE project_id = $1",
    "DELETE FROM web_daily_dirty WHERE project_id = $1",
    "DELETE FROM web_rebuild WHERE project_id = $1",
    "INSERT INTO web_rebuild (project_id) VALUES ($1)",
];

/// Most visitors first, then the larger count, then by value.
fn sort_rows(list: &mut [BreakdownRow]) {
    list.sort_by(|a, b| {
        (b.visitors, b.count)
            .cmp(&(a.visitors, a.count))
            .then_with(|| a.value.cmp(&b.value))
    });
}
