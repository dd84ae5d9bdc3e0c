//! Funnels' read (issue 20), from the per-user-event-day rollup `user_event_days` (migration
//! 0039, bots left out at ingest) instead of the range's events, with the answer of
//! `analytics::funnel`: per user, the first occurrence of step 1 in the range, then for each
//! next step its first occurrence after the previous step's (events in `(timestamp, seq)`
//! order, as the scan reads them), within the window of step 1.
//!
//! The rollup's rows of the steps' events come in user order, one user's held at a time.
//! Whole UTC days come from the rollup, the range's partial edge days from the events (grouped
//! the same way). A step's first occurrence after time `t` is the `first_ts` of the first day
//! whose `last_ts ≥ t`, except when that day's `first_ts ≤ t` too (the user did the step both
//! before and after the previous one that day): then one lookup in the events, bounded to that
//! day's part from `t` to `last_ts` (and the window), gives it exactly. The work is bounded by
//! the steps' rollup rows in the range plus at most one lookup per user and step.

use std::collections::BTreeMap;

use futures::TryStreamExt;
use sqlx::pool::PoolConnection;
use sqlx::{AssertSqlSafe, Postgres, Row, Sqlite};
use tokio::sync::Mutex;

use super::analytics::is_bot;
use super::{Backend, DAY_MS, Store, StoreError};
use crate::domain::{Message, ProjectId};

/// Message types other than track: their rollup name is `$` and the type.
const OTHER_TYPES: [&str; 5] = ["identify", "page", "screen", "group", "alias"];

/// A funnel holds two read connections at once (the rows it streams and its lookups); taking
/// both under this lock means two funnels can never each hold one and wait for the other's.
static CONNECTION_PAIRS: Mutex<()> = Mutex::const_new(());

/// One user's occurrences of one step's event within one part of the range: a whole UTC day
/// (from the rollup) or the range's part of an edge day (from the events).
#[derive(Debug, Clone, Copy)]
struct Span {
    first: i64,
    last: i64,
}

/// A step's event: its timestamp and, once looked up, its `seq` (the scan's order among
/// events of the same millisecond). Without a seq it is the first of its millisecond.
#[derive(Debug, Clone, Copy)]
struct At {
    ts: i64,
    seq: Option<i64>,
}

/// `user_event_days`' key: project, rollup name, user key, day.
pub(super) type DayKey<'a> = (i64, String, &'a str, i64);

/// One commit's events, first and last timestamp per [`DayKey`], summed by the ingest
/// commits of both backends from the messages they stored.
#[derive(Default)]
pub(super) struct UserEventDays<'a>(pub(super) BTreeMap<DayKey<'a>, (i64, i64, i64)>);

impl<'a> UserEventDays<'a> {
    /// Counts a stored message, unless it is a bot's or has no user.
    pub(super) fn add(&mut self, project: i64, m: &'a Message) {
        let Some(user) = m.user_id.as_deref().or(m.anonymous_id.as_deref()) else {
            return;
        };
        if m.bot {
            return;
        }
        let ts = super::millis(m.timestamp);
        let key = (
            project,
            super::rollup_name(m),
            user,
            ts - ts.rem_euclid(DAY_MS),
        );
        let day = self.0.entry(key).or_insert((0, ts, ts));
        *day = (day.0 + 1, day.1.min(ts), day.2.max(ts));
    }
}

impl Store {
    /// How many users reached each of `steps` (in order, each within `window_ms` of the
    /// first) with events in `[from, to)`, bot events left out.
    pub async fn funnel_reached(
        &self,
        project: ProjectId,
        from: i64,
        to: i64,
        steps: &[String],
        window_ms: i64,
    ) -> Result<Vec<u64>, StoreError> {
        let mut names: Vec<&str> = steps.iter().map(String::as_str).collect();
        names.sort_unstable();
        names.dedup();
        let ceil_day = from + (DAY_MS - from.rem_euclid(DAY_MS)) % DAY_MS;
        let floor_day = to - to.rem_euclid(DAY_MS);
        let head_end = ceil_day.min(to);
        let tail_start = floor_day.max(head_end);
        let mut reached = vec![0u64; steps.len()];
        with_db!(self, read_pool, |pool, backend| {
            let sql = spans_sql(backend, &names);
            let mut query = sqlx::query(AssertSqlSafe(sql))
                .bind(project)
                .bind(ceil_day)
                .bind(floor_day)
                .bind(from)
                .bind(head_end)
                .bind(tail_start)
                .bind(to);
            for name in &names {
                query = query.bind(*name);
            }
            let (mut rows_conn, seek_conn) = {
                let _pair = CONNECTION_PAIRS.lock().await;
                (pool.acquire().await?, pool.acquire().await?)
            };
            let mut seek = Seeker {
                conn: seek_conn.into(),
                project,
                sql: names
                    .iter()
                    .map(|n| ((*n).to_owned(), seek_sql(backend, n)))
                    .collect(),
            };
            let mut rows = query.fetch(&mut *rows_conn);
            let mut user: Option<String> = None;
            let mut spans: Vec<(String, Span)> = Vec::new();
            loop {
                let row = rows.try_next().await?;
                let key: Option<String> = row.as_ref().map(|r| r.try_get(0)).transpose()?;
                if key != user {
                    if let Some(u) = user.take() {
                        let done = steps_done(steps, window_ms, &u, &mut spans, &mut seek).await?;
                        for r in reached.iter_mut().take(done) {
                            *r += 1;
                        }
                    }
                    spans.clear();
                    user = key;
                }
                let Some(row) = row else { break };
                spans.push((
                    row.try_get(1)?,
                    Span {
                        first: row.try_get(2)?,
                        last: row.try_get(3)?,
                    },
                ));
            }
        });
        Ok(reached)
    }
}

/// The funnel's lookups in the events, on a connection of their own.
struct Seeker {
    conn: SeekConnection,
    project: ProjectId,
    /// Each step name with its [`seek_sql`].
    sql: Vec<(String, String)>,
}

enum SeekConnection {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

impl From<PoolConnection<Sqlite>> for SeekConnection {
    fn from(c: PoolConnection<Sqlite>) -> Self {
        Self::Sqlite(c)
    }
}

impl From<PoolConnection<Postgres>> for SeekConnection {
    fn from(c: PoolConnection<Postgres>) -> Self {
        Self::Postgres(c)
    }
}

impl Seeker {
    /// The first event of `name` by `user` after `after` (timestamp, seq) and at or before
    /// `until`: its timestamp and seq.
    async fn first(
        &mut self,
        name: &str,
        user: &str,
        after: (i64, i64),
        until: i64,
    ) -> Result<Option<(i64, i64)>, StoreError> {
        let sql = self
            .sql
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, sql)| sql.clone())
            .unwrap_or_default();
        macro_rules! first {
            ($conn:expr) => {
                sqlx::query_as(AssertSqlSafe(sql))
                    .bind(self.project)
                    .bind(name)
                    .bind(after.0)
                    .bind(after.1)
                    .bind(until)
                    .bind(user)
                    .fetch_optional(&mut **$conn)
                    .await?
            };
        }
        Ok(match &mut self.conn {
            SeekConnection::Sqlite(c) => first!(c),
            SeekConnection::Postgres(c) => first!(c),
        })
    }
}

/// The steps one user reached, from their `spans` of the steps' events (in any order).
async fn steps_done(
    steps: &[String],
    window_ms: i64,
    user: &str,
    spans: &mut [(String, Span)],
    seek: &mut Seeker,
) -> Result<usize, StoreError> {
    spans.sort_unstable_by(|a, b| (&a.0, a.1.first).cmp(&(&b.0, b.1.first)));
    let of = |name: &str| -> &[(String, Span)] {
        let lo = spans.partition_point(|(n, _)| n.as_str() < name);
        let hi = spans.partition_point(|(n, _)| n.as_str() <= name);
        &spans[lo..hi]
    };
    let Some((_, first)) = of(&steps[0]).first() else {
        return Ok(0);
    };
    let start = first.first;
    let deadline = start.saturating_add(window_ms);
    let mut at = At {
        ts: start,
        seq: None,
    };
    let mut done = 1;
    for (k, name) in steps.iter().enumerate().skip(1) {
        let mut next = None;
        for (_, span) in of(name).iter().filter(|(_, s)| s.last >= at.ts) {
            if span.first > at.ts {
                next = Some(At {
                    ts: span.first,
                    seq: None,
                });
                break;
            }
            // The step happened both before (or at) and after the previous one that day: the
            // events say which is the first after it.
            let seq = match at.seq {
                Some(seq) => seq,
                // The first of the previous step's events in its millisecond. Not found: its
                // raw events have expired (rollups outlive them); take it as the last there.
                None => seek
                    .first(&steps[k - 1], user, (at.ts, i64::MIN), at.ts)
                    .await?
                    .map_or(i64::MAX, |(_, seq)| seq),
            };
            at.seq = Some(seq);
            if let Some((ts, seq)) = seek
                .first(name, user, (at.ts, seq), span.last.min(deadline))
                .await?
            {
                next = Some(At { ts, seq: Some(seq) });
                break;
            }
            // Nothing after it within the window that day; yet the day has a later event
            // within the window only when the raw events have expired: then it counts at the
            // day's last one.
            if span.last > at.ts && span.last <= deadline {
                next = Some(At {
                    ts: span.last,
                    seq: None,
                });
                break;
            }
        }
        match next {
            Some(n) if n.ts <= deadline => {
                at = n;
                done += 1;
            }
            _ => break,
        }
    }
    Ok(done)
}

/// The steps' spans in user order: per step name (bound from `$8` on, in `names`' order),
/// that name's rollup rows of the whole days `[$2, $3)`, which the rollup's key already orders
/// by user, and its events of the range's edge parts `[$4, $5)` and `[$6, $7)` grouped per
/// user (through the `(project, event, timestamp)` index, as [`seek_sql`]). Merged by user
/// (SQLite merges a compound ORDER BY; PostgreSQL merge-appends or sorts), one stream.
fn spans_sql(backend: Backend, names: &[&str]) -> String {
    let collate = match backend {
        Backend::Sqlite => "",
        Backend::Postgres => " COLLATE \"C\"",
    };
    let mut arms = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let p = format!("${}", i + 8);
        arms.push(format!(
            "SELECT user_key, name, first_ts, last_ts FROM user_event_days
             WHERE project_id = $1 AND name = {p} AND day >= $2 AND day < $3"
        ));
        for (lo, hi) in [("$4", "$5"), ("$6", "$7")] {
            arms.push(format!(
                "SELECT COALESCE(user_id, anonymous_id){collate} AS user_key,
                        {p}{collate} AS name, MIN(timestamp) AS first_ts,
                        MAX(timestamp) AS last_ts
                 FROM events
                 WHERE project_id = $1 AND {by_name} AND timestamp >= {lo} AND timestamp < {hi}
                   AND COALESCE(user_id, anonymous_id) IS NOT NULL AND NOT {bot}
                 GROUP BY 1",
                by_name = by_name(name, &p),
                bot = is_bot(backend),
            ));
        }
    }
    format!("{} ORDER BY 1", arms.join(" UNION ALL "))
}

/// Events whose rollup name is the step `name` bound at `p`, as SQL the `(project, event,
/// timestamp)` index serves for a track event (`$page` and the like match by type).
fn by_name(name: &str, p: &str) -> String {
    match name.strip_prefix('$') {
        Some(kind) if OTHER_TYPES.contains(&kind) => {
            format!("((type = 'track' AND event = {p}) OR '$' || type = {p})")
        }
        _ => format!("(event = {p} AND type = 'track')"),
    }
}

/// The first event of step `$2` by user `$6` after `($3, $4)` in `(timestamp, seq)` order and
/// at or before `$5`: through the `(project, event, timestamp)` index for a track event, the
/// `(project, timestamp)` one for `$page` and the like. Bot events do not count.
fn seek_sql(backend: Backend, name: &str) -> String {
    let by_name = by_name(name, "$2");
    format!(
        "SELECT timestamp, seq FROM events
         WHERE project_id = $1 AND {by_name} AND timestamp >= $3 AND timestamp <= $5
           AND (timestamp > $3 OR seq > $4)
           AND COALESCE(user_id, anonymous_id) = $6 AND NOT {bot}
         ORDER BY timestamp, seq LIMIT 1",
        bot = is_bot(backend)
    )
}
