//! What the dashboard shows: overview, explore (series, events, CSV), Web Vitals, funnels,
//! retention, sessions and the live tail. Times are unix milliseconds (UTC).

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use super::ProjectPath;
use crate::analytics::{self, Agg, SeriesSpec};
use crate::domain::ProjectId;
use crate::domain::account::Role;
use crate::error::{ApiError, ErrorBody};
use crate::routes::extract::{ApiQuery, PathIds, Session};
use crate::state::AppState;
use crate::store::analytics::ScannedEvent;
use crate::store::{DAY_MS, HOUR_MS};

/// Most buckets one chart may have.
pub const MAX_BUCKETS: i64 = 5_000;
/// How often the live tail looks for new events.
pub const TAIL_POLL: Duration = Duration::from_secs(1);
/// How far back each tail poll looks again, for commits that finished late (PostgreSQL's
/// concurrent writers commit out of sequence order).
pub const TAIL_OVERLAP_MS: i64 = 15_000;
/// Most events one tail message carries.
pub const TAIL_BATCH: i64 = 500;
/// Rows the explore table shows.
pub const TABLE_ROWS: usize = 200;
/// Latest time a range may name: 9999-12-31T23:59:59.999Z, in unix milliseconds (ranges start
/// at 0, the epoch). Keeps the range's arithmetic far from overflow.
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;
/// Longest funnel window: a year.
pub const MAX_FUNNEL_WINDOW_SECS: i64 = 366 * 86_400;

#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RangeParams {
    /// Start, unix milliseconds (default: `to` minus 7 days; funnel 30, retention 14).
    #[param(minimum = 0, maximum = 253402300799999.0)]
    from: Option<i64>,
    /// End, exclusive, unix milliseconds (default: now). At most 253402300799999 (year 9999).
    #[param(minimum = 0, maximum = 253402300799999.0)]
    to: Option<i64>,
    /// Bucket size in milliseconds (default: picked from the range). At least one minute and
    /// at most 5000 buckets in the range.
    #[param(minimum = 60_000)]
    bucket: Option<i64>,
}

struct Range {
    from: i64,
    to: i64,
    bucket: i64,
}

fn range(state: &AppState, p: &RangeParams, default_days: i64) -> Result<Range, ApiError> {
    let now = state.clock.now().timestamp_millis();
    for (name, value) in [("from", p.from), ("to", p.to)] {
        if let Some(v) = value
            && !(0..=MAX_TIME_MS).contains(&v)
        {
            return Err(ApiError::BadRequest(format!(
                "{name} ({v}) must be unix milliseconds from 0 to {MAX_TIME_MS} (year 9999)"
            )));
        }
    }
    let to = p.to.unwrap_or(now);
    let from = p.from.unwrap_or(to - default_days * DAY_MS);
    if from >= to {
        return Err(ApiError::BadRequest(format!(
            "from ({from}) must be before to ({to}) (unix milliseconds)"
        )));
    }
    let span = to - from;
    let bucket = p.bucket.unwrap_or(if span <= 6 * HOUR_MS {
        5 * 60_000
    } else if span <= 3 * DAY_MS {
        HOUR_MS
    } else {
        DAY_MS
    });
    if bucket < 60_000 || span / bucket > MAX_BUCKETS {
        return Err(ApiError::BadRequest(format!(
            "bucket {bucket} ms is too small for this range: at least one minute and at most \
             {MAX_BUCKETS} buckets"
        )));
    }
    Ok(Range { from, to, bucket })
}

/// Events of the range, refusing ranges above PULSELINE_DASHBOARD_MAX_SCAN_EVENTS.
async fn scan(
    state: &AppState,
    project: ProjectId,
    r: &Range,
    name: Option<&str>,
) -> Result<Vec<ScannedEvent>, ApiError> {
    let max = i64::from(state.dashboard.config.max_scan_events);
    let rows = state
        .store
        .scan_events(project, r.from, r.to, name, max + 1)
        .await?;
    if rows.len() as i64 > max {
        return Err(ApiError::BadRequest(format!(
            "this range holds more than {max} events (PULSELINE_DASHBOARD_MAX_SCAN_EVENTS): \
             narrow the range or the event"
        )));
    }
    Ok(rows)
}

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

/// Whether bot events (`context.bot = true`, docs/web-analytics.md) count.
#[derive(Debug, Clone, Copy, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BotsParams {
    /// Count events from crawlers and automated browsers too (default false).
    #[serde(default)]
    include_bots: bool,
}

/// Hourly counts per name from the rollups, without bot events unless `include_bots`.
/// Returns the rows and how many bot events the range holds.
async fn counts(
    state: &AppState,
    project: ProjectId,
    from: i64,
    to: i64,
    include_bots: bool,
) -> Result<(Vec<(i64, String, i64)>, i64), ApiError> {
    let mut rows = state.store.rollup_counts(project, from, to).await?;
    let bots = state.store.bot_rollup_counts(project, from, to).await?;
    let bot_events = bots.iter().map(|(_, _, n)| n).sum();
    if !include_bots && !bots.is_empty() {
        let bots: HashMap<(i64, &str), i64> = bots
            .iter()
            .map(|(h, name, n)| ((*h, name.as_str()), *n))
            .collect();
        for (hour, name, n) in &mut rows {
            if let Some(b) = bots.get(&(*hour, name.as_str())) {
                *n = (*n - b).max(0);
            }
        }
        rows.retain(|(_, _, n)| *n > 0);
    }
    Ok((rows, bot_events))
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
    let now = state.clock.now().timestamp_millis();
    let today = now - now.rem_euclid(DAY_MS);
    let tomorrow = today + DAY_MS;
    let month_from = today - 29 * DAY_MS;
    let (rows, bot_events) =
        counts(&state, project, month_from, tomorrow, bots.include_bots).await?;
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
    Ok(Json(Overview {
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
    }))
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesParams {
    /// Start, unix milliseconds (default: `to` minus 7 days).
    #[param(minimum = 0, maximum = 253402300799999.0)]
    from: Option<i64>,
    /// End, exclusive, unix milliseconds (default: now). At most 253402300799999 (year 9999).
    #[param(minimum = 0, maximum = 253402300799999.0)]
    to: Option<i64>,
    /// Bucket size in milliseconds (default: picked from the range). At least one minute and
    /// at most 5000 buckets in the range.
    #[param(minimum = 60_000)]
    bucket: Option<i64>,
    /// One event name (track event, or `$page`…); all events when absent.
    event: Option<String>,
    /// count (default), unique, sum, avg, min, max, p50, p75, p95.
    agg: Option<String>,
    /// The numeric property the aggregate reads (not for count and unique).
    property: Option<String>,
    /// Only events whose property `filter_property` equals `filter_value`.
    filter_property: Option<String>,
    filter_value: Option<String>,
    /// One series per value of this property.
    group_by: Option<String>,
    /// How many groups to keep (default 5, clamped to 1..=20); the rest is "(other)".
    #[param(minimum = 0)]
    top: Option<usize>,
    /// `csv` for a download.
    format: Option<String>,
    /// Count events from crawlers and automated browsers too (default false).
    #[serde(default)]
    include_bots: bool,
}

fn empty_to_none(s: &Option<String>) -> Option<String> {
    s.as_ref()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// A chart's series. Plain counts read the hourly rollups; anything with a property, filter,
/// group or a bucket under an hour reads the range's events.
#[utoipa::path(
    get, path = "/api/dash/projects/{project}/series", tag = "dashboard",
    operation_id = "dashboard_series",
    params(ProjectPath, SeriesParams),
    description = "A chart: one series (or one per `group_by` value) of the aggregate per \
                   bucket. `format=csv` downloads it (a `bucket` column, one column per series).",
    responses(
        (status = 200, content(
            (analytics::Series = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "An invalid parameter (says which), or more events in the \
                                      range than PULSELINE_DASHBOARD_MAX_SCAN_EVENTS",
            body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn series(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
    ApiQuery(p): ApiQuery<SeriesParams>,
) -> Result<Response, ApiError> {
    session.require(&state, project, Role::Viewer).await?;
    let r = range(&state, &p.range(), 7)?;
    let agg = Agg::parse(p.agg.as_deref().unwrap_or("count")).map_err(ApiError::BadRequest)?;
    let property = empty_to_none(&p.property);
    if agg.needs_property() && property.is_none() {
        return Err(ApiError::BadRequest(format!(
            "the {agg:?} aggregate needs a numeric `property`"
        )));
    }
    let event = empty_to_none(&p.event);
    let filter = match (empty_to_none(&p.filter_property), p.filter_value.clone()) {
        (Some(name), Some(value)) => Some((name, value)),
        _ => None,
    };
    let spec = SeriesSpec {
        from: r.from,
        to: r.to,
        bucket_ms: r.bucket,
        agg,
        property,
        filter,
        group_by: empty_to_none(&p.group_by),
        top: p.top.unwrap_or(5).clamp(1, 20),
    };
    let from_rollups = agg == Agg::Count
        && spec.filter.is_none()
        && spec.group_by.is_none()
        && r.bucket % HOUR_MS == 0;
    let series = if from_rollups {
        rollup_series(&state, project, &r, event.as_deref(), p.include_bots).await?
    } else {
        let mut events = scan(&state, project, &r, event.as_deref()).await?;
        if !p.include_bots {
            events.retain(|e| !is_bot(&e.body));
        }
        analytics::series(&events, &spec)
    };
    if p.format.as_deref() == Some("csv") {
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut header = vec!["bucket".to_owned()];
        header.extend(series.series.iter().map(|s| csv_text(&s.name)));
        w.write_record(&header).map_err(csv_error)?;
        for (i, b) in series.buckets.iter().enumerate() {
            let mut row = vec![iso(*b)];
            row.extend(
                series
                    .series
                    .iter()
                    .map(|s| s.values[i].map(|v| v.to_string()).unwrap_or_default()),
            );
            w.write_record(&row).map_err(csv_error)?;
        }
        return csv_response(w, "series.csv");
    }
    Ok(Json(series).into_response())
}

async fn rollup_series(
    state: &AppState,
    project: ProjectId,
    r: &Range,
    event: Option<&str>,
    include_bots: bool,
) -> Result<analytics::Series, ApiError> {
    let buckets = analytics::bucket_starts(r.from, r.to, r.bucket);
    let first = buckets.first().copied().unwrap_or(r.from);
    let from = r.from - r.from.rem_euclid(HOUR_MS);
    let rows: Vec<(i64, i64)> = match event {
        Some(name) => {
            let mut rows = state
                .store
                .rollup_counts_of(project, name, from, r.to)
                .await?;
            if !include_bots {
                let bots: HashMap<i64, i64> = state
                    .store
                    .bot_rollup_counts(project, from, r.to)
                    .await?
                    .into_iter()
                    .filter(|(_, n, _)| n == name)
                    .map(|(h, _, n)| (h, n))
                    .collect();
                for (hour, n) in &mut rows {
                    *n -= bots.get(hour).copied().unwrap_or(0).min(*n);
                }
            }
            rows
        }
        None => counts(state, project, from, r.to, include_bots)
            .await?
            .0
            .into_iter()
            .map(|(h, _, n)| (h, n))
            .collect(),
    };
    let mut values = vec![Some(0.0); buckets.len()];
    for (hour, n) in rows {
        if hour < first {
            continue;
        }
        if let Some(Some(v)) = values.get_mut(((hour - first) / r.bucket) as usize) {
            *v += n as f64;
        }
    }
    Ok(analytics::Series {
        buckets,
        series: vec![analytics::NamedSeries {
            name: event.unwrap_or("all events").to_owned(),
            values,
        }],
    })
}

/// `context.bot` is true in a stored message (set at ingest by `crate::web`).
fn is_bot(body: &str) -> bool {
    #[derive(Deserialize)]
    struct Outer {
        context: Option<Context>,
    }
    #[derive(Deserialize)]
    struct Context {
        bot: Option<serde_json::Value>,
    }
    // Most events never mention it: skip the parse.
    body.contains("\"bot\"")
        && serde_json::from_str::<Outer>(body)
            .ok()
            .and_then(|o| o.context?.bot)
            .is_some_and(|b| b == serde_json::Value::Bool(true))
}

fn iso(ms: i64) -> String {
    crate::store::from_millis(ms).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A text cell a spreadsheet shows as text: one starting with `=`, `+`, `-`, `@`, tab or CR
/// would run as a formula (CSV injection), so it gets OWASP's `'` prefix. Only for text sent
/// to us; numbers we format ourselves stay numbers.
pub fn csv_text(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

fn csv_error(e: csv::Error) -> ApiError {
    ApiError::Internal(e.into())
}

fn csv_response(w: csv::Writer<Vec<u8>>, name: &str) -> Result<Response, ApiError> {
    let bytes = w
        .into_inner()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// One row of the explore table.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventRow {
    pub seq: i64,
    /// Unix milliseconds.
    pub timestamp: i64,
    pub event: String,
    /// User id, else anonymous id.
    pub user: Option<String>,
    /// As sent: numbers keep their digits.
    #[schema(value_type = Object)]
    pub properties: Box<RawValue>,
}

/// A stored message's `properties` as JSON text (null when absent), never parsed into values,
/// so every number keeps the digits it was sent with.
fn raw_properties(body: &str) -> Box<RawValue> {
    #[derive(Deserialize)]
    struct Properties {
        properties: Option<Box<RawValue>>,
    }
    serde_json::from_str::<Properties>(body)
        .ok()
        .and_then(|p| p.properties)
        .unwrap_or_else(|| RawValue::NULL.to_owned())
}

/// The events behind a chart: newest first (the last 200 as JSON; all of them as CSV).
#[utoipa::path(
    get, path = "/api/dash/projects/{project}/events", tag = "dashboard",
    operation_id = "dashboard_events_table",
    params(ProjectPath, SeriesParams),
    description = "The events behind a chart (`event`, `filter_property`/`filter_value`), \
                   newest first: the last 200 as JSON, all of them with `format=csv` (columns \
                   timestamp, event, user, message_id, properties). The aggregate parameters \
                   are ignored.",
    responses(
        (status = 200, content(
            (Vec<EventRow> = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "An invalid parameter (says which), or more events in the \
                                      range than PULSELINE_DASHBOARD_MAX_SCAN_EVENTS",
            body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn events(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
    ApiQuery(p): ApiQuery<SeriesParams>,
) -> Result<Response, ApiError> {
    session.require(&state, project, Role::Viewer).await?;
    let r = range(&state, &p.range(), 7)?;
    let event = empty_to_none(&p.event);
    let filter = match (empty_to_none(&p.filter_property), p.filter_value.clone()) {
        (Some(name), Some(value)) => Some((name, value)),
        _ => None,
    };
    let rows = scan(&state, project, &r, event.as_deref()).await?;
    let matching = rows
        .into_iter()
        .rev()
        .filter(|e| analytics::passes(&e.body, filter.as_ref()));
    if p.format.as_deref() == Some("csv") {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["timestamp", "event", "user", "message_id", "properties"])
            .map_err(csv_error)?;
        for e in matching {
            let props = raw_properties(&e.body);
            w.write_record([
                iso(e.ts),
                csv_text(&e.name),
                csv_text(&e.user_key.unwrap_or_default()),
                csv_text(&e.message_id),
                csv_text(props.get()),
            ])
            .map_err(csv_error)?;
        }
        return csv_response(w, "events.csv");
    }
    let rows: Vec<EventRow> = matching
        .take(TABLE_ROWS)
        .map(|e| EventRow {
            seq: e.seq,
            timestamp: e.ts,
            properties: raw_properties(&e.body),
            event: e.name,
            user: e.user_key,
        })
        .collect();
    Ok(Json(rows).into_response())
}

#[utoipa::path(
    get, path = "/api/dash/projects/{project}/vitals", tag = "dashboard",
    operation_id = "dashboard_vitals",
    params(ProjectPath, RangeParams),
    description = "Core Web Vitals of the range: p75 and the good / needs improvement / poor \
                   shares, overall, per page and per bucket.",
    responses(
        (status = 200, body = analytics::VitalsReport),
        (status = 400, description = "An invalid parameter (says which), or more events in the \
                                      range than PULSELINE_DASHBOARD_MAX_SCAN_EVENTS",
            body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn vitals(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
    ApiQuery(p): ApiQuery<RangeParams>,
) -> Result<Json<analytics::VitalsReport>, ApiError> {
    session.require(&state, project, Role::Viewer).await?;
    let r = range(&state, &p, 7)?;
    let rows = scan(&state, project, &r, Some(analytics::WEB_VITAL_EVENT)).await?;
    Ok(Json(analytics::web_vitals(&rows, r.from, r.to, r.bucket)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FunnelParams {
    /// Start, unix milliseconds (default: `to` minus 30 days).
    #[param(minimum = 0, maximum = 253402300799999.0)]
    from: Option<i64>,
    /// End, exclusive, unix milliseconds (default: now). At most 253402300799999 (year 9999).
    #[param(minimum = 0, maximum = 253402300799999.0)]
    to: Option<i64>,
    /// Not used by the funnel; checked like every range's.
    #[param(minimum = 60_000)]
    bucket: Option<i64>,
    /// Step event names, comma-separated, in order: 2 to 10 (blanks around names are trimmed).
    #[param(pattern = r"^[^,]*[^,\s][^,]*(,[^,]*[^,\s][^,]*){1,9}$")]
    steps: String,
    /// Seconds from the first step within which the others must happen (default 1 day; 1 to
    /// 31622400, a year).
    #[param(minimum = 1, maximum = 31_622_400)]
    window_secs: Option<i64>,
}

#[utoipa::path(
    get, path = "/api/dash/projects/{project}/funnel", tag = "dashboard",
    operation_id = "dashboard_funnel",
    params(ProjectPath, FunnelParams),
    description = "An ordered funnel: users per step, conversion from the first step and \
                   drop-off from the previous one.",
    responses(
        (status = 200, body = Vec<analytics::FunnelStep>),
        (status = 400, description = "An invalid parameter (says which): no `steps`, fewer than \
                                      2 or more than 10 steps, a window out of bounds, or more \
                                      events in the range than \
                                      PULSELINE_DASHBOARD_MAX_SCAN_EVENTS", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn funnel(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
    ApiQuery(p): ApiQuery<FunnelParams>,
) -> Result<Json<Vec<analytics::FunnelStep>>, ApiError> {
    session.require(&state, project, Role::Viewer).await?;
    let r = range(&state, &p.range(), 30)?;
    let steps: Vec<String> = p
        .steps
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if !(2..=10).contains(&steps.len()) {
        return Err(ApiError::BadRequest(
            "a funnel needs 2 to 10 steps: steps=Signed Up,Activated,Paid".into(),
        ));
    }
    let window_secs = p.window_secs.unwrap_or(86_400);
    if !(1..=MAX_FUNNEL_WINDOW_SECS).contains(&window_secs) {
        return Err(ApiError::BadRequest(format!(
            "window_secs ({window_secs}) must be 1 to {MAX_FUNNEL_WINDOW_SECS} (a year)"
        )));
    }
    let window = window_secs * 1000;
    let rows = scan(&state, project, &r, None).await?;
    Ok(Json(analytics::funnel(&rows, &steps, window)))
}

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
    /// `day` (default) or `week`.
    period: Option<String>,
}

#[utoipa::path(
    get, path = "/api/dash/projects/{project}/retention", tag = "dashboard",
    operation_id = "dashboard_retention",
    params(ProjectPath, RetentionParams),
    description = "Cohorts by the period users were first seen in, and the share of each \
                   active in the periods after.",
    responses(
        (status = 200, body = Vec<analytics::Cohort>),
        (status = 400, description = "An invalid parameter (says which), or more events in the \
                                      range than PULSELINE_DASHBOARD_MAX_SCAN_EVENTS",
            body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn retention(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
    ApiQuery(p): ApiQuery<RetentionParams>,
) -> Result<Json<Vec<analytics::Cohort>>, ApiError> {
    session.require(&state, project, Role::Viewer).await?;
    let r = range(&state, &p.range(), 14)?;
    let period = match p.period.as_deref().unwrap_or("day") {
        "day" => DAY_MS,
        "week" => 7 * DAY_MS,
        other => {
            return Err(ApiError::BadRequest(format!(
                "unknown period '{other}': use day or week"
            )));
        }
    };
    let rows = scan(&state, project, &r, None).await?;
    Ok(Json(analytics::retention(&rows, r.from, r.to, period)))
}

#[utoipa::path(
    get, path = "/api/dash/projects/{project}/sessions", tag = "dashboard",
    operation_id = "dashboard_sessions",
    params(ProjectPath, RangeParams),
    description = "Sessions of the range (a user's events with no gap over 30 minutes): count, \
                   mean length and bounce rate.",
    responses(
        (status = 200, body = analytics::SessionStats),
        (status = 400, description = "An invalid parameter (says which), or more events in the \
                                      range than PULSELINE_DASHBOARD_MAX_SCAN_EVENTS",
            body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn sessions(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
    ApiQuery(p): ApiQuery<RangeParams>,
) -> Result<Json<analytics::SessionStats>, ApiError> {
    session.require(&state, project, Role::Viewer).await?;
    let r = range(&state, &p, 7)?;
    let rows = scan(&state, project, &r, None).await?;
    Ok(Json(analytics::sessions(&rows)))
}

struct Tail {
    since: i64,
    sent: HashMap<i64, i64>,
    first: bool,
    /// The viewer's session and user, re-checked on every poll.
    token_hash: Vec<u8>,
    user_id: i64,
    /// The session or membership is gone: the `end` message was sent; the stream stops.
    ended: bool,
    /// Counts against PULSELINE_TAILS_PER_SESSION / PULSELINE_MAX_TAILS until the stream drops.
    _slot: crate::state::guards::TailSlot,
}

/// Whether the tail's viewer may still see the project: the session still exists (no logout,
/// no password change elsewhere, not expired) and the user is still a member.
async fn still_allowed(
    state: &AppState,
    token_hash: &[u8],
    user_id: i64,
    project: ProjectId,
) -> Result<bool, crate::store::StoreError> {
    let session = state
        .store
        .find_session(token_hash, state.clock.now())
        .await?;
    Ok(session.is_some_and(|s| s.user.id == user_id)
        && state.store.role_in(project, user_id).await?.is_some())
}

/// Server-sent events: every second, an `events` message with what arrived since the last
/// (at most 500), starting with the last minute. Correct across replicas and late commits:
/// it re-reads an overlapping window and skips what it already sent. Every poll re-checks the
/// session and the membership, so logging out, a password change or removal from the project
/// ends the stream within a poll.
#[utoipa::path(
    get, path = "/api/dash/projects/{project}/tail", tag = "dashboard",
    operation_id = "dashboard_tail", params(ProjectPath),
    description = "Server-sent events that do not end: every second an `events` message whose \
                   data is a JSON array of the events received since the last one (at most 500; \
                   the first covers the last minute), shaped as GET /api/v1/events' items; an \
                   `error` message while storage is unavailable. It ends, after an `end` \
                   message saying why, once the session ends (logout, password change, expiry) \
                   or the user is no longer a member of the project.",
    responses(
        (status = 200, content_type = "text/event-stream", body = String),
        (status = 400, description = "The project id is not an integer", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
        (status = 429, description = "The login already holds PULSELINE_TAILS_PER_SESSION \
                                      tails, or the server PULSELINE_MAX_TAILS",
            body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn tail(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    session.require(&state, project, Role::Viewer).await?;
    let slot = state.dashboard.tails.acquire(&session.token_hash)?;
    let start = state.clock.now().timestamp_millis() - 60_000;
    let initial = Tail {
        _slot: slot,
        since: start,
        sent: HashMap::new(),
        first: true,
        token_hash: session.token_hash,
        user_id: session.record.user.id,
        ended: false,
    };
    let stream = futures::stream::unfold((state, initial), move |(state, mut t)| async move {
        if t.ended {
            return None;
        }
        if !t.first {
            tokio::time::sleep(TAIL_POLL).await;
        }
        t.first = false;
        match still_allowed(&state, &t.token_hash, t.user_id, project).await {
            Ok(true) => {}
            Ok(false) => {
                t.ended = true;
                let end = Event::default()
                    .event("end")
                    .data("your session ended or you are no longer a member of this project");
                return Some((Ok(end), (state, t)));
            }
            Err(e) => {
                tracing::warn!(error = %e, "live tail access check failed");
                let error = Event::default()
                    .event("error")
                    .data("storage unavailable; retrying");
                return Some((Ok(error), (state, t)));
            }
        }
        let now = state.clock.now().timestamp_millis();
        let event = match state
            .store
            .events_received_since(project, t.since, TAIL_BATCH)
            .await
        {
            Ok(rows) => {
                let mut fresh = Vec::new();
                for e in rows {
                    if t.sent
                        .insert(e.seq, e.received_at.timestamp_millis())
                        .is_none()
                    {
                        fresh.push(e.render());
                    }
                }
                t.since = t.since.max(now - TAIL_OVERLAP_MS);
                let since = t.since;
                t.sent.retain(|_, received| *received >= since);
                Event::default()
                    .event("events")
                    .json_data(fresh)
                    .unwrap_or_else(|_| Event::default().event("error"))
            }
            Err(e) => {
                tracing::warn!(error = %e, "live tail query failed");
                Event::default()
                    .event("error")
                    .data("storage unavailable; retrying")
            }
        };
        Some((Ok(event), (state, t)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

impl SeriesParams {
    fn range(&self) -> RangeParams {
        RangeParams {
            from: self.from,
            to: self.to,
            bucket: self.bucket,
        }
    }
}

impl FunnelParams {
    fn range(&self) -> RangeParams {
        RangeParams {
            from: self.from,
            to: self.to,
            bucket: self.bucket,
        }
    }
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
