//! One person's data (docs/privacy.md): the ids linked to them,
//! their events page by page, deleting them with every row derived from them, and suppression.
//!
//! There is no index on `user_id` (it would double the cost of every insert, see
//! migrations/sqlite/0001), so each of these scans the project's events in `seq` order. Deletion
//! does it in bounded chunks, each a short transaction, so ingest waits at most one chunk.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use super::{HOUR_MS, Store, StoreError, StoredEvent, from_millis, millis};
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
    /// (event name, user, day) rows of the funnels' rollup (`user_event_days`).
    pub user_event_days: u64,
    /// The person's sessions (`user_sessions`, the Sessions page).
    pub sessions: u64,
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
pub(super) struct Removed {
    pub(super) name: String,
    pub(super) timestamp: i64,
    pub(super) message_id: String,
    /// Counted in `rollups_hourly_bots` too (migration 0023).
    pub(super) bot: bool,
    pub(super) seq: i64,
    /// The stored JSON, read only when the project tracks properties (`store::props`).
    pub(super) body: Option<String>,
}

pub(super) fn removed<R>(r: &R) -> Removed
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
        seq: r.try_get("seq").unwrap_or(0),
        body: r.try_get("body").ok().flatten(),
    }
}

/// Removed events per (rollup name, hour), in key order: ingest upserts in that order too, so
/// on PostgreSQL the two cannot deadlock.
pub(super) fn hourly<'a>(
    rows: impl IntoIterator<Item = &'a Removed>,
) -> BTreeMap<(&'a str, i64), i64> {
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

/// Takes deleted events out of the hourly rollups (every event, and bots apart) and the
/// project's usage total, inside the deletion's transaction. A macro rather than a function:
/// the statements are the same on both backends, the transaction types are not.
macro_rules! decrement_rollups {
    ($tx:expr, $project:expr, $rows:expr, $report:expr) => {{
        use $crate::store::persons::{
            DECREMENT_BOTS, DECREMENT_HOURLY, DECREMENT_TOTAL, DROP_EMPTY_BOTS, DROP_EMPTY_HOURLY,
            hourly,
        };
        let rows: &[$crate::store::persons::Removed] = $rows;
        for ((name, hour), n) in hourly(rows) {
            sqlx::query(DECREMENT_HOURLY)
                .bind(n)
                .bind($project)
                .bind(name)
                .bind(hour)
                .execute(&mut *$tx)
                .await?;
            sqlx::query(DROP_EMPTY_HOURLY)
                .bind($project)
                .bind(name)
                .bind(hour)
                .execute(&mut *$tx)
                .await?;
            $report.hourly_rollups += 1;
        }
        for ((name, hour), n) in hourly(rows.iter().filter(|r| r.bot)) {
            for (sql, with_n) in [(DECREMENT_BOTS, true), (DROP_EMPTY_BOTS, false)] {
                let q = sqlx::query(sql);
                let q = if with_n { q.bind(n) } else { q };
                q.bind($project)
                    .bind(name)
                    .bind(hour)
                    .execute(&mut *$tx)
                    .await?;
            }
        }
        sqlx::query(DECREMENT_TOTAL)
            .bind(rows.len() as i64)
            .bind($project)
            .execute(&mut *$tx)
            .await?;
    }};
}
pub(super) use decrement_rollups;

/// Written once with `$n` placeholders; SQLite runs them with `?n`.
pub(super) const DECREMENT_HOURLY: &str = "UPDATE rollups_hourly SET events = events - $1 WHERE project_id = $2 AND name = $3 AND hour = $4";
pub(super) const DROP_EMPTY_HOURLY: &str =
    "DELETE FROM rollups_hourly WHERE project_id = $1 AND name = $2 AND hour = $3 AND events <= 0";
pub(super) const DECREMENT_BOTS: &str = "UPDATE rollups_hourly_bots SET events = events - $1 WHERE project_id = $2 AND name = $3 AND hour = $4";
pub(super) const DROP_EMPTY_BOTS: &str = "DELETE FROM rollups_hourly_bots WHERE project_id = $1 AND name = $2 AND hour = $3 AND events <= 0";
pub(super) const DECREMENT_TOTAL: &str =
    "UPDATE project_usage SET events_total = events_total - $1 WHERE project_id = $2";
pub(super) const DECREMENT_DAY: &str =
    "UPDATE active_users_days SET users = users - $1 WHERE project_id = $2 AND day = $3";
pub(super) const DROP_EMPTY_DAY: &str =
    "DELETE FROM active_users_days WHERE project_id = $1 AND day = $2 AND users <= 0";
pub(super) const SUPPRESS: &str =
    "INSERT INTO person_suppressions (project_id, person_id, created_at)
     VALUES ($1, $2, $3) ON CONFLICT (project_id, person_id) DO NOTHING";
pub(super) const LIFT: &str =
    "DELETE FROM person_suppressions WHERE project_id = $1 AND person_id = $2";
pub(super) const LIST_SUPPRESSIONS: &str = "SELECT person_id, created_at FROM person_suppressions
     WHERE project_id = $1 AND person_id > $2 ORDER BY person_id LIMIT $3";
pub(super) const ALL_SUPPRESSIONS: &str = "SELECT project_id, person_id FROM person_suppressions";

/// Days the removed active-user rows were on, with how many per day, in key order.
pub(super) fn per_day(days: &[i64]) -> BTreeMap<i64, i64> {
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
        let deletion = match self {
            Store::Sqlite(s) => s.delete_person(project, ids).await,
            Store::Postgres(s) => s.delete_person(project, ids).await,
        }?;
        // Their page views left `web_pageviews` now; the background fold takes them out of
        // their visits and the Web page's rollups (queued in the same transactions).
        Ok(deletion)
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
pub(super) fn json_ids(ids: &[String]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
}
