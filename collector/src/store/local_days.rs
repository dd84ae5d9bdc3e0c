//! The project's local days. The active-user rollups (`active_users_daily` and the per-day
//! counts and last-seen days its trigger keeps, migrations 0006/0007) are keyed by the calendar
//! date in the project's time zone (migration 0040), so DAU/WAU/MAU and the daily-active chart
//! read whole local days from them. A key is that date's 00:00 UTC in unix milliseconds: keys
//! stay one `DAY_MS` apart across DST changes, and a UTC project's keys are UTC midnights.
//!
//! A time zone change re-keys the days whose events are all still stored: one day per
//! transaction, in the background, each day recounted from the events index. Older days keep
//! the keys of the zone they were counted in (their events are gone).

use jiff::Timestamp;
use jiff::tz::TimeZone;
use sqlx::{AssertSqlSafe, Row};

use super::analytics::is_bot;
use super::{Backend, DAY_MS, Store, StoreError};
use crate::domain::ProjectId;

/// `days_rebuild_next` of a project whose days are to be chosen by the next pass (set by
/// migration 0040 for projects created before it in another zone than UTC).
const UNSCHEDULED: i64 = -1;

/// The project's time zone by its stored name; UTC for a name the tz database no longer has
/// (the settings API accepts only names it knows).
pub fn zone(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap_or(TimeZone::UTC)
}

/// The key of the local date holding instant `ts` (unix ms) in `tz`.
pub fn day_key(tz: &TimeZone, ts: i64) -> i64 {
    let offset = Timestamp::from_millisecond(ts).map_or(0, |t| tz.to_offset(t).seconds());
    let local = ts + i64::from(offset) * 1000;
    local - local.rem_euclid(DAY_MS)
}

/// The first instant (unix ms) of the local date `key` in `tz`: its midnight, or the first
/// time after it where a DST change skips midnight.
pub fn day_start(tz: &TimeZone, key: i64) -> i64 {
    Timestamp::from_millisecond(key)
        .ok()
        .and_then(|t| {
            t.to_zoned_datetime(TimeZone::UTC)
                .date()
                .to_zoned_datetime(tz.clone())
                .ok()
        })
        .map_or(key, |z| z.timestamp().as_millisecond())
}

/// The users of one local day, from the events: the set a rebuilt day holds (bots' for
/// `active_bots_daily` when `bots`, migration 0052). `{collate}` compares the events' keys
/// byte-wise like the rollup's on PostgreSQL (migration 0008).
fn day_users(backend: Backend, bots: bool) -> String {
    let collate = match backend {
        Backend::Sqlite => "",
        Backend::Postgres => " COLLATE \"C\"",
    };
    format!(
        "SELECT COALESCE(user_id, anonymous_id){collate} AS k FROM events
         WHERE project_id = $1 AND timestamp >= $3 AND timestamp < $4
           AND COALESCE(user_id, anonymous_id) IS NOT NULL AND {not}{bot}",
        not = if bots { "" } else { "NOT " },
        bot = is_bot(backend)
    )
}

impl Store {
    /// The project's time zone (UTC unless set).
    pub async fn project_zone(&self, project_id: ProjectId) -> Result<TimeZone, StoreError> {
        Ok(zone(&self.project_timezone(project_id).await?))
    }

    /// Sets the project's time zone (a name the caller checked) and, when it changed,
    /// schedules the re-keying of its days ([`Store::rebuild_local_days`]) and, in the same
    /// transaction, the rebuild of the Web page's day rows ([`super::web::RESET_WEB_ROLLUPS`]).
    /// Says whether it changed.
    pub async fn change_timezone(
        &self,
        project_id: ProjectId,
        name: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (next, end) = self.rebuild_days(project_id, &zone(name), now).await?;
        let changed = with_db!(self, write_pool, |pool, backend| {
            let mut tx = pool.begin().await?;
            if backend == super::Backend::Postgres {
                sqlx::query(super::web::WEB_FOLD_LOCK)
                    .execute(&mut *tx)
                    .await?;
            }
            let current: Option<String> =
                sqlx::query_scalar("SELECT timezone FROM projects WHERE id = $1")
                    .bind(project_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if current.as_deref().is_none_or(|c| c == name) {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query(
                "UPDATE projects SET timezone = $1, days_rebuild_next = $2, days_rebuild_end = $3
                 WHERE id = $4",
            )
            .bind(name)
            .bind(next)
            .bind(end)
            .bind(project_id)
            .execute(&mut *tx)
            .await?;
            for sql in super::web::RESET_WEB_ROLLUPS {
                sqlx::query(sql).bind(project_id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            true
        });
        // The ingest thread's memory of stored (project, day, user) rows holds the old keys.
        if let Store::Sqlite(s) = self {
            s.forget_active_users();
        }
        Ok(changed)
    }

    /// Re-keys the pending days of every project whose time zone changed, oldest day first,
    /// one transaction per day (ingest goes on between them); returns the days rebuilt. A day
    /// is recounted from the events, so ingest's own rows for it (already in the new zone)
    /// stay, and a repeated or concurrent pass changes nothing more.
    pub async fn rebuild_local_days(&self, now: i64) -> Result<u64, StoreError> {
        let pending: Vec<(i64, String, i64, Option<i64>)> = with_db!(self, read_pool, |pool| {
            let rows = sqlx::query(
                "SELECT id, timezone, days_rebuild_next, days_rebuild_end FROM projects
                 WHERE days_rebuild_next IS NOT NULL ORDER BY id",
            )
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get("id")?,
                        r.try_get("timezone")?,
                        r.try_get("days_rebuild_next")?,
                        r.try_get("days_rebuild_end")?,
                    ))
                })
                .collect::<Result<_, sqlx::Error>>()?
        });
        let mut rebuilt = 0;
        for (project, name, mut next, mut end) in pending {
            let tz = zone(&name);
            if next == UNSCHEDULED {
                (next, end) = match self.schedule(project, &name, &tz, now).await? {
                    (Some(n), e) => (n, e),
                    (None, _) => continue,
                };
            }
            let Some(end) = end else { continue };
            while next < end {
                if !self.rebuild_day(project, &name, &tz, next, end).await? {
                    break; // The zone changed again, or another replica took the day.
                }
                next += DAY_MS;
                rebuilt += 1;
            }
        }
        if rebuilt > 0
            && let Store::Sqlite(s) = self
        {
            s.forget_active_users();
        }
        Ok(rebuilt)
    }

    /// Chooses the days of a rebuild asked for by migration 0040.
    async fn schedule(
        &self,
        project: i64,
        name: &str,
        tz: &TimeZone,
        now: i64,
    ) -> Result<(Option<i64>, Option<i64>), StoreError> {
        let (next, end) = self.rebuild_days(project, tz, now).await?;
        with_db!(self, write_pool, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE projects SET days_rebuild_next = $1, days_rebuild_end = $2
                 WHERE id = $3 AND timezone = $4 AND days_rebuild_next = $5",
            )
            .bind(next)
            .bind(end)
            .bind(project)
            .bind(name)
            .bind(UNSCHEDULED)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok((next, end))
        })
    }

    /// Recounts local day `day` of `project` in `tz` from its events, and moves the project's
    /// cursor past it, atomically; false (and nothing changed) when the cursor is no longer
    /// at `day` in zone `name`.
    async fn rebuild_day(
        &self,
        project: i64,
        name: &str,
        tz: &TimeZone,
        day: i64,
        end: i64,
    ) -> Result<bool, StoreError> {
        let (start, stop) = (day_start(tz, day), day_start(tz, day + DAY_MS));
        with_db!(self, write_pool, |pool, backend| {
            let users = day_users(backend, false);
            let bots = day_users(backend, true);
            let mut tx = pool.begin().await?;
            // The cursor first: it takes the project's row lock, so replicas rebuild a day once.
            let next = if day + DAY_MS >= end {
                None
            } else {
                Some(day + DAY_MS)
            };
            let moved = sqlx::query(
                "UPDATE projects SET days_rebuild_next = $1,
                     days_rebuild_end = CASE WHEN $1 IS NULL THEN NULL ELSE days_rebuild_end END
                 WHERE id = $2 AND timezone = $3 AND days_rebuild_next = $4",
            )
            .bind(next)
            .bind(project)
            .bind(name)
            .bind(day)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if moved != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
            // Users the day loses: out of its count; a last-seen day moves back to the day
            // before when they were active then, else the day after raises it again when
            // rebuilt (a zone change moves an instant by less than a day either way).
            let gone = format!(
                "FROM active_users_daily WHERE project_id = $1 AND day = $2
                   AND user_key NOT IN ({users})"
            );
            for (sql, with_day_before) in [
                (
                    format!(
                        "UPDATE active_users_days SET users = users - (SELECT COUNT(*) {gone})
                     WHERE project_id = $1 AND day = $2"
                    ),
                    false,
                ),
                (
                    format!(
                        "UPDATE users_last_seen SET last_day = $5
                     WHERE project_id = $1 AND last_day = $2 AND user_key NOT IN ({users})
                       AND EXISTS (SELECT 1 FROM active_users_daily a WHERE a.project_id = $1
                                   AND a.day = $5 AND a.user_key = users_last_seen.user_key)"
                    ),
                    true,
                ),
                (format!("DELETE {gone}"), false),
                // The trigger of migration 0007 counts the rows really added.
                (
                    format!(
                        "INSERT INTO active_users_daily (project_id, day, user_key)
                     SELECT DISTINCT $1, $2, k FROM ({users}) AS f WHERE true
                     ON CONFLICT DO NOTHING"
                    ),
                    false,
                ),
                // Bots' days (migration 0052): the same recount, without per-day counts.
                (
                    format!(
                        "DELETE FROM active_bots_daily WHERE project_id = $1 AND day = $2
                           AND user_key NOT IN ({bots})"
                    ),
                    false,
                ),
                (
                    format!(
                        "INSERT INTO active_bots_daily (project_id, day, user_key)
                     SELECT DISTINCT $1, $2, k FROM ({bots}) AS f WHERE true
                     ON CONFLICT DO NOTHING"
                    ),
                    false,
                ),
            ] {
                let mut q = sqlx::query(AssertSqlSafe(sql))
                    .bind(project)
                    .bind(day)
                    .bind(start)
                    .bind(stop);
                if with_day_before {
                    q = q.bind(day - DAY_MS);
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    /// The days a rebuild in `tz` re-keys, as `(next, end)` day keys (both `None`: none):
    /// from the first day whose events are all still stored (raw retention removes events by
    /// receipt: a day more than a day after its cutoff) to tomorrow included.
    async fn rebuild_days(
        &self,
        project: i64,
        tz: &TimeZone,
        now: i64,
    ) -> Result<(Option<i64>, Option<i64>), StoreError> {
        let found = with_db!(self, read_pool, |pool| {
            let row = sqlx::query(
                "SELECT (SELECT MIN(timestamp) FROM events WHERE project_id = $1) AS oldest,
                        pl.retention_days, p.raw_retention_days
                 FROM projects p JOIN plans pl ON pl.name = p.plan WHERE p.id = $1",
            )
            .bind(project)
            .fetch_optional(pool)
            .await?;
            match row {
                Some(r) => Some((
                    r.try_get::<Option<i64>, _>("oldest")?,
                    r.try_get::<Option<i64>, _>("retention_days")?,
                    r.try_get::<Option<i64>, _>("raw_retention_days")?,
                )),
                None => None,
            }
        });
        let Some((Some(oldest), plan, raw)) = found else {
            return Ok((None, None));
        };
        let mut next = day_key(tz, oldest);
        if plan.is_some() || raw.is_some() {
            let kept = super::raw_retention::raw_days(plan, raw).saturating_mul(DAY_MS);
            next = next.max(day_key(tz, now.saturating_sub(kept)) + 2 * DAY_MS);
        }
        let end = day_key(tz, now) + 2 * DAY_MS;
        Ok(if next < end {
            (Some(next), Some(end))
        } else {
            (None, None)
        })
    }
}
