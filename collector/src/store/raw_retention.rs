//! A project's raw-event retention (docs/privacy.md, "Retention"): how many days its raw events
//! are kept, at most its plan's retention. Rollups (hourly counts, active users) follow the plan,
//! so charts of a period outlive the events they were counted from.

use serde::Serialize;
use utoipa::ToSchema;

use super::{Store, StoreError};
use crate::domain::ProjectId;

/// Longest raw-event retention a project may set, in days (ten years), for plans that keep
/// data forever.
pub const MAX_RAW_RETENTION_DAYS: i64 = 3_650;

/// A project's retention settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RawRetention {
    /// Days the plan keeps data (rollups, and raw events unless the project says less);
    /// `null`: forever.
    pub plan_retention_days: Option<i64>,
    /// Days the project keeps raw events, as set; `null`: as long as the plan.
    pub raw_retention_days: Option<i64>,
    /// Days raw events are actually kept: the shorter of the two; `null`: forever.
    pub effective_raw_retention_days: Option<i64>,
}

/// Days raw events are kept: the shorter of the plan's and the project's own limit (callers
/// pass at least one).
pub fn raw_days(plan: Option<i64>, raw: Option<i64>) -> i64 {
    match (plan, raw) {
        (Some(p), Some(r)) => p.min(r),
        (Some(d), None) | (None, Some(d)) => d,
        (None, None) => i64::MAX / super::DAY_MS,
    }
}

/// Checks a requested raw retention against its bounds and the plan; the message says how to
/// fix it.
pub fn validate(days: i64, plan: Option<i64>) -> Result<(), String> {
    let max = plan.map_or(MAX_RAW_RETENTION_DAYS, |p| p.min(MAX_RAW_RETENTION_DAYS));
    if !(1..=max).contains(&days) {
        let why = match plan {
            Some(p) if p <= MAX_RAW_RETENTION_DAYS => format!("the plan keeps data {p} days"),
            _ => format!("MAX_RAW_RETENTION_DAYS is {MAX_RAW_RETENTION_DAYS}"),
        };
        return Err(format!(
            "raw_retention_days must be from 1 to {max} ({why}), not {days}; send null to keep \
             raw events as long as the plan"
        ));
    }
    Ok(())
}

const READ: &str = "SELECT CAST(pl.retention_days AS BIGINT), CAST(p.raw_retention_days AS BIGINT)
     FROM projects p JOIN plans pl ON pl.name = p.plan WHERE p.id = $1";
const WRITE: &str = "UPDATE projects SET raw_retention_days = CAST($1 AS INTEGER) WHERE id = $2";

impl Store {
    /// The project's retention settings; `None` when there is no such project.
    pub async fn raw_retention(
        &self,
        project: ProjectId,
    ) -> Result<Option<RawRetention>, StoreError> {
        let row: Option<(Option<i64>, Option<i64>)> = with_db!(self, read_pool, |pool| {
            sqlx::query_as(READ)
                .bind(project)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(plan, raw)| RawRetention {
            plan_retention_days: plan,
            raw_retention_days: raw,
            effective_raw_retention_days: (plan.is_some() || raw.is_some())
                .then(|| raw_days(plan, raw)),
        }))
    }

    /// Sets (or, with `None`, clears) the project's raw retention; `false` when there is no
    /// such project. Callers check it with [`validate`] first.
    pub async fn set_raw_retention(
        &self,
        project: ProjectId,
        days: Option<i64>,
    ) -> Result<bool, StoreError> {
        let updated = with_db!(self, write_pool, |pool| {
            sqlx::query(WRITE)
                .bind(days)
                .bind(project)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(updated > 0)
    }
}
