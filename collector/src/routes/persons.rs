//! One person's data (docs/privacy.md): export as NDJSON,
//! delete everywhere it is stored or counted, and suppress their future events. Served to a
//! secret key under `/api/v1` and to a project's owners and admins under `/api/dash/...`.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiQuery, Caller};
use crate::domain::account::Role;
use crate::domain::message::MAX_ID_CHARS;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::store::persons::{
    EXPORT_PAGE, LinkedIds, MAX_LINKED_IDS, MAX_SUPPRESSIONS_LISTED, PersonDeletion, Suppression,
};

/// Deleting, exporting and suppressing persons: a project's owners and admins.
const PERSONS_ROLE: Role = Role::Admin;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PersonParams {
    /// The person's userId.
    user_id: Option<String>,
    /// The person's anonymousId.
    anonymous_id: Option<String>,
    /// Delete only: also drop this person's future events at ingest (default false).
    suppress: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PersonDeleted {
    /// Every id the deletion covered: those given and those linked to them by an event
    /// carrying both a userId and an anonymousId, or by an alias.
    pub ids: Vec<String>,
    pub deleted: PersonDeletion,
    /// Whether these ids' future events are dropped at ingest.
    pub suppressed: bool,
}

/// What deleting the person would remove, for a confirmation.
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonPreview {
    /// Every id a deletion would cover (see [`PersonDeleted::ids`]).
    pub ids: Vec<String>,
    /// Their stored events.
    pub events: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SuppressionsPage {
    pub suppressions: Vec<Suppression>,
    /// Pass as `after` for the next page; null on the last page.
    pub next_after: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SuppressionsParams {
    /// `next_after` from the previous page.
    after: Option<String>,
}

/// Refuses developers and viewers with a 403 that names the role needed.
fn may_manage_persons(caller: &Caller) -> Result<(), ApiError> {
    match caller {
        Caller::Member { role, project, .. } if *role < PERSONS_ROLE => {
            Err(ApiError::Forbidden(format!(
                "exporting, deleting and suppressing a person's data needs the {PERSONS_ROLE} \
                 role or higher in project {project}; you are {role}"
            )))
        }
        _ => Ok(()),
    }
}

/// The ids named in the query, checked.
fn requested_ids(params: &PersonParams) -> Result<Vec<String>, ApiError> {
    let mut ids = Vec::new();
    for (name, value) in [
        ("user_id", &params.user_id),
        ("anonymous_id", &params.anonymous_id),
    ] {
        let Some(value) = value else { continue };
        if value.is_empty() {
            return Err(ApiError::BadRequest(format!(
                "{name} is empty: pass the id exactly as the events carry it"
            )));
        }
        if value.chars().count() > MAX_ID_CHARS {
            return Err(ApiError::BadRequest(format!(
                "{name} is longer than {MAX_ID_CHARS} characters, so no event carries it"
            )));
        }
        if !ids.contains(value) {
            ids.push(value.clone());
        }
    }
    if ids.is_empty() {
        return Err(ApiError::BadRequest(
            "name the person: pass user_id=… and/or anonymous_id=…".into(),
        ));
    }
    Ok(ids)
}

/// The requested ids and every id linked to them.
async fn person(
    state: &AppState,
    caller: &Caller,
    ids: &[String],
) -> Result<Vec<String>, ApiError> {
    match state.store.linked_person_ids(caller.project(), ids).await? {
        LinkedIds::Ids(ids) => Ok(ids),
        LinkedIds::TooMany(n) => Err(ApiError::BadRequest(format!(
            "these ids are linked to {n}+ ids (the limit is {MAX_LINKED_IDS}): an id shared by \
             many people, such as a constant anonymousId, would take them all. Name the person \
             by an id that only they carry"
        ))),
    }
}

/// What the audit log says about the person: a SHA-256 of the requested ids, never the ids,
/// so the log does not keep what was deleted, yet someone who holds an id can check it.
fn person_digest(ids: &[String]) -> String {
    let digest = Sha256::digest(ids.join("\n").as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("person sha256:{hex}")
}

/// The ids and the number of events a deletion of this person would cover.
#[utoipa::path(
    get, path = "/api/v1/persons", tag = "privacy",
    operation_id = "persons_preview",
    params(PersonParams),
    responses(
        (status = 200, body = PersonPreview),
        (status = 400, description = "No id, an invalid one, or one linked to too many others", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
        (status = 403, description = "A write key, or a role below admin", body = ErrorBody),
        (status = 503, description = "Storage unavailable; or, as a heavy query, over its time budget (PULSELINE_DASHBOARD_QUERY_TIMEOUT_MS, code query_timeout) or too many running (PULSELINE_DASHBOARD_QUERIES_PER_PROJECT, PULSELINE_DASHBOARD_QUERIES, code overloaded); see Retry-After", body = ErrorBody),
    ),
    security(("bearer" = []), ("basic" = []))
)]
pub async fn preview(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<PersonParams>,
) -> Result<Json<PersonPreview>, ApiError> {
    may_manage_persons(&caller)?;
    let requested = requested_ids(&params)?;
    // Linking and counting scan the project's events (no index on the ids): a heavy query.
    let _slot = state
        .dashboard
        .queries
        .admit_advising(
            caller.project(),
            "finding a person's events reads all of the project's; try again when the server \
             is less busy (a deletion, DELETE /api/v1/persons, has no time budget)",
        )
        .await?;
    let ids = person(&state, &caller, &requested).await?;
    let events = state
        .store
        .count_person_events(caller.project(), &ids)
        .await?;
    Ok(Json(PersonPreview { ids, events }))
}

/// Delete every stored event of one person, and everything derived from them.
#[utoipa::path(
    delete, path = "/api/v1/persons", tag = "privacy",
    operation_id = "persons_delete",
    params(PersonParams),
    responses(
        (status = 200, body = PersonDeleted),
        (status = 400, description = "No id, an invalid one, or one linked to too many others", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
        (status = 403, description = "A write key, or a role below admin", body = ErrorBody),
                (status = 503, description = "Storage unavailable", body = ErrorBody),
    ),
    security(("bearer" = []), ("basic" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<PersonParams>,
) -> Result<Json<PersonDeleted>, ApiError> {
    may_manage_persons(&caller)?;
    let requested = requested_ids(&params)?;
    let ids = person(&state, &caller, &requested).await?;
    let suppress = params.suppress.unwrap_or(false);
    if suppress {
        // First, so that no event of theirs arrives between the deletion and the suppression.
        state
            .store
            .suppress_persons(caller.project(), &ids, state.clock.now())
            .await?;
        state.suppressions.reload(&state.store).await?;
    }
    let deleted = state.store.delete_person(caller.project(), &ids).await?;
    let d = &deleted;
    caller
        .audit(
            &state,
            "person.deleted",
            format!(
                "{} ({} ids): events {}, hourly rollups {}, active-user days {}, last-seen {}, \
                 deliveries {}; suppressed {suppress}",
                person_digest(&requested),
                ids.len(),
                d.events,
                d.hourly_rollups,
                d.active_user_days,
                d.users_last_seen,
                d.deliveries
            ),
        )
        .await?;
    Ok(Json(PersonDeleted {
        ids,
        deleted,
        suppressed: suppress,
    }))
}

/// Every stored event of one person, oldest first, one JSON object per line (NDJSON).
#[utoipa::path(
    get, path = "/api/v1/persons/export", tag = "privacy",
    operation_id = "persons_export",
    params(PersonParams),
    responses(
        (status = 200, description = "The person's events as NDJSON, rendered as GET /api/v1/events renders them", content_type = "application/x-ndjson", body = String),
        (status = 400, description = "No id, an invalid one, or one linked to too many others", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
        (status = 403, description = "A write key, or a role below admin", body = ErrorBody),
        (status = 503, description = "Storage unavailable; or too many heavy queries running (PULSELINE_DASHBOARD_QUERIES_PER_PROJECT, PULSELINE_DASHBOARD_QUERIES, code overloaded; an export keeps its project's slot while it streams, and has no time budget); see Retry-After", body = ErrorBody),
    ),
    security(("bearer" = []), ("basic" = []))
)]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<PersonParams>,
) -> Result<Response, ApiError> {
    may_manage_persons(&caller)?;
    let requested = requested_ids(&params)?;
    // A heavy query for as long as it streams, but without the time budget: an export answers
    // a right of access and must be complete, so it is bounded in number instead of cut short.
    let mut slot = state
        .dashboard
        .queries
        .admit_without_deadline(caller.project())
        .await?;
    let ids = person(&state, &caller, &requested).await?;
    caller
        .audit(&state, "person.exported", person_digest(&requested))
        .await?;
    let store = state.store.clone();
    let project = caller.project();
    // One page in memory at a time; the next is read when the client has taken this one. The
    // project's slot goes with the last page, or with the stream when the client goes away;
    // the server's is held only while a page is read.
    slot.pause();
    let pages = futures::stream::try_unfold(Some((0_i64, slot)), move |state| {
        let store = store.clone();
        let ids = ids.clone();
        async move {
            let Some((after, mut slot)) = state else {
                return Ok(None);
            };
            slot.resume().await;
            let page = store
                .person_events_page(project, &ids, after, EXPORT_PAGE)
                .await
                .map_err(std::io::Error::other)?;
            slot.pause();
            let Some(last) = page.last().map(|e| e.seq) else {
                return Ok(None);
            };
            let next = (page.len() as i64 == EXPORT_PAGE).then_some((last, slot));
            let mut out = Vec::new();
            for event in page {
                serde_json::to_writer(&mut out, &event.render()).map_err(std::io::Error::other)?;
                out.push(b'\n');
            }
            Ok::<_, std::io::Error>(Some((Bytes::from(out), next)))
        }
    });
    let pages = futures::TryStreamExt::map_err(pages, |e| {
        tracing::error!(error = %e, "person export failed midway");
        e
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"person-events.ndjson\"",
            ),
        ],
        Body::from_stream(pages),
    )
        .into_response())
}

/// The project's suppressed ids, in id order.
#[utoipa::path(
    get, path = "/api/v1/persons/suppressions", tag = "privacy",
    operation_id = "persons_suppressions",
    params(SuppressionsParams),
    responses(
        (status = 200, body = SuppressionsPage),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
        (status = 403, description = "A write key, or a role below admin", body = ErrorBody),
        (status = 503, description = "Storage unavailable", body = ErrorBody),
    ),
    security(("bearer" = []), ("basic" = []))
)]
pub async fn suppressions(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<SuppressionsParams>,
) -> Result<Json<SuppressionsPage>, ApiError> {
    may_manage_persons(&caller)?;
    let suppressions = state
        .store
        .list_suppressions(caller.project(), params.after.as_deref().unwrap_or(""))
        .await?;
    let next_after = (suppressions.len() as i64 == MAX_SUPPRESSIONS_LISTED)
        .then(|| suppressions.last().map(|s| s.person_id.clone()))
        .flatten();
    Ok(Json(SuppressionsPage {
        suppressions,
        next_after,
    }))
}

/// Lift the suppression of one id: its new events are stored again.
#[utoipa::path(
    delete, path = "/api/v1/persons/suppressions", tag = "privacy",
    operation_id = "persons_lift_suppression",
    params(PersonParams),
    responses(
        (status = 204, description = "Lifted"),
        (status = 400, description = "No id, or more than one", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
        (status = 403, description = "A write key, or a role below admin", body = ErrorBody),
        (status = 404, description = "The id is not suppressed", body = ErrorBody),
        (status = 503, description = "Storage unavailable", body = ErrorBody),
    ),
    security(("bearer" = []), ("basic" = []))
)]
pub async fn lift(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<PersonParams>,
) -> Result<axum::http::StatusCode, ApiError> {
    may_manage_persons(&caller)?;
    let ids = requested_ids(&params)?;
    let [id] = ids.as_slice() else {
        return Err(ApiError::BadRequest(
            "lift one id at a time: pass either user_id=… or anonymous_id=…".into(),
        ));
    };
    if !state.store.lift_suppression(caller.project(), id).await? {
        return Err(ApiError::NotFound(
            "that id is not suppressed in this project: see GET /api/v1/persons/suppressions"
                .into(),
        ));
    }
    state.suppressions.reload(&state.store).await?;
    caller
        .audit(
            &state,
            "person.suppression_lifted",
            person_digest(std::slice::from_ref(id)),
        )
        .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
