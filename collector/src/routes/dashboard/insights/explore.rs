//! Explore: a chart's series (from the rollups when it can, else from the range's events) and
//! the events behind it, as JSON or CSV.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use super::export::{csv_error, csv_response, csv_text, iso};
use super::{Range, RangeParams, TABLE_ROWS, counts, range, scan, with_bot_events};
use crate::analytics::{self, Agg, SeriesSpec};
use crate::domain::ProjectId;
use crate::domain::account::Role;
use crate::error::{ApiError, ErrorBody};
use crate::routes::dashboard::ProjectPath;
use crate::routes::extract::{ApiQuery, PathIds, Session};
use crate::state::AppState;
use crate::store::HOUR_MS;

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
                   bucket. `format=csv` downloads it (a `bucket` column, one column per series). \
                   Bot events are left out unless `include_bots=true`.",
    responses(
        (status = 200, content(
            (SeriesAnswer = "application/json"),
            (String = "text/csv"),
        ), headers(("pulseline-bot-events" = i64,
            description = "Bot events in the range (left out unless include_bots=true)"))),
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
    let (series, bot_events) = if from_rollups {
        rollup_series(&state, project, &r, event.as_deref(), p.include_bots).await?
    } else {
        let (events, bot_events) =
            scan(&state, project, &r, event.as_deref(), p.include_bots).await?;
        (analytics::series(&events, &spec), bot_events)
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
        return Ok(with_bot_events(csv_response(w, "series.csv")?, bot_events));
    }
    let answer = SeriesAnswer { series, bot_events };
    Ok(with_bot_events(Json(answer), bot_events))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SeriesAnswer {
    #[serde(flatten)]
    pub series: analytics::Series,
    /// Bot events in the range (of `event` when given): left out unless `include_bots=true`.
    pub bot_events: i64,
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

/// The events behind a chart: newest first (the last 200 as JSON; all of them as CSV).
#[utoipa::path(
    get, path = "/api/dash/projects/{project}/events", tag = "dashboard",
    operation_id = "dashboard_events_table",
    params(ProjectPath, SeriesParams),
    description = "The events behind a chart (`event`, `filter_property`/`filter_value`), \
                   newest first: the last 200 as JSON, all of them with `format=csv` (columns \
                   timestamp, event, user, message_id, properties). The aggregate parameters \
                   are ignored. Bot events are left out unless `include_bots=true`.",
    responses(
        (status = 200, content(
            (Vec<EventRow> = "application/json"),
            (String = "text/csv"),
        ), headers(("pulseline-bot-events" = i64,
            description = "Bot events in the range (left out unless include_bots=true)"))),
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
    let (rows, bot_events) = scan(&state, project, &r, event.as_deref(), p.include_bots).await?;
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
        return Ok(with_bot_events(csv_response(w, "events.csv")?, bot_events));
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
    Ok(with_bot_events(Json(rows), bot_events))
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
