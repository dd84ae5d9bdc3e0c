//! Invitations to join a project, keyed by e-mail address (which may match no account yet),
//! and who issued each key. One SQL text per query serves both backends, as in `accounts`.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Store, StoreError, from_millis, millis};
use crate::domain::ProjectId;
use crate::domain::account::Role;

/// A pending invitation, as its project's admins and its invitee see it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Invitation {
    pub id: i64,
    #[schema(value_type = i64)]
    pub project_id: ProjectId,
    pub project_name: String,
    pub email: String,
    pub role: Role,
    /// The e-mail of the member who sent it (`None` once that account is gone).
    pub invited_by: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Who issued a key from the dashboard.
#[derive(Debug, Clone)]
pub struct KeyCreator {
    pub key_id: i64,
    pub user_id: i64,
    pub email: String,
}

/// The invitations matching `$where`, with their project's name and the inviter's e-mail.
macro_rules! select_invitations {
    ($where:literal) => {
        concat!(
            "SELECT i.id, i.project_id, p.name AS project_name, i.email, i.role,
                    u.email AS invited_by, i.created_at
             FROM invitations i JOIN projects p ON p.id = i.project_id
             LEFT JOIN users u ON u.id = i.invited_by WHERE ",
            $where
        )
    };
}

macro_rules! invitation {
    ($r:expr) => {
        Invitation {
            id: $r.get("id"),
            project_id: $r.get("project_id"),
            project_name: $r.get("project_name"),
            email: $r.get("email"),
            // The CHECK constraint allows only the four names.
            role: Role::parse($r.get("role")).unwrap_or(Role::Viewer),
            invited_by: $r.get("invited_by"),
            created_at: from_millis($r.get("created_at")),
        }
    };
}

impl Store {
    /// Creates or renews (new role, new expiry) the invitation of `email` to the project.
    pub async fn upsert_invitation(
        &self,
        project_id: ProjectId,
        email: &str,
        role: Role,
        invited_by: i64,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        with_db!(self, write_pool, |pool| {
            let r = sqlx::query(
                "INSERT INTO invitations (project_id, email, role, invited_by, created_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (project_id, email) DO UPDATE
             SET role = excluded.role, invited_by = excluded.invited_by,
                 created_at = excluded.created_at
             RETURNING id",
            )
            .bind(project_id)
            .bind(email)
            .bind(role.as_str())
            .bind(invited_by)
            .bind(millis(now))
            .fetch_one(pool)
            .await?;
            Ok(r.get("id"))
        })
    }

    /// The project's invitations made after `since` (older ones have expired).
    pub async fn project_invitations(
        &self,
        project_id: ProjectId,
        since: DateTime<Utc>,
    ) -> Result<Vec<Invitation>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let rows = sqlx::query(select_invitations!(
                "i.project_id = $1 AND i.created_at > $2 ORDER BY i.id"
            ))
            .bind(project_id)
            .bind(millis(since))
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(|r| invitation!(r)).collect())
        })
    }

    /// The newest `limit` invitations of an e-mail address made after `since`.
    pub async fn invitations_for(
        &self,
        email: &str,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Invitation>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let rows = sqlx::query(select_invitations!(
                "i.email = $1 AND i.created_at > $2 ORDER BY i.id DESC LIMIT $3"
            ))
            .bind(email)
            .bind(millis(since))
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(|r| invitation!(r)).collect())
        })
    }

    /// Makes `user_id` a member with the invitation's role, if invitation `id` is addressed to
    /// `email` and was made after `since`; the user keeps their role if already a member. The
    /// invitation is then gone. `None` when there is no such invitation.
    pub async fn accept_invitation(
        &self,
        id: i64,
        email: &str,
        user_id: i64,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<Invitation>, StoreError> {
        let Some(invitation) = self.invitation_for(id, email, since).await? else {
            return Ok(None);
        };
        // Membership first: if the delete below is lost, accepting again changes nothing.
        with_db!(self, write_pool, |pool| {
            sqlx::query(
                "INSERT INTO memberships (project_id, user_id, role, created_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (project_id, user_id) DO NOTHING",
            )
            .bind(invitation.project_id)
            .bind(user_id)
            .bind(invitation.role.as_str())
            .bind(millis(now))
            .execute(pool)
            .await?;
        });
        self.delete_invitation(invitation.project_id, id).await?;
        Ok(Some(invitation))
    }

    /// Invitation `id` if it is addressed to `email` and was made after `since`.
    pub async fn invitation_for(
        &self,
        id: i64,
        email: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<Invitation>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let r = sqlx::query(select_invitations!(
                "i.id = $1 AND i.email = $2 AND i.created_at > $3"
            ))
            .bind(id)
            .bind(email)
            .bind(millis(since))
            .fetch_optional(pool)
            .await?;
            Ok(r.map(|r| invitation!(r)))
        })
    }

    /// `false` when the project has no invitation `id`.
    pub async fn delete_invitation(
        &self,
        project_id: ProjectId,
        id: i64,
    ) -> Result<bool, StoreError> {
        with_db!(self, write_pool, |pool| {
            let r = sqlx::query("DELETE FROM invitations WHERE project_id = $1 AND id = $2")
                .bind(project_id)
                .bind(id)
                .execute(pool)
                .await?;
            Ok(r.rows_affected() == 1)
        })
    }

    /// Removes invitations made before `before` (maintenance); returns how many.
    pub async fn delete_expired_invitations(
        &self,
        before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        with_db!(self, write_pool, |pool| {
            let r = sqlx::query("DELETE FROM invitations WHERE created_at <= $1")
                .bind(millis(before))
                .execute(pool)
                .await?;
            Ok(r.rows_affected())
        })
    }

    /// Records that `user_id` issued the key (the dashboard's create and rotate).
    pub async fn set_key_creator(&self, key_id: i64, user_id: i64) -> Result<(), StoreError> {
        with_db!(self, write_pool, |pool| {
            let _r = sqlx::query("UPDATE api_keys SET created_by = $1 WHERE id = $2")
                .bind(user_id)
                .bind(key_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// The project's first keys were issued by the user who created it in the dashboard.
    pub async fn set_project_keys_creator(
        &self,
        project_id: ProjectId,
        user_id: i64,
    ) -> Result<(), StoreError> {
        with_db!(self, write_pool, |pool| {
            let _r = sqlx::query("UPDATE api_keys SET created_by = $1 WHERE project_id = $2")
                .bind(user_id)
                .bind(project_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Who issued each of the project's keys that were issued from the dashboard.
    pub async fn key_creators(&self, project_id: ProjectId) -> Result<Vec<KeyCreator>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let rows = sqlx::query("SELECT k.id, u.id AS user_id, u.email FROM api_keys k JOIN users u ON u.id = k.created_by
             WHERE k.project_id = $1").bind(project_id).fetch_all(pool).await?;
            Ok(rows
                .iter()
                .map(|r| KeyCreator {
                    key_id: r.get("id"),
                    user_id: r.get("user_id"),
                    email: r.get("email"),
                })
                .collect())
        })
    }
}
