//! The overview page: today's and the month's counts, daily active users, top events, all from
//! the rollups; and the event names the pickers offer.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::{BotsParams, counts};
use crate::domain::ProjectId;
use crate::domain::account::Role;
use crate::error::{ApiError, ErrorBody};
use crate::routes::dashboard::ProjectPath;
use crate::routes::extract::{ApiQuery, PathIds, Session};
use crate::state::AppState;
use crate::store::local_days::{day_key, day_start, zone};
use crate::store::{DAY_MS, HOUR_MS};

#[derive(Debug, Serialize, ToSchema)]
pub struct Overview {
    pub events_today: i64,
    /// Distinct users (user id, else anonymous id) active today, in the last 7 and in the last
    /// 30 days, today included (the project's local days, by event timestamp).
    pub dau: i64,
    pub wau: i64,
    pub mau: i64,
    /// Events per hour over the last 24 hours: [hour start, count].
    pub hourly: Vec<(i64, i64)>,
    /// Events per local day over the last 30 days: [the day's first instant, count].
    pub daily: Vec<(i64, i64)>,
    /// Active users per local day over the last 30 days.
    pub daily_active: Vec<(i64, i64)>,
    /// The most frequent event names of the last 30 days.
    pub top_events: Vec<(String, i64)>,
    /// Events from bots (`context.bot = true`) in the last 30 days: left out of every number
    /// above unless `include_bots=true`.
    pub bot_events: i64,
    /// The project's time zone (IANA name): its local days are the days above.
    pub timezone: String,
}

/// Overview: from rollups (hourly counts, active users by local day), never a range scan.
#[utoipa::path(
    get, path = "/api/dash/projects/{project}/overview", tag = "dashboard",
    operation_id = "dashboard_overview", params(ProjectPath, BotsParams),
    description = "Today's events, active users and the last 24 hours and 30 days, days in the \
                   project's time zone (`timezone`). Bot events are left out (and counted in \
                   `bot_events`) unless `include_bots=true`; active users never count bots.",
    responses(
        (status = 200, body = Overview),
        (status = 400, description = "The project id is not an integer", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn overview(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
    ApiQuery(bots): ApiQuery<BotsParams>,
) -> Result<Json<Overview>, ApiError> {
    session.require(&state, project, Role::Viewer).await?;
    overview_of(&state, project, bots).await.map(Json)
}

/// The overview of `project`, for its members and for a shared link (`dashboard::share`).
/// Days are the project's local days: the active users come whole from the rollups keyed by
/// local day; the event counts from the hourly rollups, except where a local midnight falls
/// inside an hour (zones such as Asia/Kolkata): that hour's part after midnight is counted
/// from the events index, at most an hour's events per day shown.
pub async fn overview_of(
    state: &AppState,
    project: ProjectId,
    bots: BotsParams,
) -> Result<Overview, ApiError> {
    let store = &state.store;
    let timezone = store.project_timezone(project).await?;
    let tz = zone(&timezone);
    let now = state.clock.now().timestamp_millis();
    let today = day_key(&tz, now);
    let first = today - 29 * DAY_MS;
    // The local midnights from the first day's to tomorrow's: day i is [starts[i], starts[i+1]).
    let starts: Vec<i64> = (0..=30)
        .map(|d| day_start(&tz, first + d * DAY_MS))
        .collect();
    let day_of = |t: i64| {
        starts
            .partition_point(|&s| s <= t)
            .checked_sub(1)
            .filter(|&i| i < 30)
    };
    let floor_hour = |t: i64| t - t.rem_euclid(HOUR_MS);
    let (from, to) = (floor_hour(starts[0]), floor_hour(starts[30] - 1) + HOUR_MS);
    let all = store.rollup_counts(project, from, to).await?;
    let bot_rows = store.bot_rollup_counts(project, from, to).await?;
    let bot_counts: HashMap<(i64, &str), i64> = bot_rows
        .iter()
        .map(|(h, name, n)| ((*h, name.as_str()), *n))
        .collect();
    let this_hour = floor_hour(now);
    let mut hourly: BTreeMap<i64, i64> = (0..24)
        .map(|h| (this_hour - (23 - h) * HOUR_MS, 0))
        .collect();
    let mut daily = [0i64; 30];
    let mut names: HashMap<String, i64> = HashMap::new();
    let mut bot_events = 0;
    // Adds `n` events of `name` (`b` of them bots) to local day `day`.
    let mut add = |day: Option<usize>, name: &str, n: i64, b: i64| {
        let Some(day) = day else { return };
        let counted = if bots.include_bots { n } else { n - b };
        daily[day] += counted;
        *names.entry(name.to_owned()).or_default() += counted;
        bot_events += b;
    };
    for (hour, name, n) in &all {
        let b = bot_counts
            .get(&(*hour, name.as_str()))
            .copied()
            .unwrap_or(0);
        if let Some(h) = hourly.get_mut(hour) {
            *h += if bots.include_bots {
                *n
            } else {
                (n - b).max(0)
            };
        }
        add(day_of(*hour), name, *n, b);
    }
    // An hour a local midnight cuts went wholly to the day before: move its part after
    // midnight to the day it belongs to.
    for (day, &midnight) in starts.iter().enumerate() {
        let hour = floor_hour(midnight);
        if hour == midnight {
            continue;
        }
        for (name, n, b) in store
            .counts_by_name(project, midnight, hour + HOUR_MS)
            .await?
        {
            add(day_of(hour), &name, -n, -b);
            add(Some(day).filter(|&d| d < 30), &name, n, b);
        }
    }
    names.retain(|_, n| *n > 0);
    let mut top_events: Vec<(String, i64)> = names.into_iter().collect();
    top_events.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top_events.truncate(10);
    let mut daily_active = [0i64; 30];
    for (key, users) in store
        .daily_active_users(project, first, today + DAY_MS)
        .await?
    {
        if let Ok(i) = usize::try_from((key - first) / DAY_MS)
            && let Some(d) = daily_active.get_mut(i)
        {
            *d = users;
        }
    }
    let chart =
        |values: [i64; 30]| -> Vec<(i64, i64)> { starts.iter().copied().zip(values).collect() };
    Ok(Overview {
        events_today: daily[29],
        dau: store.active_users_since(project, today).await?,
        wau: store
            .active_users_since(project, today - 6 * DAY_MS)
            .await?,
        mau: store.active_users_since(project, first).await?,
        hourly: hourly.into_iter().collect(),
        daily: chart(daily),
        daily_active: chart(daily_active),
        top_events,
        bot_events,
        timezone,
    })
}

/// Event names seen in the last 30 days, most frequent first (for pickers).
#[utoipa::path(
    get, path = "/api/dash/projects/{project}/event-names", tag = "dashboard",
    operation_id = "dashboard_event_names",
    params(ProjectPath, BotsParams),
    description = "Event names of the last 30 days with their counts, most frequent first: \
                   `[[name, count], …]`. Bot events count only with `include_bots=true`.",
    responses(
        (status = 200, body = Vec<(String, i64)>),
        (status = 400, description = "The project id is not an integer", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn event_names(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
    ApiQuery(bots): ApiQuery<BotsParams>,
) -> Result<Json<Vec<(String, i64)>>, ApiError> {
    session.require(&state, project, Role::Viewer).await?;
    let now = state.clock.now().timestamp_millis();
    let (rows, _) = counts(
        &state,
        project,
        now - 30 * DAY_MS,
        now + HOUR_MS,
        bots.include_bots,
    )
    .await?;
    let mut names: HashMap<String, i64> = HashMap::new();
    for (_, name, n) in rows {
        *names.entry(name).or_default() += n;
    }
    let mut out: Vec<(String, i64)> = names.into_iter().collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(Json(out))
}
