//! Retention: cohorts by first seen, and how many come back per period. Periods are whole
//! local days or weeks (Monday to Sunday), as in Mixpanel and PostHog: a range is widened to
//! the whole periods it touches, so the per-user-period rollups (`active_users_daily`,
//! `active_users_weekly`; bots are never in them) answer it in SQL without reading events.
//! `include_bots=true` adds the bots' days (`active_bots_daily`, migration 0052).

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{Range, RangeParams, bot_events, range, with_bot_events};
use crate::analytics;
use crate::domain::ProjectId;
use crate::domain::account::Role;
use crate::error::{ApiError, ErrorBody};
use crate::routes::dashboard::ProjectPath;
use crate::routes::extract::{ApiQuery, PathIds, Session};
use crate::state::AppState;
use crate::store::DAY_MS;
use crate::store::local_days::{day_key, day_start};
use crate::store::retention::{MAX_PERIODS, RetentionPeriod};

/// Most periods one retention table may span: two years of weeks, or a quarter of days (the
/// answer grows with its square, and the scan-free read with users × active periods).
pub const MAX_RETENTION_PERIODS: i64 = 104;

const _: () = assert!(MAX_RETENTION_PERIODS <= MAX_PERIODS);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RetentionParams {
    /// Start, unix milliseconds (default: `to` minus 14 days).
    #[param(minimum = 0, maximum = 253402300799999.0)]
    from: Option<i64>,
    /// End, exclusive, unix milliseconds (default: now). At most 253402300799999 (year 9999).
    #[param(minimum = 0, maximum = 253402300799999.0)]
    to: Option<i64>,
    /// Not used by retention; checked like every range's.
    #[param(minimum = 60_000)]
    bucket: Option<i64>,
    /// `day` (default) or `week` (Monday to Sunday); days are the project's local days. The
    /// range is widened to the whole periods it touches.
    period: Option<String>,
    /// Count events from crawlers and automated browsers too (default false): from the bots'
    /// per-day rollup, a key active as a person and as a bot being one user.
    #[serde(default)]
    include_bots: bool,
}

#[utoipa::path(
    get, path = "/api/dash/projects/{project}/retention", tag = "dashboard",
    operation_id = "dashboard_retention",
    params(ProjectPath, RetentionParams),
    description = "Cohorts by the period users were first seen in (within the range), and the \
                   share of each active in the periods after; at most 104 periods. Periods \
                   are whole local days or weeks (from Monday): the range is widened to the \
                   whole periods it touches. Counted from the per-user-day and per-user-week \
                   rollups, which leave bots out; with `include_bots=true` the bots' per-day \
                   rollup counts too (a key active as a person and as a bot is one user), \
                   whatever the range holds.",
    responses(
        (status = 200, body = Vec<analytics::Cohort>, headers(("pulseline-bot-events" = i64,
            description = "Bot events in the widened range (left out unless \
                           include_bots=true)"))),
        (status = 400, description = "An invalid parameter (says which), or more than 104 \
                                      periods", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
        (status = 503, description = "A heavy query: over its time budget (PULSELINE_DASHBOARD_QUERY_TIMEOUT_MS, code query_timeout), or too many running (PULSELINE_DASHBOARD_QUERIES_PER_PROJECT, PULSELINE_DASHBOARD_QUERIES, code overloaded); see Retry-After", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn retention(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
    ApiQuery(p): ApiQuery<RetentionParams>,
) -> Result<Response, ApiError> {
    session.require(&state, project, Role::Viewer).await?;
    let _slot = state.dashboard.queries.admit(project).await?;
    let r = range(&state, &p.range(), 14)?;
    let period = match p.period.as_deref().unwrap_or("day") {
        "day" => RetentionPeriod::Day,
        "week" => RetentionPeriod::Week,
        other => {
            return Err(ApiError::BadRequest(format!(
                "unknown period '{other}': use day or week"
            )));
        }
    };
    let ms = period.ms();
    // Periods of the project's local days (the rollups' keys); weeks start on Monday, as in
    // churn and the digest.
    let tz = state.store.project_zone(project).await?;
    let from_day = day_key(&tz, r.from);
    let first = match period {
        RetentionPeriod::Day => from_day,
        // Day keys count days from Thursday 1970-01-01: +3 counts them from a Monday.
        RetentionPeriod::Week => {
            from_day - (from_day.div_euclid(DAY_MS) + 3).rem_euclid(7) * DAY_MS
        }
    };
    let periods = (day_key(&tz, r.to - 1) - first) / ms + 1;
    if periods > MAX_RETENTION_PERIODS {
        let unit = match period {
            RetentionPeriod::Day => "days",
            RetentionPeriod::Week => "weeks",
        };
        return Err(ApiError::BadRequest(format!(
            "this range spans {periods} {unit}, more than {MAX_RETENTION_PERIODS} periods \
             (MAX_RETENTION_PERIODS): narrow the range, or use period=week"
        )));
    }
    // The whole periods the range touches, from the first's local midnight to the one after
    // the last: what the rollups hold.
    let whole = Range {
        from: day_start(&tz, first),
        to: day_start(&tz, first + periods * ms),
        bucket: r.bucket,
    };
    // Cohorts start at their first day's local midnight.
    let at_midnight = |mut cohorts: Vec<analytics::Cohort>| {
        for c in &mut cohorts {
            c.start = day_start(&tz, c.start);
        }
        Json(cohorts)
    };
    let counts = state
        .store
        .retention_counts(project, period, first, periods, p.include_bots)
        .await?;
    let cohorts = analytics::retention_from_counts(&counts, first, ms, periods as usize);
    Ok(with_bot_events(
        at_midnight(cohorts),
        bot_events(&state, project, &whole, None).await?,
    ))
}

impl RetentionParams {
    fn range(&self) -> RangeParams {
        RangeParams {
            from: self.from,
            to: self.to,
            bucket: self.bucket,
        }
    }
}
