//! The Web page (docs/dashboard-web.md): visitors, visits, page views, bounce rate and visit
//! duration against the previous period, the visitors chart, breakdowns and realtime, by the
//! project's time zone ([`super::settings`]) that decides what "today" is.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ProjectPath;
use crate::domain::ProjectId;
use crate::domain::account::Role;
use crate::error::{ApiError, ErrorBody};
use crate::routes::extract::{ApiQuery, PathIds, Session};
use crate::state::AppState;
use crate::store::HOUR_MS;
use crate::store::web::{Dimension, Driver, TotalsRows, WebQuery, WebReport, WebTotals};

/// Rows each breakdown shows.
pub const BREAKDOWN_ROWS: i64 = 10;
/// Longest custom range, in days.
pub const MAX_RANGE_DAYS: i64 = 366;
/// Longest filter value: the stored values are cut at this length (migration 0026).
pub const MAX_FILTER_CHARS: usize = 300;
/// How far back "realtime" looks.
pub const REALTIME_WINDOW_MS: i64 = 5 * 60_000;
/// Pages the realtime card lists.
pub const REALTIME_ROWS: i64 = 10;
/// Visits a filtered view reads per period at most (a page filter's included), the
/// latest, when PULSELINE_DASHBOARD_MAX_SCAN_EVENTS is not lower: past it `coverage_from` says
/// where the read starts. It bounds the breakdowns' cost; the top row and chart of a single
/// visit filter come from day rows, whole.
pub const MAX_FILTERED_VISITS: i64 = 100_000;
/// Queued page views the "behind" note counts at most (it says "more than" past it).
pub const MAX_BEHIND_COUNTED: i64 = 100_000;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WebParams {
    /// `today`, `yesterday`, `7d`, `30d` (default), `90d`, `month` (this calendar month so
    /// far) or `custom` (with `from` and `to`), in the project's time zone.
    period: Option<String>,
    /// First day of a custom range, `YYYY-MM-DD`.
    from: Option<String>,
    /// Last day of a custom range, `YYYY-MM-DD`, included; at most 366 days after `from`.
    to: Option<String>,
    /// Filters: visits that viewed this page (path).
    page: Option<String>,
    /// Filters by the visit's first page.
    entry_page: Option<String>,
    /// Filters by the visit's last page.
    exit_page: Option<String>,
    /// Filters by the visit's source (`context.source.name`); an empty value means none.
    source: Option<String>,
    /// Filters by the referring host; empty: none (direct, or from the site itself).
    referrer: Option<String>,
    utm_source: Option<String>,
    utm_medium: Option<String>,
    utm_campaign: Option<String>,
    /// ISO 3166-1 alpha-2 code (`context.location.country`).
    country: Option<String>,
    browser: Option<String>,
    os: Option<String>,
    /// `desktop`, `mobile`, `tablet`, `other`.
    device: Option<String>,
}

impl WebParams {
    fn filters(&self) -> Result<Vec<(Dimension, String)>, ApiError> {
        let values = [
            &self.page,
            &self.entry_page,
            &self.exit_page,
            &self.source,
            &self.referrer,
            &self.utm_source,
            &self.utm_medium,
            &self.utm_campaign,
            &self.country,
            &self.browser,
            &self.os,
            &self.device,
        ];
        let mut out = Vec::new();
        for (dim, value) in Dimension::ALL.into_iter().zip(values) {
            if let Some(v) = value {
                if v.chars().count() > MAX_FILTER_CHARS {
                    return Err(ApiError::BadRequest(format!(
                        "the {} filter is longer than {MAX_FILTER_CHARS} characters: stored \
                         values are cut there, so pass the value as the page shows it",
                        dim.key()
                    )));
                }
                out.push((dim, v.clone()));
            }
        }
        Ok(out)
    }
}

/// The days a period covers, in the project's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Days {
    pub first: Date,
    pub count: i64,
}

fn bad_date(name: &str, value: &str) -> ApiError {
    ApiError::BadRequest(format!(
        "{name} ({value:?}) is not a date: use YYYY-MM-DD, e.g. 2026-03-01"
    ))
}

fn date_error(e: jiff::Error) -> ApiError {
    ApiError::BadRequest(format!("date out of range: {e}"))
}

/// `period` (and `from`/`to` for `custom`) as days, with `today` the project's today.
pub fn period_days(
    today: Date,
    period: &str,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Days, ApiError> {
    let last_n = |n: i64| -> Result<Days, ApiError> {
        Ok(Days {
            first: today.checked_sub((n - 1).days()).map_err(date_error)?,
            count: n,
        })
    };
    match period {
        "today" => Ok(Days {
            first: today,
            count: 1,
        }),
        "yesterday" => Ok(Days {
            first: today.yesterday().map_err(date_error)?,
            count: 1,
        }),
        "7d" => last_n(7),
        "30d" => last_n(30),
        "90d" => last_n(90),
        "month" => Ok(Days {
            first: today.first_of_month(),
            count: i64::from(today.day()),
        }),
        "custom" => {
            let (Some(from), Some(to)) = (from, to) else {
                return Err(ApiError::BadRequest(
                    "period=custom needs from and to (YYYY-MM-DD, both included)".into(),
                ));
            };
            let first: Date = from.parse().map_err(|_| bad_date("from", from))?;
            let last: Date = to.parse().map_err(|_| bad_date("to", to))?;
            let count = i64::from(first.until(last).map_err(date_error)?.get_days()) + 1;
            if !(1..=MAX_RANGE_DAYS).contains(&count) {
                return Err(ApiError::BadRequest(format!(
                    "from ({from}) must be on or before to ({to}), at most {MAX_RANGE_DAYS} \
                     days apart"
                )));
            }
            Ok(Days { first, count })
        }
        other => Err(ApiError::BadRequest(format!(
            "unknown period {other:?}: use today, yesterday, 7d, 30d, 90d, month or custom"
        ))),
    }
}

fn midnight(date: Date, tz: &TimeZone) -> Result<i64, ApiError> {
    Ok(date
        .to_zoned_datetime(tz.clone())
        .map_err(date_error)?
        .timestamp()
        .as_millisecond())
}

/// The chart's buckets of `days`: hours for one day, else days (each from its local midnight).
fn buckets(days: Days, tz: &TimeZone) -> Result<Vec<(i64, i64)>, ApiError> {
    let mut starts = Vec::new();
    for d in 0..=days.count {
        starts.push(midnight(
            days.first.checked_add(d.days()).map_err(date_error)?,
            tz,
        )?);
    }
    if days.count == 1 {
        let (from, to) = (starts[0], starts[1]);
        return Ok((0..)
            .map(|h| from + h * HOUR_MS)
            .take_while(|s| *s < to)
            .map(|s| (s, (s + HOUR_MS).min(to)))
            .collect());
    }
    Ok(starts.windows(2).map(|w| (w[0], w[1])).collect())
}

pub fn project_tz(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap_or(TimeZone::UTC)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebStats {
    /// Distinct visitors (anonymous id, else user id) with a page view.
    pub visitors: i64,
    /// Visits: a visitor's page views with no gap over 30 minutes.
    pub visits: i64,
    pub pageviews: i64,
    pub views_per_visit: f64,
    /// Share of visits with a single page view (0 to 1).
    pub bounce_rate: f64,
    /// Mean time from a visit's first to its last page view, in seconds.
    pub visit_duration_secs: f64,
}

impl From<WebTotals> for WebStats {
    fn from(t: WebTotals) -> Self {
        let per_visit = |x: i64| {
            if t.visits == 0 {
                0.0
            } else {
                x as f64 / t.visits as f64
            }
        };
        Self {
            visitors: t.visitors,
            visits: t.visits,
            pageviews: t.pageviews,
            views_per_visit: per_visit(t.pageviews),
            bounce_rate: per_visit(t.bounces),
            visit_duration_secs: per_visit(t.duration_ms) / 1000.0,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebSeries {
    /// `hour` (one-day periods) or `day`.
    pub bucket: &'static str,
    /// Bucket starts, unix milliseconds.
    pub buckets: Vec<i64>,
    /// Visitors per bucket; null for buckets that have not started yet.
    pub visitors: Vec<Option<i64>>,
    /// Visitors in the previous period's bucket at the same position.
    pub previous: Vec<Option<i64>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebRow {
    /// The page, source, country… ("" when the page views carry none).
    pub value: String,
    pub visitors: i64,
    /// Page views for `page`; visits for every other breakdown (entrances for `entry_page`,
    /// exits for `exit_page`).
    pub count: i64,
}

/// How far behind the background fold is for this project (docs/dashboard-web.md).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebBehindView {
    /// Page views stored but not yet in the numbers (counted up to 100,000).
    pub pageviews: i64,
    /// When the oldest of them was stored (unix ms): the numbers include the page views
    /// stored before it.
    pub queued_since: Option<i64>,
    /// The rollups are being rebuilt after a time zone change: views read visits meanwhile.
    pub rebuilding: bool,
    /// Some visitor counts may still include a visitor who left the row (a visit that moved
    /// to another value, a person deleted) until the fold recounts them.
    pub recounting: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebReportView {
    /// Null when every stored page view is counted; else how far behind the numbers are.
    pub behind: Option<WebBehindView>,
    /// Set when the view read visits (filters, or a rebuild) and the filter it read them
    /// through held more than 100,000 (or PULSELINE_DASHBOARD_MAX_SCAN_EVENTS) in the period:
    /// the numbers cover the visits that started from this time (unix ms) on, the latest ones.
    /// With one filter on a visit's value over several days (or two, one of them on source,
    /// UTM medium, country, browser, OS or device), only the breakdowns are cut: the top row
    /// and chart come whole from day rows.
    pub coverage_from: Option<i64>,
    /// With `coverage_from` set: true when only the breakdowns are cut (the top row and chart
    /// come from day rows, see `coverage_from`), false when every number is.
    pub coverage_breakdowns_only: bool,
    /// The project's time zone, which decides the days.
    pub timezone: String,
    pub period: String,
    /// The range and the previous one of the same number of days: unix ms, end excluded.
    pub from: i64,
    pub to: i64,
    pub previous_from: i64,
    pub previous_to: i64,
    /// The filters applied, by name.
    pub filters: BTreeMap<String, String>,
    pub current: WebStats,
    pub previous: WebStats,
    pub series: WebSeries,
    /// The top rows of each breakdown (`page`, `entry_page`, `exit_page`, `source`,
    /// `referrer`, `utm_source`, `utm_medium`, `utm_campaign`, `country`, `browser`, `os`,
    /// `device`), most visitors first.
    pub breakdowns: BTreeMap<String, Vec<WebRow>>,
}

#[utoipa::path(
    get, path = "/api/dash/projects/{project}/web", tag = "dashboard",
    operation_id = "dashboard_web", params(ProjectPath, WebParams),
    description = "Web analytics of page views (bots excluded): totals against the previous \
                   period of the same number of days, visitors per hour or day, and the top \
                   rows of each breakdown. Every filter given must hold (docs/dashboard-web.md).",
    responses(
        (status = 200, body = WebReportView),
        (status = 400, description = "An invalid parameter (says which), or more day rollup \
                                      rows in the two unfiltered periods than \
                                      PULSELINE_DASHBOARD_MAX_SCAN_EVENTS",
            body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
        (status = 503, description = "A heavy query: over its time budget (PULSELINE_DASHBOARD_QUERY_TIMEOUT_MS, code query_timeout), or too many running (PULSELINE_DASHBOARD_QUERIES_PER_PROJECT, PULSELINE_DASHBOARD_QUERIES, code overloaded); see Retry-After", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn report(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
    ApiQuery(p): ApiQuery<WebParams>,
) -> Result<Json<WebReportView>, ApiError> {
    session.require(&state, project, Role::Viewer).await?;
    report_of(&state, project, &p).await.map(Json)
}

/// The Web page of `project`, for its members and for a shared link (`super::share`).
pub async fn report_of(
    state: &AppState,
    project: ProjectId,
    p: &WebParams,
) -> Result<WebReportView, ApiError> {
    let filters = p.filters()?;
    let _slot = state.dashboard.queries.admit(project).await?;
    let timezone = state.store.project_timezone(project).await?;
    let tz = project_tz(&timezone);
    let now = state.clock.now().timestamp_millis();
    let today = Timestamp::from_millisecond(now)
        .map_err(date_error)?
        .to_zoned_datetime(tz.clone())
        .date();
    let period = p.period.as_deref().unwrap_or("30d");
    let days = period_days(today, period, p.from.as_deref(), p.to.as_deref())?;
    let previous_days = Days {
        first: days
            .first
            .checked_sub(days.count.days())
            .map_err(date_error)?,
        count: days.count,
    };
    let current_buckets = buckets(days, &tz)?;
    let previous_buckets = buckets(previous_days, &tz)?;
    let (from, to) = (
        current_buckets[0].0,
        current_buckets[current_buckets.len() - 1].1,
    );
    let (previous_from, previous_to) = (previous_buckets[0].0, from);

    // The page never folds: it reads what the background fold has done, and says so.
    let behind = state.store.web_behind(project, MAX_BEHIND_COUNTED).await?;
    let rebuilding = behind.is_some_and(|b| b.rebuilding);
    let rollups = filters.is_empty() && !rebuilding;
    let max = i64::from(state.dashboard.config.max_scan_events);
    if rollups {
        let rows = state
            .store
            .web_rollup_rows(project, previous_from, to, max)
            .await?;
        if rows > max {
            return Err(ApiError::BadRequest(format!(
                "this range and the previous one hold more than {max} day rollup rows \
                 (PULSELINE_DASHBOARD_MAX_SCAN_EVENTS): pick a shorter period"
            )));
        }
    }
    // One visit filter over days (or two, one of them with pair rows): its day rows (their
    // pair rows) hold the top row and the chart, whole.
    let value_rows = TotalsRows::of(&filters).filter(|_| days.count > 1 && !rebuilding);
    // A page filter over days: its pair rows of the days that are over, its visits of the rest.
    let page_rows = match filters.as_slice() {
        [(Dimension::Page, path)] if days.count > 1 && !rebuilding => Some(path.as_str()),
        _ => None,
    };
    let budget = max.min(MAX_FILTERED_VISITS);
    let (mut coverage_from, mut previous_coverage) = (None, None);
    // The two periods on connections of their own, at once, so the previous one does not
    // wait for the current one (docs/dashboard-web.md, "Two chips": for a page filter, whose
    // current period is most of the view, no gain showed).
    let (current, previous) = tokio::try_join!(
        read_period(
            state,
            WebQuery {
                project,
                from,
                to,
                filters: &filters,
                buckets: &current_buckets,
                breakdown_rows: Some(BREAKDOWN_ROWS),
                driver: Driver::Start,
            },
            rollups,
            (value_rows, page_rows),
            (budget, max),
            &mut coverage_from,
        ),
        read_period(
            state,
            WebQuery {
                project,
                from: previous_from,
                to: previous_to,
                filters: &filters,
                buckets: &previous_buckets,
                breakdown_rows: None,
                driver: Driver::Start,
            },
            rollups,
            (value_rows, page_rows),
            (budget, max),
            &mut previous_coverage,
        ),
    )?;
    let visitors = current_buckets
        .iter()
        .zip(&current.series)
        .map(|((start, _), n)| (*start <= now).then_some(*n))
        .collect();
    let previous_series = (0..current_buckets.len())
        .map(|i| previous.series.get(i).copied())
        .collect();
    Ok(WebReportView {
        behind: behind.map(|b| WebBehindView {
            pageviews: b.pageviews,
            queued_since: b.since,
            rebuilding: b.rebuilding,
            recounting: b.recounting,
        }),
        coverage_breakdowns_only: coverage_from.is_some() && value_rows.is_some(),
        coverage_from,
        timezone,
        period: period.to_owned(),
        from,
        to,
        previous_from,
        previous_to,
        filters: filters
            .iter()
            .map(|(d, v)| (d.key().to_owned(), v.clone()))
            .collect(),
        current: current.totals.into(),
        previous: previous.totals.into(),
        series: WebSeries {
            bucket: if days.count == 1 { "hour" } else { "day" },
            buckets: current_buckets.iter().map(|b| b.0).collect(),
            visitors,
            previous: previous_series,
        },
        breakdowns: current
            .breakdowns
            .into_iter()
            .map(|(d, rows)| {
                let rows = rows
                    .into_iter()
                    .map(|r| WebRow {
                        value: r.value,
                        visitors: r.visitors,
                        count: r.count,
                    })
                    .collect();
                (d.key().to_owned(), rows)
            })
            .collect(),
    })
}

/// One period of the page. Without filters, from the rollups; with one page filter over days,
/// everything from its pair rows of the days that have them and its visits of the others;
/// with one visit filter over days, the top row and chart from that value's day rows and the
/// breakdowns (if asked) from its pair rows for a bounded dimension (unless they are more
/// than `max_rows`), else from its visits; else everything from the matching visits. Visits
/// are read through the filter that selects the fewest, at most `budget` of them, the latest:
/// `coverage_from` is set to where that read starts when it is cut.
async fn read_period(
    state: &AppState,
    mut q: WebQuery<'_>,
    rollups: bool,
    (value_rows, page_rows): (Option<TotalsRows<'_>>, Option<&str>),
    (budget, max_rows): (i64, i64),
    coverage_from: &mut Option<i64>,
) -> Result<WebReport, ApiError> {
    if rollups {
        return Ok(state.store.web_report(&q, true).await?);
    }
    if let Some(path) = page_rows
        && let Some(unpaired) = state
            .store
            .web_unpaired_spans(&q, Dimension::Page, path, budget)
            .await?
        && (q.breakdown_rows.is_none()
            || state
                .store
                .web_pair_rows(&q, Dimension::Page, path, max_rows)
                .await?
                <= max_rows)
    {
        let mut report = state.store.web_page_totals(&q, path, &unpaired).await?;
        if let Some(limit) = q.breakdown_rows {
            report.breakdowns = state
                .store
                .web_pair_breakdowns(&q, Dimension::Page, path, &report.totals, limit, &unpaired)
                .await?;
        }
        return Ok(report);
    }
    let mut day_rows = match value_rows {
        Some(rows) => Some(state.store.web_value_totals(&q, rows).await?),
        None => None,
    };
    if q.breakdown_rows.is_none()
        && let Some(whole) = day_rows.take()
    {
        return Ok(whole);
    }
    if let (Some((dim, value)), Some(limit), Some(whole)) = (
        value_rows.and_then(TotalsRows::single),
        q.breakdown_rows,
        &mut day_rows,
    ) && (dim.has_pairs() || dim.has_heavy_pairs())
    {
        // A heavy filter's days without pair rows are read from its visits, if few enough.
        let unpaired = if dim.has_heavy_pairs() {
            state
                .store
                .web_unpaired_spans(&q, dim, value, budget)
                .await?
        } else {
            Some(Vec::new())
        };
        if let Some(unpaired) = unpaired
            && state.store.web_pair_rows(&q, dim, value, max_rows).await? <= max_rows
        {
            whole.breakdowns = state
                .store
                .web_pair_breakdowns(&q, dim, value, &whole.totals, limit, &unpaired)
                .await?;
            return Ok(std::mem::take(whole));
        }
    }
    q.driver = state
        .store
        .web_driver(q.project, q.from, q.to, q.filters)
        .await?;
    if let Some(cut) = state
        .store
        .web_visits_cutoff(q.project, q.from, q.to, q.filters, q.driver, budget)
        .await?
    {
        q.from = cut;
        *coverage_from = Some(cut);
    }
    let mut report = state.store.web_report(&q, false).await?;
    if let Some(whole) = day_rows {
        report.totals = whole.totals;
        report.series = whole.series;
    }
    Ok(report)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Realtime {
    /// Visitors with a page view in the last 5 minutes.
    pub visitors: i64,
    /// The page each of them viewed last, with how many are on it, most first (at most 10).
    pub pages: Vec<(String, i64)>,
}

#[utoipa::path(
    get, path = "/api/dash/projects/{project}/web/realtime", tag = "dashboard",
    operation_id = "dashboard_web_realtime", params(ProjectPath),
    description = "Visitors with a page view in the last 5 minutes and the pages they are on.",
    responses(
        (status = 200, body = Realtime),
        (status = 400, description = "The project id is not an integer", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn realtime(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
) -> Result<Json<Realtime>, ApiError> {
    session.require(&state, project, Role::Viewer).await?;
    realtime_of(&state, project).await.map(Json)
}

/// Realtime visitors of `project`, for its members and for a shared link (`super::share`).
pub async fn realtime_of(state: &AppState, project: ProjectId) -> Result<Realtime, ApiError> {
    let since = state.clock.now().timestamp_millis() - REALTIME_WINDOW_MS;
    let (visitors, pages) = state
        .store
        .web_realtime(project, since, REALTIME_ROWS)
        .await?;
    Ok(Realtime { visitors, pages })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn periods_are_days_of_the_project() {
        let today = d("2026-03-05");
        assert_eq!(
            period_days(today, "7d", None, None).unwrap(),
            Days {
                first: d("2026-02-27"),
                count: 7
            }
        );
        assert_eq!(
            period_days(today, "month", None, None).unwrap(),
            Days {
                first: d("2026-03-01"),
                count: 5
            }
        );
        assert_eq!(
            period_days(today, "custom", Some("2026-01-01"), Some("2026-01-31"))
                .unwrap()
                .count,
            31
        );
        assert!(period_days(today, "custom", Some("2026-01-02"), Some("2026-01-01")).is_err());
        assert!(period_days(today, "custom", Some("2024-01-01"), Some("2025-01-02")).is_err());
        assert!(period_days(today, "week", None, None).is_err());
    }

    #[test]
    fn a_day_with_a_clock_change_has_its_real_hours() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let spring = buckets(
            Days {
                first: d("2026-03-29"),
                count: 1,
            },
            &tz,
        )
        .unwrap();
        assert_eq!(spring.len(), 23);
        let week = buckets(
            Days {
                first: d("2026-03-27"),
                count: 3,
            },
            &tz,
        )
        .unwrap();
        assert_eq!(week[2].1 - week[2].0, 23 * HOUR_MS);
        assert_eq!(week[0].1 - week[0].0, 24 * HOUR_MS);
    }
}
