//! The PostgreSQL ingest commit's share of `user_sessions` (`crate::store::sessions`).
//!
//! Concurrent commits (four loops per replica, several replicas) may add events of the same
//! user, and a user without sessions has no row to lock, so each commit first takes a
//! transaction-scoped advisory lock per user, in key order (no deadlock: this is the commit's
//! last step, so a holder never waits for another commit). Then one statement reads every
//! user's touchable sessions (an index seek per user), and one delete and one upsert write the
//! differences back.

use sqlx::{PgConnection, Row};

use crate::store::sessions::{
    Change, CommitSessions, HourlyDelta, Session, add_hourly_sql, merge, sessions_table,
    subtract_hourly,
};
use crate::store::{PendingBatch, StoreError, Who};

/// The advisory locks' first key: the two-integer key space, apart from the single-bigint keys
/// of the scheduled jobs. ASCII "SESS" for people's sessions, "SESB" for bots' (migration
/// 0052): every transaction takes people's before bots', each in key order, so the two sets
/// of locks cannot deadlock.
fn lock_space(who: Who) -> i32 {
    match who {
        Who::People => 0x5345_5353,
        Who::Bots => 0x5345_5342,
    }
}

/// The advisory lock key of a user's sessions: FNV-1a of project and user key, stable across
/// builds and replicas (two users sharing one only wait for each other).
fn lock_key(project: i64, user: &str) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in project.to_le_bytes().iter().chain(user.as_bytes()) {
        h = (h ^ u32::from(*b)).wrapping_mul(0x0100_0193);
    }
    h as i32
}

/// Takes the sessions locks of `users` of `project`, in key order, until the transaction ends.
async fn lock(
    tx: &mut PgConnection,
    who: Who,
    keys: impl Iterator<Item = i32>,
) -> Result<(), StoreError> {
    let mut keys: Vec<i32> = keys.collect();
    keys.sort_unstable();
    keys.dedup();
    // UNNEST yields the array in order, and the locks are taken row by row as it does.
    sqlx::query("SELECT pg_advisory_xact_lock($1, k) FROM UNNEST($2::INT4[]) AS k")
        .bind(lock_space(who))
        .bind(&keys)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Adds the messages `is_new` marks as stored by this commit (messages without a user left
/// out) to their users' sessions, bots' to the bots' sessions (migration 0052), in the
/// commit's transaction.
pub(super) async fn record(
    tx: &mut PgConnection,
    batches: &[PendingBatch],
    is_new: &[Vec<bool>],
) -> Result<(), StoreError> {
    let messages = super::ingest::stored(batches, is_new);
    // People's first, then bots': the order every transaction takes the locks in.
    for (who, commit) in CommitSessions::of_commit(messages) {
        if !commit.0.is_empty() {
            record_of(tx, who, commit).await?;
        }
    }
    Ok(())
}

/// One side's sessions (people's or bots').
async fn record_of(
    tx: &mut PgConnection,
    who: Who,
    mut commit: CommitSessions<'_>,
) -> Result<(), StoreError> {
    let table = sessions_table(who);
    lock(tx, who, commit.0.keys().map(|(p, u)| lock_key(*p, u))).await?;
    let (mut projects, mut users, mut lows, mut highs) = (vec![], vec![], vec![], vec![]);
    let mut times = Vec::new();
    for ((project, user), t, (low, high)) in commit.users() {
        projects.push(project);
        users.push(user);
        lows.push(low);
        highs.push(high);
        times.push(t);
    }
    // The touchable run starts at the latest session starting at or before `low` (it may end
    // after it) and ends at the last one starting by `high`.
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT u.i, s.start_ts, s.end_ts, s.events
         FROM UNNEST($1::INT8[], $2::TEXT[], $3::INT8[], $4::INT8[])
              WITH ORDINALITY AS u(p, k, low, high, i)
         CROSS JOIN LATERAL (
             SELECT start_ts, end_ts, events FROM {table}
             WHERE project_id = u.p AND user_key = u.k COLLATE \"C\"
               AND start_ts >= COALESCE(
                   (SELECT MAX(start_ts) FROM {table}
                    WHERE project_id = u.p AND user_key = u.k COLLATE \"C\" AND start_ts <= u.low),
                   u.low)
               AND start_ts <= u.high AND end_ts >= u.low
         ) s
         ORDER BY u.i, s.start_ts"
    )))
    .bind(&projects)
    .bind(&users)
    .bind(&lows)
    .bind(&highs)
    .fetch_all(&mut *tx)
    .await?;
    let mut stored: Vec<Vec<Session>> = vec![Vec::new(); users.len()];
    for row in rows {
        let i: i64 = row.try_get(0)?;
        stored[(i - 1) as usize].push(Session {
            start: row.try_get(1)?,
            end: row.try_get(2)?,
            events: row.try_get(3)?,
        });
    }
    let mut deleted = (Vec::new(), Vec::new(), Vec::new());
    let mut written = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut hourly = HourlyDelta::default();
    for (i, stored) in stored.iter().enumerate() {
        let change = Change::between(stored, &merge(stored, times[i]));
        hourly.add(projects[i], stored, &change);
        for start in change.deleted_starts {
            deleted.0.push(projects[i]);
            deleted.1.push(users[i]);
            deleted.2.push(start);
        }
        for s in change.written {
            written.0.push(projects[i]);
            written.1.push(users[i]);
            written.2.push(s.start);
            written.3.push(s.end);
            written.4.push(s.events);
        }
    }
    if !deleted.0.is_empty() {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} s
             USING UNNEST($1::INT8[], $2::TEXT[], $3::INT8[]) AS d(p, k, start_ts)
             WHERE s.project_id = d.p AND s.user_key = d.k COLLATE \"C\"
               AND s.start_ts = d.start_ts"
        )))
        .bind(&deleted.0)
        .bind(&deleted.1)
        .bind(&deleted.2)
        .execute(&mut *tx)
        .await?;
    }
    if !written.0.is_empty() {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {table} (project_id, user_key, start_ts, end_ts, events)
             SELECT * FROM UNNEST($1::INT8[], $2::TEXT[], $3::INT8[], $4::INT8[], $5::INT8[])
             ON CONFLICT (project_id, user_key, start_ts)
             DO UPDATE SET end_ts = excluded.end_ts, events = excluded.events"
        )))
        .bind(&written.0)
        .bind(&written.1)
        .bind(&written.2)
        .bind(&written.3)
        .bind(&written.4)
        .execute(&mut *tx)
        .await?;
    }
    // In key order, so that commits adding to the same hours lock their rows in one order.
    let (mut keys, mut hours, mut sums) = (vec![], vec![], [vec![], vec![], vec![]]);
    for ((project, hour), delta) in hourly.rows() {
        keys.push(project);
        hours.push(hour);
        for (sum, d) in sums.iter_mut().zip(delta) {
            sum.push(d);
        }
    }
    if !keys.is_empty() {
        sqlx::query(sqlx::AssertSqlSafe(add_hourly_sql(
            who,
            "SELECT * FROM UNNEST($1::INT8[], $2::INT8[], $3::INT8[], $4::INT8[], $5::INT8[])",
        )))
        .bind(&keys)
        .bind(&hours)
        .bind(&sums[0])
        .bind(&sums[1])
        .bind(&sums[2])
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Removes the sessions (people's and bots') of a person's `ids`, under the same locks as
/// ingest, so a commit adding their events cannot write back sessions it read before the
/// delete.
pub(super) async fn delete_person(
    tx: &mut PgConnection,
    project: i64,
    ids: &[String],
) -> Result<u64, StoreError> {
    let mut removed = 0;
    for who in Who::BOTH {
        lock(tx, who, ids.iter().map(|id| lock_key(project, id))).await?;
        let of_person = format!(
            "FROM {} WHERE project_id = $1 AND user_key = ANY($2)",
            sessions_table(who)
        );
        sqlx::query(sqlx::AssertSqlSafe(subtract_hourly(who, &of_person)))
            .bind(project)
            .bind(ids)
            .execute(&mut *tx)
            .await?;
        removed += sqlx::query(sqlx::AssertSqlSafe(format!("DELETE {of_person}")))
            .bind(project)
            .bind(ids)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }
    Ok(removed)
}
