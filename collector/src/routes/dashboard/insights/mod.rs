//! What the dashboard shows, one module per page: overview, explore (series, events, CSV),
//! Web Vitals, funnels, retention, sessions and the live tail. This module holds what they
//! share: the time range, the bot-event count and the hourly counts. Times are unix milliseconds
//! (UTC).

pub mod churn;
pub mod explore;
mod explore_props;
pub mod export;
pub mod funnels;
pub mod live;
pub mod overview;
pub mod retention;
pub mod sessions;
pub mod vitals;

use std::collections::HashMap;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::domain::ProjectId;
use crate::error::ApiError;
use crate::state::AppState;
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
    /// Bucket size in milliseconds (default: picked from the range). At least one minute, at
    /// most 5000 buckets in the range, and at most 253402300799999 (as for a time).
    #[param(minimum = 60_000, maximum = 253402300799999.0)]
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
    if bucket > MAX_TIME_MS {
        return Err(ApiError::BadRequest(format!(
            "bucket ({bucket}) must be at most {MAX_TIME_MS} milliseconds, as a time is"
        )));
    }
    if bucket < 60_000 || span / bucket > MAX_BUCKETS {
        return Err(ApiError::BadRequest(format!(
            "bucket {bucket} ms is too small for this range: at least one minute and at most \
             {MAX_BUCKETS} buckets"
        )));
    }
    Ok(Range { from, to, bucket })
}

/// How many bot events the range (of one name, if given) holds: whole hours from the hourly
/// bot rollup, and only the range's cut edge hours from the events, so the cost stays bounded
/// whatever the range.
async fn bot_events(
    state: &AppState,
    project: ProjectId,
    r: &Range,
    name: Option<&str>,
) -> Result<i64, ApiError> {
    let hour_from = r.from - r.from.rem_euclid(HOUR_MS);
    let rows = state
        .store
        .bot_rollup_counts(project, hour_from, r.to)
        .await?;
    // The whole hours inside the range: [whole_from, whole_to).
    let whole_from = hour_from + HOUR_MS * i64::from(hour_from < r.from);
    let whole_to = r.to - r.to.rem_euclid(HOUR_MS);
    let mut total = 0;
    let (mut head, mut tail) = (false, false);
    for (hour, n, count) in &rows {
        if *count == 0 || name.is_some_and(|name| name != n) {
            continue;
        }
        if *hour >= whole_from && *hour < whole_to {
            total += count;
        } else if *hour < whole_from {
            head = true;
        } else {
            tail = true;
        }
    }
    // The edges hold only the part of an hour inside the range: count those events. A range
    // inside one hour is all edge.
    let edges = if whole_from >= whole_to {
        [(head || tail).then_some((r.from, r.to)), None]
    } else {
        [
            head.then_some((r.from, whole_from)),
            tail.then_some((whole_to, r.to)),
        ]
    };
    for (from, to) in edges.into_iter().flatten() {
        total += state
            .store
            .count_bot_events(project, from, to, name)
            .await?;
    }
    Ok(total)
}

/// The response header in which every insight answer says how many bot events its range
/// holds (left out unless `include_bots=true`); JSON objects also carry it as `bot_events`.
pub const BOT_EVENTS_HEADER: &str = "pulseline-bot-events";

/// `answer` with the [`BOT_EVENTS_HEADER`].
fn with_bot_events(answer: impl IntoResponse, bot_events: i64) -> Response {
    ([(BOT_EVENTS_HEADER, bot_events.to_string())], answer).into_response()
}

/// Whether bot events (`context.bot = true`, docs/web-analytics.md) count.
#[derive(Debug, Clone, Copy, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BotsParams {
    /// Count events from crawlers and automated browsers too (default false).
    #[serde(default)]
    pub include_bots: bool,
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
