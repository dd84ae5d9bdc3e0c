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
use crate::store::{DAY_MS, HOUR_MS};

#[derive(Debug, Serialize, ToSchema)]
pub struct Overview {
    pub events_today: i64,
    /// Distinct users (user id, else anonymous id) active today, in the last 7 and in the last
    /// 30 days, today included (UTC days, by event timestamp).
    pub dau: i64,
    pub wau: i64,
    pub mau: i64,
    /// Events per hour over the last 24 hours: [hour start, count].
    pub hourly: Vec<(i64, i64)>,
    /// Events per day over the last 30 days.
    pub daily: Vec<(i64, i64)>,
    /// Active users per day over the last 30 days.
    pub daily_active: Vec<(i64, i64)>,
    /// The most frequent event names of the last 30 days.
    pub top_events: Vec<(String, i64)>,
    /// Events from bots (`context.bot = true`) in the last 30 days: left out of every number
    /// above unless `include_bots=true`.
    pub bot_events: i64,
}

/// Overview: all from rollups (hourly counts, daily active users), never from events.
#[utoipa::path(
    get, path = "/api/dash/projects/{project}/overview", tag = "dashboard",
    operation_id = "dashboard_overview", params(ProjectPath, BotsParams),
    description = "Today's events, active users and the last 24 hours and 30 days (UTC). Bot \
                   events are left out (and counted in `bot_events`) unless `include_bots=true`; \
                   active users never count bots.",
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
pub async fn overview_of(
    state: &AppState,
    project: ProjectId,
    bots: BotsParams,
) -> Result<Overview, ApiError> {
    let now = state.clock.now().timestamp_millis();
    let today = now - now.rem_euclid(DAY_MS);
    let tomorrow = today + DAY_MS;
    let month_from = today - 29 * DAY_MS;
    let (rows, bot_events) =
        counts(state, project, month_from, tomorrow, bots.include_bots).await?;
    let this_hour = now - now.rem_euclid(HOUR_MS);
    let mut hourly: BTreeMap<i64, i64> = (0..24)
        .map(|h| (this_hour - (23 - h) * HOUR_MS, 0))
        .collect();
    let mut daily: BTreeMap<i64, i64> = (0..30).map(|d| (month_from + d * DAY_MS, 0)).collect();
    let mut names: HashMap<String, i64> = HashMap::new();
    let mut events_today = 0;
    for (hour, name, n) in rows {
        if let Some(h) = hourly.get_mut(&hour) {
            *h += n;
        }
        *daily.entry(hour - hour.rem_euclid(DAY_MS)).or_default() += n;
        *names.entry(name).or_default() += n;
        if hour >= today {
            events_today += n;
        }
    }
    let mut top_events: Vec<(String, i64)> = names.into_iter().collect();
    top_events.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top_events.truncate(10);
    let store = &state.store;
    let mut daily_active: BTreeMap<i64, i64> =
        (0..30).map(|d| (month_from + d * DAY_MS, 0)).collect();
    daily_active.extend(
        store
            .daily_active_users(project, month_from, tomorrow)
            .await?,
    );
    Ok(Overview {
        events_today,
        dau: store.active_users_since(project, today).await?,
        wau: store
            .active_users_since(project, today - 6 * DAY_MS)
            .await?,
        mau: store.active_users_since(project, month_from).await?,
        hourly: hourly.into_iter().collect(),
        daily: daily.into_iter().collect(),
        daily_active: daily_active.into_iter().collect(),
        top_events,
        bot_events,
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
