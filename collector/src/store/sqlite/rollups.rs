//! What the SQLite ingest thread adds to the rollups: one commit's sums, their upserts, and
//! the memory of active-user rows already stored.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use rusqlite::params;

use crate::store::StoreError;

/// Most `(project, day, user)` rows of `active_users_daily` the ingest thread remembers as
/// stored (about 60 bytes each); past it the memory starts again from empty.
const MAX_KNOWN_ACTIVE_USERS: usize = 200_000;

/// The active-user rows this thread has already committed, so that a user's second and later
/// events of a day cost no index probe. Only ingest writes that table, retention only removes
/// days that are over, and deleting a person clears this memory
/// ([`super::ingest::IngestThread::forget_active_users`]), so a remembered row is still there or no longer
/// wanted.
#[derive(Default)]
pub(super) struct KnownActiveUsers {
    /// Users per (project, day).
    users: HashMap<(i64, i64), HashSet<Box<str>>>,
    len: usize,
}

impl KnownActiveUsers {
    pub(super) fn contains(&self, project: i64, day: i64, user: &str) -> bool {
        self.users
            .get(&(project, day))
            .is_some_and(|users| users.contains(user))
    }

    /// Called after the commit that stored `rows`, never before: a rolled-back row is not known.
    pub(super) fn remember<'a, 'b: 'a>(
        &mut self,
        rows: impl ExactSizeIterator<Item = &'a (i64, i64, &'b str)>,
    ) {
        if self.len + rows.len() > MAX_KNOWN_ACTIVE_USERS {
            self.users.clear();
            self.len = 0;
        }
        for &(project, day, user) in rows {
            if self
                .users
                .entry((project, day))
                .or_default()
                .insert(Box::from(user))
            {
                self.len += 1;
            }
        }
    }
}

/// The rollup rows of one commit, summed from the rows it stored.
#[derive(Default)]
pub(super) struct Rollups<'a> {
    pub(super) hourly: BTreeMap<(i64, String, i64), i64>,
    /// The bot events among `hourly` (migration 0023).
    pub(super) bots: BTreeMap<(i64, String, i64), i64>,
    pub(super) monthly: BTreeMap<(i64, String), i64>,
    pub(super) totals: BTreeMap<i64, i64>,
    pub(super) active: BTreeSet<(i64, i64, &'a str)>,
    /// Bots' (project, local day, user) rows (`active_bots_daily`, migration 0052).
    pub(super) active_bots: BTreeSet<(i64, i64, &'a str)>,
}

pub(super) fn write_rollups(
    tx: &rusqlite::Transaction<'_>,
    r: &Rollups<'_>,
) -> Result<(), StoreError> {
    let mut hourly = tx.prepare_cached(
        "INSERT INTO rollups_hourly (project_id, name, hour, events) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (project_id, name, hour) DO UPDATE SET events = events + excluded.events",
    )?;
    for ((project, name, hour), n) in &r.hourly {
        hourly.execute(params![project, name, hour, n])?;
    }
    if !r.bots.is_empty() {
        let mut bots = tx.prepare_cached(
            "INSERT INTO rollups_hourly_bots (project_id, name, hour, events) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (project_id, name, hour) DO UPDATE SET events = events + excluded.events",
        )?;
        for ((project, name, hour), n) in &r.bots {
            bots.execute(params![project, name, hour, n])?;
        }
    }
    let mut monthly = tx.prepare_cached(
        "INSERT INTO usage_monthly (project_id, month, events) VALUES (?1, ?2, ?3)
         ON CONFLICT (project_id, month) DO UPDATE SET events = events + excluded.events",
    )?;
    for ((project, month), n) in &r.monthly {
        monthly.execute(params![project, month, n])?;
    }
    let mut totals = tx.prepare_cached(
        "UPDATE project_usage SET events_total = events_total + ?1 WHERE project_id = ?2",
    )?;
    for (project, n) in &r.totals {
        totals.execute(params![n, project])?;
    }
    // The dashboard's DAU/WAU/MAU rollup (migration 0006); its trigger maintains the per-day
    // counts and last-seen days (migration 0007).
    let mut active = tx.prepare_cached(
        "INSERT OR IGNORE INTO active_users_daily (project_id, day, user_key) VALUES (?1, ?2, ?3)",
    )?;
    for (project, day, user) in &r.active {
        active.execute(params![project, day, user])?;
    }
    if !r.active_bots.is_empty() {
        let mut bots = tx.prepare_cached(
            "INSERT OR IGNORE INTO active_bots_daily (project_id, day, user_key) VALUES (?1, ?2, ?3)",
        )?;
        for (project, day, user) in &r.active_bots {
            bots.execute(params![project, day, user])?;
        }
    }
    Ok(())
}
