//! The dashboard's reads: rollups (counts, active users) and time-ordered event scans. The
//! arithmetic over scanned events lives in `crate::analytics`, the same for both backends.

use sqlx::Row;

use super::{Backend, Store, StoreError, StoredEvent};
use crate::domain::ProjectId;

/// The name rollups count an event under: the track event, else `$` and the message type.
const ROLLUP_NAME: &str = "(CASE WHEN type = 'track' THEN event ELSE '$' || type END)";

/// Whether a stored message is a bot's (`context.bot = true`, set at ingest by `crate::web`),
/// as SQL: exactly ingest's rule (JSON `true`; not `1`, not `"true"`), so every read, deletion
/// and rollup agrees on what a bot is. Most bodies never mention "bot", so the substring test
/// spares parsing them.
pub(crate) fn is_bot(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "COALESCE(instr(body, '\"bot\"') > 0 AND json_type(body, '$.context.bot') = 'true', 0)"
        }
        Backend::Postgres => {
            "COALESCE(strpos(body, '\"bot\"') > 0 AND (body::jsonb #> '{context,bot}') = 'true'::jsonb, false)"
        }
    }
}

/// One event as the dashboard's calculations need it.
#[derive(Debug, Clone)]
pub struct ScannedEvent {
    pub seq: i64,
    /// Unix milliseconds of the event's timestamp.
    pub ts: i64,
    /// The rollup name: the track event, or `$page`, `$identify`…
    pub name: String,
    /// User id, else anonymous id.
    pub user_key: Option<String>,
    /// The stored id (the sender's `messageId`, or the one the collector assigned).
    pub message_id: String,
    pub body: String,
}

impl Store {
    /// Hourly counts per event name in `[from, to)` (hours by the event's timestamp).
    pub async fn rollup_counts(
        &self,
        project_id: ProjectId,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, String, i64)>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let rows = sqlx::query(
                "SELECT hour, name, events FROM rollups_hourly
             WHERE project_id = $1 AND hour >= $2 AND hour < $3",
            )
            .bind(project_id)
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?;
            Ok(rows
                .iter()
                .map(|r| (r.get("hour"), r.get("name"), r.get("events")))
                .collect())
        })
    }

    /// Hourly counts of one event name in `[from, to)`.
    pub async fn rollup_counts_of(
        &self,
        project_id: ProjectId,
        name: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let rows = sqlx::query(
                "SELECT hour, events FROM rollups_hourly
             WHERE project_id = $1 AND name = $2 AND hour >= $3 AND hour < $4 ORDER BY hour",
            )
            .bind(project_id)
            .bind(name)
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?;
            Ok(rows
                .iter()
                .map(|r| (r.get("hour"), r.get("events")))
                .collect())
        })
    }

    /// The bot events among [`Store::rollup_counts`] (`rollups_hourly_bots`, migration 0023).
    pub async fn bot_rollup_counts(
        &self,
        project_id: ProjectId,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, String, i64)>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let rows = sqlx::query(
                "SELECT hour, name, events FROM rollups_hourly_bots
             WHERE project_id = $1 AND hour >= $2 AND hour < $3",
            )
            .bind(project_id)
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?;
            Ok(rows
                .iter()
                .map(|r| (r.get("hour"), r.get("name"), r.get("events")))
                .collect())
        })
    }

    /// Events in `[from, to)` per rollup name: `(name, events, bot events among them)`. For
    /// the part of an hour a local midnight cuts off (the overview): an index range.
    pub async fn counts_by_name(
        &self,
        project_id: ProjectId,
        from: i64,
        to: i64,
    ) -> Result<Vec<(String, i64, i64)>, StoreError> {
        with_db!(self, read_pool, |pool, backend| {
            let sql = format!(
                "SELECT {ROLLUP_NAME} AS name, COUNT(*) AS n,
                        SUM(CASE WHEN {bot} THEN 1 ELSE 0 END) AS bots
                 FROM events WHERE project_id = $1 AND timestamp >= $2 AND timestamp < $3
                 GROUP BY 1",
                bot = is_bot(backend)
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(project_id)
                .bind(from)
                .bind(to)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get::<Option<String>, _>("name")?.unwrap_or_default(),
                        r.try_get("n")?,
                        r.try_get("bots")?,
                    ))
                })
                .collect::<Result<_, sqlx::Error>>()
                .map_err(StoreError::from)
        })
    }

    /// Distinct users active on `since_day` (a local day's key, `store::local_days`) or later:
    /// those whose latest active day (`users_last_seen`, migration 0007) is not before it. DAU, WAU and MAU are
    /// this with the window's first day; one index range count, however many events.
    pub async fn active_users_since(
        &self,
        project_id: ProjectId,
        since_day: i64,
    ) -> Result<i64, StoreError> {
        with_db!(self, read_pool, |pool| {
            let r = sqlx::query("SELECT COUNT(*) AS n FROM users_last_seen WHERE project_id = $1 AND last_day >= $2").bind(project_id).bind(since_day).fetch_one(pool).await?;
            Ok(r.get("n"))
        })
    }

    /// Active users per local day in `[from_day, to_day)` (day keys; days without any are
    /// absent).
    pub async fn daily_active_users(
        &self,
        project_id: ProjectId,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let rows = sqlx::query(
                "SELECT day, users FROM active_users_days
             WHERE project_id = $1 AND day >= $2 AND day < $3 ORDER BY day",
            )
            .bind(project_id)
            .bind(from_day)
            .bind(to_day)
            .fetch_all(pool)
            .await?;
            Ok(rows
                .iter()
                .map(|r| (r.get("day"), r.get("users")))
                .collect())
        })
    }

    /// The project's events with timestamps in `[from, to)`, oldest first, at most `limit`
    /// (callers ask for one more than their limit to detect truncation). `name` narrows to one
    /// rollup name; bot events (`context.bot = true`) are left out unless `include_bots`.
    /// No dashboard route reads this any more (funnels, retention and sessions read rollups,
    /// with bots too): the tests compare those rollups' answers with the old computation over
    /// what it returns.
    pub async fn scan_events(
        &self,
        project_id: ProjectId,
        from: i64,
        to: i64,
        name: Option<&str>,
        include_bots: bool,
        limit: i64,
    ) -> Result<Vec<ScannedEvent>, StoreError> {
        with_db!(self, read_pool, |pool, backend| {
            let sql = format!(
                "SELECT seq, timestamp, {ROLLUP_NAME} AS name,
                    COALESCE(user_id, anonymous_id) AS user_key, message_id, body
             FROM events
             WHERE project_id = $1 AND timestamp >= $2 AND timestamp < $3
               AND ($4 = '' OR {ROLLUP_NAME} = $4) AND ($5 OR NOT {bot})
             ORDER BY timestamp, seq LIMIT $6",
                bot = is_bot(backend)
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(project_id)
                .bind(from)
                .bind(to)
                .bind(name.unwrap_or(""))
                .bind(include_bots)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            Ok(rows
                .iter()
                .map(|r| ScannedEvent {
                    seq: r.get("seq"),
                    ts: r.get("timestamp"),
                    name: r.get::<Option<String>, _>("name").unwrap_or_default(),
                    user_key: r.get("user_key"),
                    message_id: r.get("message_id"),
                    body: r.get("body"),
                })
                .collect())
        })
    }

    /// How many bot events [`Store::scan_events`] leaves out of the same range and name.
    pub async fn count_bot_events(
        &self,
        project_id: ProjectId,
        from: i64,
        to: i64,
        name: Option<&str>,
    ) -> Result<i64, StoreError> {
        with_db!(self, read_pool, |pool, backend| {
            let sql = format!(
                "SELECT COUNT(*) AS n FROM events
             WHERE project_id = $1 AND timestamp >= $2 AND timestamp < $3
               AND ($4 = '' OR {ROLLUP_NAME} = $4) AND {bot}",
                bot = is_bot(backend)
            );
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(project_id)
                .bind(from)
                .bind(to)
                .bind(name.unwrap_or(""))
                .fetch_one(pool)
                .await?;
            Ok(row.get("n"))
        })
    }

    /// The newest `limit` events received at or after `since` (unix ms), oldest first: the
    /// live tail polls this with an overlapping window and drops what it has already sent.
    pub async fn events_received_since(
        &self,
        project_id: ProjectId,
        since: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        match self {
            Store::Sqlite(s) => s.events_received_since(project_id, since, limit).await,
            Store::Postgres(p) => p.events_received_since(project_id, since, limit).await,
        }
    }
}
