//! Churn's reads: per period, the users active in it (`active_users_daily`, bots already left
//! out at ingest) and how many of them churned, by inactivity or by an event in the next period.

use sqlx::{AssertSqlSafe, Row};

use super::analytics::is_bot;
use super::{Backend, Store, StoreError};
use crate::domain::ProjectId;

/// One period of a churn series: `[start, next)`, followed by `[next, end)`, in day keys of
/// the project's time zone (`store::local_days`); the next period is `[next_at, end_at)` in
/// instants (unix ms), for the events.
#[derive(Debug, Clone, Copy)]
pub struct ChurnPeriod {
    pub start: i64,
    pub next: i64,
    pub end: i64,
    pub next_at: i64,
    pub end_at: i64,
}

/// How a user active in a period counts as churned.
#[derive(Debug, Clone, Copy)]
pub enum ChurnBy<'a> {
    /// Not active at all in the next period.
    Inactivity,
    /// Did this track event (not as a bot) in the next period.
    Event(&'a str),
}

/// The users active in `[$2, $3)`: day rows of the active-user rollup, one per user and day.
const ACTIVE: &str =
    "SELECT user_key FROM active_users_daily WHERE project_id = $1 AND day >= $2 AND day < $3";

impl Store {
    /// For each period, (users active in it, those of them churned). One query per period, each
    /// a range of the rollup's primary key (and, by event, of `events_by_name_time`).
    pub async fn churn_counts(
        &self,
        project_id: ProjectId,
        periods: &[ChurnPeriod],
        by: ChurnBy<'_>,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        with_db!(self, read_pool, |pool, backend| {
            let churned = match by {
                ChurnBy::Inactivity => format!(
                    "{ACTIVE} EXCEPT SELECT user_key FROM active_users_daily
                     WHERE project_id = $1 AND day >= $3 AND day < $4"
                ),
                ChurnBy::Event(_) => {
                    // Bots are out of the rollup, so out of the event's users too; PostgreSQL
                    // compares the rollup's byte-order keys with the events' own collation.
                    let not_bot = format!("NOT {}", is_bot(backend));
                    let collate = match backend {
                        Backend::Sqlite => "",
                        Backend::Postgres => " COLLATE \"C\"",
                    };
                    format!(
                        "{ACTIVE} INTERSECT SELECT COALESCE(user_id, anonymous_id){collate}
                         FROM events WHERE project_id = $1 AND event = $5 AND type = 'track'
                           AND timestamp >= $6 AND timestamp < $7 AND {not_bot}"
                    )
                }
            };
            let sql = format!(
                "SELECT (SELECT COUNT(DISTINCT user_key) FROM active_users_daily
                         WHERE project_id = $1 AND day >= $2 AND day < $3) AS active,
                        (SELECT COUNT(*) FROM ({churned}) AS c) AS churned"
            );
            let event = match by {
                ChurnBy::Inactivity => "",
                ChurnBy::Event(name) => name,
            };
            let mut out = Vec::with_capacity(periods.len());
            for p in periods {
                let mut q = sqlx::query(AssertSqlSafe(sql.clone()))
                    .bind(project_id)
                    .bind(p.start)
                    .bind(p.next)
                    .bind(p.end);
                if matches!(by, ChurnBy::Event(_)) {
                    q = q.bind(event).bind(p.next_at).bind(p.end_at);
                }
                let row = q.fetch_one(pool).await?;
                out.push((row.try_get("active")?, row.try_get("churned")?));
            }
            Ok(out)
        })
    }
}
