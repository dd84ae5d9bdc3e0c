//! Retention's read (user retention, not data expiry: that is `raw_retention`): who was active
//! in which period, from the per-user-period rollups (bots left out at ingest):
//! `active_users_daily` for days, `active_users_weekly` (migration 0046, kept from it by
//! triggers) for weeks. Periods are whole local days or weeks, so one index range of the
//! period rollup holds the answer: the rows read are the users active in each period, summed,
//! whatever the number of events.
//!
//! SQL folds each user's periods into a bit mask (one `GROUP BY user_key`), then counts users
//! per (cohort, mask): the answer has at most users rows, usually a few hundred, and the
//! per-period counts are expanded from the masks here.

use std::collections::BTreeMap;

use sqlx::{AssertSqlSafe, Row};

use super::{Backend, DAY_MS, Store, StoreError};
use crate::domain::ProjectId;

/// Periods per mask column: two columns hold [`MAX_PERIODS`] periods in 64-bit integers that
/// never reach the sign bit.
const MASK_BITS: i64 = 60;

/// Most periods [`Store::retention_counts`] can count.
pub const MAX_PERIODS: i64 = 2 * MASK_BITS;

/// Users per (cohort, period): `cohort` is the index of the period a user was first active in
/// within the range, `period` one they were active in (`cohort` included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CohortCount {
    pub cohort: i64,
    pub period: i64,
    pub users: i64,
}

/// The length of a retention period, and the rollup that answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionPeriod {
    /// Local days: `active_users_daily`, keyed by day.
    Day,
    /// Local weeks from Monday: `active_users_weekly`, keyed by the Monday's day key.
    Week,
}

impl RetentionPeriod {
    /// The period in milliseconds of day keys.
    pub fn ms(self) -> i64 {
        match self {
            Self::Day => DAY_MS,
            Self::Week => 7 * DAY_MS,
        }
    }
}

impl Store {
    /// Cohort counts for the `periods` whole periods starting at day key `first` (a day key,
    /// a Monday's for weeks; `store::local_days`). At most [`MAX_PERIODS`] periods. With
    /// `include_bots`, bots' days (`active_bots_daily`, migration 0052) count too: a key
    /// active as a person and as a bot in a period is one user there.
    pub async fn retention_counts(
        &self,
        project_id: ProjectId,
        period: RetentionPeriod,
        first: i64,
        periods: i64,
        include_bots: bool,
    ) -> Result<Vec<CohortCount>, StoreError> {
        debug_assert!((1..=MAX_PERIODS).contains(&periods));
        let (table, key) = match period {
            RetentionPeriod::Day => ("active_users_daily", "day"),
            RetentionPeriod::Week => ("active_users_weekly", "week"),
        };
        // Bots have days only: a week is its Monday's key (day key 0 is a Thursday, `+ 10`
        // keeps the remainder positive, as in migration 0046). Whole weeks hold whole days, so
        // the same bounds select them. A user's periods must be distinct for the sum below to
        // be their OR: the bots' are made distinct and those a person's row already has are
        // left out by a seek of its key, so the people's rows, many more, need no
        // deduplication (a `UNION` sorted them all).
        let bots = match (include_bots, period) {
            (false, _) => String::new(),
            (true, RetentionPeriod::Day) => format!(
                "UNION ALL SELECT b.user_key, b.day AS k FROM active_bots_daily AS b
                   WHERE b.project_id = $1 AND b.day >= $2 AND b.day < $4
                     AND NOT EXISTS (SELECT 1 FROM {table} AS w WHERE w.project_id = $1
                                       AND w.day = b.day AND w.user_key = b.user_key)"
            ),
            (true, RetentionPeriod::Week) => {
                let monday = "b.day - (((b.day / 86400000) % 7 + 10) % 7) * 86400000";
                format!(
                    "UNION ALL SELECT DISTINCT b.user_key, {monday} AS k
                       FROM active_bots_daily AS b
                       WHERE b.project_id = $1 AND b.day >= $2 AND b.day < $4
                         AND NOT EXISTS (SELECT 1 FROM {table} AS w WHERE w.project_id = $1
                                           AND w.week = {monday} AND w.user_key = b.user_key)"
                )
            }
        };
        let ms = period.ms();
        let masks: Vec<(i64, i64, i64, i64)> = with_db!(self, read_pool, |pool, backend| {
            // Rows are unique per (user, period), so the sum of a user's bits is their OR;
            // SQLite has no BIT_OR, and PostgreSQL's SUM of BIGINT is a slower NUMERIC.
            let or = match backend {
                Backend::Sqlite => "SUM",
                Backend::Postgres => "BIT_OR",
            };
            let sql = format!(
                "SELECT cohort, low, high, COUNT(*) AS users FROM (
                     SELECT CAST(MIN(p) AS BIGINT) AS cohort,
                            CAST({or}(CASE WHEN p < {MASK_BITS} THEN CAST(1 AS BIGINT) << p
                                          ELSE 0 END) AS BIGINT) AS low,
                            CAST({or}(CASE WHEN p >= {MASK_BITS}
                                          THEN CAST(1 AS BIGINT) << (p - {MASK_BITS})
                                          ELSE 0 END) AS BIGINT) AS high
                     FROM (SELECT user_key, CAST((k - $2) / $3 AS INTEGER) AS p FROM (
                               SELECT user_key, {key} AS k FROM {table}
                               WHERE project_id = $1 AND {key} >= $2 AND {key} < $4
                               {bots}) AS periods) AS a
                     GROUP BY user_key) AS u
                 GROUP BY cohort, low, high"
            );
            let rows = sqlx::query(AssertSqlSafe(sql))
                .bind(project_id)
                .bind(first)
                .bind(ms)
                .bind(first + periods * ms)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get("cohort")?,
                        r.try_get("low")?,
                        r.try_get("high")?,
                        r.try_get("users")?,
                    ))
                })
                .collect::<Result<_, sqlx::Error>>()?
        });
        Ok(expand(&masks))
    }
}

/// Per (cohort, period) user counts from users counted per (cohort, low mask, high mask).
fn expand(masks: &[(i64, i64, i64, i64)]) -> Vec<CohortCount> {
    let mut counts: BTreeMap<(i64, i64), i64> = BTreeMap::new();
    for &(cohort, low, high, users) in masks {
        for (mask, offset) in [(low, 0), (high, MASK_BITS)] {
            let mut bits = mask;
            while bits != 0 {
                let p = i64::from(bits.trailing_zeros()) + offset;
                *counts.entry((cohort, p)).or_default() += users;
                bits &= bits - 1;
            }
        }
    }
    counts
        .into_iter()
        .map(|((cohort, period), users)| CohortCount {
            cohort,
            period,
            users,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_expand_to_one_count_per_cohort_and_period() {
        let got = expand(&[(0, 0b101, 0, 3), (0, 0b1, 0, 2), (2, 0b100, 1 << 3, 4)]);
        let want = [(0, 0, 5), (0, 2, 3), (2, 2, 4), (2, MASK_BITS + 3, 4)];
        assert_eq!(
            got,
            want.map(|(cohort, period, users)| CohortCount {
                cohort,
                period,
                users
            })
        );
    }
}
