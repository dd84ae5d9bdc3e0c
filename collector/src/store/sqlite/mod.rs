//! The embedded default: one SQLite file in WAL mode. One writer connection (SQLite allows one
//! writer at a time anyway, and the group-commit writer is its only user) and a small read pool.
//!
//! Two drivers on purpose: sqlx for every query the backends share (`store::with_db!`), and
//! rusqlite for the two hot paths of ingest, the commit thread (`ingest`) and the key lookup
//! on the calling task (`keys`), where sqlx's per-statement hand-off to its worker thread cost
//! ingest throughput (docs/benchmarks.md). Both open the same file; only SQLite's locks order
//! them.

mod category_cap;
mod ingest;
mod keys;
mod local_days;
mod persons;
mod props;
mod retention;
mod rollups;
mod sessions;
mod user_event_days;
mod vitals;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{KeyRecord, PendingBatch, Quota, RECEIVED_ORDER_SLACK_MS, StoreError, StoredEvent};
use crate::config;
use crate::domain::{KeyHash, ProjectId};
use ingest::IngestThread;
use keys::KeyReader;

const READ_CONNECTIONS: u32 = 4;
/// Connections of budgeted reads (heavy dashboard queries, `store::budget`): as many as such
/// queries run at once on a small machine, apart from the read pool so that cheap reads never
/// wait behind them.
const BUDGETED_CONNECTIONS: u32 = 4;

/// Page size of a new database (SQLite's default is 4 KiB): ingest's five B-trees per event are
/// shallower and split less, for less ingest CPU and latency (docs/benchmarks.md). A database
/// keeps the page size it was created with.
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

static MIGRATOR: sqlx::migrate::Migrator = sqlx_macros::migrate!("../migrations/sqlite");

#[derive(Debug, Clone)]
pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
    /// Reads of requests with a time budget (`store::budget`).
    budgeted: SqlitePool,
    /// Ingest commits (`sqlite::ingest`): its own connection on its own thread.
    ingest: Arc<IngestThread>,
    /// Ingest's key lookups (`sqlite::keys`): connections of their own, on the calling task.
    keys: Arc<KeyReader>,
    /// `Store::set_pair_heavy_visits`.
    pub(crate) pair_heavy_visits: i64,
    /// `Store::set_fill_budget`.
    pub(crate) fill_budget: std::time::Duration,
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

    /// The read pool, for queries kept in other files (analytics, accounts, rules); inside a
    /// request with a time budget, the pool whose statements stop at its deadline.
    pub(crate) fn read_pool(&self) -> &SqlitePool {
        if super::budget::budgeted() {
            &self.budgeted
        } else {
            &self.read
        }
    }

    pub async fn open(url: &str, sync: config::SqliteSynchronous) -> Result<Self, StoreError> {
        Self::open_waiting(url, sync, super::BUSY_TIMEOUT).await
    }

    /// Like [`Self::open`], with writes waiting up to `busy_timeout` for SQLite's write lock.
    pub async fn open_waiting(
        url: &str,
        sync: config::SqliteSynchronous,
        busy_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match sync {
                config::SqliteSynchronous::Full => SqliteSynchronous::Full,
                config::SqliteSynchronous::Normal => SqliteSynchronous::Normal,
            })
            .busy_timeout(busy_timeout)
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
        let options = options.create_if_missing(false);
        let budgeted =
            super::budget::sqlite_pool(BUDGETED_CONNECTIONS).connect_lazy_with(options.clone());
        let read = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .connect_with(options)
            .await?;
        Ok(Self {
            write,
            read,
            budgeted,
            ingest,
            keys,
            pair_heavy_visits: crate::store::visits::PAIR_HEAVY_VISITS,
            fill_budget: crate::store::visits::FILL_TX_BUDGET,
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

    pub async fn close(&self) {
        self.ingest.close().await;
        self.keys.close();
        self.budgeted.close().await;
        self.read.close().await;
        self.write.close().await;
    }

    /// Stores the batches (and the outbox rows of their events) in one transaction on the
    /// ingest thread, while holding the sqlx write connection so that no other writer waits on
    /// SQLite's lock in the meantime; then, with the writer free for the next commit, makes it
    /// durable (see `sqlite::ingest`).
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
}

impl SqliteStore {
    /// The ingest key lookup on the calling task (`sqlite::keys`); `Err` when it could not
    /// answer and the caller should ask the pool.
    pub(super) fn find_key_on_task(
        &self,
        hash: &KeyHash,
        month: &str,
    ) -> rusqlite::Result<Option<(KeyRecord, Quota)>> {
        self.keys.find(hash, month)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::KeyKind;
    use chrono::DateTime;
    use sqlx::Row;

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

    /// A person delete commits while an ingest commit of the same person waits for the writer:
    /// the ingest thread must not trust its memory of the deleted active-user row.
    #[tokio::test]
    async fn an_active_user_row_deleted_while_a_commit_waits_is_written_again() {
        let (_dir, store) = store_with(&[]).await;
        store
            .ingest
            .commit(vec![batch(&ids("a", 0..1))], vec![])
            .await
            .unwrap();
        let rows = "SELECT COUNT(*) FROM active_users_daily WHERE user_key = 'user-a0'";
        assert_eq!(scalar(&store.read, rows).await, 1);

        // Hold the writer, as the delete's transaction does, and delete the row.
        let mut delete = store.write.begin().await.unwrap();
        sqlx::query("DELETE FROM active_users_daily WHERE user_key = 'user-a0'")
            .execute(&mut *delete)
            .await
            .unwrap();
        // The same user's next event: its commit starts and waits for the writer.
        let mut next = batch(&ids("b", 0..1));
        next.messages[0].user_id = Some("user-a0".to_owned());
        let ingest = &store.ingest;
        let waiting = ingest.commit(vec![next], vec![]);
        let deleting = async {
            // Long enough for the ingest thread to be waiting for the writer (if it is not
            // yet, the test passes without showing anything, never fails wrongly).
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            store.forget_active_users();
            delete.commit().await.unwrap();
        };
        let (stored, ()) = tokio::join!(waiting, deleting);
        assert_eq!(stored.unwrap(), vec![1]);
        assert_eq!(
            scalar(&store.read, rows).await,
            1,
            "the user has an event that day, so the row is back"
        );
        store.close().await;
    }

    /// A time zone rebuild walks the visits by id behind a cursor, leaving those past it to
    /// itself: a new visit must never get an id the cursor may already have passed.
    #[tokio::test]
    async fn a_deleted_visits_id_is_never_given_to_a_new_one() {
        let (_dir, store) = store_with(&[]).await;
        let add = |visitor: &'static str| {
            sqlx::query(
                "INSERT INTO web_visits (project_id, visitor, start_ts, end_ts, pageviews,
                     entry_page, exit_page, referrer, source, utm_source, utm_medium,
                     utm_campaign, country, browser, os, device)
                 VALUES (1, ?1, 0, 0, 1, '/', '/', '', '', '', '', '', '', '', '', '')
                 RETURNING id",
            )
            .bind(visitor)
        };
        let mut ids = Vec::new();
        for visitor in ["a", "b", "c"] {
            ids.push(
                add(visitor)
                    .fetch_one(&store.write)
                    .await
                    .unwrap()
                    .get::<i64, _>(0),
            );
        }
        // The fold replaces a visit it recomputes: the newest goes, a new one comes.
        sqlx::query("DELETE FROM web_visits WHERE id = ?1")
            .bind(ids[2])
            .execute(&store.write)
            .await
            .unwrap();
        let next: i64 = add("c").fetch_one(&store.write).await.unwrap().get(0);
        assert!(
            next > ids[2],
            "id {} was given again (ids so far {ids:?})",
            next
        );
        store.close().await;
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

    /// Ingest looks keys up on the calling task (`sqlite::keys`); it must see every change made
    /// through other connections at once, and when it cannot answer the pool must.
    #[tokio::test]
    async fn key_lookups_see_each_change_at_once_and_fall_back_to_the_pool() {
        let (_dir, mut store) = store_with(&[]).await;
        let at = DateTime::from_timestamp_millis(1_764_756_000_000).unwrap();
        let month = super::super::month_of(at);
        let plain = crate::domain::PlainKey::generate(KeyKind::Write);
        let hash = plain.hash();
        let key = super::super::Store::Sqlite(store.clone())
            .create_key(1, &super::super::NewKey::of(&plain), at)
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
        super::super::Store::Sqlite(store.clone())
            .revoke_key(key.id, at)
            .await
            .unwrap();
        assert_eq!(found(&store).0.revoked_at, Some(at));

        // A reader that cannot open its database: the pool answers instead.
        store.keys = Arc::new(KeyReader::new(std::path::Path::new("/nonexistent/t.db")));
        assert!(store.keys.find(&hash, &month).is_err());
        let (record, quota) = super::super::Store::Sqlite(store.clone())
            .find_key_with_quota(&hash, at)
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
