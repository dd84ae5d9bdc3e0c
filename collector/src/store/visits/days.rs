//! Where a time falls in the project's time zone: its local day and hour, the keys of
//! `web_daily` and `web_hourly` (migration 0034).

use std::collections::HashMap;

use crate::store::HOUR_MS;
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// The project's zone, or UTC for a name this collector's tz database lacks (the settings
/// route refuses those; the page reads them as UTC too).
pub(crate) fn zone(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap_or(TimeZone::UTC)
}

/// The unix ms of the local midnight that starts the day holding `ts`.
pub(crate) fn day_of(tz: &TimeZone, ts: i64) -> i64 {
    Timestamp::from_millisecond(ts)
        .ok()
        .and_then(|t| t.to_zoned_datetime(tz.clone()).start_of_day().ok())
        .map_or(ts - ts.rem_euclid(24 * HOUR_MS), |d| {
            d.timestamp().as_millisecond()
        })
}

/// The unix ms of the local midnight after the day starting at `day`.
pub(crate) fn next_day(tz: &TimeZone, day: i64) -> i64 {
    Timestamp::from_millisecond(day)
        .ok()
        .and_then(|t| {
            t.to_zoned_datetime(tz.clone())
                .tomorrow()
                .and_then(|z| z.start_of_day())
                .ok()
        })
        .map_or(day + 24 * HOUR_MS, |d| d.timestamp().as_millisecond())
}

/// The start of the local hour holding `ts` (a half-hour zone's hours start at :30 UTC).
pub(crate) fn hour_of(tz: &TimeZone, ts: i64) -> i64 {
    let offset = Timestamp::from_millisecond(ts)
        .map(|t| i64::from(tz.to_offset(t).seconds()) * 1000)
        .unwrap_or(0);
    ts - (ts + offset).rem_euclid(HOUR_MS)
}

/// The zones of the projects a chunk touches, read once per chunk.
#[derive(Debug, Default)]
pub(crate) struct Zones(HashMap<i64, TimeZone>);

impl Zones {
    /// The SQL that reads the zones of `projects` (integers from our own tables).
    pub(crate) fn sql(projects: impl Iterator<Item = i64>) -> String {
        let list: Vec<String> = projects.map(|p| p.to_string()).collect();
        format!(
            "SELECT id, timezone FROM projects WHERE id IN ({})",
            if list.is_empty() {
                "0".to_owned()
            } else {
                list.join(",")
            }
        )
    }

    pub(crate) fn new(rows: Vec<(i64, String)>) -> Self {
        Self(
            rows.into_iter()
                .map(|(id, name)| (id, zone(&name)))
                .collect(),
        )
    }

    pub(crate) fn of(&self, project: i64) -> TimeZone {
        self.0.get(&project).cloned().unwrap_or(TimeZone::UTC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn days_and_hours_follow_the_zone() {
        let berlin = zone("Europe/Berlin");
        // The spring-forward day has 23 hours.
        let day = day_of(&berlin, ms("2026-03-29T12:00:00Z"));
        assert_eq!(day, ms("2026-03-28T23:00:00Z"));
        assert_eq!(next_day(&berlin, day), ms("2026-03-29T22:00:00Z"));
        let kolkata = zone("Asia/Kolkata");
        assert_eq!(
            day_of(&kolkata, ms("2026-03-10T18:29:00Z")),
            ms("2026-03-09T18:30:00Z")
        );
        assert_eq!(
            hour_of(&kolkata, ms("2026-03-10T18:29:00Z")),
            ms("2026-03-10T17:30:00Z")
        );
        assert_eq!(
            hour_of(&TimeZone::UTC, ms("2026-03-10T18:29:00Z")),
            ms("2026-03-10T18:00:00Z")
        );
    }
}
