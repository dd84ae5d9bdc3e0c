//! Churn: of the users active in a period (week or month of the project's time zone), the
//! share that churned in the next one — by inactivity (not active at all), or by an event (e.g. `subscription_cancelled`).
//! Read from the active-user rollup, never by loading the range's events.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::MAX_TIME_MS;
use crate::domain::ProjectId;
use crate::domain::account::Role;
use crate::domain::message::MAX_EVENT_NAME_CHARS;
use crate::error::{ApiError, ErrorBody};
use crate::routes::dashboard::ProjectPath;
use crate::routes::extract::{ApiQuery, PathIds, Session};
use crate::state::AppState;
use crate::store::DAY_MS;
use crate::store::churn::{ChurnBy, ChurnPeriod};
use crate::store::local_days::{day_key, day_start, zone};

/// Most periods one churn series may have: two years of weeks.
pub const MAX_CHURN_PERIODS: usize = 104;
/// Periods shown when `from` is absent.
pub const DEFAULT_CHURN_PERIODS: u32 = 12;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChurnParams {
    /// Start, unix milliseconds, rounded down to the start of its period in the project's time
    /// zone (default: 12 periods before `to`).
    #[param(minimum = 0, maximum = 253402300799999.0)]
    from: Option<i64>,
    /// End, exclusive, unix milliseconds (default: now). A period is shown once the period
    /// after it has ended by `to`.
    #[param(minimum = 0, maximum = 253402300799999.0)]
    to: Option<i64>,
    /// `week` (default; from Monday) or `month` (from the 1st), at local midnight in the
    /// project's time zone.
    period: Option<String>,
    /// Churned means did this track event in the next period (e.g.
    /// `subscription_cancelled`); absent: not active at all in the next period.
    event: Option<String>,
}

/// One period of the series.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChurnPoint {
    /// Start of the period: its first local date, as that date's 00:00 UTC in unix
    /// milliseconds (the dashboard's day keys).
    pub start: i64,
    /// Users active in the period (bots left out).
    pub active: i64,
    /// Of those, the users who churned in the next period.
    pub churned: i64,
    /// `churned / active`, from 0 to 1; null when no user was active.
    pub rate: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChurnSeries {
    /// `week` or `month`.
    pub period: String,
    /// The event that defines churn, or null for inactivity.
    pub event: Option<String>,
    /// Oldest first; only periods whose next period has ended by `to`.
    pub points: Vec<ChurnPoint>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Period {
    Week,
    Month,
}

impl Period {
    /// Start of the period holding the day key `t` (a local date at 00:00 UTC, unix ms).
    fn floor(self, t: i64) -> i64 {
        match self {
            // 1970-01-01 was a Thursday: day index + 3 counts from a Monday.
            Period::Week => {
                let day = t.div_euclid(DAY_MS);
                (day - (day + 3).rem_euclid(7)) * DAY_MS
            }
            Period::Month => {
                let d = at(t).date_naive();
                ms(NaiveDate::from_ymd_opt(d.year(), d.month(), 1).unwrap_or(d))
            }
        }
    }

    /// The period start `n` periods after (or before, negative) the start `t`.
    fn shift(self, t: i64, n: i32) -> i64 {
        match self {
            Period::Week => t + i64::from(n) * 7 * DAY_MS,
            Period::Month => {
                let d = at(t).date_naive();
                let moved = if n >= 0 {
                    d.checked_add_months(Months::new(n.unsigned_abs()))
                } else {
                    d.checked_sub_months(Months::new(n.unsigned_abs()))
                };
                moved.map_or(if n >= 0 { MAX_TIME_MS } else { 0 }, ms)
            }
        }
    }
}

fn at(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t).unwrap_or_default()
}

fn ms(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp_millis())
}

/// The periods from the day key `from`'s to the last one whose next period ends (at local
/// midnight in `tz`) by the instant `to`.
fn periods(
    period: Period,
    tz: &jiff::tz::TimeZone,
    from: i64,
    to: i64,
) -> Result<Vec<ChurnPeriod>, ApiError> {
    let mut out = Vec::new();
    let mut start = period.floor(from);
    loop {
        let next = period.shift(start, 1);
        let end = period.shift(next, 1);
        let end_at = day_start(tz, end);
        if end_at > to {
            return Ok(out);
        }
        if out.len() == MAX_CHURN_PERIODS {
            return Err(ApiError::BadRequest(format!(
                "this range holds more than {MAX_CHURN_PERIODS} periods \
                 (MAX_CHURN_PERIODS): narrow it, or use period=month"
            )));
        }
        out.push(ChurnPeriod {
            start,
            next,
            end,
            next_at: day_start(tz, next),
            end_at,
        });
        start = next;
    }
}

#[utoipa::path(
    get, path = "/api/dash/projects/{project}/churn", tag = "dashboard",
    operation_id = "dashboard_churn",
    params(ProjectPath, ChurnParams),
    description = "Of the users active in each week or month, the share that churned in the \
                   next: not active at all (default), or did `event` there. From the \
                   active-user rollup; bots are left out.",
    responses(
        (status = 200, body = ChurnSeries),
        (status = 400, description = "An invalid parameter (says which), or more than 104 \
                                      periods", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
        (status = 503, description = "A heavy query: over its time budget (PULSELINE_DASHBOARD_QUERY_TIMEOUT_MS, code query_timeout), or too many running (PULSELINE_DASHBOARD_QUERIES_PER_PROJECT, PULSELINE_DASHBOARD_QUERIES, code overloaded); see Retry-After", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn churn(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
    ApiQuery(p): ApiQuery<ChurnParams>,
) -> Result<Json<ChurnSeries>, ApiError> {
    session.require(&state, project, Role::Viewer).await?;
    let _slot = state.dashboard.queries.admit(project).await?;
    let period = match p.period.as_deref().unwrap_or("week") {
        "week" => Period::Week,
        "month" => Period::Month,
        other => {
            return Err(ApiError::BadRequest(format!(
                "unknown period '{other}': use week or month"
            )));
        }
    };
    for (name, value) in [("from", p.from), ("to", p.to)] {
        if let Some(v) = value
            && !(0..=MAX_TIME_MS).contains(&v)
        {
            return Err(ApiError::BadRequest(format!(
                "{name} ({v}) must be unix milliseconds from 0 to {MAX_TIME_MS} (year 9999)"
            )));
        }
    }
    let tz = zone(&state.store.project_timezone(project).await?);
    let to = p.to.unwrap_or_else(|| state.clock.now().timestamp_millis());
    let from = p.from.unwrap_or_else(|| {
        let last = period.floor(day_key(&tz, to));
        day_start(
            &tz,
            period.shift(
                last,
                -i32::try_from(DEFAULT_CHURN_PERIODS + 1).unwrap_or(13),
            ),
        )
    });
    if from >= to {
        return Err(ApiError::BadRequest(format!(
            "from ({from}) must be before to ({to}) (unix milliseconds)"
        )));
    }
    let event = p.event.as_deref().map(str::trim).filter(|e| !e.is_empty());
    if let Some(e) = event
        && e.chars().count() > MAX_EVENT_NAME_CHARS
    {
        return Err(ApiError::BadRequest(format!(
            "event is longer than {MAX_EVENT_NAME_CHARS} characters, the longest event name"
        )));
    }
    let periods = periods(period, &tz, day_key(&tz, from), to)?;
    // No scan cap: the database counts the range's active-user rows (users × days, bounded by
    // the users, not the events) and returns two numbers per period; MAX_CHURN_PERIODS bounds
    // the periods.
    let by = event.map_or(ChurnBy::Inactivity, ChurnBy::Event);
    let counts = state.store.churn_counts(project, &periods, by).await?;
    let points = periods
        .iter()
        .zip(counts)
        .map(|(p, (active, churned))| ChurnPoint {
            start: p.start,
            active,
            churned,
            #[allow(clippy::cast_precision_loss)] // user counts are far below 2^52
            rate: (active > 0).then(|| churned as f64 / active as f64),
        })
        .collect();
    Ok(Json(ChurnSeries {
        period: match period {
            Period::Week => "week",
            Period::Month => "month",
        }
        .to_owned(),
        event: event.map(str::to_owned),
        points,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(y: i32, m: u32, d: u32) -> i64 {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first() {
        // 2026-12-03 is a Thursday; its week began on Monday 2026-11-30.
        assert_eq!(Period::Week.floor(t(2026, 12, 3) + 5), t(2026, 11, 30));
        assert_eq!(Period::Week.floor(t(2026, 11, 30)), t(2026, 11, 30));
        assert_eq!(Period::Month.floor(t(2026, 12, 31) + 1), t(2026, 12, 1));
        assert_eq!(Period::Month.shift(t(2026, 12, 1), 1), t(2027, 1, 1));
        assert_eq!(Period::Month.shift(t(2026, 3, 1), -1), t(2026, 2, 1));
    }

    #[test]
    fn a_period_is_shown_once_the_next_one_is_over() {
        let p = periods(
            Period::Week,
            &jiff::tz::TimeZone::UTC,
            t(2026, 11, 2),
            t(2026, 11, 30),
        )
        .unwrap();
        let starts: Vec<i64> = p.iter().map(|p| p.start).collect();
        assert_eq!(starts, [t(2026, 11, 2), t(2026, 11, 9), t(2026, 11, 16)]);
        assert!(periods(Period::Week, &jiff::tz::TimeZone::UTC, 0, MAX_TIME_MS).is_err());
    }
}
