//! The local day (`store::local_days`) ingest keys a SQLite commit's active-user rows by.

use std::collections::HashMap;

use jiff::tz::TimeZone;
use rusqlite::{OptionalExtension, params};

use crate::store::StoreError;
use crate::store::local_days::{day_key, zone};

/// The time zones of one commit's projects, read inside its transaction: a zone change is
/// either wholly before the commit or wholly after it.
#[derive(Default)]
pub(super) struct CommitZones(HashMap<i64, TimeZone>);

impl CommitZones {
    /// The key of the local day holding `ts` in `project`'s time zone.
    pub(super) fn day(
        &mut self,
        tx: &rusqlite::Transaction<'_>,
        project: i64,
        ts: i64,
    ) -> Result<i64, StoreError> {
        if let Some(tz) = self.0.get(&project) {
            return Ok(day_key(tz, ts));
        }
        let name: Option<String> = tx
            .prepare_cached("SELECT timezone FROM projects WHERE id = ?1")?
            .query_row(params![project], |r| r.get(0))
            .optional()?;
        let tz = zone(name.as_deref().unwrap_or("UTC"));
        let day = day_key(&tz, ts);
        self.0.insert(project, tz);
        Ok(day)
    }
}
