//! The funnel's reads: a connection of either backend that streams `(user, a, b, c)` rows, and
//! the statements it runs. Every statement answers a user key, two integers and, for the
//! statements gathered into one array, a third that may be NULL, so one row loop serves them
//! all and a row's user key is borrowed, not copied.

use std::borrow::Cow;

use futures::TryStreamExt;
use sqlx::pool::PoolConnection;
use sqlx::{AssertSqlSafe, Postgres, Row, Sqlite};

use super::OTHER_TYPES;
use crate::store::analytics::is_bot;
use crate::store::{Backend, StoreError, Who};

/// A statement's parameter.
pub(super) enum Bind<'a> {
    Int(i64),
    Text(&'a str),
}

/// One pooled connection of either backend.
pub(super) enum Reader {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

impl From<PoolConnection<Sqlite>> for Reader {
    fn from(c: PoolConnection<Sqlite>) -> Self {
        Self::Sqlite(c)
    }
}

impl From<PoolConnection<Postgres>> for Reader {
    fn from(c: PoolConnection<Postgres>) -> Self {
        Self::Postgres(c)
    }
}

impl Reader {
    pub(super) fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// Runs `sql` with `binds` and hands each row's `(user, a, b, c)` to `row`, streaming (`c`
    /// is None for a statement of three columns).
    pub(super) async fn each(
        &mut self,
        sql: &str,
        binds: &[Bind<'_>],
        mut row: impl FnMut(&str, i64, i64, Option<i64>),
    ) -> Result<(), StoreError> {
        macro_rules! each {
            ($conn:expr) => {{
                let mut query = sqlx::query(AssertSqlSafe(sql.to_owned()));
                for b in binds {
                    query = match b {
                        Bind::Int(v) => query.bind(*v),
                        Bind::Text(s) => query.bind(*s),
                    };
                }
                let mut rows = query.fetch(&mut **$conn);
                while let Some(r) = rows.try_next().await? {
                    let c = if r.len() > 3 { r.try_get(3)? } else { None };
                    row(r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, c);
                }
            }};
        }
        match self {
            Self::Sqlite(c) => each!(c),
            Self::Postgres(c) => {
                // The funnel holds one connection for all its steps: each step gets the time
                // left now, not when the connection was taken.
                if crate::store::budget::budgeted() {
                    crate::store::budget::arm_postgres(c).await?;
                }
                each!(c)
            }
        }
        Ok(())
    }

    /// As [`Reader::each`], for a statement whose rows are bounded by the users (one or a few
    /// per user): on SQLite they are gathered into one JSON array, so that they cross from the
    /// connection's worker thread at once instead of one thread hand-off per row (most of the
    /// funnel's time when they were streamed, see docs/benchmarks.md).
    pub(super) async fn each_gathered(
        &mut self,
        sql: &str,
        binds: &[Bind<'_>],
        mut row: impl FnMut(&str, i64, i64, Option<i64>),
    ) -> Result<(), StoreError> {
        let Self::Sqlite(c) = self else {
            return self.each(sql, binds, row).await;
        };
        let gathered = format!(
            "WITH r(u, a, b, c) AS ({sql}) SELECT json_group_array(json_array(u, a, b, c)) FROM r"
        );
        let mut query = sqlx::query_scalar::<_, String>(AssertSqlSafe(gathered));
        for b in binds {
            query = match b {
                Bind::Int(v) => query.bind(*v),
                Bind::Text(s) => query.bind(*s),
            };
        }
        let json = query.fetch_one(&mut **c).await?;
        let rows: Vec<Gathered<'_>> = serde_json::from_str(&json).map_err(|e| {
            StoreError::Database(sqlx::Error::Decode(
                format!("the funnel's gathered rows: {e}").into(),
            ))
        })?;
        for Gathered(user, a, b, c) in &rows {
            row(user, *a, *b, *c);
        }
        Ok(())
    }
}

/// A row of [`Reader::each_gathered`]'s array; the user key is borrowed unless it had escapes.
#[derive(serde::Deserialize)]
struct Gathered<'a>(#[serde(borrow)] Cow<'a, str>, i64, i64, Option<i64>);

/// Events whose rollup name is the step bound at `p`, as SQL the `(project, event, timestamp)`
/// index serves for a track event (`$page` and the like match by type, through the
/// `(project, timestamp)` one).
fn by_name(name: &str, p: &str) -> String {
    match name.strip_prefix('$') {
        Some(kind) if OTHER_TYPES.contains(&kind) => {
            format!("((type = 'track' AND event = {p}) OR '$' || type = {p})")
        }
        _ => format!("(event = {p} AND type = 'track')"),
    }
}

/// Step 1 from the rollup `table` (people's or bots'): per user after `$5`, the first and last
/// occurrence of step `$2` on the whole days `[$3, $4)`, for the next `$6` users. One row per
/// user, in the key's order (no sort; the statement stops after `$6` groups). User keys are
/// never empty: `''` starts. With bots, each table is read on its own and the caller keeps a
/// user's earliest.
pub(super) fn first_step_days_sql(who: Who) -> String {
    format!(
        "SELECT user_key, MIN(first_ts), MAX(last_ts), CAST(NULL AS BIGINT) FROM {table}
         WHERE project_id = $1 AND name = $2 AND day >= $3 AND day < $4 AND user_key > $5
         GROUP BY user_key ORDER BY user_key LIMIT $6",
        table = who.table("user_event_days")
    )
}

/// A day row's second occurrence (migration 0054): `i64::MAX` when it has one event, NULL
/// when unknown.
const SECOND: &str = "CASE WHEN u.events = 1 THEN 9223372036854775807 ELSE u.second_ts END";

/// Per user of the JSON array `$2` (`[user, day of t, t, deadline]` each), their rollup rows of
/// step `$3` on the whole days `[$4, $5)` that can hold its next occurrence after `t`: from
/// `t`'s day to the deadline's, and not over before `t`. One index seek per user. The fourth
/// column is the day's second occurrence ([`SECOND`]).
pub(super) fn next_days_sql(backend: Backend, include_bots: bool) -> String {
    let arm = |table: &str, cols: &str| match backend {
        // CROSS JOIN keeps the users outside: each is a seek into the key.
        Backend::Sqlite => format!(
            "SELECT {cols}
             FROM json_each($2) AS j CROSS JOIN {table} AS u
             WHERE u.project_id = $1 AND u.name = $3
               AND u.user_key = json_extract(j.value, '$[0]')
               AND u.day >= json_extract(j.value, '$[1]') AND u.day >= $4 AND u.day < $5
               AND u.day <= json_extract(j.value, '$[3]')
               AND u.last_ts >= json_extract(j.value, '$[2]')"
        ),
        Backend::Postgres => format!(
            "SELECT {cols}
             FROM jsonb_array_elements($2::text::jsonb) AS j(v)
             JOIN {table} AS u
               ON u.project_id = $1 AND u.name = $3 AND u.user_key = j.v ->> 0
              AND u.day >= (j.v ->> 1)::bigint AND u.day >= $4 AND u.day < $5
              AND u.day <= (j.v ->> 3)::bigint AND u.last_ts >= (j.v ->> 2)::bigint"
        ),
    };
    if !include_bots {
        return arm(
            "user_event_days",
            &format!("u.user_key, u.first_ts, u.last_ts, {SECOND}"),
        );
    }
    let (least, day_columns) = (
        match backend {
            Backend::Sqlite => "MIN",
            Backend::Postgres => "LEAST",
        },
        format!("u.user_key, u.day, u.first_ts, u.last_ts, {SECOND} AS second"),
    );
    // A day's people's and bots' rows are one span: the step's occurrences that day. A row
    // over before `t` is left out of it, which only moves its first time later when that is
    // after `t` anyway (then it is the first occurrence after `t`).
    // Their second is the second of the union: the smaller of the larger first and the two
    // seconds, unknown if either is.
    format!(
        "SELECT user_key, MIN(first_ts), MAX(last_ts),
                CASE WHEN COUNT(second) < COUNT(*) THEN NULL
                     WHEN COUNT(*) = 1 THEN MIN(second)
                     ELSE {least}(MAX(first_ts), MIN(second)) END
         FROM ({} UNION ALL {}) AS d
         GROUP BY user_key, day",
        arm(Who::People.table("user_event_days"), &day_columns),
        arm(Who::Bots.table("user_event_days"), &day_columns),
    )
}

/// Per user, the first and last event of step `$2` in `[$3, $4)` (a partial day at the range's
/// edge, which the rollup's whole days cannot answer), bots left out unless included.
pub(super) fn part_day_sql(backend: Backend, name: &str, include_bots: bool) -> String {
    format!(
        "SELECT COALESCE(user_id, anonymous_id), MIN(timestamp), MAX(timestamp),
                CAST(NULL AS BIGINT)
         FROM events
         WHERE project_id = $1 AND {by_name} AND timestamp >= $3 AND timestamp < $4
           AND COALESCE(user_id, anonymous_id) IS NOT NULL {bots}
         GROUP BY 1",
        by_name = by_name(name, "$2"),
        bots = bots_out(backend, include_bots),
    )
}

/// The condition that leaves bot events out, unless they are included.
fn bots_out(backend: Backend, include_bots: bool) -> String {
    if include_bots {
        String::new()
    } else {
        format!("AND NOT {}", is_bot(backend))
    }
}

/// Every event of step `$2` in `[$3, $4]`: user, timestamp, seq (bots left out unless
/// included). Read once per step over the times some users' next occurrence is not settled by
/// the rollup.
pub(super) fn events_sql(backend: Backend, name: &str, include_bots: bool) -> String {
    format!(
        "SELECT COALESCE(user_id, anonymous_id), timestamp, seq FROM events
         WHERE project_id = $1 AND {by_name} AND timestamp >= $3 AND timestamp <= $4
           AND COALESCE(user_id, anonymous_id) IS NOT NULL {bots}",
        by_name = by_name(name, "$2"),
        bots = bots_out(backend, include_bots),
    )
}

/// The first event of step `$2` by user `$4` in the millisecond `$3`, in the scan's order.
pub(super) fn first_in_millisecond_sql(backend: Backend, name: &str, include_bots: bool) -> String {
    format!(
        "SELECT COALESCE(user_id, anonymous_id), timestamp, seq FROM events
         WHERE project_id = $1 AND {by_name} AND timestamp = $3
           AND COALESCE(user_id, anonymous_id) = $4 {bots}
         ORDER BY seq LIMIT 1",
        by_name = by_name(name, "$2"),
        bots = bots_out(backend, include_bots),
    )
}
