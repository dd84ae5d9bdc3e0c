//! The write-key lookup of every SQLite ingest request, on connections of its own, run on the
//! calling task.
//!
//! Every ingest request reads its key, project plan and month's usage (a revoked key must stop
//! at once, also when the CLI revoked it from another process, so nothing is cached). Through
//! sqlx's pool each lookup is a hand-off to the connection's worker thread and back, a real
//! share of ingest CPU (see docs/benchmarks.md); here the same query runs with rusqlite on the
//! task that asks. It reads a few pages of small tables, and WAL readers do not wait for the
//! writer.
//!
//! A connection here never waits for a lock (`busy_timeout` 0): if SQLite answers busy, or
//! anything else goes wrong, [`KeyReader::find`] says so and the caller asks sqlx's pool, whose
//! connections wait on a thread of their own.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, OptionalExtension, named_params};

use crate::domain::KeyHash;
use crate::store::keys::FIND_KEY_WITH_QUOTA;
use crate::store::{KeyRecord, Quota};

/// Idle connections kept for reuse: one per tokio worker is enough on the machines this runs
/// on; a burst beyond it opens more and closes them after use.
const IDLE_CONNECTIONS: usize = 4;

#[derive(Debug)]
pub(super) struct KeyReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl KeyReader {
    pub(super) fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The key with `hash` and its project's quota for `month`, or `Err` when this path could
    /// not answer (the caller then asks the pool).
    pub(super) fn find(
        &self,
        hash: &KeyHash,
        month: &str,
    ) -> rusqlite::Result<Option<(KeyRecord, Quota)>> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.open()?,
        };
        let found = conn
            .prepare_cached(FIND_KEY_WITH_QUOTA)?
            // By name: SQLite numbers `$n` parameters in order of appearance, not by `n`.
            .query_row(named_params! {"$1": &hash.0[..], "$2": month}, |r| {
                let key = KeyRecord::from_columns(
                    r.get("id")?,
                    r.get("project_id")?,
                    &r.get::<_, String>("kind")?,
                    r.get("prefix")?,
                    r.get("created_at")?,
                    r.get("revoked_at")?,
                    r.get("plain")?,
                );
                let quota = Quota {
                    plan: r.get("plan")?,
                    events_per_month: r.get("events_per_month")?,
                    used_this_month: r.get("used")?,
                };
                Ok((key, quota))
            })
            .optional()?;
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < IDLE_CONNECTIONS {
            idle.push(conn);
        }
        Ok(found)
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.execute_batch("PRAGMA query_only = ON; PRAGMA busy_timeout = 0;")?;
        Ok(conn)
    }

    /// Closes the idle connections (the store is closing).
    pub(super) fn close(&self) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
