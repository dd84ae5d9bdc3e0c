//! The live tail: new events as server-sent events, re-checking access every poll.

use std::collections::HashMap;
use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;

use super::{TAIL_BATCH, TAIL_OVERLAP_MS, TAIL_POLL};
use crate::domain::ProjectId;
use crate::domain::account::Role;
use crate::error::{ApiError, ErrorBody};
use crate::routes::dashboard::ProjectPath;
use crate::routes::extract::{PathIds, Session};
use crate::state::AppState;

struct Tail {
    since: i64,
    sent: HashMap<i64, i64>,
    first: bool,
    /// The viewer's session and user, re-checked on every poll.
    token_hash: Vec<u8>,
    user_id: i64,
    /// The session or membership is gone: the `end` message was sent; the stream stops.
    ended: bool,
    /// Counts against PULSELINE_TAILS_PER_SESSION / PULSELINE_MAX_TAILS until the stream drops.
    _slot: crate::state::guards::TailSlot,
}

/// Whether the tail's viewer may still see the project: the session still exists (no logout,
/// no password change elsewhere, not expired) and the user is still a member.
async fn still_allowed(
    state: &AppState,
    token_hash: &[u8],
    user_id: i64,
    project: ProjectId,
) -> Result<bool, crate::store::StoreError> {
    let session = state
        .store
        .find_session(token_hash, state.clock.now())
        .await?;
    Ok(session.is_some_and(|s| s.user.id == user_id)
        && state.store.role_in(project, user_id).await?.is_some())
}

/// Server-sent events: every second, an `events` message with what arrived since the last
/// (at most 500), starting with the last minute. Correct across replicas and late commits:
/// it re-reads an overlapping window and skips what it already sent. Every poll re-checks the
/// session and the membership, so logging out, a password change or removal from the project
/// ends the stream within a poll.
#[utoipa::path(
    get, path = "/api/dash/projects/{project}/tail", tag = "dashboard",
    operation_id = "dashboard_tail", params(ProjectPath),
    description = "Server-sent events that do not end: every second an `events` message whose \
                   data is a JSON array of the events received since the last one (at most 500; \
                   the first covers the last minute), shaped as GET /api/v1/events' items; an \
                   `error` message while storage is unavailable. It ends, after an `end` \
                   message saying why, once the session ends (logout, password change, expiry) \
                   or the user is no longer a member of the project.",
    responses(
        (status = 200, content_type = "text/event-stream", body = String),
        (status = 400, description = "The project id is not an integer", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
        (status = 429, description = "The login already holds PULSELINE_TAILS_PER_SESSION \
                                      tails, or the server PULSELINE_MAX_TAILS",
            body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn tail(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    session.require(&state, project, Role::Viewer).await?;
    let slot = state.dashboard.tails.acquire(&session.token_hash)?;
    let start = state.clock.now().timestamp_millis() - 60_000;
    let initial = Tail {
        _slot: slot,
        since: start,
        sent: HashMap::new(),
        first: true,
        token_hash: session.token_hash,
        user_id: session.record.user.id,
        ended: false,
    };
    let stream = futures::stream::unfold((state, initial), move |(state, mut t)| async move {
        if t.ended {
            return None;
        }
        if !t.first {
            tokio::time::sleep(TAIL_POLL).await;
        }
        t.first = false;
        match still_allowed(&state, &t.token_hash, t.user_id, project).await {
            Ok(true) => {}
            Ok(false) => {
                t.ended = true;
                let end = Event::default()
                    .event("end")
                    .data("your session ended or you are no longer a member of this project");
                return Some((Ok(end), (state, t)));
            }
            Err(e) => {
                tracing::warn!(error = %e, "live tail access check failed");
                let error = Event::default()
                    .event("error")
                    .data("storage unavailable; retrying");
                return Some((Ok(error), (state, t)));
            }
        }
        let now = state.clock.now().timestamp_millis();
        let event = match state
            .store
            .events_received_since(project, t.since, TAIL_BATCH)
            .await
        {
            Ok(rows) => {
                let mut fresh = Vec::new();
                for e in rows {
                    if t.sent
                        .insert(e.seq, e.received_at.timestamp_millis())
                        .is_none()
                    {
                        fresh.push(e.render());
                    }
                }
                t.since = t.since.max(now - TAIL_OVERLAP_MS);
                let since = t.since;
                t.sent.retain(|_, received| *received >= since);
                Event::default()
                    .event("events")
                    .json_data(fresh)
                    .unwrap_or_else(|_| Event::default().event("error"))
            }
            Err(e) => {
                tracing::warn!(error = %e, "live tail query failed");
                Event::default()
                    .event("error")
                    .data("storage unavailable; retrying")
            }
        };
        Some((Ok(event), (state, t)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
