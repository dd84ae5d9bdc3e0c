//! Bounds on heavy dashboard queries, in time and in number (docs/architecture/
//! analytics-at-scale.md, "Time and concurrency"). A heavy query is admitted with
//! [`HeavyQueries::admit`]: at most PULSELINE_DASHBOARD_QUERIES_PER_PROJECT of one project and
//! PULSELINE_DASHBOARD_QUERIES in all run at once, and from then on its statements have
//! PULSELINE_DASHBOARD_QUERY_TIMEOUT_MS (`store::budget` stops them). Every request runs inside
//! [`bound`], which answers 503 for a request whose budget is spent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::config::DashboardConfig;
use crate::domain::ProjectId;
use crate::error::ApiError;
use crate::store::budget::{self, QueryBudget};
use crate::store::{Backend, StoreError};

/// How long a client refused for load is asked to wait.
const RETRY_AFTER: Duration = Duration::from_secs(2);
/// How long a client whose query ran out of time is asked to wait: the same query needs the
/// server less busy, or a narrower question.
const OVER_BUDGET_RETRY_AFTER: Duration = Duration::from_secs(5);
/// What a query over its time budget is told to do, unless its route knows better: a query
/// with a range and filters.
pub const NARROWER_QUERY: &str =
    "choose a shorter range or fewer filters, or try again when the server is less busy";

/// After its budget, how long a request may still take before it is answered 503 anyway. Its
/// statements stop at the deadline and the error answers at once; this only bounds a request
/// waiting on something else (a connection, the single SQLite writer).
const BACKSTOP: Duration = Duration::from_secs(1);

/// The slots of heavy queries, per project and in all.
#[derive(Debug)]
pub struct HeavyQueries {
    timeout: Duration,
    wait: Duration,
    per_project: u32,
    total_limit: usize,
    total: Arc<Semaphore>,
    projects: Arc<Mutex<HashMap<ProjectId, Arc<Semaphore>>>>,
}

/// One admitted heavy query; dropping it (the answer is built, or the client went away) frees
/// its slots. The statements it started stop at its deadline.
#[derive(Debug)]
pub struct QuerySlot {
    project: ProjectId,
    slot: Option<OwnedSemaphorePermit>,
    project_slots: Arc<Semaphore>,
    projects: Arc<Mutex<HashMap<ProjectId, Arc<Semaphore>>>>,
    total: Option<OwnedSemaphorePermit>,
    total_slots: Arc<Semaphore>,
}

impl HeavyQueries {
    pub fn new(config: &DashboardConfig) -> Self {
        let total_limit = match config.queries {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n as usize,
        };
        Self {
            timeout: Duration::from_millis(config.query_timeout_ms.max(1)),
            wait: Duration::from_millis(config.query_wait_ms),
            per_project: config.queries_per_project.max(1),
            total_limit,
            total: Arc::new(Semaphore::new(total_limit)),
            projects: Arc::default(),
        }
    }

    /// Admits a heavy query of `project` (whose access the caller has checked) once a slot of
    /// the project and one of the server are free within PULSELINE_DASHBOARD_QUERY_WAIT_MS;
    /// else 503 with Retry-After. From then on the request's statements have its time budget.
    pub async fn admit(&self, project: ProjectId) -> Result<QuerySlot, ApiError> {
        self.admit_advising(project, NARROWER_QUERY).await
    }

    /// [`Self::admit`] for a query without a range or filters to narrow: `advice` is what its
    /// answer over budget tells the client to do instead.
    pub async fn admit_advising(
        &self,
        project: ProjectId,
        advice: &'static str,
    ) -> Result<QuerySlot, ApiError> {
        let slot = self.admit_without_deadline(project).await?;
        if !budget::start(self.timeout, advice) {
            tracing::warn!("a heavy query outside an HTTP request runs without a time budget");
        }
        Ok(slot)
    }

    /// Runs `work` as a heavy query of `project` with a budget of its own, for a request that
    /// does more once the reads are done (the digest preview then sends an e-mail): what comes
    /// after `work` is neither counted nor cut. Store errors must become `ApiError` inside
    /// `work`, where the budget that stopped them is known.
    pub async fn run<T>(
        &self,
        project: ProjectId,
        advice: &'static str,
        work: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        let budget = QueryBudget::new();
        budget::within(budget.clone(), async {
            let _slot = self.admit_advising(project, advice).await?;
            tokio::select! {
                biased;
                done = work => done,
                () = budget.spent_since(BACKSTOP) => Err(over_budget_error(&budget)),
            }
        })
        .await
    }

    /// Admits like [`Self::admit`], but the statements get no deadline: for a read that must
    /// be complete, such as a person's export (a right of access, not to be cut short). It
    /// counts against both bounds until [`QuerySlot::pause`].
    pub async fn admit_without_deadline(&self, project: ProjectId) -> Result<QuerySlot, ApiError> {
        let until = Instant::now() + self.wait;
        let waiting = Waiting::new();
        let project_slots = self
            .projects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(project)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_project as usize)))
            .clone();
        // The project's slot first: a project at its bound waits without holding one of the
        // server's, which other projects may use.
        let slot = match tokio::time::timeout_at(until, project_slots.clone().acquire_owned()).await
        {
            Ok(Ok(slot)) => slot,
            _ => {
                forget_if_idle(&self.projects, project, &project_slots);
                return Err(self.refused(
                    "project",
                    format!(
                        "this project already runs as many heavy dashboard queries as it \
                         may at once (PULSELINE_DASHBOARD_QUERIES_PER_PROJECT = {}): wait for \
                         one to finish and try again",
                        self.per_project
                    ),
                ));
            }
        };
        let total = match tokio::time::timeout_at(until, self.total.clone().acquire_owned()).await {
            Ok(Ok(total)) => total,
            _ => {
                drop(slot);
                forget_if_idle(&self.projects, project, &project_slots);
                return Err(self.refused(
                    "server",
                    format!(
                        "this server already runs as many heavy dashboard queries as it \
                         may at once (PULSELINE_DASHBOARD_QUERIES = {}): try again in a moment",
                        self.total_limit
                    ),
                ));
            }
        };
        drop(waiting);
        metrics::gauge!("pulseline_dashboard_queries_running").increment(1.0);
        Ok(QuerySlot {
            project,
            slot: Some(slot),
            project_slots,
            projects: self.projects.clone(),
            total: Some(total),
            total_slots: self.total.clone(),
        })
    }

    fn refused(&self, bound: &'static str, message: String) -> ApiError {
        metrics::counter!("pulseline_dashboard_queries_refused_total", "bound" => bound)
            .increment(1);
        ApiError::Overloaded {
            message,
            retry_after: RETRY_AFTER,
        }
    }
}

/// A query waiting for a slot, counted in `pulseline_dashboard_queries_waiting` for as long
/// as it waits (until admitted, refused, or its client goes away).
struct Waiting;

impl Waiting {
    fn new() -> Self {
        metrics::gauge!("pulseline_dashboard_queries_waiting").increment(1.0);
        Self
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        metrics::gauge!("pulseline_dashboard_queries_waiting").decrement(1.0);
    }
}

/// Removes a project's slots once nobody holds or waits for one, so the map does not keep
/// every project ever queried. `slots` is the caller's own reference.
fn forget_if_idle(
    projects: &Mutex<HashMap<ProjectId, Arc<Semaphore>>>,
    project: ProjectId,
    slots: &Arc<Semaphore>,
) {
    let mut projects = projects.lock().unwrap_or_else(|e| e.into_inner());
    // The map's reference and the caller's: every holder and waiter has one more.
    if Arc::strong_count(slots) == 2 {
        projects.remove(&project);
    }
}

impl QuerySlot {
    /// Gives back the server's slot and keeps the project's, while the query waits on its
    /// client (an export between two pages): a client that stops reading then holds up only
    /// its own project, never the server's other projects.
    pub fn pause(&mut self) {
        self.total = None;
    }

    /// Takes a server's slot again after [`Self::pause`], waiting as long as it takes: a
    /// query already answering (an export halfway) is slowed down by load, not cut short.
    pub async fn resume(&mut self) {
        if self.total.is_none() {
            let _waiting = Waiting::new();
            let total = self.total_slots.clone().acquire_owned().await;
            self.total = Some(total.expect("the server's slots are never closed"));
        }
    }
}

impl Drop for QuerySlot {
    fn drop(&mut self) {
        drop(self.slot.take());
        forget_if_idle(&self.projects, self.project, &self.project_slots);
        metrics::gauge!("pulseline_dashboard_queries_running").decrement(1.0);
    }
}

/// The answer for `e` if it is the current request's budget running out: a heavy query past
/// its deadline, or a statement the database stopped for it.
pub fn over_budget(e: &StoreError) -> Option<ApiError> {
    let budget = budget::current()?;
    budget.timeout()?;
    let stopped = match e {
        StoreError::Database(e) => budget::stopped_statement(e),
        _ => None,
    };
    if stopped == Some(Backend::Postgres) {
        // SQLite's progress handler counts its own stops.
        metrics::counter!("pulseline_dashboard_statements_stopped_total").increment(1);
    }
    (stopped.is_some() || budget.is_spent()).then(|| over_budget_error(&budget))
}

fn over_budget_error(budget: &QueryBudget) -> ApiError {
    metrics::counter!("pulseline_dashboard_queries_over_budget_total").increment(1);
    let timeout = budget.timeout().unwrap_or_default();
    let ms = timeout.as_millis();
    let took = if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    };
    let advice = budget.advice().unwrap_or(NARROWER_QUERY);
    ApiError::QueryTimeout {
        message: format!(
            "this query took longer than {took} (PULSELINE_DASHBOARD_QUERY_TIMEOUT_MS = {ms}) \
             and was stopped: {advice}"
        ),
        retry_after: OVER_BUDGET_RETRY_AFTER,
    }
}

/// Runs every request inside its (unset) budget; a heavy query still unanswered [`BACKSTOP`]
/// after its budget is spent is answered 503 (its statements were stopped at the deadline).
pub async fn bound(request: Request, next: Next) -> Response {
    let budget = QueryBudget::new();
    let answer = budget::within(budget.clone(), next.run(request));
    tokio::select! {
        biased;
        response = answer => response,
        () = budget.spent_since(BACKSTOP) => over_budget_error(&budget).into_response(),
    }
}
