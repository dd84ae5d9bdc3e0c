//! Joining a project: an admin invites an e-mail address with a role; whoever logs in with that
//! address accepts or declines in the dashboard. The inviter gets the same answer whether or not
//! the address has an account (an invitation waits for the account to be created), so
//! invitations cannot be used to find out who uses this collector.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::account::Done;
use super::projects::ProjectView;
use super::{CsrfHeader, ProjectPath};
use crate::domain::ProjectId;
use crate::domain::account::{Email, Role};
use crate::error::{ApiError, ErrorBody};
use crate::routes::extract::{ApiJson, PathIds, Session, no_such_project};
use crate::state::AppState;
use crate::store::invitations::Invitation;

/// Days an invitation can be accepted; inviting the same address again renews it.
pub const INVITATION_TTL_DAYS: i64 = 14;
/// Most pending invitations per project; cancel some (or let them expire) to invite more.
pub const MAX_PENDING_INVITATIONS: usize = 50;
/// Most members of one project, pending invitations included: keeps the member list, and
/// every check that reads it, bounded.
pub const MAX_MEMBERS_PER_PROJECT: usize = 100;
/// Most invitations listed for one invitee, newest first: anyone can create projects and invite
/// any address, so the list is bounded; declining makes room for older ones.
pub const MAX_INVITATIONS_LISTED: i64 = 100;

/// `{invitation}` in `/openapi.json`.
#[derive(Debug, IntoParams)]
#[into_params(names("invitation"), parameter_in = Path)]
pub struct InvitationPath(
    /// The invitation's id (GET /api/dash/invitations, or the project's invitations).
    pub i64,
);

/// An invitation waiting for an answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationView {
    pub id: i64,
    #[schema(value_type = i64)]
    pub project_id: ProjectId,
    pub project_name: String,
    pub email: String,
    pub role: Role,
    pub invited_by: Option<String>,
    pub created_at: DateTime<Utc>,
    /// After this it can no longer be accepted (INVITATION_TTL_DAYS).
    pub expires_at: DateTime<Utc>,
}

impl From<Invitation> for InvitationView {
    fn from(i: Invitation) -> Self {
        Self {
            expires_at: i.created_at + ttl(),
            id: i.id,
            project_id: i.project_id,
            project_name: i.project_name,
            email: i.email,
            role: i.role,
            invited_by: i.invited_by,
            created_at: i.created_at,
        }
    }
}

fn ttl() -> Duration {
    Duration::days(INVITATION_TTL_DAYS)
}

/// Invitations made after this are still valid.
fn valid_since(state: &AppState) -> DateTime<Utc> {
    state.clock.now() - ttl()
}

fn views(invitations: Vec<Invitation>) -> Vec<InvitationView> {
    invitations.into_iter().map(InvitationView::from).collect()
}

#[utoipa::path(
    get, path = "/api/dash/projects/{project}/invitations", tag = "dashboard",
    operation_id = "dashboard_project_invitations", params(ProjectPath),
    description = "The project's pending invitations. Admin role or higher.",
    responses(
        (status = 200, body = Vec<InvitationView>),
        (status = 400, description = "The project id is not an integer", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 403, description = "Below the admin role", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn pending(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
) -> Result<Json<Vec<InvitationView>>, ApiError> {
    session.require(&state, project, Role::Admin).await?;
    let since = valid_since(&state);
    Ok(Json(views(
        state.store.project_invitations(project, since).await?,
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct InvitationForm {
    /// The invitee's e-mail address; it need not have an account yet.
    email: String,
    /// `viewer`, `developer`, `admin` or `owner`.
    #[schema(value_type = Role)]
    role: String,
}

#[utoipa::path(
    post, path = "/api/dash/projects/{project}/invitations", tag = "dashboard",
    operation_id = "dashboard_invite", request_body = InvitationForm,
    description = "Invites an e-mail address to the project with a role; whoever logs in with \
                   that address accepts or declines it (GET /api/dash/invitations). The answer \
                   is the same whether or not the address has an account. Inviting an address \
                   again renews its invitation. Valid for INVITATION_TTL_DAYS (14); at most \
                   MAX_PENDING_INVITATIONS (50) pending per project, and members plus pending \
                   invitations at most MAX_MEMBERS_PER_PROJECT (100). Admin role or higher; only \
                   owners invite owners.",
    params(ProjectPath, CsrfHeader),
    responses(
        (status = 200, body = InvitationView),
        (status = 400, description = "Not a JSON {email, role} body, an unknown role, an \
                                      invalid e-mail, an existing member, too many pending \
                                      invitations, or a non-integer project id", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 403, description = "Below the admin role, an admin inviting an owner, missing \
                                      or wrong X-CSRF-Token, or a cross-site Origin",
            body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn invite(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
    ApiJson(form): ApiJson<InvitationForm>,
) -> Result<Json<InvitationView>, ApiError> {
    let my_role = session.require(&state, project, Role::Admin).await?;
    let role = Role::parse(&form.role).map_err(ApiError::BadRequest)?;
    let email = Email::parse(&form.email).map_err(ApiError::BadRequest)?;
    if role == Role::Owner && my_role < Role::Owner {
        return Err(ApiError::Forbidden(
            "only an owner can invite owners".into(),
        ));
    }
    let members = state.store.list_members(project).await?;
    if members.iter().any(|m| m.email == email.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "{} is already a member: change their role with POST \
             /api/dash/projects/{project}/members",
            email.as_str()
        )));
    }
    let pending = state
        .store
        .project_invitations(project, valid_since(&state))
        .await?;
    let renewal = pending.iter().any(|i| i.email == email.as_str());
    if !renewal && members.len() + pending.len() >= MAX_MEMBERS_PER_PROJECT {
        return Err(ApiError::BadRequest(format!(
            "project {project} has {} members and {} pending invitations, the most it can have \
             (MAX_MEMBERS_PER_PROJECT = {MAX_MEMBERS_PER_PROJECT}): remove a member or cancel an \
             invitation first",
            members.len(),
            pending.len()
        )));
    }
    if !renewal && pending.len() >= MAX_PENDING_INVITATIONS {
        return Err(ApiError::BadRequest(format!(
            "project {project} has {MAX_PENDING_INVITATIONS} pending invitations \
             (MAX_PENDING_INVITATIONS): cancel some, or wait for them to be answered or expire"
        )));
    }
    let id = state
        .store
        .upsert_invitation(
            project,
            email.as_str(),
            role,
            session.user_id(),
            state.clock.now(),
        )
        .await?;
    session
        .audit(
            &state,
            Some(project),
            "member.invited",
            format!("{} as {role}", email.as_str()),
        )
        .await?;
    let invitation = state
        .store
        .invitation_for(id, email.as_str(), valid_since(&state))
        .await?
        .ok_or_else(|| no_such_invitation(id))?;
    Ok(Json(invitation.into()))
}

#[utoipa::path(
    delete, path = "/api/dash/projects/{project}/invitations/{invitation}", tag = "dashboard",
    operation_id = "dashboard_invitation_cancel",
    description = "Cancels a pending invitation; answers those left. Admin role or higher; only \
                   owners cancel an owner's invitation.",
    params(ProjectPath, InvitationPath, CsrfHeader),
    responses(
        (status = 200, body = Vec<InvitationView>),
        (status = 400, description = "A non-integer id in the path", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 403, description = "Below the admin role, an admin cancelling an owner's \
                                      invitation, missing or wrong X-CSRF-Token, or a \
                                      cross-site Origin", body = ErrorBody),
        (status = 404, description = "No such project among the user's, or no such invitation \
                                      in it", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn cancel(
    State(state): State<AppState>,
    session: Session,
    PathIds((project, id)): PathIds<(ProjectId, i64)>,
) -> Result<Json<Vec<InvitationView>>, ApiError> {
    let my_role = session.require(&state, project, Role::Admin).await?;
    let since = valid_since(&state);
    let pending = state.store.project_invitations(project, since).await?;
    let invitation = pending
        .iter()
        .find(|i| i.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("project {project} has no invitation {id}")))?;
    if invitation.role == Role::Owner && my_role < Role::Owner {
        return Err(ApiError::Forbidden(
            "only an owner can cancel an owner's invitation".into(),
        ));
    }
    state.store.delete_invitation(project, id).await?;
    session
        .audit(
            &state,
            Some(project),
            "member.invitation_cancelled",
            format!("{} as {}", invitation.email, invitation.role),
        )
        .await?;
    Ok(Json(views(
        state.store.project_invitations(project, since).await?,
    )))
}

#[utoipa::path(
    get, path = "/api/dash/invitations", tag = "dashboard",
    operation_id = "dashboard_my_invitations",
    description = "The pending invitations addressed to the logged-in user's e-mail, newest \
                   first, at most MAX_INVITATIONS_LISTED (100).",
    responses(
        (status = 200, body = Vec<InvitationView>),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn mine(
    State(state): State<AppState>,
    session: Session,
) -> Result<Json<Vec<InvitationView>>, ApiError> {
    let invitations = state
        .store
        .invitations_for(
            &session.record.user.email,
            valid_since(&state),
            MAX_INVITATIONS_LISTED,
        )
        .await?;
    Ok(Json(views(invitations)))
}

fn no_such_invitation(id: i64) -> ApiError {
    ApiError::NotFound(format!(
        "no pending invitation {id} for you (it may have expired, been cancelled or answered): \
         see GET /api/dash/invitations"
    ))
}

#[utoipa::path(
    post, path = "/api/dash/invitations/{invitation}/accept", tag = "dashboard",
    operation_id = "dashboard_invitation_accept",
    description = "Accepts an invitation addressed to the logged-in user: they become a member \
                   with its role. Answers the project.",
    params(InvitationPath, CsrfHeader),
    responses(
        (status = 200, body = ProjectView),
        (status = 400, description = "A non-integer id in the path", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 403, description = "Missing or wrong X-CSRF-Token, or a cross-site Origin",
            body = ErrorBody),
        (status = 404, description = "No such pending invitation for this user", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn accept(
    State(state): State<AppState>,
    session: Session,
    PathIds(id): PathIds<i64>,
) -> Result<Json<ProjectView>, ApiError> {
    let user = &session.record.user;
    let invitation = state
        .store
        .accept_invitation(
            id,
            &user.email,
            user.id,
            valid_since(&state),
            state.clock.now(),
        )
        .await?
        .ok_or_else(|| no_such_invitation(id))?;
    let project = invitation.project_id;
    session
        .audit(
            &state,
            Some(project),
            "member.joined",
            format!("{} as {}", user.email, invitation.role),
        )
        .await?;
    let role = session.require(&state, project, Role::Viewer).await?;
    let p = state
        .store
        .project(project)
        .await?
        .ok_or_else(|| no_such_project(project))?;
    Ok(Json(ProjectView {
        id: p.id,
        name: p.name,
        plan: p.plan,
        role,
        created_at: p.created_at,
    }))
}

#[utoipa::path(
    post, path = "/api/dash/invitations/{invitation}/decline", tag = "dashboard",
    operation_id = "dashboard_invitation_decline",
    description = "Declines an invitation addressed to the logged-in user; it is gone.",
    params(InvitationPath, CsrfHeader),
    responses(
        (status = 200, body = Done),
        (status = 400, description = "A non-integer id in the path", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 403, description = "Missing or wrong X-CSRF-Token, or a cross-site Origin",
            body = ErrorBody),
        (status = 404, description = "No such pending invitation for this user", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn decline(
    State(state): State<AppState>,
    session: Session,
    PathIds(id): PathIds<i64>,
) -> Result<Json<Done>, ApiError> {
    let user = &session.record.user;
    let invitation = state
        .store
        .invitation_for(id, &user.email, valid_since(&state))
        .await?
        .ok_or_else(|| no_such_invitation(id))?;
    state
        .store
        .delete_invitation(invitation.project_id, id)
        .await?;
    session
        .audit(
            &state,
            Some(invitation.project_id),
            "member.declined",
            format!("{} as {}", user.email, invitation.role),
        )
        .await?;
    Ok(Json(Done { success: true }))
}
