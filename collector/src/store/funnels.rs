//! Funnels' read (issue 20), from the per-user-event-day rollup `user_event_days` (migration
//! 0039, bots left out at ingest) instead of the range's events, with the answer of
//! `analytics::funnel`: per user, the first occurrence of step 1 in the range, then for each
//! next step its first occurrence after the previous step's (events in `(timestamp, seq)`
//! order, as the scan reads them), within the window of step 1.
//!
//! One step at a time, for every user at once. Step 1 is a grouped read of its rollup rows,
//! [`USERS_PER_READ`] users per statement. Step k+1 seeks, for each user who reached step k at
//! time `t`, their rollup rows of the step from `t`'s day to the window's end (one index seek
//! per user, the users bound as a JSON array, [`USERS_PER_READ`] per statement); the range's
//! partial edge days come from the events, grouped per user, once per step. The first of a
//! user's days that is not over before `t` settles the step at its `first_ts`, unless that day
//! also began before `t` (the user did the step both before and after the previous one that
//! day). If that day ends after `t` within the window, the step is reached and its time is
//! read only when step k+2's first span could begin by that day's end (never after the last
//! step); the other such users' times are read from the step's events in one pass over the
//! union of their `[t, day's last]` intervals.
//!
//! Memory: a map of the users who reached the current step (their key and a few integers), at
//! most the users with a step-1 event in the range; no user's events are held.

mod reads;
mod steps;

use std::collections::BTreeMap;

use reads::Reader;
use steps::Step;

use super::{DAY_MS, Store, StoreError, Who};
use crate::domain::{Message, ProjectId};

/// Message types other than track: their rollup name is `$` and the type.
const OTHER_TYPES: [&str; 5] = ["identify", "page", "screen", "group", "alias"];

/// Users whose next step one statement looks up: bounds the JSON array the statement binds.
const USERS_PER_READ: usize = 5_000;

/// The range's parts: whole UTC days from the rollup, the partial days at its edges from the
/// events.
struct Parts {
    days: (i64, i64),
    edges: [(i64, i64); 2],
}

impl Parts {
    fn new(from: i64, to: i64) -> Self {
        let ceil_day = from + (DAY_MS - from.rem_euclid(DAY_MS)) % DAY_MS;
        let floor_day = to - to.rem_euclid(DAY_MS);
        let head_end = ceil_day.min(to);
        Self {
            days: (ceil_day, floor_day),
            edges: [(from, head_end), (floor_day.max(head_end), to)],
        }
    }

    fn edges(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.edges.iter().copied().filter(|(lo, hi)| lo < hi)
    }
}

/// `user_event_days`' key: project, rollup name, user key, day.
pub(super) type DayKey<'a> = (i64, String, &'a str, i64);

/// One commit's events of a [`DayKey`]: how many, the first, second and last timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DayEvents {
    pub(super) events: i64,
    pub(super) first: i64,
    /// None while there is one event.
    pub(super) second: Option<i64>,
    pub(super) last: i64,
}

impl DayEvents {
    fn new(ts: i64) -> Self {
        Self {
            events: 1,
            first: ts,
            second: None,
            last: ts,
        }
    }

    /// Adds an event stored after the others: at its timestamp it comes after them in the
    /// scan's `(timestamp, seq)` order, so it becomes the first only when strictly earlier.
    fn add(&mut self, ts: i64) {
        self.events += 1;
        if ts < self.first {
            self.second = Some(self.first);
            self.first = ts;
        } else if self.second.is_none_or(|s| ts < s) {
            self.second = Some(ts);
        }
        self.last = self.last.max(ts);
    }
}

/// One commit's events, summed per [`DayKey`] by the ingest commits of both backends from the
/// messages they stored.
#[derive(Default)]
pub(super) struct UserEventDays<'a>(pub(super) BTreeMap<DayKey<'a>, DayEvents>);

impl<'a> UserEventDays<'a> {
    /// Counts a stored message, unless it has no user. The caller keeps bots' apart
    /// ([`UserEventDays::of_commit`]).
    pub(super) fn add(&mut self, project: i64, m: &'a Message) {
        let Some(user) = m.user_id.as_deref().or(m.anonymous_id.as_deref()) else {
            return;
        };
        let ts = super::millis(m.timestamp);
        let key = (
            project,
            super::rollup_name(m),
            user,
            ts - ts.rem_euclid(DAY_MS),
        );
        self.0
            .entry(key)
            .and_modify(|day| day.add(ts))
            .or_insert_with(|| DayEvents::new(ts));
    }
}

impl<'a> UserEventDays<'a> {
    /// The rows of the stored messages, people's and bots' apart (`user_event_days` and
    /// `user_event_days_bots`, migration 0052).
    pub(super) fn of_commit(
        messages: impl Iterator<Item = (i64, &'a Message)>,
    ) -> [(Who, Self); 2] {
        let mut days = Who::BOTH.map(|who| (who, Self::default()));
        for (project, m) in messages {
            days[usize::from(m.bot)].1.add(project, m);
        }
        days
    }
}

/// The upsert of one commit's row into `table`, both backends: `$1`–`$8` are project, name,
/// user, day, events, first, second and last time. The second of a stored row and a commit's
/// is the smaller of the larger first and the two seconds; a stored row of several events
/// without one is unknown (migration 0054 left a day raw retention had cut) and stays so.
pub(super) fn upsert_sql(table: &str, backend: super::Backend) -> String {
    let (least, greatest) = match backend {
        super::Backend::Sqlite => ("MIN", "MAX"),
        super::Backend::Postgres => ("LEAST", "GREATEST"),
    };
    let values = match backend {
        super::Backend::Sqlite => "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        super::Backend::Postgres => {
            "SELECT * FROM UNNEST($1::INT8[], $2::TEXT[], $3::TEXT[], $4::INT8[], $5::INT8[],
                                  $6::INT8[], $7::INT8[], $8::INT8[])"
        }
    };
    format!(
        "INSERT INTO {table}
             (project_id, name, user_key, day, events, first_ts, second_ts, last_ts)
         {values}
         ON CONFLICT (project_id, name, user_key, day) DO UPDATE SET
             events = {table}.events + excluded.events,
             first_ts = {least}({table}.first_ts, excluded.first_ts),
             second_ts = CASE WHEN {table}.events > 1 AND {table}.second_ts IS NULL THEN NULL
                 ELSE {least}({greatest}({table}.first_ts, excluded.first_ts),
                              COALESCE({table}.second_ts, {none}),
                              COALESCE(excluded.second_ts, {none})) END,
             last_ts = {greatest}({table}.last_ts, excluded.last_ts)",
        none = i64::MAX,
    )
}

impl Store {
    /// How many users reached each of `steps` (in order, each within `window_ms` of the
    /// first) with events in `[from, to)`, bot events left out unless `include_bots` (then
    /// the bots' rollup rows and events count too, a key's people's and bot events being one
    /// user's).
    pub async fn funnel_reached(
        &self,
        project: ProjectId,
        from: i64,
        to: i64,
        steps: &[String],
        window_ms: i64,
        include_bots: bool,
    ) -> Result<Vec<u64>, StoreError> {
        let parts = Parts::new(from, to);
        let mut reader: Reader = with_db!(self, read_pool, |pool| pool.acquire().await?.into());
        let mut users = steps::first_step(
            &mut reader,
            project,
            &parts,
            &steps[0],
            window_ms,
            include_bots,
        )
        .await?;
        let mut reached = vec![0u64; steps.len()];
        reached[0] = users.len() as u64;
        for k in 1..steps.len() {
            if users.is_empty() {
                break;
            }
            let step = Step {
                project,
                before: k.checked_sub(2).map(|b| steps[b].as_str()),
                previous: &steps[k - 1],
                name: &steps[k],
                include_bots,
            };
            step.advance(&mut reader, &parts, &mut users).await?;
            reached[k] = users.len() as u64;
        }
        Ok(reached)
    }
}
