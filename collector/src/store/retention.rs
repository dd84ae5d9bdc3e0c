//! Retention's read (user retention, not data expiry: that is `raw_retention`): who was active
//! in which period, from the per-user-day rollup `active_users_daily` (bots left out at
//! ingest), counted by cohort in SQL so no event of the range is loaded.

use sqlx::{AssertSqlSafe, Row};

use super::analytics::is_bot;
use super::{Backend, DAY_MS, Store, StoreError};
use crate::domain::ProjectId;

/// Users per (cohort, period): `cohort` is the index of the period a user was first active in
/// within the range, `period` one they were active in (`cohort` included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CohortCount {
    pub cohort: i64,
    pub period: i64,
    pub users: i64,
}

impl Store {
    /// Cohort counts for activity in `[from, to)`, periods of `period_ms` (a whole number of
    /// days) counted from `first` (a period start at or before `from`). Whole days come from
    /// the rollup; the partial days at the range's edges (a range rarely starts at midnight)
    /// from that part of the events, so a user active on `from`'s day before `from` is not
    /// counted, as in the scan.
    pub async fn retention_counts(
        &self,
        project_id: ProjectId,
        from: i64,
        to: i64,
        first: i64,
        period_ms: i64,
    ) -> Result<Vec<CohortCount>, StoreError> {
        let ceil_day = from + (DAY_MS - from.rem_euclid(DAY_MS)) % DAY_MS;
        let floor_day = to - to.rem_euclid(DAY_MS);
        let head_end = ceil_day.min(to);
        let tail_start = floor_day.max(head_end);
        let (head_day, tail_day) = (from - from.rem_euclid(DAY_MS), floor_day);
        with_db!(self, read_pool, |pool, backend| {
            // The rollup's keys are byte-ordered on PostgreSQL: compare the events' the same way.
            let collate = match backend {
                Backend::Sqlite => "",
                Backend::Postgres => " COLLATE \"C\"",
            };
            let edge = |day: &str, start: &str, end: &str| {
                format!(
                    "SELECT COALESCE(user_id, anonymous_id){collate}, {day} FROM events
                     WHERE project_id = $1 AND timestamp >= {start} AND timestamp < {end}
                       AND COALESCE(user_id, anonymous_id) IS NOT NULL AND NOT {bot}",
                    bot = is_bot(backend)
                )
            };
            // UNION ALL: `periods` removes repeats once, after days became periods.
            let sql = format!(
                "WITH active(user_key, day) AS (
                     SELECT user_key, day FROM active_users_daily
                     WHERE project_id = $1 AND day >= $2 AND day < $3
                     UNION ALL {head} UNION ALL {tail}),
                 periods AS (SELECT DISTINCT user_key, (day - $8) / $9 AS period FROM active)
                 SELECT cohort, period, COUNT(*) AS users FROM (
                     SELECT period, MIN(period) OVER (PARTITION BY user_key) AS cohort
                     FROM periods) AS p
                 GROUP BY cohort, period ORDER BY cohort, period",
                head = edge("$10", "$4", "$5"),
                tail = edge("$11", "$6", "$7"),
            );
            let rows = sqlx::query(AssertSqlSafe(sql))
                .bind(project_id)
                .bind(ceil_day)
                .bind(floor_day)
                .bind(from)
                .bind(head_end)
                .bind(tail_start)
                .bind(to)
                .bind(first)
                .bind(period_ms)
                .bind(head_day)
                .bind(tail_day)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(CohortCount {
                        cohort: r.try_get("cohort")?,
                        period: r.try_get("period")?,
                        users: r.try_get("users")?,
                    })
                })
                .collect()
        })
    }
}
