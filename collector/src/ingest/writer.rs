//! The group-commit writer. Requests hand their validated messages to one task, which folds
//! everything waiting at that moment into a single transaction and answers each request only
//! after the commit: one fsync serves many requests, and a 2xx always means "on disk".

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::error::ApiError;
use crate::store::{PendingBatch, Store};

/// Most events folded into one transaction; bounds a commit's latency under a backlog.
const MAX_EVENTS_PER_COMMIT: usize = 20_000;
/// What an overloaded collector asks clients to wait before retrying.
const OVERLOAD_RETRY_AFTER: Duration = Duration::from_secs(1);

/// How one request's messages fared in the commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitOutcome {
    /// Newly stored.
    pub stored: u64,
    /// Already stored under the same (project, messageId): acknowledged, not stored again.
    pub duplicates: u64,
}

struct Job {
    batch: PendingBatch,
    reply: oneshot::Sender<Result<u64, ()>>,
    /// Held until the commit: the queue is bounded by events, not requests.
    permit: OwnedSemaphorePermit,
}

/// The request side of the writer. Cloned into every handler.
#[derive(Debug, Clone)]
pub struct IngestQueue {
    tx: mpsc::UnboundedSender<Job>,
    capacity: Arc<Semaphore>,
    max_queued_events: usize,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("messages", &self.batch.messages.len())
            .finish()
    }
}

impl IngestQueue {
    /// Queues the batch and waits for its commit. Overload (more than `max_queued_events`
    /// waiting) is refused at once with 503 + Retry-After, before anything is queued.
    pub async fn commit(&self, batch: PendingBatch) -> Result<CommitOutcome, ApiError> {
        let n = batch.messages.len();
        if n == 0 {
            return Ok(CommitOutcome {
                stored: 0,
                duplicates: 0,
            });
        }
        let permits = u32::try_from(n).unwrap_or(u32::MAX);
        let permit = Arc::clone(&self.capacity)
            .try_acquire_many_owned(permits)
            .map_err(|_| {
                metrics::counter!("pulseline_ingest_overloaded_total").increment(1);
                ApiError::Overloaded {
                    message: format!(
                        "the collector has {} events waiting to be stored \
                         (PULSELINE_MAX_QUEUED_EVENTS); retry after the Retry-After delay",
                        self.max_queued_events
                    ),
                    retry_after: OVERLOAD_RETRY_AFTER,
                }
            })?;
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job {
                batch,
                reply,
                permit,
            })
            .map_err(|_| shutting_down())?;
        match answer.await {
            Ok(Ok(stored)) => Ok(CommitOutcome {
                stored,
                duplicates: n as u64 - stored,
            }),
            Ok(Err(())) => Err(ApiError::StorageUnavailable {
                retry_after: Duration::from_secs(2),
                detail: "the commit failed (logged by the writer)".to_owned(),
            }),
            Err(_) => Err(shutting_down()),
        }
    }
}

fn shutting_down() -> ApiError {
    ApiError::Overloaded {
        message: "the collector is shutting down; retry after the Retry-After delay".to_owned(),
        retry_after: OVERLOAD_RETRY_AFTER,
    }
}

/// Starts the writer: [`Store::concurrent_commits`] commit loops sharing one queue (one for
/// SQLite's single writer; several for PostgreSQL, whose server then works on several commits
/// at once). It stops once every [`IngestQueue`] clone is dropped and the queue is drained, so
/// awaiting the handle after the server stops finishes every in-flight commit.
pub fn spawn_writer(
    store: Store,
    max_queued_events: usize,
    notifications: crate::alerting::delivery::EventNotifications,
) -> (IngestQueue, JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queue = IngestQueue {
        tx,
        capacity: Arc::new(Semaphore::new(
            max_queued_events.min(Semaphore::MAX_PERMITS),
        )),
        max_queued_events,
    };
    let rx = Arc::new(Mutex::new(rx));
    let loops: Vec<_> = (0..store.concurrent_commits())
        .map(|_| tokio::spawn(run(store.clone(), Arc::clone(&rx), notifications.clone())))
        .collect();
    let handle = tokio::spawn(async move {
        for commit_loop in loops {
            let _ = commit_loop.await;
        }
    });
    (queue, handle)
}

/// Everything waiting when the queue is next free, up to [`MAX_EVENTS_PER_COMMIT`]; `None`
/// once the queue is closed and drained. The lock is held only while taking jobs, so another
/// loop gathers the next group while this one commits.
async fn next_group(rx: &Mutex<mpsc::UnboundedReceiver<Job>>) -> Option<(Vec<Job>, usize)> {
    let mut rx = rx.lock().await;
    let first = rx.recv().await?;
    let mut events = first.batch.messages.len();
    let mut jobs = vec![first];
    while events < MAX_EVENTS_PER_COMMIT {
        match rx.try_recv() {
            Ok(job) => {
                events += job.batch.messages.len();
                jobs.push(job);
            }
            Err(_) => break,
        }
    }
    Some((jobs, events))
}

async fn run(
    store: Store,
    rx: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>,
    notifications: crate::alerting::delivery::EventNotifications,
) {
    let mut deliveries = Vec::new();
    while let Some((jobs, events)) = next_group(&rx).await {
        let (batches, replies): (Vec<_>, Vec<_>) = jobs
            .into_iter()
            .map(|j| (j.batch, (j.reply, j.permit)))
            .unzip();

        deliveries.clear();
        notifications.matching(&batches, &mut deliveries);
        let requests = batches.len();
        let matched = deliveries.len();
        let started = Instant::now();
        let result = store
            .insert_batches(batches, std::mem::take(&mut deliveries))
            .await;
        metrics::histogram!("pulseline_commit_duration_seconds").record(started.elapsed());
        metrics::histogram!("pulseline_commit_events").record(events as f64);

        match result {
            Ok(stored) => {
                let stored_total: u64 = stored.iter().sum();
                metrics::counter!("pulseline_events_stored_total").increment(stored_total);
                metrics::counter!("pulseline_events_deduplicated_total")
                    .increment(events as u64 - stored_total);
                if matched > 0 {
                    notifications.committed(matched);
                }
                for ((reply, _permit), n) in replies.into_iter().zip(stored) {
                    let _ = reply.send(Ok(n));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, requests, events, "commit failed");
                metrics::counter!("pulseline_commit_failures_total").increment(1);
                for (reply, _permit) in replies {
                    let _ = reply.send(Err(()));
                }
            }
        }
    }
}
