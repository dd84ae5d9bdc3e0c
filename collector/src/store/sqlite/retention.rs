//! SQLite's retention: expired events, rollups and notifications deleted in bounded chunks,
//! each on its own turn of the single writer.

use sqlx::{AssertSqlSafe, Row};

use super::SqliteStore;
use crate::store::sessions::retention_sql;
use crate::store::{
    DAY_MS, DISPATCH_MARKERS_RETENTION, HOUR_MS, NOTIFICATION_RETENTION, RETENTION_CHUNK,
    RetentionReport, StoreError,
};

impl SqliteStore {
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
            let raw_days =
                crate::store::raw_retention::raw_days(plan_days, row.get("raw_retention_days"));
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
            // Visits go with their page views (their rollups stay, below).
            sqlx::query("DELETE FROM web_visits WHERE project_id = ? AND start_ts < ?")
                .bind(project_id)
                .bind(raw_cutoff)
                .execute(&self.write)
                .await?;
            // Rollups (and notification history) follow the plan, however short the project
            // keeps raw events.
            let Some(days) = plan_days else {
                continue;
            };
            let cutoff = now - days * DAY_MS;
            sqlx::query("DELETE FROM web_hourly WHERE project_id = ? AND hour < ?")
                .bind(project_id)
                .bind(cutoff - cutoff.rem_euclid(HOUR_MS))
                .execute(&self.write)
                .await?;
            // Web page day rows of the days that ended before the cutoff (local midnights
            // are within a day of it).
            sqlx::query("DELETE FROM web_daily WHERE project_id = ? AND day < ?")
                .bind(project_id)
                .bind(cutoff - DAY_MS)
                .execute(&self.write)
                .await?;
            sqlx::query("DELETE FROM web_daily_pairs WHERE project_id = ? AND day < ?")
                .bind(project_id)
                .bind(cutoff - DAY_MS)
                .execute(&self.write)
                .await?;
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
            // The Web Vitals rollups (migration 0041): hours, and the days of the pages.
            for (sql, unit) in [
                (
                    "DELETE FROM vitals_hourly WHERE project_id = ? AND hour < ?",
                    HOUR_MS,
                ),
                (
                    "DELETE FROM vitals_pages_daily WHERE project_id = ? AND day < ?",
                    DAY_MS,
                ),
            ] {
                sqlx::query(sql)
                    .bind(project_id)
                    .bind(cutoff - cutoff.rem_euclid(unit))
                    .execute(&self.write)
                    .await?;
            }
            // Active-user rollups of the days that ended before the cutoff.
            for sql in [
                "DELETE FROM active_users_daily WHERE project_id = ? AND day < ?",
                "DELETE FROM active_users_days WHERE project_id = ? AND day < ?",
                "DELETE FROM users_last_seen WHERE project_id = ? AND last_day < ?",
                "DELETE FROM user_event_days WHERE project_id = ? AND day < ?",
                // Bots' twins (migration 0052), like people's.
                "DELETE FROM active_bots_daily WHERE project_id = ? AND day < ?",
                "DELETE FROM user_event_days_bots WHERE project_id = ? AND day < ?",
            ] {
                sqlx::query(sql)
                    .bind(project_id)
                    .bind(cutoff - cutoff.rem_euclid(DAY_MS))
                    .execute(&self.write)
                    .await?;
            }
            // Sessions (people's and bots') that ended before the cutoff's day
            // (`store::sessions`), and their share of the hourly sums, together.
            let mut tx = self.write.begin().await?;
            for sql in retention_sql() {
                sqlx::query(AssertSqlSafe(sql))
                    .bind(project_id)
                    .bind(cutoff - cutoff.rem_euclid(DAY_MS))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            for (sql, counted) in NOTIFICATION_RETENTION {
                let rows = self
                    .delete_in_chunks(|| {
                        sqlx::query(sql)
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
