//! The SQLite ingest commit, on a thread of its own with a connection of its own.
//!
//! Ingest is the one write that runs all the time, so it skips the async driver: rusqlite
//! binds each message's fields straight into cached multi-row INSERTs, the rollups are summed
//! in Rust from the rows the commit actually stored, and a commit costs one hand-off between
//! threads instead of one per statement (figures: docs/benchmarks.md).
//!
//! SQLite still has one writer at a time: the caller holds the sqlx write connection while this
//! thread commits (see `SqliteStore::insert_batches`), so the other writers (outbox, rules,
//! accounts) queue for their turn in order instead of spinning on `SQLITE_BUSY`.
//!
//! Durability with `PULSELINE_SQLITE_SYNCHRONOUS=full` is kept without making the writer wait
//! for the disk: this connection commits with `synchronous = NORMAL` (the WAL is written, not
//! synced) and the caller then syncs the WAL file itself, outside the writer's turn, before it
//! acknowledges anything ([`IngestThread::sync_wal`]). A commit's frames are in the WAL before
//! the sync starts, so once it returns they are on disk, and recovery replays every committed
//! frame up to the last valid commit; meanwhile the next commit is already being written. The
//! crash test (collector/tests/api/crash.rs) checks that every acknowledged batch survives SIGKILL.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, named_params, params};
use tokio::sync::oneshot;

use super::rollups::{KnownActiveUsers, Rollups, write_rollups};
use crate::config;
use crate::domain::Message;
use crate::store::delivery::{INSERT_DELIVERY, NewDelivery};
use crate::store::{HOUR_MS, PendingBatch, StoreError, millis, month_of, rollup_name};

/// One commit's work and where its answer goes.
struct Commit {
    batches: Vec<PendingBatch>,
    deliveries: Vec<NewDelivery>,
    reply: oneshot::Sender<Result<Vec<u64>, StoreError>>,
}

/// Work for the ingest thread: a commit, or another write that needs its connection (the
/// tracked-property backfill sums with the same code ingest does).
enum Work {
    Commit(Commit),
    Job(Box<dyn FnOnce(&mut Connection) + Send>),
}

/// The handle the store keeps: a queue to the ingest thread.
#[derive(Debug)]
pub(super) struct IngestThread {
    queue: Mutex<Option<mpsc::Sender<Work>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The WAL file when commits must be synced before they are acknowledged (`full`).
    wal: Option<Wal>,
    /// Set when active-user rows were deleted: the thread clears [`KnownActiveUsers`].
    forget: Arc<AtomicBool>,
}

/// The database's write-ahead log, opened once for syncing.
#[derive(Debug)]
struct Wal {
    path: PathBuf,
    file: Mutex<Option<Arc<File>>>,
}

impl std::fmt::Debug for Commit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Commit")
            .field("batches", &self.batches.len())
            .finish_non_exhaustive()
    }
}

impl IngestThread {
    /// Opens the ingest connection on `path` (the schema is already migrated) and starts the
    /// thread that owns it.
    pub(super) fn start(path: &Path, sync: config::SqliteSynchronous) -> Result<Self, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // The same settings as the sqlx connections (`SqliteStore::open`), but NORMAL: with
        // `full` the WAL is synced by `sync_wal`, outside the writer's turn.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA foreign_keys = ON;
             PRAGMA cache_size = -65536;
             PRAGMA temp_store = memory;
             PRAGMA wal_autocheckpoint = 20000;",
        )?;
        let wal = matches!(sync, config::SqliteSynchronous::Full).then(|| {
            let mut path = path.as_os_str().to_owned();
            path.push("-wal");
            Wal {
                path: PathBuf::from(path),
                file: Mutex::new(None),
            }
        });
        let (tx, rx) = mpsc::channel::<Work>();
        let forget = Arc::new(AtomicBool::new(false));
        let forgotten = Arc::clone(&forget);
        let thread = std::thread::Builder::new()
            .name("sqlite-ingest".into())
            .spawn(move || {
                let mut conn = conn;
                let mut known = KnownActiveUsers::default();
                for work in rx {
                    match work {
                        Work::Commit(commit) => {
                            let result = insert(
                                &mut conn,
                                &commit.batches,
                                &commit.deliveries,
                                &mut known,
                                &forgotten,
                            );
                            let _ = commit.reply.send(result);
                        }
                        Work::Job(job) => job(&mut conn),
                    }
                }
            })
            .map_err(|source| StoreError::Thread {
                name: "sqlite-ingest",
                source,
            })?;
        Ok(Self {
            queue: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            wal,
            forget,
        })
    }

    /// The next commit starts with no remembered active-user rows (a person's were deleted).
    pub(super) fn forget_active_users(&self) {
        self.forget.store(true, Ordering::Release);
    }

    /// Makes every commit that has returned so far durable: syncs the WAL file (`full`), on a
    /// blocking thread. Concurrent calls each sync; one sync covers every commit before it.
    pub(super) async fn sync_wal(&self) -> Result<(), StoreError> {
        let Some(wal) = &self.wal else {
            return Ok(());
        };
        let failed = |source| StoreError::WalSync {
            path: wal.path.display().to_string(),
            source,
        };
        let file = {
            let mut file = wal
                .file
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match &*file {
                Some(f) => Arc::clone(f),
                None => {
                    // The connection keeps the WAL open (and so in place) from its first
                    // commit until the store closes.
                    let f = Arc::new(File::open(&wal.path).map_err(failed)?);
                    *file = Some(Arc::clone(&f));
                    f
                }
            }
        };
        let started = std::time::Instant::now();
        let synced = tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .map_err(|e| failed(std::io::Error::other(e)))?
            .map_err(failed);
        metrics::histogram!("pulseline_wal_sync_duration_seconds").record(started.elapsed());
        synced
    }

    /// Commits on the ingest thread and waits for the answer.
    pub(super) async fn commit(
        &self,
        batches: Vec<PendingBatch>,
        deliveries: Vec<NewDelivery>,
    ) -> Result<Vec<u64>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let sent = self
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .is_some_and(|q| {
                q.send(Work::Commit(Commit {
                    batches,
                    deliveries,
                    reply,
                }))
                .is_ok()
            });
        if !sent {
            return Err(StoreError::Closed);
        }
        answer.await.unwrap_or(Err(StoreError::Closed))
    }

    /// Runs `job` on the ingest thread's connection, between commits, and waits for its answer.
    /// The caller holds the sqlx write connection, as for a commit.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let work = Work::Job(Box::new(move |conn: &mut Connection| {
            let _ = reply.send(job(conn));
        }));
        let sent = self
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .is_some_and(|q| q.send(work).is_ok());
        if !sent {
            return Err(StoreError::Closed);
        }
        answer.await.unwrap_or(Err(StoreError::Closed))
    }

    /// Stops the thread after the commits already queued, and closes its connection.
    pub(super) async fn close(&self) {
        drop(
            self.queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take(),
        );
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// Row counts of the multi-row `INSERT INTO events` statements a commit is cut into, largest
/// first (a commit of 700 rows takes 16 statements): one statement per row spends much of the
/// ingest thread opening, seeking and closing cursors (see docs/benchmarks.md).
const ROWS_PER_INSERT: [usize; 4] = [64, 16, 4, 1];

/// Parameters per row of [`insert_events_sql`].
const EVENT_COLUMNS: usize = 9;

/// Each of [`ROWS_PER_INSERT`] with its statement text, built once (the statement cache is
/// keyed by the text).
static INSERT_EVENTS: LazyLock<[(usize, String); ROWS_PER_INSERT.len()]> =
    LazyLock::new(|| ROWS_PER_INSERT.map(|n| (n, insert_events_sql(n))));

/// `INSERT OR IGNORE INTO events … VALUES (…), (…) …` for `rows` rows.
///
/// `OR IGNORE`, not `ON CONFLICT (project_id, message_id) DO NOTHING`: the upsert clause leaves
/// the NOT NULL constraints on ABORT, and a statement that writes several rows and may abort
/// halfway makes SQLite keep a statement journal, copying every page the statement touches
/// before it changes it (a measurable share of ingest CPU: docs/benchmarks.md). Only
/// `events_dedupe` can conflict: `seq` is assigned by SQLite, and the NOT NULL columns are
/// bound from non-optional fields of a validated [`Message`].
fn insert_events_sql(rows: usize) -> String {
    let row = "(?, ?, ?, ?, ?, ?, ?, ?, ?)";
    let values = vec![row; rows].join(", ");
    format!(
        "INSERT OR IGNORE INTO events (project_id, message_id, type, event, user_id,
                                       anonymous_id, timestamp, received_at, body)
         VALUES {values}"
    )
}

/// One transaction: the events (a repeated `(project, messageId)` is skipped), their rollups and
/// usage, and the outbox rows of the events it stored for the first time.
fn insert(
    conn: &mut Connection,
    batches: &[PendingBatch],
    deliveries: &[NewDelivery],
    known: &mut KnownActiveUsers,
    forgotten: &AtomicBool,
) -> Result<Vec<u64>, StoreError> {
    // The writer first, then the memory: a person delete (or a time zone change) sets
    // `forgotten` before it commits, so once we hold the writer its rows are gone and the flag
    // is seen. Checked before taking the writer, a delete committed while this commit waited
    // for it would leave a remembered row that no longer exists.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    if forgotten.swap(false, Ordering::AcqRel) {
        *known = KnownActiveUsers::default();
    }
    let rows: Vec<(&PendingBatch, &Message)> = batches
        .iter()
        .flat_map(|b| b.messages.iter().map(move |m| (b, m)))
        .collect();
    let stored = insert_events(&tx, &rows)?;
    super::user_event_days::record(&tx, &rows, &stored)?;

    let mut inserted = Vec::with_capacity(batches.len());
    let mut rollups = Rollups::default();
    let mut zones = super::local_days::CommitZones::default();
    let mut fresh: HashSet<(i64, &str)> = HashSet::new();
    let mut rows = rows.iter().zip(&stored);
    for batch in batches {
        let mut count = 0;
        for (&(_, m), &new) in rows.by_ref().take(batch.messages.len()) {
            if !new {
                continue;
            }
            count += 1;
            if !deliveries.is_empty() {
                fresh.insert((batch.project_id, m.message_id.as_str()));
            }
            let timestamp = millis(m.timestamp);
            let key = (
                batch.project_id,
                rollup_name(m),
                timestamp - timestamp.rem_euclid(HOUR_MS),
            );
            if m.bot {
                *rollups.bots.entry(key.clone()).or_default() += 1;
            }
            *rollups.hourly.entry(key).or_default() += 1;
            // Crawlers are not users: they stay out of DAU/WAU/MAU, and their days go to
            // their own table, for retention with bots (migration 0052).
            if let Some(user) = m.user_id.as_deref().or(m.anonymous_id.as_deref()) {
                let day = zones.day(&tx, batch.project_id, timestamp)?;
                if m.bot {
                    rollups.active_bots.insert((batch.project_id, day, user));
                } else if !known.contains(batch.project_id, day, user) {
                    rollups.active.insert((batch.project_id, day, user));
                }
            }
        }
        if count > 0 {
            *rollups
                .monthly
                .entry((batch.project_id, month_of(batch.received_at)))
                .or_default() += count;
            *rollups.totals.entry(batch.project_id).or_default() += count;
        }
        inserted.push(count as u64);
    }
    write_rollups(&tx, &rollups)?;
    super::props::record(&tx, batches, &stored)?;
    super::vitals::add(&tx, batches, &stored)?;
    super::sessions::record(&tx, batches, &stored)?;
    // The notifications of this commit's events, atomically with them; a resent duplicate
    // (not stored by this commit) notifies nothing.
    if !deliveries.is_empty() {
        let new: Vec<&NewDelivery> = deliveries
            .iter()
            .filter(|d| {
                d.event_message_id
                    .as_deref()
                    .is_none_or(|m| fresh.contains(&(d.project_id, m)))
            })
            .collect();
        let mut outbox = tx.prepare_cached(INSERT_DELIVERY)?;
        for d in super::category_cap::limit_sqlite(&tx, new)? {
            outbox.execute(named_params! {
                "$1": d.project_id,
                "$2": d.channel_id,
                "$3": d.source_key,
                "$4": d.content,
                "$5": millis(d.now),
            })?;
        }
    }
    tx.commit()?;
    known.remember(rollups.active.iter());
    Ok(inserted)
}

/// Inserts the rows, [`ROWS_PER_INSERT`] at a time, and says which of them this commit stored
/// (the others repeat a `(project, messageId)` already stored, or one earlier in `rows`).
fn insert_events(
    tx: &rusqlite::Transaction<'_>,
    rows: &[(&PendingBatch, &Message)],
) -> Result<Vec<bool>, StoreError> {
    let mut stored = Vec::with_capacity(rows.len());
    let mut rest = rows;
    while !rest.is_empty() {
        // The last size is 1, so one always fits.
        let (n, sql) = INSERT_EVENTS
            .iter()
            .find(|(n, _)| *n <= rest.len())
            .unwrap_or(&INSERT_EVENTS[ROWS_PER_INSERT.len() - 1]);
        let n = *n;
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        let mut statement = tx.prepare_cached(sql)?;
        for (i, &(batch, m)) in chunk.iter().enumerate() {
            let at = i * EVENT_COLUMNS;
            statement.raw_bind_parameter(at + 1, batch.project_id)?;
            statement.raw_bind_parameter(at + 2, &m.message_id)?;
            statement.raw_bind_parameter(at + 3, m.kind.as_str())?;
            statement.raw_bind_parameter(at + 4, &m.event)?;
            statement.raw_bind_parameter(at + 5, &m.user_id)?;
            statement.raw_bind_parameter(at + 6, &m.anonymous_id)?;
            statement.raw_bind_parameter(at + 7, millis(m.timestamp))?;
            statement.raw_bind_parameter(at + 8, millis(batch.received_at))?;
            statement.raw_bind_parameter(at + 9, &m.body)?;
        }
        let added = statement.raw_execute()?;
        if added == n {
            stored.extend(std::iter::repeat_n(true, n));
        } else if added == 0 {
            stored.extend(std::iter::repeat_n(false, n));
        } else {
            stored.extend(which_were_added(tx, chunk, added)?);
        }
    }
    Ok(stored)
}

/// Which rows of a statement that added `added` of them were the added ones. Its new rows took
/// the seqs just below and at `last_insert_rowid` (the one writer appends past the largest
/// seq), so a row was added if its `(project, messageId)` now has one of those seqs and no
/// earlier row of the statement claimed it. Only a batch with repeats comes here.
fn which_were_added(
    tx: &rusqlite::Transaction<'_>,
    chunk: &[(&PendingBatch, &Message)],
    added: usize,
) -> Result<Vec<bool>, StoreError> {
    let last = tx.last_insert_rowid();
    let first = last - i64::try_from(added).unwrap_or(i64::MAX) + 1;
    let mut seq_of =
        tx.prepare_cached("SELECT seq FROM events WHERE project_id = ?1 AND message_id = ?2")?;
    let mut claimed = HashSet::new();
    chunk
        .iter()
        .map(|&(batch, m)| {
            let seq: i64 =
                seq_of.query_row(params![batch.project_id, m.message_id], |r| r.get(0))?;
            Ok((first..=last).contains(&seq) && claimed.insert(seq))
        })
        .collect()
}
