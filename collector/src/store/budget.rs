//! A request's time budget as the database sees it (docs/architecture/analytics-at-scale.md,
//! "Time and concurrency"). Dropping a query's future does not stop its statement: SQLite runs
//! it to the end on the connection's worker thread, PostgreSQL on the server. So a budgeted
//! request reads through pools of its own whose connections are armed, when taken, with the
//! request's deadline: a SQLite progress handler that interrupts the statement once it is past,
//! a PostgreSQL `statement_timeout` of the time left.
//!
//! Which request is budgeted travels as a task-local ([`within`]) set up for every HTTP request
//! (`state::query_budget::bound`), so store code picks the budgeted pool through its usual
//! `read_pool()` without a parameter on every query. The clock starts at the request's first
//! budgeted statement, so a statement is always sent before its budget can be spent.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::postgres::{PgConnection, PgPoolOptions};
use sqlx::sqlite::{SqliteConnection, SqlitePoolOptions};
use tokio::sync::watch;
use tokio::time::Instant;

use super::Backend;

/// SQLite virtual-machine steps between two looks at the clock: often enough to stop a
/// statement within a fraction of a millisecond, rarely enough to cost nothing measurable.
const PROGRESS_STEPS: i32 = 1_000;

/// How long a budgeted request waits for a connection of the budgeted pool; the request's own
/// budget normally ends the wait first.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// One request's budget: unset for a cheap request, set by admission as a heavy query.
#[derive(Debug)]
pub struct QueryBudget {
    timeout: OnceLock<Duration>,
    advice: OnceLock<&'static str>,
    deadline: watch::Sender<Option<Instant>>,
}

tokio::task_local! {
    static BUDGET: Arc<QueryBudget>;
}

impl QueryBudget {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            timeout: OnceLock::new(),
            advice: OnceLock::new(),
            deadline: watch::Sender::new(None),
        })
    }

    /// How long this request's statements may take, once it is a heavy query.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout.get().copied()
    }

    /// What the answer over budget tells the client to do, once it is a heavy query.
    pub fn advice(&self) -> Option<&'static str> {
        self.advice.get().copied()
    }

    /// The deadline, starting the clock if it has not started yet; `None` without a budget.
    fn start_clock(&self) -> Option<Instant> {
        let timeout = self.timeout()?;
        let mut deadline = None;
        self.deadline.send_if_modified(|d| {
            let started = d.is_none();
            deadline = Some(*d.get_or_insert_with(|| Instant::now() + timeout));
            started
        });
        deadline
    }

    /// Whether the budget has started and is spent.
    pub fn is_spent(&self) -> bool {
        self.deadline
            .borrow()
            .is_some_and(|deadline| Instant::now() >= deadline)
    }

    /// Resolves `grace` after the budget is spent; never without a budget.
    pub async fn spent_since(&self, grace: Duration) {
        let mut deadline = self.deadline.subscribe();
        let spent_at = deadline
            .wait_for(Option::is_some)
            .await
            .map(|d| (*d).unwrap_or_else(Instant::now));
        match spent_at {
            Ok(at) => tokio::time::sleep_until(at + grace).await,
            Err(_) => std::future::pending().await,
        }
    }
}

/// Runs `request` with `budget` as its budget (unset until [`start`] is called in it).
pub async fn within<F: Future>(budget: Arc<QueryBudget>, request: F) -> F::Output {
    BUDGET.scope(budget, request).await
}

/// Gives the current request a budget of `timeout` for its statements from now on, and the
/// `advice` its answer gives when the budget is spent. Returns false outside [`within`] (a
/// background task), where nothing is budgeted.
pub fn start(timeout: Duration, advice: &'static str) -> bool {
    BUDGET
        .try_with(|b| {
            // A second admission in one request keeps the first budget.
            let _ = b.timeout.set(timeout);
            let _ = b.advice.set(advice);
        })
        .is_ok()
}

/// The current request's budget, if it is inside [`within`].
pub fn current() -> Option<Arc<QueryBudget>> {
    BUDGET.try_with(Arc::clone).ok()
}

/// Whether the current request has a budget, starting its clock: store code reading now reads
/// through the budgeted pool.
pub(crate) fn budgeted() -> bool {
    deadline().is_some()
}

/// The current request's deadline (starting the clock), if it has a budget.
fn deadline() -> Option<Instant> {
    BUDGET.try_with(|b| b.start_clock()).ok().flatten()
}

/// Whether the current request's budget is spent.
pub fn spent() -> bool {
    BUDGET.try_with(|b| b.is_spent()).unwrap_or(false)
}

/// Milliseconds left until `deadline`, rounded up and at least 1 (PostgreSQL reads 0 as "no
/// timeout"), so the server stops a statement at or just after the deadline, never before.
fn millis_left(deadline: Instant) -> u128 {
    let left = deadline.saturating_duration_since(Instant::now());
    left.as_nanos().div_ceil(1_000_000).max(1)
}

/// The SQLite pool of budgeted reads: each connection taken gets the request's deadline as a
/// progress handler, removed again before it goes back.
pub(crate) fn sqlite_pool(max_connections: u32) -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // Arming is a round trip to the connection's worker: it tests the connection too.
        .test_before_acquire(false)
        .after_connect(|conn, _| Box::pin(arm_sqlite(conn)))
        .before_acquire(|conn, _| {
            Box::pin(async move {
                arm_sqlite(conn).await?;
                Ok(true)
            })
        })
        .after_release(|conn, _| {
            Box::pin(async move {
                // Waits for a statement abandoned by a dropped future: it stops at the
                // deadline, and only then does the connection go back.
                conn.lock_handle().await?.remove_progress_handler();
                Ok(true)
            })
        })
}

async fn arm_sqlite(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let deadline = deadline();
    let mut handle = conn.lock_handle().await?;
    match deadline {
        Some(deadline) => {
            // The handler runs on the connection's worker thread: the plain clock.
            let deadline = deadline.into_std();
            handle.set_progress_handler(PROGRESS_STEPS, move || {
                let go_on = std::time::Instant::now() < deadline;
                if !go_on {
                    metrics::counter!("pulseline_dashboard_statements_stopped_total").increment(1);
                }
                go_on
            })
        }
        None => handle.remove_progress_handler(),
    }
    Ok(())
}

/// `application_name` of the budgeted connections, so `pg_stat_activity` tells heavy dashboard
/// queries apart.
pub const POSTGRES_APPLICATION_NAME: &str = "pulseline heavy query";

/// The PostgreSQL pool of budgeted reads: each connection taken gets `statement_timeout` set
/// to the request's time left. Its connections serve nothing else, so none is ever reset.
pub(crate) fn postgres_pool(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // Arming is a statement: it tests the connection too.
        .test_before_acquire(false)
        .after_connect(|conn, _| Box::pin(arm_postgres(conn)))
        .before_acquire(|conn, _| {
            Box::pin(async move {
                arm_postgres(conn).await?;
                Ok(true)
            })
        })
}

/// Sets the connection's `statement_timeout` to the current request's time left (none without
/// a budget). Store code that holds one connection for several statements calls it before
/// each, so that a later statement does not get the time left when the connection was taken.
pub(crate) async fn arm_postgres(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    let millis = deadline().map_or(0, millis_left);
    sqlx::query("SELECT set_config('statement_timeout', $1, false)")
        .bind(millis.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// The backend that stopped the statement `e` failed with, if a budget did: SQLite's
/// progress handler (`SQLITE_INTERRUPT`) or PostgreSQL's `statement_timeout` (`57014`).
pub(crate) fn stopped_statement(e: &sqlx::Error) -> Option<Backend> {
    let sqlx::Error::Database(e) = e else {
        return None;
    };
    if e.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        (e.code().as_deref() == Some("9")).then_some(Backend::Sqlite)
    } else {
        (e.code().as_deref() == Some("57014")).then_some(Backend::Postgres)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_clock_starts_at_the_first_budgeted_read_and_only_inside_a_request() {
        assert!(!start(Duration::from_secs(1), ""), "no request, no budget");
        assert!(!budgeted());
        let budget = QueryBudget::new();
        within(budget.clone(), async {
            assert!(!budgeted(), "a request is cheap until admitted");
            assert!(start(Duration::from_millis(50), ""));
            assert!(!budget.is_spent());
            let first = deadline().unwrap();
            assert_eq!(deadline(), Some(first), "one deadline per request");
            assert!(!spent());
            tokio::time::sleep_until(first).await;
            assert!(spent());
        })
        .await;
        assert!(budget.is_spent());
    }

    #[tokio::test]
    async fn millis_left_round_up_and_never_reach_zero() {
        let now = Instant::now();
        assert_eq!(millis_left(now), 1);
        let left = millis_left(now + Duration::from_micros(2_500));
        assert!((1..=3).contains(&left), "{left}");
    }
}
