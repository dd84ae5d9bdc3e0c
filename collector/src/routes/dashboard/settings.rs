//! A project's settings: its time zone, which decides what "today" and each day are on the Web
//! page, and its tracked properties, which Explore filters and groups by from rollups. Members
//! read them; admins change them.

use axum::Json;
use axum::extract::State;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{CsrfHeader, ProjectPath};
use crate::domain::ProjectId;
use crate::domain::account::Role;
use crate::error::{ApiError, ErrorBody};
use crate::routes::extract::{ApiJson, PathIds, Session};
use crate::state::AppState;
use crate::store::props::{MAX_TRACKED_KEY_CHARS, MAX_TRACKED_PROPERTIES};

/// Longest time zone name accepted (IANA names are far shorter).
pub const MAX_TIMEZONE_CHARS: usize = 64;

#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectSettings {
    /// IANA time zone name (`Europe/Berlin`, `America/New_York`, `UTC`): decides what "today"
    /// and each day are on the Web page.
    pub timezone: String,
    /// Property keys rolled up by value (at most 8): Explore answers a count filtered and/or
    /// grouped by them from rollups, over any range, instead of reading raw events.
    pub tracked_properties: Vec<String>,
    /// Tracked keys whose rollup is still being filled from the stored events: until it is,
    /// Explore reads raw events for them.
    pub tracked_properties_pending: Vec<String>,
}

/// A change of settings: each field given is set, the others are left as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    /// IANA time zone name (`Europe/Berlin`, `America/New_York`, `UTC`).
    pub timezone: Option<String>,
    /// The whole list of tracked property keys (at most 8 keys of at most 200 characters;
    /// dots reach into objects, as in Explore). A new key is filled from the stored events in
    /// the background; a key left out loses its rollup.
    pub tracked_properties: Option<Vec<String>>,
}

async fn current(state: &AppState, project: ProjectId) -> Result<ProjectSettings, ApiError> {
    let tracked = state.store.tracked_properties(project).await?;
    Ok(ProjectSettings {
        timezone: state.store.project_timezone(project).await?,
        tracked_properties_pending: tracked
            .iter()
            .filter(|k| !k.ready())
            .map(|k| k.key.clone())
            .collect(),
        tracked_properties: tracked.into_iter().map(|k| k.key).collect(),
    })
}

/// The keys as given (trimmed), or what is wrong with them.
fn tracked_keys(keys: &[String]) -> Result<Vec<String>, ApiError> {
    if keys.len() > MAX_TRACKED_PROPERTIES {
        return Err(ApiError::BadRequest(format!(
            "tracked_properties lists {} keys: at most {MAX_TRACKED_PROPERTIES} \
             (MAX_TRACKED_PROPERTIES)",
            keys.len()
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(keys.len());
    for k in keys {
        let k = k.trim();
        if k.is_empty() {
            return Err(ApiError::BadRequest(
                "tracked_properties: a key is empty; name a property such as plan or \
                 context.country"
                    .to_owned(),
            ));
        }
        if k.chars().count() > MAX_TRACKED_KEY_CHARS {
            return Err(ApiError::BadRequest(format!(
                "tracked_properties: the key {:?}… is longer than {MAX_TRACKED_KEY_CHARS} \
                 characters (MAX_TRACKED_KEY_CHARS)",
                k.chars().take(40).collect::<String>()
            )));
        }
        if out.iter().any(|o| o == k) {
            return Err(ApiError::BadRequest(format!(
                "tracked_properties: the key {k:?} is listed twice"
            )));
        }
        out.push(k.to_owned());
    }
    Ok(out)
}

#[utoipa::path(
    get, path = "/api/dash/projects/{project}/settings", tag = "dashboard",
    operation_id = "dashboard_project_settings", params(ProjectPath),
    responses(
        (status = 200, body = ProjectSettings),
        (status = 400, description = "The project id is not an integer", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn settings(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
) -> Result<Json<ProjectSettings>, ApiError> {
    session.require(&state, project, Role::Viewer).await?;
    Ok(Json(current(&state, project).await?))
}

#[utoipa::path(
    post, path = "/api/dash/projects/{project}/settings", tag = "dashboard",
    operation_id = "dashboard_project_settings_update", params(ProjectPath, CsrfHeader),
    request_body = SettingsChange,
    description = "Sets the project's time zone and/or its tracked properties (each field \
                   given). Needs the admin role; audited.",
    responses(
        (status = 200, body = ProjectSettings),
        (status = 400, description = "Not an IANA time zone name, or tracked properties \
            over MAX_TRACKED_PROPERTIES (8), empty, repeated or longer than \
            MAX_TRACKED_KEY_CHARS (200)", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 403, description = "Below the admin role, or a missing CSRF token",
            body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn update_settings(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
    ApiJson(body): ApiJson<SettingsChange>,
) -> Result<Json<ProjectSettings>, ApiError> {
    session.require(&state, project, Role::Admin).await?;
    let keys = body
        .tracked_properties
        .as_deref()
        .map(tracked_keys)
        .transpose()?;
    if let Some(name) = body.timezone.as_deref() {
        set_timezone(&state, &session, project, name.trim()).await?;
    }
    if let Some(keys) = keys {
        if state.store.set_tracked_properties(project, &keys).await? {
            // New keys are filled from the stored events, a chunk per transaction, in the
            // background (the maintenance pass resumes what a restart cuts short).
            let store = state.store.clone();
            tokio::spawn(async move {
                loop {
                    match store.backfill_props().await {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "filling a tracked property's rollup failed; the maintenance pass resumes it");
                            break;
                        }
                    }
                }
            });
        }
        session
            .audit(
                &state,
                Some(project),
                "project.tracked_properties",
                format!("tracked properties: {}", keys.join(", ")),
            )
            .await?;
    }
    Ok(Json(current(&state, project).await?))
}

async fn set_timezone(
    state: &AppState,
    session: &Session,
    project: ProjectId,
    name: &str,
) -> Result<(), ApiError> {
    let known = name.len() <= MAX_TIMEZONE_CHARS && TimeZone::get(name).is_ok();
    if !known {
        return Err(ApiError::BadRequest(format!(
            "unknown time zone {:?}: use an IANA name such as Europe/Berlin, \
             America/New_York or UTC",
            name.chars().take(MAX_TIMEZONE_CHARS).collect::<String>()
        )));
    }
    let now = state.clock.now().timestamp_millis();
    if state.store.change_timezone(project, name, now).await? {
        // The active-user rollups are keyed by local day: re-key them in the background (the
        // maintenance pass resumes a rebuild this one leaves unfinished).
        let store = state.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.rebuild_local_days(now).await {
                tracing::warn!(error = %e, "re-keying the days after a time zone change failed");
            }
        });
    }
    session
        .audit(
            state,
            Some(project),
            "project.timezone",
            format!("time zone {name}"),
        )
        .await?;
    Ok(())
}
