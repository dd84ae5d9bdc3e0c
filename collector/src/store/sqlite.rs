//! The embedded default: one SQLite file in WAL mode. One writer connection (SQLite allows one
//! writer at a time anyway, and the group-commit writer is its only user) and a small read pool.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row};

use super::sqlite_ingest::IngestThread;
use super::sqlite_keys::{FIND_KEY_WITH_QUOTA, KeyReader};
use super::{
    DAY_MS, DISPATCH_MARKERS_RETENTION, EventQuery, HOUR_MS, KeyRecord, NOTIFICATION_RETENTION,
    NewKey, PendingBatch, Plan, ProjectRecord, Quota, RETENTION_CHUNK, RetentionReport, StoreError,
    StoredEvent, from_millis, key_record, millis,
};
use crate::config;
use crate::domain::{KeyHash, ProjectId};

const READ_CONNECTIONS: u32 = 4;

/// Page size of a new database (SQLite's default is 4 KiB). Ingest appends to five B-trees per
/// event; with 16 KiB pages they are shallower and split a quarter as often, and the ingest
/// thread's page cache holds a quarter as many pages, which it scans at the end of every
/// commit while the file is under 1 GiB (SQLite's pcache1 marks a B-tree rebalance's
/// temporary page number, just past 1 GiB, as its largest key). Measured at 32 connections,
/// alternating runs: ingest-thread CPU 6.7 µs per event against 8.2 µs, p99 49–58 ms against
/// 83 ms; each commit writes about 25% more bytes. 32 KiB saved no more CPU and wrote 60% more.
/// A database keeps the page size it was created with.
const PAGE_SIZE: u32 = 16 * 1024;

/// A seq that splits the events at `?1` (unix ms): those received before it lie below, those
/// received at or after it at or above. A binary search over the rowid, in one statement of
/// about log2(events) steps (gaps left by deleted rows do not matter). Seq follows
/// arrival up to the time a request waits for its commit (milliseconds, seconds when
/// overloaded), so callers that must not miss an event search from a little earlier and
/// filter on `received_at` too.
const FIRST_SEQ_RECEIVED_SINCE: &str = "
    WITH RECURSIVE search(lo, hi) AS (
        SELECT COALESCE((SELECT MIN(seq) FROM events), 0),
               COALESCE((SELECT MAX(seq) FROM events), 0) + 1
        UNION ALL
        SELECT CASE WHEN (SELECT received_at FROM events WHERE seq >= lo + (hi - lo) / 2
                          ORDER BY seq LIMIT 1) < ?1
                    THEN lo + (hi - lo) / 2 + 1 ELSE lo END,
               CASE WHEN (SELECT received_at FROM events WHERE seq >= lo + (hi - lo) / 2
                          ORDER BY seq LIMIT 1) < ?1
                    THEN hi ELSE lo + (hi - lo) / 2 END
        FROM search WHERE lo < hi
    )
    SELECT MAX(lo) FROM search";

/// How far before a time the live tail starts its search for the events received since then
/// (see [`FIRST_SEQ_RECEIVED_SINCE`]): far more than a request ever waits for its commit.
const RECEIVED_ORDER_SLACK_MS: i64 = 60_000;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

#[derive(Debug, Clone)]
pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
    /// Ingest commits (`sqlite_ingest`): its own connection on its own thread.
    ingest: Arc<IngestThread>,
    /// Ingest's key lookups (`sqlite_keys`): connections of their own, on the calling task.
    keys: Arc<KeyReader>,
}

impl SqliteStore {
    /// The single writer connection, for store code in other files (delivery's outbox, the rule
    /// evaluator and accounts share it with ingest: keep their transactions short).
    pub(crate) fn write_pool(&self) -> &SqlitePool {
        &self.write
    }

    /// Makes the ingest thread forget which active-user rows exist, after some were deleted.
    pub(super) fn forget_active_users(&self) {
        self.ingest.forget_active_users();
    }

    /// The read pool, for queries kept in other files (analytics, accounts, rules).
    pub(crate) fn read_pool(&self) -> &SqlitePool {
        &self.read
    }

    pub async fn open(url: &str, sync: config::SqliteSynchronous) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match sync {
                config::SqliteSynchronous::Full => SqliteSynchronous::Full,
                config::SqliteSynchronous::Normal => SqliteSynchronous::Normal,
            })
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            .page_size(PAGE_SIZE)
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory")
            // Checkpoints run in the background (see `checkpoint`), not inside a commit on the
            // writer; this only bounds the WAL if the background pass falls behind.
            .pragma("wal_autocheckpoint", "20000");
        if let Some(dir) = options.get_filename().parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&write).await?;
        let ingest = Arc::new(IngestThread::start(options.get_filename(), sync)?);
        let keys = Arc::new(KeyReader::new(options.get_filename()));
        let read = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .connect_with(options.create_if_missing(false))
            .await?;
        Ok(Self {
            write,
            read,
            ingest,
            keys,
        })
    }

    /// Copies committed WAL pages into the database file, on a read connection, so the writer
    /// never pays for it. PASSIVE: never waits for readers or the writer.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&self.read)
            .await?;
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.ingest.close().await;
        self.keys.close();
        self.read.close().await;
        self.write.close().await;
    }

    pub async fn count_projects(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM projects")
            .fetch_one(&self.write)
            .await?)
    }

    pub async fn list_projects(&self) -> Result<Vec<ProjectRecord>, StoreError> {
        let rows = sqlx::query("SELECT id, name, plan, created_at FROM projects ORDER BY id")
            .fetch_all(&self.read)
            .await?;
        Ok(rows
            .iter()
            .map(|r| ProjectRecord {
                id: r.get("id"),
                name: r.get("name"),
                plan: r.get("plan"),
                created_at: from_millis(r.get("created_at")),
            })
            .collect())
    }

    pub async fn create_project(
        &self,
        name: &str,
        plan: &str,
        write_key: &NewKey<'_>,
        secret_key: &NewKey<'_>,
        now: DateTime<Utc>,
    ) -> Result<ProjectId, StoreError> {
        let mut tx = self.write.begin().await?;
        let id: ProjectId = sqlx::query_scalar(
            "INSERT INTO projects (name, plan, created_at) VALUES (?, ?, ?) RETURNING id",
        )
        .bind(name)
        .bind(plan)
        .bind(millis(now))
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO project_usage (project_id) VALUES (?)")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        for key in [write_key, secret_key] {
            insert_key(&mut tx, id, key, now).await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    pub async fn create_key(
        &self,
        project_id: ProjectId,
        key: &NewKey<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let mut tx = self.write.begin().await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM projects WHERE id = ?")
            .bind(project_id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let record = insert_key(&mut tx, project_id, key, now).await?;
        tx.commit().await?;
        Ok(Some(record))
    }

    pub async fn find_key(&self, hash: &KeyHash) -> Result<Option<KeyRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, project_id, kind, prefix, created_at, revoked_at, plain
             FROM api_keys WHERE key_hash = ?",
        )
        .bind(&hash.0[..])
        .fetch_optional(&self.read)
        .await?;
        Ok(row.as_ref().map(key_record))
    }

    pub async fn list_keys(
        &self,
        project_id: Option<ProjectId>,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, project_id, kind, prefix, created_at, revoked_at, plain FROM api_keys
             WHERE ?1 IS NULL OR project_id = ?1 ORDER BY project_id, id",
        )
        .bind(project_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.iter().map(key_record).collect())
    }

    pub async fn revoke_key(
        &self,
        key_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let row = sqlx::query(
            "UPDATE api_keys SET revoked_at = MIN(COALESCE(revoked_at, ?1), ?1) WHERE id = ?2
             RETURNING id, project_id, kind, prefix, created_at, revoked_at, plain",
        )
        .bind(millis(now))
        .bind(key_id)
        .fetch_optional(&self.write)
        .await?;
        Ok(row.as_ref().map(key_record))
    }

    pub async fn rotate_key(
        &self,
        key_id: i64,
        new: &NewKey<'_>,
        old_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let mut tx = self.write.begin().await?;
        let old = sqlx::query(
            "UPDATE api_keys SET revoked_at = MIN(COALESCE(revoked_at, ?1), ?1) WHERE id = ?2
             RETURNING id, project_id, kind, prefix, created_at, revoked_at, plain",
        )
        .bind(millis(old_until))
        .bind(key_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(old) = old.as_ref().map(key_record) else {
            return Ok(None);
        };
        debug_assert_eq!(old.kind, new.kind);
        let new = insert_key(&mut tx, old.project_id, new, now).await?;
        tx.commit().await?;
        Ok(Some(new))
    }

    /// Stores the batches (and the outbox rows of their events) in one transaction on the
    /// ingest thread, while holding the sqlx write connection so that no other writer waits on
    /// SQLite's lock in the meantime; then, with the writer free for the next commit, makes it
    /// durable (see `sqlite_ingest`).
    pub async fn insert_batches(
        &self,
        batches: Vec<PendingBatch>,
        deliveries: Vec<super::delivery::NewDelivery>,
    ) -> Result<Vec<u64>, StoreError> {
        let turn = self.write.acquire().await?;
        let stored = self.ingest.commit(batches, deliveries).await?;
        drop(turn);
        self.ingest.sync_wal().await?;
        Ok(stored)
    }

    pub async fn list_events(
        &self,
        project_id: ProjectId,
        q: &EventQuery,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        // Static SQL per filter combination, so each uses its index and nothing is interpolated.
        let sql = match (&q.event, &q.user_id) {
            (None, None) => {
                "SELECT * FROM events WHERE project_id = ?1 AND seq < ?2
                 ORDER BY seq DESC LIMIT ?3"
            }
            (Some(_), None) => {
                "SELECT * FROM events WHERE project_id = ?1 AND seq < ?2 AND event = ?4
                 ORDER BY seq DESC LIMIT ?3"
            }
            (None, Some(_)) => {
                "SELECT * FROM events WHERE project_id = ?1 AND seq < ?2 AND user_id = ?5
                 ORDER BY seq DESC LIMIT ?3"
            }
            (Some(_), Some(_)) => {
                "SELECT * FROM events WHERE project_id = ?1 AND seq < ?2 AND event = ?4
                 AND user_id = ?5 ORDER BY seq DESC LIMIT ?3"
            }
        };
        let rows = sqlx::query(sql)
            .bind(project_id)
            .bind(q.before_seq.unwrap_or(i64::MAX))
            .bind(i64::from(q.limit))
            .bind(q.event.as_deref())
            .bind(q.user_id.as_deref())
            .fetch_all(&self.read)
            .await?;
        Ok(rows.iter().map(super::stored_event).collect())
    }

    /// See [`FIRST_SEQ_RECEIVED_SINCE`].
    async fn first_seq_received_since(&self, since: i64) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(FIRST_SEQ_RECEIVED_SINCE)
            .bind(since)
            .fetch_one(&self.read)
            .await?)
    }

    /// The newest `limit` events received at or after `since` (unix ms), oldest first.
    pub async fn events_received_since(
        &self,
        project_id: ProjectId,
        since: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let from = self
            .first_seq_received_since(since - RECEIVED_ORDER_SLACK_MS)
            .await?;
        // Newest first, so that the walk back from the latest event stops after `limit` rows.
        let rows = sqlx::query(
            "SELECT * FROM events WHERE project_id = ?1 AND seq >= ?2 AND received_at >= ?3
             ORDER BY seq DESC LIMIT ?4",
        )
        .bind(project_id)
        .bind(from)
        .bind(since)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.iter().rev().map(super::stored_event).collect())
    }

    pub async fn events_total(&self, project_id: ProjectId) -> Result<i64, StoreError> {
        let total: Option<i64> =
            sqlx::query_scalar("SELECT events_total FROM project_usage WHERE project_id = ?")
                .bind(project_id)
                .fetch_optional(&self.read)
                .await?;
        Ok(total.unwrap_or(0))
    }
}

impl SqliteStore {
    pub async fn list_plans(&self) -> Result<Vec<Plan>, StoreError> {
        let rows =
            sqlx::query("SELECT name, events_per_month, retention_days FROM plans ORDER BY name")
                .fetch_all(&self.read)
                .await?;
        Ok(rows
            .iter()
            .map(|r| Plan {
                name: r.get("name"),
                events_per_month: r.get("events_per_month"),
                retention_days: r.get("retention_days"),
            })
            .collect())
    }

    pub async fn upsert_plan(&self, plan: &Plan) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO plans (name, events_per_month, retention_days) VALUES (?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET events_per_month = excluded.events_per_month,
                                              retention_days = excluded.retention_days",
        )
        .bind(&plan.name)
        .bind(plan.events_per_month)
        .bind(plan.retention_days)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn set_project_plan(&self, project_id: i64, plan: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE projects SET plan = ? WHERE id = ?")
            .bind(plan)
            .bind(project_id)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn find_key_with_quota(
        &self,
        hash: &KeyHash,
        month: &str,
    ) -> Result<Option<(KeyRecord, Quota)>, StoreError> {
        match self.keys.find(hash, month) {
            Ok(found) => return Ok(found),
            Err(error) => {
                metrics::counter!("pulseline_key_lookup_fallbacks_total").increment(1);
                tracing::debug!(%error, "key lookup on the calling task failed; asking the pool");
            }
        }
        let row = sqlx::query(FIND_KEY_WITH_QUOTA)
            .bind(&hash.0[..])
            .bind(month)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| {
            let quota = Quota {
                plan: r.get("plan"),
                events_per_month: r.get("events_per_month"),
                used_this_month: r.get("used"),
            };
            (key_record(&r), quota)
        }))
    }

    pub async fn usage_this_month(&self, project_id: i64, month: &str) -> Result<i64, StoreError> {
        let used: Option<i64> = sqlx::query_scalar(
            "SELECT events FROM usage_monthly WHERE project_id = ? AND month = ?",
        )
        .bind(project_id)
        .bind(month)
        .fetch_optional(&self.read)
        .await?;
        Ok(used.unwrap_or(0))
    }

    pub async fn hourly_counts(
        &self,
        project_id: i64,
        name: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(chrono::DateTime<Utc>, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT hour, events FROM rollups_hourly
             WHERE project_id = ? AND name = ? AND hour >= ? AND hour < ? ORDER BY hour",
        )
        .bind(project_id)
        .bind(name)
        .bind(from - from.rem_euclid(HOUR_MS))
        .bind(to)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (from_millis(r.get("hour")), r.get("events")))
            .collect())
    }

    pub async fn apply_retention(&self, now: i64) -> Result<RetentionReport, StoreError> {
        let mut report = RetentionReport::default();
        let limited = sqlx::query(
            "SELECT p.id, pl.retention_days, p.raw_retention_days
             FROM projects p JOIN plans pl ON pl.name = p.plan
             WHERE pl.retention_days IS NOT NULL OR p.raw_retention_days IS NOT NULL",
        )
        .fetch_all(&self.read)
        .await?;
        for row in limited {
            let project_id: i64 = row.get("id");
            let plan_days: Option<i64> = row.get("retention_days");
            let raw_days = super::raw_retention::raw_days(plan_days, row.get("raw_retention_days"));
            let raw_cutoff = now - raw_days * DAY_MS;
            // Expired events lie below this seq (the few received just before the cutoff but
            // stored after it go in the next pass).
            let boundary = self.first_seq_received_since(raw_cutoff).await?;
            report.events_deleted += self
                .delete_in_chunks(|| {
                    sqlx::query(
                        "DELETE FROM events WHERE seq IN (
                             SELECT seq FROM events
                             WHERE project_id = ? AND seq < ? AND received_at < ? LIMIT ?)",
                    )
                    .bind(project_id)
                    .bind(boundary)
                    .bind(raw_cutoff)
                    .bind(RETENTION_CHUNK)
                })
                .await?;
            // Rollups (and notification history) follow the plan, however short the project
            // keeps raw events.
            let Some(days) = plan_days else {
                continue;
            };
            let cutoff = now - days * DAY_MS;
            sqlx::query("DELETE FROM rollups_hourly WHERE project_id = ? AND hour < ?")
                .bind(project_id)
                .bind(cutoff - cutoff.rem_euclid(HOUR_MS))
                .execute(&self.write)
                .await?;
            sqlx::query("DELETE FROM rollups_hourly_bots WHERE project_id = ? AND hour < ?")
                .bind(project_id)
                .bind(cutoff - cutoff.rem_euclid(HOUR_MS))
                .execute(&self.write)
                .await?;
            // Active-user rollups of the days that ended before the cutoff.
            for sql in [
                "DELETE FROM active_users_daily WHERE project_id = ? AND day < ?",
                "DELETE FROM active_users_days WHERE project_id = ? AND day < ?",
                "DELETE FROM users_last_seen WHERE project_id = ? AND last_day < ?",
            ] {
                sqlx::query(sql)
                    .bind(project_id)
                    .bind(cutoff - cutoff.rem_euclid(DAY_MS))
                    .execute(&self.write)
                    .await?;
            }
            for (sql, counted) in NOTIFICATION_RETENTION {
                let sql = sql.replace('$', "?");
                let rows = self
                    .delete_in_chunks(|| {
                        sqlx::query(AssertSqlSafe(sql.as_str()))
                            .bind(project_id)
                            .bind(cutoff)
                            .bind(RETENTION_CHUNK)
                    })
                    .await?;
                report.count(counted, rows);
            }
        }
        sqlx::query(DISPATCH_MARKERS_RETENTION)
            .execute(&self.write)
            .await?;
        Ok(report)
    }

    /// Runs the `DELETE … LIMIT RETENTION_CHUNK` that `chunk` builds until it removes fewer
    /// rows than that, each on its own turn of the writer; the rows removed in all.
    async fn delete_in_chunks<'q>(
        &self,
        chunk: impl Fn() -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let rows = chunk().execute(&self.write).await?.rows_affected();
            total += rows;
            if rows < RETENTION_CHUNK as u64 {
                return Ok(total);
            }
        }
    }
}

async fn insert_key(
    tx: &mut sqlx::SqliteConnection,
    project_id: ProjectId,
    key: &NewKey<'_>,
    now: DateTime<Utc>,
) -> Result<KeyRecord, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO api_keys (project_id, kind, key_hash, prefix, created_at, plain)
         VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(project_id)
    .bind(key.kind.as_str())
    .bind(&key.hash.0[..])
    .bind(&key.prefix)
    .bind(millis(now))
    .bind(key.plain)
    .fetch_one(&mut *tx)
    .await?;
    Ok(KeyRecord {
        id,
        project_id,
        kind: key.kind,
        prefix: key.prefix.clone(),
        created_at: now,
        revoked_at: None,
        plain: key.plain.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::KeyKind;

    /// A store whose events have the given (seq, received_at), in project 1.
    async fn store_with(events: &[(i64, i64)]) -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = SqliteStore::open(&url, config::SqliteSynchronous::Normal)
            .await
            .unwrap();
        sqlx::query("INSERT INTO projects (id, name, plan, created_at) VALUES (1, 'p', 'free', 0)")
            .execute(&store.write)
            .await
            .unwrap();
        for &(seq, received_at) in events {
            sqlx::query(
                "INSERT INTO events (seq, project_id, message_id, type, timestamp, received_at,
                                     body, anonymous_id)
                 VALUES (?1, 1, 'm' || ?1, 'track', ?2, ?2, '{}', 'a')",
            )
            .bind(seq)
            .bind(received_at)
            .execute(&store.write)
            .await
            .unwrap();
        }
        (dir, store)
    }

    async fn scalar(pool: &SqlitePool, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
    }

    #[tokio::test]
    async fn a_new_database_gets_the_ingest_page_size_and_an_old_one_keeps_its_own() {
        let (_dir, store) = store_with(&[]).await;
        assert_eq!(
            scalar(&store.write, "PRAGMA page_size").await,
            i64::from(PAGE_SIZE)
        );
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&store.read)
            .await
            .unwrap();
        assert_eq!(mode, "wal");

        // A database created with SQLite's default 4 KiB pages (before PAGE_SIZE) opens and
        // migrates as it is.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(
                "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE t (x);",
            )
            .unwrap();
        let url = format!("sqlite://{}", path.display());
        let old = SqliteStore::open(&url, config::SqliteSynchronous::Normal)
            .await
            .unwrap();
        assert_eq!(scalar(&old.write, "PRAGMA page_size").await, 4096);
        old.close().await;
    }

    fn batch(ids: &[String]) -> PendingBatch {
        let at = DateTime::from_timestamp_millis(1_764_756_000_000).unwrap();
        PendingBatch {
            project_id: 1,
            received_at: at,
            messages: ids
                .iter()
                .map(|id| crate::domain::Message {
                    kind: crate::domain::MessageType::Track,
                    message_id: id.clone(),
                    event: Some("Signed Up".to_owned()),
                    user_id: Some(format!("user-{id}")),
                    anonymous_id: None,
                    timestamp: at,
                    body: format!(r#"{{"type":"track","messageId":"{id}"}}"#),
                    bot: false,
                })
                .collect(),
        }
    }

    fn ids(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
        range.map(|i| format!("{prefix}{i}")).collect()
    }

    /// A commit is cut into multi-row INSERTs; repeats (of stored events, of an earlier row in
    /// the same statement, of a row in another batch of the same commit) must still be told
    /// apart from new rows, row by row, whichever statement they land in.
    #[tokio::test]
    async fn multi_row_inserts_tell_each_new_row_from_each_repeat() {
        let (_dir, store) = store_with(&[]).await;
        sqlx::query("INSERT INTO project_usage (project_id) VALUES (1)")
            .execute(&store.write)
            .await
            .unwrap();
        let first = store
            .insert_batches(vec![batch(&ids("m", 0..100))], vec![])
            .await
            .unwrap();
        assert_eq!(first, vec![100]);

        // 50 stored repeats interleaved with 40 new ids, one of them repeated in the same
        // statement and one in a later one, then a second batch repeating one of the first
        // batch's new ids (102 rows: statements of 64, 16, 16, 4, 1, 1).
        let mut b1 = Vec::new();
        for i in 0..50 {
            b1.push(format!("m{}", 50 + i));
            if i < 40 {
                b1.push(format!("n{i}"));
            }
        }
        b1.insert(4, "n1".to_owned());
        b1.insert(70, "n5".to_owned());
        let mut b2 = ids("p", 0..9);
        b2.insert(3, "n7".to_owned());
        let second = store
            .insert_batches(vec![batch(&b1), batch(&b2)], vec![])
            .await
            .unwrap();
        assert_eq!(second, vec![40, 9]);

        let pool = &store.read;
        let counts = (
            scalar(pool, "SELECT COUNT(*) FROM events").await,
            scalar(pool, "SELECT COUNT(DISTINCT message_id) FROM events").await,
            scalar(pool, "SELECT events_total FROM project_usage").await,
            scalar(pool, "SELECT SUM(events) FROM rollups_hourly").await,
            scalar(pool, "SELECT COUNT(*) FROM active_users_daily").await,
        );
        assert_eq!(counts, (149, 149, 149, 149, 149));
        store.close().await;
    }

    /// Ingest looks keys up on the calling task (`sqlite_keys`); it must see every change made
    /// through other connections at once, and when it cannot answer the pool must.
    #[tokio::test]
    async fn key_lookups_see_each_change_at_once_and_fall_back_to_the_pool() {
        let (_dir, mut store) = store_with(&[]).await;
        let at = DateTime::from_timestamp_millis(1_764_756_000_000).unwrap();
        let month = super::super::month_of(at);
        let plain = crate::domain::PlainKey::generate(KeyKind::Write);
        let hash = plain.hash();
        let key = store
            .create_key(1, &NewKey::of(&plain), at)
            .await
            .unwrap()
            .unwrap();
        let found = |store: &SqliteStore| store.keys.find(&hash, &month).unwrap().unwrap();

        let (record, quota) = found(&store);
        assert_eq!((record.id, record.revoked_at), (key.id, None));
        assert_eq!((quota.plan.as_str(), quota.used_this_month), ("free", 0));
        assert!(
            store
                .keys
                .find(&KeyHash::of("plw_other"), &month)
                .unwrap()
                .is_none()
        );

        store
            .insert_batches(vec![batch(&ids("k", 0..3))], vec![])
            .await
            .unwrap();
        assert_eq!(found(&store).1.used_this_month, 3);
        store.revoke_key(key.id, at).await.unwrap();
        assert_eq!(found(&store).0.revoked_at, Some(at));

        // A reader that cannot open its database: the pool answers instead.
        store.keys = Arc::new(KeyReader::new(std::path::Path::new("/nonexistent/t.db")));
        assert!(store.keys.find(&hash, &month).is_err());
        let (record, quota) = store
            .find_key_with_quota(&hash, &month)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((record.revoked_at, quota.used_this_month), (Some(at), 3));
        store.close().await;
    }

    #[tokio::test]
    async fn the_search_finds_the_first_seq_received_at_or_after_a_time() {
        let (_dir, empty) = store_with(&[]).await;
        assert_eq!(empty.first_seq_received_since(0).await.unwrap(), 0);

        // Gaps in seq (deleted rows) and repeated times.
        let events = [(3, 100), (4, 100), (9, 200), (10, 300), (40, 300)];
        let (_dir, store) = store_with(&events).await;
        for since in [0, 99, 100, 101, 199, 200, 201, 300, 301, 1000] {
            let split = store.first_seq_received_since(since).await.unwrap();
            for (seq, received) in events {
                assert_eq!(
                    seq >= split,
                    received >= since,
                    "since {since}: split {split}"
                );
            }
        }
    }

    #[tokio::test]
    async fn the_tail_finds_events_stored_slightly_out_of_arrival_order() {
        // seq 3 arrived after seq 4 (its request waited longer for its commit).
        let t = 10 * RECEIVED_ORDER_SLACK_MS;
        let (_dir, store) =
            store_with(&[(1, 0), (2, t - 5), (3, t + 7), (4, t + 5), (5, t + 9)]).await;
        let seqs = |events: Vec<StoredEvent>| events.iter().map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(
            seqs(store.events_received_since(1, t + 6, 10).await.unwrap()),
            [3, 5]
        );
        assert_eq!(
            seqs(store.events_received_since(1, t, 10).await.unwrap()),
            [3, 4, 5]
        );
        // At most `limit`: the newest, oldest first.
        assert_eq!(
            seqs(store.events_received_since(1, 0, 2).await.unwrap()),
            [4, 5]
        );
    }
}
