//! The Web Vitals page: p75 by metric and page, from the rollups maintained at ingest
//! (`store::vitals`): a range costs its hours and days, never its samples.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

use super::{BotsParams, RangeParams, range, with_bot_events};
use crate::analytics::{self, WEB_VITAL_EVENT};
use crate::domain::ProjectId;
use crate::domain::account::Role;
use crate::error::{ApiError, ErrorBody};
use crate::routes::dashboard::ProjectPath;
use crate::routes::extract::{ApiQuery, PathIds, Session};
use crate::state::AppState;
use crate::store::{DAY_MS, HOUR_MS};

#[derive(Debug, Serialize, ToSchema)]
pub struct VitalsAnswer {
    #[serde(flatten)]
    pub report: analytics::VitalsReport,
    /// Web Vital events from bots in the range's hours: left out unless `include_bots=true`.
    pub bot_events: i64,
    /// What was read: the range widened to whole UTC hours (overall, trend; trend buckets are
    /// whole hours too) and, for the pages, to whole UTC days.
    pub read: VitalsRead,
}

/// The range a Web Vitals answer read, unix milliseconds (ends exclusive).
#[derive(Debug, Serialize, ToSchema)]
pub struct VitalsRead {
    pub from: i64,
    pub to: i64,
    pub pages_from: i64,
    pub pages_to: i64,
}

#[utoipa::path(
    get, path = "/api/dash/projects/{project}/vitals", tag = "dashboard",
    operation_id = "dashboard_vitals",
    params(ProjectPath, RangeParams, BotsParams),
    description = "Core Web Vitals of the range: p75 and the good / needs improvement / poor \
                   shares, overall, per page and per bucket. Bots' samples are left out \
                   unless `include_bots=true`. Read from hourly rollups: the range is widened \
                   to whole UTC hours (to whole UTC days for the pages; `read` says what was \
                   read) and a bucket is rounded up to whole hours. Each p75 is within 1% of \
                   the exact p75 of the same samples.",
    responses(
        (status = 200, body = VitalsAnswer, headers(("pulseline-bot-events" = i64,
            description = "Bot events in the range (left out unless include_bots=true)"))),
        (status = 400, description = "An invalid parameter (says which)", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
        (status = 503, description = "A heavy query: over its time budget (PULSELINE_DASHBOARD_QUERY_TIMEOUT_MS, code query_timeout), or too many running (PULSELINE_DASHBOARD_QUERIES_PER_PROJECT, PULSELINE_DASHBOARD_QUERIES, code overloaded); see Retry-After", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn vitals(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
    ApiQuery(p): ApiQuery<RangeParams>,
    ApiQuery(bots): ApiQuery<BotsParams>,
) -> Result<Response, ApiError> {
    session.require(&state, project, Role::Viewer).await?;
    let answer = vitals_of(&state, project, &p, bots.include_bots).await?;
    let bot_events = answer.bot_events;
    Ok(with_bot_events(Json(answer), bot_events))
}

/// The Web Vitals of `project`, for its members and for a shared link (`dashboard::share`).
pub async fn vitals_of(
    state: &AppState,
    project: ProjectId,
    p: &RangeParams,
    include_bots: bool,
) -> Result<VitalsAnswer, ApiError> {
    let r = range(state, p, 7)?;
    let _slot = state.dashboard.queries.admit(project).await?;
    let bucket = ceil_to(r.bucket, HOUR_MS);
    let buckets = analytics::bucket_starts(r.from, r.to, bucket);
    let first = buckets.first().copied().unwrap_or(r.from);
    let from_hour = r.from - r.from.rem_euclid(HOUR_MS);
    let from_day = r.from - r.from.rem_euclid(DAY_MS);
    let by_bucket = state
        .store
        .vitals_by_bucket(project, from_hour, r.to, first, bucket, include_bots)
        .await?;
    let by_page = state
        .store
        .vitals_by_page(project, from_day, r.to, include_bots)
        .await?;
    let bot_events = state
        .store
        .bot_rollup_counts(project, from_hour, r.to)
        .await?
        .iter()
        .filter(|(_, name, _)| name == WEB_VITAL_EVENT)
        .map(|(_, _, n)| n)
        .sum();
    Ok(VitalsAnswer {
        report: analytics::web_vitals_from_rollups(buckets, &by_bucket, &by_page),
        bot_events,
        read: VitalsRead {
            from: from_hour,
            to: ceil_to(r.to, HOUR_MS),
            pages_from: from_day,
            pages_to: ceil_to(r.to, DAY_MS),
        },
    })
}

/// `t` rounded up to a multiple of `unit`.
fn ceil_to(t: i64, unit: i64) -> i64 {
    t + (unit - t.rem_euclid(unit)).rem_euclid(unit)
}
