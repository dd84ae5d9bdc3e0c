//! Sessions kept at ingest (issue 20, migration 0042): per (project, user key) the user's
//! sessions — runs of events with no silence over [`SESSION_GAP_MS`], the definition of
//! `analytics::sessions` — in `user_sessions`, maintained by both ingest commits, so the
//! Sessions page is one aggregate over the sessions that start in its range, whatever the
//! range holds.
//!
//! A commit groups the events it stored by user (bots and events without a user left out, as in
//! every analytics rollup), reads that user's stored sessions the new events can touch (those
//! ending at or after the earliest new event minus the gap and starting at or before the latest
//! plus the gap: a contiguous run, since one user's sessions never overlap), merges them with
//! the new events ([`merge`]: a late event may extend a session, move its start, or bridge two
//! into one) and writes back the difference ([`Change`]). Person delete removes the person's
//! sessions; plan retention removes the sessions that ended before its cutoff day; raw-event
//! retention keeps them, like the other rollups.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{HOUR_MS, Store, StoreError, Who};
use crate::analytics::{SESSION_GAP_MS, SessionStats};
use crate::domain::{Message, ProjectId};

/// One stored session: its first and last event's time (unix ms) and how many events it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Session {
    pub(super) start: i64,
    pub(super) end: i64,
    pub(super) events: i64,
}

/// One commit's stored events, their times per (project, user key), each user's sorted.
#[derive(Default)]
pub(super) struct CommitSessions<'a>(pub(super) BTreeMap<(i64, &'a str), Vec<i64>>);

impl<'a> CommitSessions<'a> {
    /// Counts a stored message, unless it has no user. The caller keeps bots' apart
    /// ([`CommitSessions::of_commit`]).
    pub(super) fn add(&mut self, project: i64, m: &'a Message) {
        let Some(user) = m.user_id.as_deref().or(m.anonymous_id.as_deref()) else {
            return;
        };
        self.0
            .entry((project, user))
            .or_default()
            .push(super::millis(m.timestamp));
    }

    /// The stored messages' times, people's and bots' apart (`user_sessions` and
    /// `user_sessions_bots`, migration 0052: a bot's sessions are of its bot events alone).
    pub(super) fn of_commit(
        messages: impl Iterator<Item = (i64, &'a Message)>,
    ) -> [(Who, Self); 2] {
        let mut commits = Who::BOTH.map(|who| (who, Self::default()));
        for (project, m) in messages {
            commits[usize::from(m.bot)].1.add(project, m);
        }
        commits
    }

    /// Each user's times sorted, and the span of stored sessions they may touch:
    /// `(first − gap, last + gap)`.
    pub(super) fn users(
        &mut self,
    ) -> impl Iterator<Item = ((i64, &'a str), &[i64], (i64, i64))> + '_ {
        self.0.iter_mut().map(|(key, times)| {
            times.sort_unstable();
            let span = (
                times[0].saturating_sub(SESSION_GAP_MS),
                times[times.len() - 1].saturating_add(SESSION_GAP_MS),
            );
            (*key, &times[..], span)
        })
    }
}

/// The user's sessions after adding `times` (sorted) to `stored` (sorted by start, disjoint:
/// the stored sessions the new events may touch). A session is a chain of events each at most
/// [`SESSION_GAP_MS`] after the previous one, so two chains join exactly when the gap between
/// them is at most that: merging whole sessions as intervals gives the sessions of all their
/// events.
pub(super) fn merge(stored: &[Session], times: &[i64]) -> Vec<Session> {
    let mut items: Vec<Session> = stored.to_vec();
    items.extend(times.iter().map(|&t| Session {
        start: t,
        end: t,
        events: 1,
    }));
    items.sort_unstable_by_key(|s| (s.start, s.end));
    let mut merged: Vec<Session> = Vec::with_capacity(stored.len() + 1);
    for s in items {
        match merged.last_mut() {
            Some(last) if s.start - last.end <= SESSION_GAP_MS => {
                last.end = last.end.max(s.end);
                last.events += s.events;
            }
            _ => merged.push(s),
        }
    }
    merged
}

/// What to write for one user: the stored sessions whose start no merged session keeps (to
/// delete) and the merged sessions that differ from the stored ones (to insert or update by
/// start). Most commits extend an open session: one update.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Change {
    pub(super) deleted_starts: Vec<i64>,
    pub(super) written: Vec<Session>,
}

impl Change {
    pub(super) fn between(stored: &[Session], merged: &[Session]) -> Self {
        Self {
            deleted_starts: stored
                .iter()
                .filter(|s| !merged.iter().any(|m| m.start == s.start))
                .map(|s| s.start)
                .collect(),
            written: merged
                .iter()
                .filter(|m| !stored.contains(m))
                .copied()
                .collect(),
        }
    }
}

/// The UTC hour a session starting at `start` counts in, in `sessions_hourly`.
fn hour_of(start: i64) -> i64 {
    start - start.rem_euclid(HOUR_MS)
}

/// The SQL of [`hour_of`] over a column (`%` truncates towards zero in both databases).
macro_rules! hour_sql {
    ($col:literal) => {
        concat!($col, " - ((", $col, " % 3600000) + 3600000) % 3600000")
    };
}

/// What one commit changes in `sessions_hourly`: per (project, hour), the differences of
/// sessions, summed length and bounces, from the users' [`Change`]s.
#[derive(Default)]
pub(super) struct HourlyDelta(BTreeMap<(i64, i64), [i64; 3]>);

impl HourlyDelta {
    /// Takes out the stored sessions `change` deletes or rewrites and adds what it writes.
    pub(super) fn add(&mut self, project: i64, stored: &[Session], change: &Change) {
        for s in stored {
            let replaced = change.deleted_starts.contains(&s.start)
                || change.written.iter().any(|w| w.start == s.start);
            if replaced {
                self.apply(project, s, -1);
            }
        }
        for s in &change.written {
            self.apply(project, s, 1);
        }
    }

    fn apply(&mut self, project: i64, s: &Session, sign: i64) {
        let row = self.0.entry((project, hour_of(s.start))).or_default();
        row[0] += sign;
        row[1] += sign * (s.end - s.start);
        row[2] += sign * i64::from(s.events == 1);
    }

    /// The rows that change, in key order (the order PostgreSQL commits lock them in).
    pub(super) fn rows(&self) -> impl Iterator<Item = ((i64, i64), [i64; 3])> + '_ {
        self.0
            .iter()
            .filter(|(_, d)| **d != [0; 3])
            .map(|(k, d)| (*k, *d))
    }
}

/// Adds one difference to a `sessions_hourly` row (`$1`–`$5`: project, hour, sessions,
/// length, bounces), both backends; `who` picks people's table or bots'. `values` is
/// `VALUES (…)` or a `SELECT` of the same columns.
pub(super) fn add_hourly_sql(who: Who, values: &str) -> String {
    format!(
        "INSERT INTO {hourly} AS h (project_id, hour, sessions, total_ms, bounces)
         {values}
         ON CONFLICT (project_id, hour) DO UPDATE SET
             sessions = h.sessions + excluded.sessions,
             total_ms = h.total_ms + excluded.total_ms,
             bounces = h.bounces + excluded.bounces",
        hourly = who.table("sessions_hourly"),
    )
}

/// The sessions of `who` (the FROM of a statement over them).
pub(super) fn sessions_table(who: Who) -> &'static str {
    who.table("user_sessions")
}

/// Takes the sessions a delete is about to remove out of the hourly sums of `who`:
/// `{sessions}` is the delete's `FROM user_sessions… WHERE …` (of the same `who`), with its
/// binds. Every row it subtracts from exists (it counts those very sessions).
pub(super) fn subtract_hourly(who: Who, sessions: &str) -> String {
    format!(
        "INSERT INTO {hourly} AS h (project_id, hour, sessions, total_ms, bounces)
         SELECT project_id, {hour}, -COUNT(*), -SUM(end_ts - start_ts),
                -SUM(CASE WHEN events = 1 THEN 1 ELSE 0 END)
         {sessions}
         GROUP BY 1, 2
         ON CONFLICT (project_id, hour) DO UPDATE SET
             sessions = h.sessions + excluded.sessions,
             total_ms = h.total_ms + excluded.total_ms,
             bounces = h.bounces + excluded.bounces",
        hourly = who.table("sessions_hourly"),
        hour = hour_sql!("start_ts"),
    )
}

/// The sessions of `who` plan retention removes (`$1` project, `$2` the cutoff's day): those
/// that ended before it.
pub(super) fn expired_sessions(who: Who) -> String {
    format!(
        "FROM {} WHERE project_id = $1 AND start_ts < $2 AND end_ts < $2",
        sessions_table(who)
    )
}

/// The statements plan retention runs, in one transaction (`$1` project, `$2` the cutoff's
/// day), for people's sessions and bots': the expired sessions' share of the hourly sums,
/// the sessions, and the hours left empty.
pub(super) fn retention_sql() -> Vec<String> {
    Who::BOTH
        .iter()
        .flat_map(|&who| {
            [
                subtract_hourly(who, &expired_sessions(who)),
                format!("DELETE {}", expired_sessions(who)),
                format!(
                    "DELETE FROM {} WHERE project_id = $1 AND hour < $2 AND sessions = 0",
                    who.table("sessions_hourly")
                ),
            ]
        })
        .collect()
}

/// The range aggregate over the sessions themselves, for the partial hours at a range's
/// edges: the sessions that start in `[$2, $3)`.
fn range_stats(who: Who) -> String {
    format!(
        "SELECT COUNT(*) AS sessions,
            CAST(COALESCE(SUM(end_ts - start_ts), 0) AS BIGINT) AS total_ms,
            CAST(COALESCE(SUM(CASE WHEN events = 1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS bounces
        FROM {} WHERE project_id = $1 AND start_ts >= $2 AND start_ts < $3",
        sessions_table(who)
    )
}

/// The same sums over whole hours `[$2, $3)` from `sessions_hourly`: the range's hours, not
/// its sessions.
fn hours_stats(who: Who) -> String {
    format!(
        "SELECT CAST(COALESCE(SUM(sessions), 0) AS BIGINT),
            CAST(COALESCE(SUM(total_ms), 0) AS BIGINT),
            CAST(COALESCE(SUM(bounces), 0) AS BIGINT)
        FROM {} WHERE project_id = $1 AND hour >= $2 AND hour < $3",
        who.table("sessions_hourly")
    )
}

impl Store {
    /// Count, mean length and bounce rate of the sessions (bots left out unless
    /// `include_bots`: then bots' sessions, of their bot events, count too) that start in
    /// `[from, to)`, each whole: one that runs past `to` counts its full length; one that
    /// started before `from` is not counted. The range's whole UTC hours come from
    /// `sessions_hourly` (one row an hour, however many sessions), the part hours at its
    /// edges from the sessions.
    pub async fn session_stats(
        &self,
        project: ProjectId,
        from: i64,
        to: i64,
        include_bots: bool,
    ) -> Result<SessionStats, StoreError> {
        let first_hour = hour_of(from) + if hour_of(from) < from { HOUR_MS } else { 0 };
        let last_hour = hour_of(to);
        let mut reads = Vec::new();
        for &who in Who::counted(include_bots) {
            if first_hour < last_hour {
                reads.push((range_stats(who), from, first_hour));
                reads.push((hours_stats(who), first_hour, last_hour));
                reads.push((range_stats(who), last_hour, to));
            } else {
                reads.push((range_stats(who), from, to));
            }
        }
        let mut totals = [0i64; 3];
        with_db!(self, read_pool, |pool| {
            for (sql, lo, hi) in reads {
                if lo >= hi {
                    continue;
                }
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(project)
                    .bind(lo)
                    .bind(hi)
                    .fetch_one(pool)
                    .await?;
                for (i, total) in totals.iter_mut().enumerate() {
                    *total += row.try_get::<i64, _>(i)?;
                }
            }
        });
        Ok(SessionStats::from_totals(totals[0], totals[1], totals[2]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(start: i64, end: i64, events: i64) -> Session {
        Session { start, end, events }
    }

    const GAP: i64 = SESSION_GAP_MS;

    #[test]
    fn a_late_event_in_the_gap_bridges_two_sessions() {
        let stored = [s(0, 10, 2), s(10 + 2 * GAP, 10 + 2 * GAP, 1)];
        let merged = merge(&stored, &[10 + GAP]);
        assert_eq!(merged, [s(0, 10 + 2 * GAP, 4)]);
        assert_eq!(
            Change::between(&stored, &merged),
            Change {
                deleted_starts: vec![10 + 2 * GAP],
                written: vec![s(0, 10 + 2 * GAP, 4)],
            }
        );
    }

    #[test]
    fn an_event_just_over_the_gap_opens_a_session_and_one_before_moves_the_start() {
        let stored = [s(GAP, GAP + 5, 2)];
        let merged = merge(&stored, &[0, GAP + 5 + GAP + 1]);
        assert_eq!(merged, [s(0, GAP + 5, 3), s(2 * GAP + 6, 2 * GAP + 6, 1)]);
        let change = Change::between(&stored, &merged);
        assert_eq!(change.deleted_starts, [GAP]);
        assert_eq!(change.written, merged);
    }

    #[test]
    fn an_unchanged_session_is_not_written() {
        let stored = [s(0, 0, 1), s(5 * GAP, 5 * GAP, 1)];
        let merged = merge(&stored, &[5 * GAP, 5 * GAP]);
        assert_eq!(
            Change::between(&stored, &merged),
            Change {
                deleted_starts: vec![],
                written: vec![s(5 * GAP, 5 * GAP, 3)],
            }
        );
    }
}
