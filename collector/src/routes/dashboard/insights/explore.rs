//! Explore: a chart's series (from the rollups when it can, else from the range's events) and
//! the events behind it, as JSON or CSV. A read of raw events is bounded: it reads at most
//! PULSELINE_DASHBOARD_SCAN_ROWS events, newest first, and answers for the part of the range it
//! covered, saying so (`coverage`, the `pulseline-covered-from` header); nothing is refused.

use std::collections::HashMap;
use std::ops::ControlFlow;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use super::export::{csv_error, csv_response, csv_text, iso};
use super::{Range, RangeParams, TABLE_ROWS, counts, range, with_bot_events};
use crate::analytics::{self, Agg, SeriesBuilder, SeriesSpec};
use crate::domain::ProjectId;
use crate::domain::account::Role;
use crate::error::{ApiError, ErrorBody};
use crate::routes::dashboard::ProjectPath;
use crate::routes::extract::{ApiQuery, PathIds, Session};
use crate::state::AppState;
use crate::store::HOUR_MS;
use crate::store::analytics::ScannedEvent;
use crate::store::bounded_scan::Order;

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
/// group or a bucket under an hour streams the range's events, newest buckets first within
/// the scan budget.
#[utoipa::path(
    get, path = "/api/dash/projects/{project}/series", tag = "dashboard",
    operation_id = "dashboard_series",
    params(ProjectPath, SeriesParams),
    description = "A chart: one series (or one per `group_by` value) of the aggregate per \
                   bucket. `format=csv` downloads it (a `bucket` column, one column per series). \
                   Bot events are left out unless `include_bots=true`. An answer that reads \
                   raw events reads at most PULSELINE_DASHBOARD_SCAN_ROWS of them, newest \
                   first: when the range holds more it covers the buckets from \
                   `coverage.from` on (earlier ones are null; CSV: the \
                   `pulseline-covered-from` header).",
    responses(
        (status = 200, content(
            (SeriesAnswer = "application/json"),
            (String = "text/csv"),
        ), headers(("pulseline-bot-events" = i64,
            description = "Bot events in the range (left out unless include_bots=true)"),
            ("pulseline-covered-from" = i64, description = "Set when the answer covers \
                only the end of the range: from when (unix ms)"))),
        (status = 400, description = "An invalid parameter (says which)", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
        (status = 503, description = "A heavy query: over its time budget (PULSELINE_DASHBOARD_QUERY_TIMEOUT_MS, code query_timeout), or too many running (PULSELINE_DASHBOARD_QUERIES_PER_PROJECT, PULSELINE_DASHBOARD_QUERIES, code overloaded); see Retry-After", body = ErrorBody),
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
    let answer = if from_rollups {
        let (series, bot_events) =
            rollup_series(&state, project, &r, event.as_deref(), p.include_bots).await?;
        SeriesAnswer {
            series,
            bot_events,
            coverage: None,
            groups_capped: false,
            source: SOURCE_ROLLUPS.to_owned(),
        }
    } else {
        let _slot = state.dashboard.queries.admit(project).await?;
        let rolled = super::explore_props::series(
            &state,
            project,
            &r,
            event.as_deref(),
            &spec,
            p.include_bots,
        )
        .await?;
        if let Some((series, bot_events)) = rolled {
            let answer = SeriesAnswer {
                series,
                bot_events,
                coverage: None,
                groups_capped: false,
                source: SOURCE_ROLLUPS.to_owned(),
            };
            return respond(answer, p.format.as_deref());
        }
        let covered_from = horizon(&state, project, &r, event.as_deref(), r.bucket).await?;
        let mut builder = SeriesBuilder::new(&spec);
        let bot_events = stream(
            &state,
            project,
            &r,
            event.as_deref(),
            covered_from,
            Order::OldestFirst,
            p.include_bots,
            |e| {
                builder.add(e.ts, e.user_key.as_deref(), &e.body);
                ControlFlow::Continue(())
            },
        )
        .await?;
        let built = builder.finish(covered_from);
        SeriesAnswer {
            series: built.series,
            bot_events,
            coverage: covered_from.map(|c| coverage(&state, c, r.to)),
            groups_capped: built.groups_capped,
            source: SOURCE_EVENTS.to_owned(),
        }
    };
    respond(answer, p.format.as_deref())
}

/// The answer as JSON, or as CSV for `format=csv`.
fn respond(answer: SeriesAnswer, format: Option<&str>) -> Result<Response, ApiError> {
    if format == Some("csv") {
        let series = &answer.series;
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
        let csv = with_coverage(csv_response(w, "series.csv")?, answer.coverage.as_ref());
        return Ok(with_bot_events(csv, answer.bot_events));
    }
    let bot_events = answer.bot_events;
    Ok(with_bot_events(Json(answer), bot_events))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SeriesAnswer {
    #[serde(flatten)]
    pub series: analytics::Series,
    /// Bot events in the range (of `event` when given; in the covered part when `coverage` is
    /// set): left out unless `include_bots=true`.
    pub bot_events: i64,
    /// Set when the answer covers only the end of the range: the raw events it reads are at
    /// most PULSELINE_DASHBOARD_SCAN_ROWS, newest first. Buckets before `coverage.from` are
    /// null.
    pub coverage: Option<Coverage>,
    /// More than MAX_GROUPS (1000) distinct `group_by` values: the later ones count under
    /// "(other)".
    pub groups_capped: bool,
    /// What the answer was computed from: `rollups` (the hourly rollups, with those of tracked
    /// properties for a filter or group-by; the part-hours at the range's ends from events)
    /// or `events` (a bounded read of raw events).
    pub source: String,
}

/// [`SeriesAnswer::source`] of an answer summed from rollups.
pub const SOURCE_ROLLUPS: &str = "rollups";
/// [`SeriesAnswer::source`] of an answer read from raw events.
pub const SOURCE_EVENTS: &str = "events";

/// The part of a range an answer read whole.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Coverage {
    /// Start of the covered part (a bucket start; the events table: an event time + 1 ms),
    /// unix milliseconds.
    pub from: i64,
    /// End of the covered part: the range's end, unix milliseconds.
    pub to: i64,
    /// The most raw events one answer reads (PULSELINE_DASHBOARD_SCAN_ROWS).
    pub scan_rows: u32,
    /// What the answer covers and how to see more, for people.
    pub note: String,
}

/// The response header in which a CSV answer says from when it covers the range, when it
/// covers only its end ([`Coverage::from`], unix milliseconds).
pub const COVERED_FROM_HEADER: &str = "pulseline-covered-from";

fn coverage(state: &AppState, from: i64, to: i64) -> Coverage {
    let scan_rows = state.dashboard.config.scan_rows;
    let at = |t: i64| {
        chrono::DateTime::from_timestamp_millis(t)
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default()
    };
    let covered = if from >= to {
        "none".to_owned()
    } else {
        format!("{}\u{2013}{}", at(from), at(to))
    };
    Coverage {
        from,
        to,
        scan_rows,
        note: format!(
            "covers {covered} of the range: a property filter or group-by, a unique count \
             or a bucket under an hour reads at most {scan_rows} events \
             (PULSELINE_DASHBOARD_SCAN_ROWS), newest first; narrow the range or pick an \
             event to see all of it"
        ),
    }
}

fn with_coverage(mut answer: Response, coverage: Option<&Coverage>) -> Response {
    if let Some(c) = coverage
        && let Ok(v) = HeaderValue::from_str(&c.from.to_string())
    {
        answer.headers_mut().insert(COVERED_FROM_HEADER, v);
    }
    answer
}

/// Where a read of `r` newest first runs out of PULSELINE_DASHBOARD_SCAN_ROWS: the first
/// multiple of `grid` (since the epoch) after the newest event it cannot read, or `None`
/// when the whole range fits.
async fn horizon(
    state: &AppState,
    project: ProjectId,
    r: &Range,
    event: Option<&str>,
    grid: i64,
) -> Result<Option<i64>, ApiError> {
    let budget = i64::from(state.dashboard.config.scan_rows);
    let last_unread = state
        .store
        .scan_horizon(project, r.from, r.to, event, budget)
        .await?;
    Ok(last_unread.map(|t| t - t.rem_euclid(grid) + grid))
}

/// Hands the events of `r` from `covered_from` on to `each` (bots only with `include_bots`),
/// until it breaks; returns how many bot events it met.
#[allow(clippy::too_many_arguments)]
async fn stream(
    state: &AppState,
    project: ProjectId,
    r: &Range,
    event: Option<&str>,
    covered_from: Option<i64>,
    order: Order,
    include_bots: bool,
    mut each: impl FnMut(ScannedEvent) -> ControlFlow<()>,
) -> Result<i64, ApiError> {
    let from = covered_from.map_or(r.from, |c| c.max(r.from));
    let mut bots = 0;
    if from < r.to {
        state
            .store
            .stream_events(project, from, r.to, event, order, |e, bot| {
                if bot {
                    bots += 1;
                    if !include_bots {
                        return ControlFlow::Continue(());
                    }
                }
                each(e)
            })
            .await?;
    }
    Ok(bots)
}

async fn rollup_series(
    state: &AppState,
    project: ProjectId,
    r: &Range,
    event: Option<&str>,
    include_bots: bool,
) -> Result<(analytics::Series, i64), ApiError> {
    let buckets = analytics::bucket_starts(r.from, r.to, r.bucket);
    let first = buckets.first().copied().unwrap_or(r.from);
    let from = r.from - r.from.rem_euclid(HOUR_MS);
    let (rows, bot_events): (Vec<(i64, i64)>, i64) = match event {
        Some(name) => {
            let mut rows = state
                .store
                .rollup_counts_of(project, name, from, r.to)
                .await?;
            let bots: HashMap<i64, i64> = state
                .store
                .bot_rollup_counts(project, from, r.to)
                .await?
                .into_iter()
                .filter(|(_, n, _)| n == name)
                .map(|(h, _, n)| (h, n))
                .collect();
            if !include_bots {
                for (hour, n) in &mut rows {
                    *n -= bots.get(hour).copied().unwrap_or(0).min(*n);
                }
            }
            (rows, bots.values().sum())
        }
        None => {
            let (rows, bot_events) = counts(state, project, from, r.to, include_bots).await?;
            let rows = rows.into_iter().map(|(h, _, n)| (h, n)).collect();
            (rows, bot_events)
        }
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
    let series = analytics::Series {
        buckets,
        series: vec![analytics::NamedSeries {
            name: event.unwrap_or("all events").to_owned(),
            values,
        }],
    };
    Ok((series, bot_events))
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

/// The events behind a chart: newest first (the last 200 as JSON; all of them as CSV, within
/// the scan budget).
#[utoipa::path(
    get, path = "/api/dash/projects/{project}/events", tag = "dashboard",
    operation_id = "dashboard_events_table",
    params(ProjectPath, SeriesParams),
    description = "The events behind a chart (`event`, `filter_property`/`filter_value`), \
                   newest first: the last 200 as JSON, all of them with `format=csv` (columns \
                   timestamp, event, user, message_id, properties). The aggregate parameters \
                   are ignored. Bot events are left out unless `include_bots=true`. Reads at \
                   most PULSELINE_DASHBOARD_SCAN_ROWS events, newest first; when the range \
                   holds more, the `pulseline-covered-from` header says from when the rows \
                   cover it. `pulseline-bot-events` counts whole hours of the range.",
    responses(
        (status = 200, content(
            (Vec<EventRow> = "application/json"),
            (String = "text/csv"),
        ), headers(("pulseline-bot-events" = i64,
            description = "Bot events in the range (left out unless include_bots=true)"),
            ("pulseline-covered-from" = i64, description = "Set when the answer covers \
                only the end of the range: from when (unix ms)"))),
        (status = 400, description = "An invalid parameter (says which)", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
        (status = 503, description = "A heavy query: over its time budget (PULSELINE_DASHBOARD_QUERY_TIMEOUT_MS, code query_timeout), or too many running (PULSELINE_DASHBOARD_QUERIES_PER_PROJECT, PULSELINE_DASHBOARD_QUERIES, code overloaded); see Retry-After", body = ErrorBody),
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
    let _slot = state.dashboard.queries.admit(project).await?;
    let r = range(&state, &p.range(), 7)?;
    let event = empty_to_none(&p.event);
    let filter = match (empty_to_none(&p.filter_property), p.filter_value.clone()) {
        (Some(name), Some(value)) => Some((name, value)),
        _ => None,
    };
    let covered_from = horizon(&state, project, &r, event.as_deref(), 1).await?;
    let coverage = covered_from.map(|c| coverage(&state, c, r.to));
    let bot_events = rollup_bot_events(&state, project, &r, event.as_deref()).await?;
    let matching = |e: &ScannedEvent| analytics::passes(&e.body, filter.as_ref());
    if p.format.as_deref() == Some("csv") {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["timestamp", "event", "user", "message_id", "properties"])
            .map_err(csv_error)?;
        let mut failed = None;
        stream(
            &state,
            project,
            &r,
            event.as_deref(),
            covered_from,
            Order::NewestFirst,
            p.include_bots,
            |e| {
                if !matching(&e) {
                    return ControlFlow::Continue(());
                }
                let props = raw_properties(&e.body);
                let row = w.write_record([
                    iso(e.ts),
                    csv_text(&e.name),
                    csv_text(&e.user_key.unwrap_or_default()),
                    csv_text(&e.message_id),
                    csv_text(props.get()),
                ]);
                match row {
                    Ok(()) => ControlFlow::Continue(()),
                    Err(e) => {
                        failed = Some(e);
                        ControlFlow::Break(())
                    }
                }
            },
        )
        .await?;
        if let Some(e) = failed {
            return Err(csv_error(e));
        }
        let csv = with_coverage(csv_response(w, "events.csv")?, coverage.as_ref());
        return Ok(with_bot_events(csv, bot_events));
    }
    let mut rows: Vec<EventRow> = Vec::new();
    stream(
        &state,
        project,
        &r,
        event.as_deref(),
        covered_from,
        Order::NewestFirst,
        p.include_bots,
        |e| {
            if matching(&e) {
                rows.push(EventRow {
                    seq: e.seq,
                    timestamp: e.ts,
                    properties: raw_properties(&e.body),
                    event: e.name,
                    user: e.user_key,
                });
            }
            if rows.len() < TABLE_ROWS {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(())
            }
        },
    )
    .await?;
    Ok(with_bot_events(
        with_coverage(Json(rows).into_response(), coverage.as_ref()),
        bot_events,
    ))
}

/// Bot events of `r` (of one name) by the hourly bot rollup: whole hours, without reading
/// events (the events table stops reading at its 200th row).
async fn rollup_bot_events(
    state: &AppState,
    project: ProjectId,
    r: &Range,
    event: Option<&str>,
) -> Result<i64, ApiError> {
    let from = r.from - r.from.rem_euclid(HOUR_MS);
    Ok(state
        .store
        .bot_rollup_counts(project, from, r.to)
        .await?
        .iter()
        .filter(|(_, name, _)| event.is_none_or(|e| e == name))
        .map(|(_, _, n)| n)
        .sum())
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
