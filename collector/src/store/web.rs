//! The Web page's reads (definitions: docs/dashboard-web.md). Visits are kept at ingest
//! ([`super::visits`], migration 0034): a view without filters reads the hourly rollups
//! ([`from_rollups`]), a filtered one the range's visits ([`from_visits`]); realtime reads the
//! last minutes of `web_pageviews` (migration 0026).

mod from_rollups;
mod from_visits;

use sqlx::Row;

use super::{Store, StoreError};
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

impl Store {
    /// Rows a report reads for the period `[from, to)` and the previous one
    /// `[previous_from, from)`: without filters, the period's rollup rows and the previous
    /// period's hourly totals; with filters, the visits of both.
    pub async fn web_rows_in(
        &self,
        project_id: ProjectId,
        previous_from: i64,
        from: i64,
        to: i64,
        filtered: bool,
    ) -> Result<i64, StoreError> {
        let sql = if filtered {
            "SELECT COUNT(*) AS n FROM web_visits
             WHERE project_id = $1 AND start_ts >= $2 AND start_ts < $4 AND $3 = $3"
        } else {
            "SELECT (SELECT COUNT(*) FROM web_hourly
                     WHERE project_id = $1 AND hour >= $3 AND hour < $4)
                  + (SELECT COUNT(*) FROM web_hourly
                     WHERE project_id = $1 AND dim = '' AND hour >= $2 AND hour < $3) AS n"
        };
        with_db!(self, read_pool, |pool| {
            let r = sqlx::query(sql)
                .bind(project_id)
                .bind(previous_from)
                .bind(from)
                .bind(to)
                .fetch_one(pool)
                .await?;
            Ok(r.get("n"))
        })
    }

    /// Totals, the visitors chart and the breakdowns of one range: from the hourly rollups
    /// without filters, else from the range's visits.
    pub async fn web_report(&self, q: &WebQuery<'_>) -> Result<WebReport, StoreError> {
        if q.filters.is_empty() {
            self.web_report_from_rollups(q).await
        } else {
            self.web_report_from_visits(q).await
        }
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

/// Most visitors first, then the larger count, then by value.
fn sort_rows(list: &mut [BreakdownRow]) {
    list.sort_by(|a, b| {
        (b.visitors, b.count)
            .cmp(&(a.visitors, a.count))
            .then_with(|| a.value.cmp(&b.value))
    });
}
