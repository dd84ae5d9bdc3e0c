//! One person's data (docs/privacy.md): the ids linked to them,
//! their events page by page, deleting them with every row derived from them, and suppression.
//!
//! There is no index on `user_id` (it would double the cost of every insert, see
//! migrations/sqlite/0001), so each of these scans the project's events in `seq` order. Deletion
//! does it in bounded chunks, each a short transaction, so ingest waits at most one chunk.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{AssertSqlSafe, Row};
use utoipa::ToSchema;

use super::{
    HOUR_MS, PostgresStore, RETENTION_CHUNK, SqliteStore, Store, StoreError, StoredEvent,
    from_millis, millis,
};
use crate::domain::ProjectId;

/// Most ids one person may be linked to (by events carrying both a userId and an anonymousId,
/// or by alias). More means ids shared between people (a constant anonymousId, say), and
/// deleting them all would delete other people's data.
pub const MAX_LINKED_IDS: usize = 100;

/// Events per page of an export: one query, and the most rows held in memory at once.
pub const EXPORT_PAGE: i64 = 500;

/// Most suppressions one listing returns.
pub const MAX_SUPPRESSIONS_LISTED: i64 = 1_000;

/// What deleting one person removed or corrected, per table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct PersonDeletion {
    /// Stored events (and, on PostgreSQL, their dedupe ids).
    pub events: u64,
    /// Hourly rollup rows decremented by the removed events (a row that reaches 0 goes).
    pub hourly_rollups: u64,
    /// (day, user) rows of the active-user rollups; each day's user count drops by one.
    pub active_user_days: u64,
    /// The person's latest-active-day rows (WAU/MAU).
    pub users_last_seen: u64,
    /// Event notifications in the outbox (with their delivery attempts).
    pub deliveries: u64,
}

/// One stored id that is suppressed at ingest.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Suppression {
    pub person_id: String,
    pub created_at: DateTime<Utc>,
}

/// The ids linked to a person, or how many there were when over [`MAX_LINKED_IDS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkedIds {
    Ids(Vec<String>),
    TooMany(usize),
}

/// A removed event's columns that the rollups were summed from.
struct Removed {
    name: String,
    timestamp: i64,
    message_id: String,
    /// Counted in `rollups_hourly_bots` too (migration 0023).
    bot: bool,
}

fn removed<R>(r: &R) -> Removed
where
    R: Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let kind: String = r.get("type");
    let event: Option<String> = r.get("event");
    // The rollup name ingest gave it (`super::rollup_name`).
    let name = match event {
        Some(e) if kind == "track" => e,
        _ => format!("${kind}"),
    };
    Removed {
        name,
        timestamp: r.get("timestamp"),
        message_id: r.get("message_id"),
        bot: r.try_get("bot").unwrap_or(false),
    }
}

/// Removed events per (rollup name, hour), in key order: ingest upserts in that order too, so
/// on PostgreSQL the two cannot deadlock.
fn hourly<'a>(rows: impl IntoIterator<Item = &'a Removed>) -> BTreeMap<(&'a str, i64), i64> {
    let mut out = BTreeMap::new();
    for r in rows {
        *out.entry((
            r.name.as_str(),
            r.timestamp - r.timestamp.rem_euclid(HOUR_MS),
        ))
        .or_default() += 1;
    }
    out
}

/// Written once with `$n` placeholders; SQLite runs them with `?n`.
const DECREMENT_HOURLY: &str = "UPDATE rollups_hourly SET events = events - $1 WHERE project_id = $2 AND name = $3 AND hour = $4";
const DROP_EMPTY_HOURLY: &str =
    "DELETE FROM rollups_hourly WHERE project_id = $1 AND name = $2 AND hour = $3 AND events <= 0";
const DECREMENT_BOTS: &str = "UPDATE rollups_hourly_bots SET events = events - $1 WHERE project_id = $2 AND name = $3 AND hour = $4";
const DROP_EMPTY_BOTS: &str = "DELETE FROM rollups_hourly_bots WHERE project_id = $1 AND name = $2 AND hour = $3 AND events <= 0";
const DECREMENT_TOTAL: &str =
    "UPDATE project_usage SET events_total = events_total - $1 WHERE project_id = $2";
const DECREMENT_DAY: &str =
    "UPDATE active_users_days SET users = users - $1 WHERE project_id = $2 AND day = $3";
const DROP_EMPTY_DAY: &str =
    "DELETE FROM active_users_days WHERE project_id = $1 AND day = $2 AND users <= 0";
const SUPPRESS: &str = "INSERT INTO person_suppressions (project_id, person_id, created_at)
     VALUES ($1, $2, $3) ON CONFLICT (project_id, person_id) DO NOTHING";
const LIFT: &str = "DELETE FROM person_suppressions WHERE project_id = $1 AND person_id = $2";
const LIST_SUPPRESSIONS: &str = "SELECT person_id, created_at FROM person_suppressions
     WHERE project_id = $1 AND person_id > $2 ORDER BY person_id LIMIT $3";
const ALL_SUPPRESSIONS: &str = "SELECT project_id, person_id FROM person_suppressions";

/// Days the removed active-user rows were on, with how many per day, in key order.
fn per_day(days: &[i64]) -> BTreeMap<i64, i64> {
    let mut out = BTreeMap::new();
    for d in days {
        *out.entry(*d).or_default() += 1;
    }
    out
}

impl Store {
    /// `ids` and every id linked to them, transitively: the other id of an event that carries
    /// both a userId and an anonymousId, and both ids of an alias.
    pub async fn linked_person_ids(
        &self,
        project: ProjectId,
        ids: &[String],
    ) -> Result<LinkedIds, StoreError> {
        let mut known: Vec<String> = ids.to_vec();
        loop {
            let found = match self {
                Store::Sqlite(s) => s.ids_linked_to(project, &known).await?,
                Store::Postgres(s) => s.ids_linked_to(project, &known).await?,
            };
            let before = known.len();
            for id in found.into_iter().flatten() {
                if !known.contains(&id) {
                    known.push(id);
                }
            }
            if known.len() > MAX_LINKED_IDS {
                return Ok(LinkedIds::TooMany(known.len()));
            }
            if known.len() == before {
                known.sort();
                return Ok(LinkedIds::Ids(known));
            }
        }
    }

    /// Up to `limit` events of the person (any of `ids`) stored after `after_seq`, oldest first.
    pub async fn person_events_page(
        &self,
        project: ProjectId,
        ids: &[String],
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        match self {
            Store::Sqlite(s) => s.person_events_page(project, ids, after_seq, limit).await,
            Store::Postgres(s) => s.person_events_page(project, ids, after_seq, limit).await,
        }
    }

    /// How many events of the person (any of `ids`) are stored: what a deletion would remove.
    pub async fn count_person_events(
        &self,
        project: ProjectId,
        ids: &[String],
    ) -> Result<i64, StoreError> {
        Ok(match self {
            Store::Sqlite(s) => {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM events WHERE project_id = ?1
                       AND (user_id IN (SELECT value FROM json_each(?2))
                            OR anonymous_id IN (SELECT value FROM json_each(?2)))",
                )
                .bind(project)
                .bind(json_ids(ids))
                .fetch_one(s.read_pool())
                .await?
            }
            Store::Postgres(s) => {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM events WHERE project_id = $1
                       AND (user_id = ANY($2) OR anonymous_id = ANY($2))",
                )
                .bind(project)
                .bind(ids)
                .fetch_one(s.read_pool())
                .await?
            }
        })
    }

    /// Deletes every event of the person (any of `ids`, which must already include the linked
    /// ids) and corrects or removes every row derived from them.
    pub async fn delete_person(
        &self,
        project: ProjectId,
        ids: &[String],
    ) -> Result<PersonDeletion, StoreError> {
        match self {
            Store::Sqlite(s) => s.delete_person(project, ids).await,
            Store::Postgres(s) => s.delete_person(project, ids).await,
        }
    }

    pub async fn suppress_persons(
        &self,
        project: ProjectId,
        ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for id in ids {
            with_db!(self, write_pool, |pool| {
                sqlx::query(SUPPRESS)
                    .bind(project)
                    .bind(id.as_str())
                    .bind(millis(now))
                    .execute(pool)
                    .await?
                    .rows_affected()
            });
        }
        Ok(())
    }

    /// `false` when the id was not suppressed.
    pub async fn lift_suppression(&self, project: ProjectId, id: &str) -> Result<bool, StoreError> {
        let done = with_db!(self, write_pool, |pool| {
            sqlx::query(LIFT)
                .bind(project)
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done > 0)
    }

    /// The project's suppressed ids after `after`, in id order, at most
    /// [`MAX_SUPPRESSIONS_LISTED`].
    pub async fn list_suppressions(
        &self,
        project: ProjectId,
        after: &str,
    ) -> Result<Vec<Suppression>, StoreError> {
        let row = |r: (String, i64)| Suppression {
            person_id: r.0,
            created_at: from_millis(r.1),
        };
        let rows: Vec<(String, i64)> = with_db!(self, read_pool, |pool| {
            sqlx::query_as(LIST_SUPPRESSIONS)
                .bind(project)
                .bind(after)
                .bind(MAX_SUPPRESSIONS_LISTED)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(row).collect())
    }

    /// Every project's suppressed ids, for the ingest cache (`crate::privacy`).
    pub async fn all_suppressions(&self) -> Result<Vec<(ProjectId, String)>, StoreError> {
        Ok(with_db!(self, read_pool, |pool| {
            sqlx::query_as(ALL_SUPPRESSIONS).fetch_all(pool).await?
        }))
    }
}

/// A list of ids as SQLite's `json_each` reads it.
fn json_ids(ids: &[String]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
}

impl SqliteStore {
    async fn ids_linked_to(
        &self,
        project: ProjectId,
        ids: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT user_id, anonymous_id,
                    CASE WHEN type = 'alias'
                         THEN CAST(json_extract(body, '$.previousId') AS TEXT) END AS previous_id
             FROM events
             WHERE project_id = ?1
               AND (user_id IN (SELECT value FROM json_each(?2))
                    OR anonymous_id IN (SELECT value FROM json_each(?2))
                    OR (type = 'alias' AND CAST(json_extract(body, '$.previousId') AS TEXT)
                        IN (SELECT value FROM json_each(?2))))",
        )
        .bind(project)
        .bind(json_ids(ids))
        .fetch_all(self.read_pool())
        .await?;
        Ok(rows
            .iter()
            .flat_map(|r| {
                [
                    r.get("user_id"),
                    r.get("anonymous_id"),
                    r.get("previous_id"),
                ]
            })
            .collect())
    }

    async fn person_events_page(
        &self,
        project: ProjectId,
        ids: &[String],
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM events
             WHERE project_id = ?1 AND seq > ?2
               AND (user_id IN (SELECT value FROM json_each(?3))
                    OR anonymous_id IN (SELECT value FROM json_each(?3)))
             ORDER BY seq LIMIT ?4",
        )
        .bind(project)
        .bind(after_seq)
        .bind(json_ids(ids))
        .bind(limit)
        .fetch_all(self.read_pool())
        .await?;
        Ok(rows.iter().map(super::stored_event).collect())
    }

    /// Walks the project's events in ranges of [`RETENTION_CHUNK`] seqs, one short transaction
    /// on the writer each (ingest's turn comes between them). The last range reaches past the
    /// newest event and, in the same transaction, removes the person's active-user rows, so no
    /// event of theirs committed in between can be left without its rollup or the reverse.
    async fn delete_person(
        &self,
        project: ProjectId,
        ids: &[String],
    ) -> Result<PersonDeletion, StoreError> {
        let ids = json_ids(ids);
        let mut report = PersonDeletion::default();
        let first: Option<i64> =
            sqlx::query_scalar("SELECT MIN(seq) FROM events WHERE project_id = ?")
                .bind(project)
                .fetch_one(self.read_pool())
                .await?;
        let mut lo = first.unwrap_or(0);
        loop {
            let mut tx = self.write_pool().begin().await?;
            let newest: i64 =
                sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events WHERE project_id = ?")
                    .bind(project)
                    .fetch_one(&mut *tx)
                    .await?;
            let last = lo.saturating_add(RETENTION_CHUNK) > newest;
            let hi = if last { i64::MAX } else { lo + RETENTION_CHUNK };
            let rows = sqlx::query(
                "DELETE FROM events
                 WHERE project_id = ?1 AND seq >= ?2 AND seq < ?3
                   AND (user_id IN (SELECT value FROM json_each(?4))
                        OR anonymous_id IN (SELECT value FROM json_each(?4)))
                 RETURNING type, event, timestamp, message_id,
                           COALESCE(json_extract(body, '$.context.bot') = 1, 0) AS bot",
            )
            .bind(project)
            .bind(lo)
            .bind(hi)
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?;
            let rows: Vec<Removed> = rows.iter().map(removed).collect();
            if !rows.is_empty() {
                report.events += rows.len() as u64;
                for ((name, hour), n) in hourly(&rows) {
                    sqlx::query(DECREMENT_HOURLY)
                        .bind(n)
                        .bind(project)
                        .bind(name)
                        .bind(hour)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(DROP_EMPTY_HOURLY)
                        .bind(project)
                        .bind(name)
                        .bind(hour)
                        .execute(&mut *tx)
                        .await?;
                    report.hourly_rollups += 1;
                }
                for ((name, hour), n) in hourly(rows.iter().filter(|r| r.bot)) {
                    for (sql, with_n) in [(DECREMENT_BOTS, true), (DROP_EMPTY_BOTS, false)] {
                        let q = sqlx::query(sql);
                        let q = if with_n { q.bind(n) } else { q };
                        q.bind(project)
                            .bind(name)
                            .bind(hour)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                sqlx::query(DECREMENT_TOTAL)
                    .bind(rows.len() as i64)
                    .bind(project)
                    .execute(&mut *tx)
                    .await?;
                let messages = json_ids(
                    &rows
                        .iter()
                        .map(|r| r.message_id.clone())
                        .collect::<Vec<_>>(),
                );
                report.deliveries += delete_sqlite_deliveries(&mut tx, project, &messages).await?;
            }
            if last {
                let days: Vec<i64> = sqlx::query_scalar(
                    "DELETE FROM active_users_daily
                     WHERE project_id = ?1 AND user_key IN (SELECT value FROM json_each(?2))
                     RETURNING day",
                )
                .bind(project)
                .bind(&ids)
                .fetch_all(&mut *tx)
                .await?;
                report.active_user_days = days.len() as u64;
                for (day, n) in per_day(&days) {
                    sqlx::query(DECREMENT_DAY)
                        .bind(n)
                        .bind(project)
                        .bind(day)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(DROP_EMPTY_DAY)
                        .bind(project)
                        .bind(day)
                        .execute(&mut *tx)
                        .await?;
                }
                report.users_last_seen = sqlx::query(
                    "DELETE FROM users_last_seen
                     WHERE project_id = ?1 AND user_key IN (SELECT value FROM json_each(?2))",
                )
                .bind(project)
                .bind(&ids)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                // The ingest thread remembers which (day, user) rows exist; these no longer do,
                // and the person's next event must add theirs again. Ingest cannot commit
                // before this transaction ends: it waits for the writer we hold.
                self.forget_active_users();
                tx.commit().await?;
                return Ok(report);
            }
            tx.commit().await?;
            lo = hi;
        }
    }
}

/// Event notifications of the removed events (`event:<category id>:<messageId>`, see
/// `alerting::categories`) and their attempts; the deliveries removed.
async fn delete_sqlite_deliveries(
    tx: &mut sqlx::SqliteConnection,
    project: ProjectId,
    messages: &str,
) -> Result<u64, StoreError> {
    const OF_MESSAGES: &str = "SELECT id FROM deliveries
         WHERE project_id = ?1 AND source_key LIKE 'event:%'
           AND substr(source_key, 7 + instr(substr(source_key, 7), ':'))
               IN (SELECT value FROM json_each(?2))";
    sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM delivery_attempts WHERE delivery_id IN ({OF_MESSAGES})"
    )))
    .bind(project)
    .bind(messages)
    .execute(&mut *tx)
    .await?;
    Ok(sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM deliveries WHERE id IN ({OF_MESSAGES})"
    )))
    .bind(project)
    .bind(messages)
    .execute(&mut *tx)
    .await?
    .rows_affected())
}

impl PostgresStore {
    async fn ids_linked_to(
        &self,
        project: ProjectId,
        ids: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT user_id, anonymous_id,
                    CASE WHEN type = 'alias' THEN body::jsonb ->> 'previousId' END AS previous_id
             FROM events
             WHERE project_id = $1
               AND (user_id = ANY($2) OR anonymous_id = ANY($2)
                    OR (type = 'alias' AND (body::jsonb ->> 'previousId') = ANY($2)))",
        )
        .bind(project)
        .bind(ids)
        .fetch_all(self.read_pool())
        .await?;
        Ok(rows
            .iter()
            .flat_map(|r| {
                [
                    r.get("user_id"),
                    r.get("anonymous_id"),
                    r.get("previous_id"),
                ]
            })
            .collect())
    }

    async fn person_events_page(
        &self,
        project: ProjectId,
        ids: &[String],
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM events
             WHERE project_id = $1 AND seq > $2 AND (user_id = ANY($3) OR anonymous_id = ANY($3))
             ORDER BY seq LIMIT $4",
        )
        .bind(project)
        .bind(after_seq)
        .bind(ids)
        .bind(limit)
        .fetch_all(self.read_pool())
        .await?;
        Ok(rows.iter().map(super::stored_event).collect())
    }

    /// Deletes [`RETENTION_CHUNK`] events at a time, one transaction each (PostgreSQL's
    /// writers do not wait for one another, but a long transaction would hold the rollup rows
    /// it touched); the chunk that comes back short also removes the active-user rows.
    async fn delete_person(
        &self,
        project: ProjectId,
        ids: &[String],
    ) -> Result<PersonDeletion, StoreError> {
        let mut report = PersonDeletion::default();
        loop {
            let mut tx = self.write_pool().begin().await?;
            let rows = sqlx::query(
                "DELETE FROM events WHERE project_id = $1 AND seq IN (
                     SELECT seq FROM events
                     WHERE project_id = $1 AND (user_id = ANY($2) OR anonymous_id = ANY($2))
                     LIMIT $3)
                 RETURNING type, event, timestamp, message_id,
                           COALESCE(body::jsonb #>> '{context,bot}' = 'true', false) AS bot",
            )
            .bind(project)
            .bind(ids)
            .bind(RETENTION_CHUNK)
            .fetch_all(&mut *tx)
            .await?;
            let rows: Vec<Removed> = rows.iter().map(removed).collect();
            let last = (rows.len() as i64) < RETENTION_CHUNK;
            if !rows.is_empty() {
                report.events += rows.len() as u64;
                let messages: Vec<&str> = rows.iter().map(|r| r.message_id.as_str()).collect();
                sqlx::query("DELETE FROM event_ids WHERE project_id = $1 AND message_id = ANY($2)")
                    .bind(project)
                    .bind(&messages)
                    .execute(&mut *tx)
                    .await?;
                for ((name, hour), n) in hourly(&rows) {
                    sqlx::query(DECREMENT_HOURLY)
                        .bind(n)
                        .bind(project)
                        .bind(name)
                        .bind(hour)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(DROP_EMPTY_HOURLY)
                        .bind(project)
                        .bind(name)
                        .bind(hour)
                        .execute(&mut *tx)
                        .await?;
                    report.hourly_rollups += 1;
                }
                for ((name, hour), n) in hourly(rows.iter().filter(|r| r.bot)) {
                    for (sql, with_n) in [(DECREMENT_BOTS, true), (DROP_EMPTY_BOTS, false)] {
                        let q = sqlx::query(sql);
                        let q = if with_n { q.bind(n) } else { q };
                        q.bind(project)
                            .bind(name)
                            .bind(hour)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                sqlx::query(DECREMENT_TOTAL)
                    .bind(rows.len() as i64)
                    .bind(project)
                    .execute(&mut *tx)
                    .await?;
                const OF_MESSAGES: &str = "SELECT id FROM deliveries
                     WHERE project_id = $1 AND source_key LIKE 'event:%'
                       AND substr(source_key, 7 + strpos(substr(source_key, 7), ':')) = ANY($2)";
                sqlx::query(AssertSqlSafe(format!(
                    "DELETE FROM delivery_attempts WHERE delivery_id IN ({OF_MESSAGES})"
                )))
                .bind(project)
                .bind(&messages)
                .execute(&mut *tx)
                .await?;
                report.deliveries += sqlx::query(AssertSqlSafe(format!(
                    "DELETE FROM deliveries WHERE id IN ({OF_MESSAGES})"
                )))
                .bind(project)
                .bind(&messages)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            if last {
                let days: Vec<i64> = sqlx::query_scalar(
                    "DELETE FROM active_users_daily WHERE project_id = $1 AND user_key = ANY($2)
                     RETURNING day",
                )
                .bind(project)
                .bind(ids)
                .fetch_all(&mut *tx)
                .await?;
                report.active_user_days = days.len() as u64;
                for (day, n) in per_day(&days) {
                    sqlx::query(DECREMENT_DAY)
                        .bind(n)
                        .bind(project)
                        .bind(day)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(DROP_EMPTY_DAY)
                        .bind(project)
                        .bind(day)
                        .execute(&mut *tx)
                        .await?;
                }
                report.users_last_seen = sqlx::query(
                    "DELETE FROM users_last_seen WHERE project_id = $1 AND user_key = ANY($2)",
                )
                .bind(project)
                .bind(ids)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                return Ok(report);
            }
            tx.commit().await?;
        }
    }
}
