//! Explore's bounded reads of raw events: how far back a budget of rows reaches (newest
//! first), and a stream of the events of a range, handed to the caller one by one so that no
//! reader holds a range's events in memory.

use std::ops::ControlFlow;

use futures::TryStreamExt;
use sqlx::Row;

use super::analytics::{ScannedEvent, is_bot};
use super::{Store, StoreError};
use crate::domain::ProjectId;

/// The rows of one event name (the rollup name) in `[$2, $3)`, as a `WHERE` clause, written
/// so that each backend reads an index range: a track name by `events_by_name_time`, every
/// event or a `$type` name by `events_by_time`. Returns the clause and whether it binds `$4`.
fn rows_of(name: Option<&str>, with_type: bool) -> (String, bool) {
    let range = "project_id = $1 AND timestamp >= $2 AND timestamp < $3";
    match name {
        None => (range.to_owned(), false),
        // Page and screen views keep their name in `event` too: the type tells them apart.
        Some(n) if !n.starts_with('$') => {
            let track = if with_type { " AND type = 'track'" } else { "" };
            (format!("{range} AND event = $4{track}"), true)
        }
        Some(_) => (
            format!("{range} AND (CASE WHEN type = 'track' THEN event ELSE '$' || type END) = $4"),
            true,
        ),
    }
}

/// Which end of the range a stream starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    OldestFirst,
    NewestFirst,
}

impl Store {
    /// The timestamp of the newest event beyond the `budget` newest of `[from, to)` (of one
    /// rollup name, if given; bots included, as they are read too), or `None` when the range
    /// holds at most `budget`. Every event after it fits the budget. Reads at most `budget`
    /// index entries, whatever the range holds. For a track name the count includes page views
    /// of the same name (the index does not hold the type), which can only make it earlier.
    pub async fn scan_horizon(
        &self,
        project_id: ProjectId,
        from: i64,
        to: i64,
        name: Option<&str>,
        budget: i64,
    ) -> Result<Option<i64>, StoreError> {
        let (rows, binds_name) = rows_of(name, false);
        let offset = if binds_name { "$5" } else { "$4" };
        let sql = format!(
            "SELECT timestamp FROM events WHERE {rows}
             ORDER BY timestamp DESC LIMIT 1 OFFSET {offset}"
        );
        with_db!(self, read_pool, |pool| {
            let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                .bind(project_id)
                .bind(from)
                .bind(to);
            if binds_name {
                q = q.bind(name.unwrap_or_default());
            }
            Ok(q.bind(budget).fetch_optional(pool).await?)
        })
    }

    /// Hands each event of `[from, to)` (of one rollup name, if given) and whether it is a
    /// bot's to `each`, in `order`, until it answers `Break`. Rows are decoded one at a time;
    /// the caller bounds the range with [`Store::scan_horizon`].
    pub async fn stream_events(
        &self,
        project_id: ProjectId,
        from: i64,
        to: i64,
        name: Option<&str>,
        order: Order,
        mut each: impl FnMut(ScannedEvent, bool) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let (rows, binds_name) = rows_of(name, true);
        let dir = match order {
            Order::OldestFirst => "ASC",
            Order::NewestFirst => "DESC",
        };
        with_db!(self, read_pool, |pool, backend| {
            let bot = is_bot(backend);
            let sql = format!(
                "SELECT seq, timestamp,
                        (CASE WHEN type = 'track' THEN event ELSE '$' || type END) AS name,
                        COALESCE(user_id, anonymous_id) AS user_key, message_id, body,
                        {bot} AS bot
                 FROM events WHERE {rows} ORDER BY timestamp {dir}, seq {dir}"
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(project_id)
                .bind(from)
                .bind(to);
            if binds_name {
                q = q.bind(name.unwrap_or_default());
            }
            let mut rows = q.fetch(pool);
            while let Some(r) = rows.try_next().await? {
                let event = ScannedEvent {
                    seq: r.try_get("seq")?,
                    ts: r.try_get("timestamp")?,
                    name: r.try_get::<Option<String>, _>("name")?.unwrap_or_default(),
                    user_key: r.try_get("user_key")?,
                    message_id: r.try_get("message_id")?,
                    body: r.try_get("body")?,
                };
                if each(event, r.try_get("bot")?).is_break() {
                    break;
                }
            }
            Ok(())
        })
    }
}
