//! What a digest says: one week (Monday 00:00 to Monday 00:00 in the project's time zone)
//! against the week before, read from the rollups and indexed tables, never from a scan of
//! the week's events.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

use crate::analytics::{self, VITALS, WEB_VITAL_EVENT};
use crate::domain::ProjectId;
use crate::store::{Store, StoreError};

/// Rows in the top events and top pages lists.
pub const DIGEST_TOP_ROWS: usize = 5;
/// Web Vital samples read per week for the p75 (there is no vitals rollup yet): beyond it the
/// p75 is of the first samples of the week, and the digest says so.
pub const DIGEST_MAX_VITAL_SAMPLES: i64 = 20_000;

const DAY_MS: i64 = 86_400_000;

/// The project's time zone; the settings API accepts only IANA names, so UTC is a fallback
/// for a name a newer tz database dropped.
pub fn project_tz(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap_or(TimeZone::UTC)
}

/// A reported week and the one before it, as unix ms: `[previous, start)` and `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Week {
    pub previous: i64,
    pub start: i64,
    pub end: i64,
}

/// The last complete week before `now` in `tz`: from the Monday before last to last Monday,
/// both at 00:00 local time (days that a DST change shortens or lengthens included).
pub fn last_complete_week(now: DateTime<Utc>, tz: &TimeZone) -> Result<Week, jiff::Error> {
    let today = Timestamp::from_millisecond(now.timestamp_millis())?
        .to_zoned_datetime(tz.clone())
        .date();
    let monday = today.checked_sub(i64::from(today.weekday().to_monday_zero_offset()).days())?;
    let midnight = |d: Date| -> Result<i64, jiff::Error> {
        Ok(d.to_zoned_datetime(tz.clone())?
            .timestamp()
            .as_millisecond())
    };
    Ok(Week {
        previous: midnight(monday.checked_sub(14.days())?)?,
        start: midnight(monday.checked_sub(7.days())?)?,
        end: midnight(monday)?,
    })
}

/// A number this week and the week before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub this_week: i64,
    pub last_week: i64,
}

/// A row of a top list (an event name, a page path: attacker text, escaped where shown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ranked {
    pub name: String,
    pub this_week: i64,
    pub last_week: i64,
}

/// One Web Vital's p75 this week and the week before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VitalChange {
    pub metric: String,
    pub unit: String,
    pub this_week: Option<f64>,
    pub last_week: Option<f64>,
    pub samples: u64,
    /// More samples than [`DIGEST_MAX_VITAL_SAMPLES`] in one of the weeks.
    pub truncated: bool,
}

/// Events stored this calendar month (UTC) against the plan's monthly quota.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaUse {
    pub month: String,
    pub used: i64,
    /// None: the plan has no limit.
    pub limit: Option<i64>,
}

/// Everything one digest shows; stored with its week (`digest_weeks.content`) so each
/// recipient and every retry gets the same numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Digest {
    pub project: String,
    pub timezone: String,
    pub week_start: i64,
    pub week_end: i64,
    pub events: Change,
    pub active_users: Change,
    pub top_events: Vec<Ranked>,
    pub top_pages: Vec<Ranked>,
    pub vitals: Vec<VitalChange>,
    pub alerts_fired: Change,
    pub alerts_resolved: Change,
    pub quota: QuotaUse,
}

/// The project's digest of `week` (quota use as of `now`).
pub async fn compute(
    store: &Store,
    project: ProjectId,
    name: &str,
    timezone: &str,
    week: Week,
    now: DateTime<Utc>,
) -> Result<Digest, StoreError> {
    let this = event_counts(store, project, week.start, week.end).await?;
    let last = event_counts(store, project, week.previous, week.start).await?;
    // Track events only: page views have their own list and Web Vitals their own section.
    let mut top_events: Vec<Ranked> = this
        .iter()
        .filter(|(name, _)| !name.starts_with('$') && name.as_str() != WEB_VITAL_EVENT)
        .map(|(name, n)| Ranked {
            name: name.clone(),
            this_week: *n,
            last_week: last.get(name).copied().unwrap_or(0),
        })
        .collect();
    top_events.sort_by(|a, b| b.this_week.cmp(&a.this_week).then(a.name.cmp(&b.name)));
    top_events.truncate(DIGEST_TOP_ROWS);

    let mut top_pages = Vec::new();
    for (path, views) in store
        .top_pages(project, week.start, week.end, DIGEST_TOP_ROWS as i64)
        .await?
    {
        let before = store
            .page_views_of(project, &path, week.previous, week.start)
            .await?;
        top_pages.push(Ranked {
            name: path,
            this_week: views,
            last_week: before,
        });
    }

    // Active users come by UTC day: the seven days nearest to the local week.
    let day = |t: i64| (t + DAY_MS / 2).div_euclid(DAY_MS) * DAY_MS;
    let active_users = Change {
        this_week: store
            .active_users_between(project, day(week.start), day(week.end))
            .await?,
        last_week: store
            .active_users_between(project, day(week.previous), day(week.start))
            .await?,
    };
    let alerts_this = store.alert_counts(project, week.start, week.end).await?;
    let alerts_last = store
        .alert_counts(project, week.previous, week.start)
        .await?;
    let plan_limit = store
        .digest_project(project)
        .await?
        .and_then(|(_, _, limit)| limit);
    Ok(Digest {
        project: name.to_owned(),
        timezone: timezone.to_owned(),
        week_start: week.start,
        week_end: week.end,
        events: Change {
            this_week: this.values().sum(),
            last_week: last.values().sum(),
        },
        active_users,
        top_events,
        top_pages,
        vitals: vitals(store, project, week).await?,
        alerts_fired: Change {
            this_week: alerts_this.fired,
            last_week: alerts_last.fired,
        },
        alerts_resolved: Change {
            this_week: alerts_this.resolved,
            last_week: alerts_last.resolved,
        },
        quota: QuotaUse {
            month: crate::store::month_of(now),
            used: store.usage_this_month(project, now).await?,
            limit: plan_limit,
        },
    })
}

/// Events per rollup name in `[from, to)` (hours starting in it), bots left out.
async fn event_counts(
    store: &Store,
    project: ProjectId,
    from: i64,
    to: i64,
) -> Result<HashMap<String, i64>, StoreError> {
    let mut names: HashMap<String, i64> = HashMap::new();
    for (_, name, n) in store.rollup_counts(project, from, to).await? {
        *names.entry(name).or_default() += n;
    }
    for (_, name, n) in store.bot_rollup_counts(project, from, to).await? {
        if let Some(total) = names.get_mut(&name) {
            *total -= n;
        }
    }
    names.retain(|_, n| *n > 0);
    Ok(names)
}

async fn vitals(
    store: &Store,
    project: ProjectId,
    week: Week,
) -> Result<Vec<VitalChange>, StoreError> {
    let read = |from: i64, to: i64| async move {
        let mut rows = store
            .scan_events(
                project,
                from,
                to,
                Some(WEB_VITAL_EVENT),
                false, // bots left out, as everywhere in the digest
                DIGEST_MAX_VITAL_SAMPLES + 1,
            )
            .await?;
        let truncated = rows.len() as i64 > DIGEST_MAX_VITAL_SAMPLES;
        rows.truncate(DIGEST_MAX_VITAL_SAMPLES as usize);
        let report = analytics::web_vitals(&rows, from, to, (to - from).max(1));
        Ok::<_, StoreError>((report, truncated))
    };
    let (this, this_cut) = read(week.start, week.end).await?;
    let (last, last_cut) = read(week.previous, week.start).await?;
    Ok(VITALS
        .iter()
        .filter_map(|v| {
            let now = this.metrics.iter().find(|m| m.vital.metric == v.metric)?;
            let before = last.metrics.iter().find(|m| m.vital.metric == v.metric)?;
            (now.overall.samples > 0 || before.overall.samples > 0).then(|| VitalChange {
                metric: v.metric.to_owned(),
                unit: v.unit.to_owned(),
                this_week: now.overall.p75,
                last_week: before.overall.p75,
                samples: now.overall.samples,
                truncated: this_cut || last_cut,
            })
        })
        .collect())
}

/// "good", "needs improvement" or "poor" for a p75, by the web.dev thresholds.
pub fn rating(metric: &str, p75: f64) -> &'static str {
    match VITALS.iter().find(|v| v.metric == metric) {
        Some(v) if p75 <= v.good => "good",
        Some(v) if p75 > v.poor => "poor",
        Some(_) => "needs improvement",
        None => "unrated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_complete_week_runs_monday_to_monday_in_the_project_zone() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        // Wednesday 2 December 2026, 10:00 UTC.
        let now = "2026-12-02T10:00:00Z".parse().unwrap();
        let w = last_complete_week(now, &tz).unwrap();
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap().timestamp_millis();
        assert_eq!(w.start, at("2026-11-22T23:00:00Z"));
        assert_eq!(w.end, at("2026-11-29T23:00:00Z"));
        assert_eq!(w.previous, at("2026-11-15T23:00:00Z"));
        // Just after local Monday midnight (Sunday 23:30 UTC) the week that just ended is it.
        let w = last_complete_week("2026-11-29T23:30:00Z".parse().unwrap(), &tz).unwrap();
        assert_eq!(w.end, at("2026-11-29T23:00:00Z"));
        // Across the end of summer time (25 October 2026) the week is an hour longer.
        let w = last_complete_week("2026-10-27T12:00:00Z".parse().unwrap(), &tz).unwrap();
        assert_eq!(w.end - w.start, 7 * DAY_MS + 3_600_000);
    }

    #[test]
    fn ratings_follow_the_web_vitals_thresholds() {
        assert_eq!(rating("LCP", 2_500.0), "good");
        assert_eq!(rating("LCP", 3_000.0), "needs improvement");
        assert_eq!(rating("LCP", 4_001.0), "poor");
        assert_eq!(rating("CLS", 0.05), "good");
    }
}
