//! A project's members: admins change roles and remove members; only owners make or unmake
//! owners, and the last owner stays. New members join by invitation.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::keys::{KeyView, key_views};
use super::{CsrfHeader, ProjectPath};
use crate::domain::account::{Email, Role};
use crate::domain::{KeyKind, ProjectId};
use crate::error::{ApiError, ErrorBody};
use crate::routes::extract::{ApiJson, PathIds, Session};
use crate::state::AppState;
use crate::store::accounts::Member;

#[utoipa::path(
    get, path = "/api/dash/projects/{project}/members", tag = "dashboard",
    operation_id = "dashboard_members_list", params(ProjectPath),
    responses(
        (status = 200, body = Vec<Member>),
        (status = 400, description = "The project id is not an integer", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 404, description = "No such project among the user's", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn members(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
) -> Result<Json<Vec<Member>>, ApiError> {
    session.require(&state, project, Role::Viewer).await?;
    Ok(Json(state.store.list_members(project).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct MemberForm {
    /// A member's e-mail address.
    email: String,
    /// `viewer`, `developer`, `admin` or `owner`.
    #[schema(value_type = Role)]
    role: String,
}

/// Changes a member's role. Admins manage developers and viewers and other admins; only owners
/// grant or take away ownership; the last owner stays. New members join by invitation.
#[utoipa::path(
    post, path = "/api/dash/projects/{project}/members", tag = "dashboard",
    operation_id = "dashboard_member_set",
    request_body = MemberForm,
    description = "Changes a member's role; answers the members. Admin role or higher; only \
                   owners make or unmake owners; the last owner stays. Someone who is not a \
                   member yet is invited instead (POST /api/dash/projects/{project}/invitations).",
    params(ProjectPath, CsrfHeader),
    responses(
        (status = 200, body = Vec<Member>),
        (status = 400, description = "Not a JSON {email, role} body, an unknown role, an \
                                      invalid e-mail, demoting the last owner, or a non-integer \
                                      project id", body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 403, description = "Below the admin role, an admin touching an owner, missing \
                                      or wrong X-CSRF-Token, or a cross-site Origin",
            body = ErrorBody),
        (status = 404, description = "No such project among the user's, or the e-mail is not a \
                                      member's (invite them)", body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn set_member(
    State(state): State<AppState>,
    session: Session,
    PathIds(project): PathIds<ProjectId>,
    ApiJson(form): ApiJson<MemberForm>,
) -> Result<Json<Vec<Member>>, ApiError> {
    let my_role = session.require(&state, project, Role::Admin).await?;
    let role = Role::parse(&form.role).map_err(ApiError::BadRequest)?;
    let email = Email::parse(&form.email).map_err(ApiError::BadRequest)?;
    let members = state.store.list_members(project).await?;
    // Only members are looked up: whether the address has an account is never revealed.
    let Some(member) = members.iter().find(|m| m.email == email.as_str()) else {
        return Err(ApiError::NotFound(format!(
            "{} is not a member of project {project}: invite them with POST \
             /api/dash/projects/{project}/invitations",
            email.as_str()
        )));
    };
    let current = member.role;
    if (role == Role::Owner || current == Role::Owner) && my_role < Role::Owner {
        return Err(ApiError::Forbidden(
            "only an owner can make or unmake owners".into(),
        ));
    }
    if current == Role::Owner && role != Role::Owner && owners(&members) == 1 {
        return Err(ApiError::BadRequest(
            "this is the project's last owner: make someone else owner first".into(),
        ));
    }
    state
        .store
        .set_member(project, member.user_id, role, state.clock.now())
        .await?;
    session
        .audit(
            &state,
            Some(project),
            "member.role_changed",
            format!("{} as {role} (was {current})", member.email),
        )
        .await?;
    Ok(Json(state.store.list_members(project).await?))
}

fn owners(members: &[Member]) -> usize {
    members.iter().filter(|m| m.role == Role::Owner).count()
}

/// A member removed: who is left, and the secret keys the removed member issued that still
/// work (they may have kept a copy: rotate them).
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberRemoved {
    pub members: Vec<Member>,
    /// Active secret keys issued by the removed member, for one-click rotation
    /// (POST /api/dash/projects/{project}/keys/{key}/rotate).
    pub keys_to_rotate: Vec<KeyView>,
}

#[utoipa::path(
    delete, path = "/api/dash/projects/{project}/members/{user}", tag = "dashboard",
    operation_id = "dashboard_member_remove",
    description = "Removes a member; answers the members left and the active secret keys the \
                   removed member issued (rotate them). Admin role or higher; only owners remove \
                   owners; the last owner stays.",
    params(ProjectPath, ("user" = i64, Path, description = "The member's user_id."), CsrfHeader),
    responses(
        (status = 200, body = MemberRemoved),
        (status = 400, description = "The last owner, or a non-integer id in the path",
            body = ErrorBody),
        (status = 401, description = "Not logged in, or the session expired", body = ErrorBody),
        (status = 403, description = "Below the admin role, an admin removing an owner, missing \
                                      or wrong X-CSRF-Token, or a cross-site Origin",
            body = ErrorBody),
        (status = 404, description = "No such project among the user's, or no such member",
            body = ErrorBody),
    ),
    security(("session" = []))
)]
pub async fn remove_member(
    State(state): State<AppState>,
    session: Session,
    PathIds((project, user_id)): PathIds<(ProjectId, i64)>,
) -> Result<Json<MemberRemoved>, ApiError> {
    let my_role = session.require(&state, project, Role::Admin).await?;
    let members = state.store.list_members(project).await?;
    let Some(member) = members.iter().find(|m| m.user_id == user_id) else {
        return Err(ApiError::NotFound(format!(
            "user {user_id} is not a member of project {project}"
        )));
    };
    if member.role == Role::Owner && my_role < Role::Owner {
        return Err(ApiError::Forbidden(
            "only an owner can remove an owner".into(),
        ));
    }
    if member.role == Role::Owner && owners(&members) == 1 {
        return Err(ApiError::BadRequest(
            "this is the project's last owner: make someone else owner first".into(),
        ));
    }
    state.store.remove_member(project, user_id).await?;
    session
        .audit(
            &state,
            Some(project),
            "member.removed",
            member.email.clone(),
        )
        .await?;
    let keys_to_rotate = key_views(&state, project)
        .await?
        .into_iter()
        .filter(|k| {
            k.kind == KeyKind::Secret.as_str()
                && k.active
                && k.created_by.as_deref() == Some(member.email.as_str())
        })
        .collect();
    Ok(Json(MemberRemoved {
        members: state.store.list_members(project).await?,
        keys_to_rotate,
    }))
}
