//! Users, sessions, memberships and the audit log. One SQL text per query serves both backends.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{ProjectRecord, Store, StoreError, from_millis, millis};
use crate::domain::ProjectId;
use crate::domain::account::Role;

#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: i64,
    pub email: String,
    pub password_hash: String,
    pub is_admin: bool,
}

/// A live session with its user.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub user: UserRecord,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Member {
    pub user_id: i64,
    pub email: String,
    pub role: Role,
    pub since: DateTime<Utc>,
}

/// One line of the audit log.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    #[schema(value_type = Option<i64>)]
    pub project_id: Option<ProjectId>,
    pub user_id: Option<i64>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub ip: Option<String>,
    pub at: DateTime<Utc>,
}

macro_rules! audit_entry {
    ($r:expr) => {
        AuditEntry {
            project_id: $r.get("project_id"),
            user_id: $r.get("user_id"),
            actor: $r.get("actor"),
            action: $r.get("action"),
            target: $r.get("target"),
            ip: $r.get("ip"),
            at: from_millis($r.get("created_at")),
        }
    };
}

fn role_of(s: &str) -> Role {
    // The CHECK constraint allows only the four names.
    Role::parse(s).unwrap_or(Role::Viewer)
}

impl Store {
    pub async fn count_users(&self) -> Result<i64, StoreError> {
        with_db!(self, read_pool, |pool| {
            let r = sqlx::query("SELECT COUNT(*) AS n FROM users")
                .fetch_one(pool)
                .await?;
            Ok(r.get("n"))
        })
    }

    /// `None` when the e-mail address is taken.
    pub async fn create_user(
        &self,
        email: &str,
        password_hash: &str,
        is_admin: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        with_db!(self, write_pool, |pool| {
            let r = sqlx::query("INSERT INTO users (email, password_hash, is_admin, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (email) DO NOTHING RETURNING id").bind(email).bind(password_hash).bind(i64::from(is_admin)).bind(millis(now)).fetch_optional(pool).await?;
            Ok(r.map(|r| r.get("id")))
        })
    }

    pub async fn find_user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let r = sqlx::query(
                "SELECT id, email, password_hash, is_admin FROM users WHERE email = $1",
            )
            .bind(email)
            .fetch_optional(pool)
            .await?;
            Ok(r.map(|r| UserRecord {
                id: r.get("id"),
                email: r.get("email"),
                password_hash: r.get("password_hash"),
                is_admin: r.get::<i64, _>("is_admin") != 0,
            }))
        })
    }

    /// Sets a new password and ends every other session of the user.
    pub async fn set_password(
        &self,
        user_id: i64,
        password_hash: &str,
        keep_session: &[u8],
    ) -> Result<(), StoreError> {
        with_db!(self, write_pool, |pool| {
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(password_hash)
                .bind(user_id)
                .execute(pool)
                .await?;
        });
        with_db!(self, write_pool, |pool| {
            let _r = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2")
                .bind(user_id)
                .bind(keep_session)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    pub async fn create_session(
        &self,
        token_hash: &[u8],
        user_id: i64,
        csrf_token: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_db!(self, write_pool, |pool| {
            let _r = sqlx::query(
                "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(token_hash)
            .bind(user_id)
            .bind(csrf_token)
            .bind(millis(now))
            .bind(millis(expires_at))
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The session behind a token, if it exists and has not expired at `now`.
    pub async fn find_session(
        &self,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let r = sqlx::query(
                "SELECT u.id, u.email, u.password_hash, u.is_admin, s.csrf_token, s.expires_at
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = $1 AND s.expires_at > $2",
            )
            .bind(token_hash)
            .bind(millis(now))
            .fetch_optional(pool)
            .await?;
            Ok(r.map(|r| SessionRecord {
                user: UserRecord {
                    id: r.get("id"),
                    email: r.get("email"),
                    password_hash: r.get("password_hash"),
                    is_admin: r.get::<i64, _>("is_admin") != 0,
                },
                csrf_token: r.get("csrf_token"),
                expires_at: from_millis(r.get("expires_at")),
            }))
        })
    }

    pub async fn delete_session(&self, token_hash: &[u8]) -> Result<(), StoreError> {
        with_db!(self, write_pool, |pool| {
            let _r = sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(token_hash)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Ends the user's sessions beyond the `keep` most recent ones.
    pub async fn keep_newest_sessions(&self, user_id: i64, keep: i64) -> Result<(), StoreError> {
        with_db!(self, write_pool, |pool| {
            let _r = sqlx::query(
                "DELETE FROM sessions WHERE user_id = $1 AND token_hash NOT IN (
                 SELECT token_hash FROM sessions WHERE user_id = $1
                 ORDER BY created_at DESC, token_hash DESC LIMIT $2)",
            )
            .bind(user_id)
            .bind(keep)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Removes expired sessions (maintenance); returns how many.
    pub async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        with_db!(self, write_pool, |pool| {
            let r = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                .bind(millis(now))
                .execute(pool)
                .await?;
            Ok(r.rows_affected())
        })
    }

    /// The projects a user is a member of, with the user's role in each.
    pub async fn user_projects(
        &self,
        user_id: i64,
    ) -> Result<Vec<(ProjectRecord, Role)>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let rows = sqlx::query(
                "SELECT p.id, p.name, p.plan, p.created_at, m.role FROM memberships m
             JOIN projects p ON p.id = m.project_id WHERE m.user_id = $1 ORDER BY p.id",
            )
            .bind(user_id)
            .fetch_all(pool)
            .await?;
            Ok(rows
                .iter()
                .map(|r| {
                    (
                        ProjectRecord {
                            id: r.get("id"),
                            name: r.get("name"),
                            plan: r.get("plan"),
                            created_at: from_millis(r.get("created_at")),
                        },
                        role_of(r.get("role")),
                    )
                })
                .collect())
        })
    }

    /// The user's role in the project; `None` when not a member (or no such project).
    pub async fn role_in(
        &self,
        project_id: ProjectId,
        user_id: i64,
    ) -> Result<Option<Role>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let r =
                sqlx::query("SELECT role FROM memberships WHERE project_id = $1 AND user_id = $2")
                    .bind(project_id)
                    .bind(user_id)
                    .fetch_optional(pool)
                    .await?;
            Ok(r.map(|r| role_of(r.get("role"))))
        })
    }

    /// Adds or changes a membership.
    pub async fn set_member(
        &self,
        project_id: ProjectId,
        user_id: i64,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_db!(self, write_pool, |pool| {
            let _r = sqlx::query("INSERT INTO memberships (project_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role").bind(project_id).bind(user_id).bind(role.as_str()).bind(millis(now)).execute(pool).await?;
            Ok(())
        })
    }

    /// `false` when the user was not a member.
    pub async fn remove_member(
        &self,
        project_id: ProjectId,
        user_id: i64,
    ) -> Result<bool, StoreError> {
        with_db!(self, write_pool, |pool| {
            let r = sqlx::query("DELETE FROM memberships WHERE project_id = $1 AND user_id = $2")
                .bind(project_id)
                .bind(user_id)
                .execute(pool)
                .await?;
            Ok(r.rows_affected() == 1)
        })
    }

    pub async fn list_members(&self, project_id: ProjectId) -> Result<Vec<Member>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let rows = sqlx::query(
                "SELECT u.id, u.email, m.role, m.created_at FROM memberships m
             JOIN users u ON u.id = m.user_id WHERE m.project_id = $1 ORDER BY u.email",
            )
            .bind(project_id)
            .fetch_all(pool)
            .await?;
            Ok(rows
                .iter()
                .map(|r| Member {
                    user_id: r.get("id"),
                    email: r.get("email"),
                    role: role_of(r.get("role")),
                    since: from_millis(r.get("created_at")),
                })
                .collect())
        })
    }

    /// Projects nobody is a member of (the default project, projects made with the CLI) get
    /// every instance admin as owner. Runs at start and when an admin is created.
    pub async fn adopt_unowned_projects(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        with_db!(self, write_pool, |pool| {
            let r = sqlx::query(
                "INSERT INTO memberships (project_id, user_id, role, created_at)
             SELECT p.id, u.id, 'owner', $1 FROM projects p, users u
             WHERE u.is_admin = 1
               AND NOT EXISTS (SELECT 1 FROM memberships m WHERE m.project_id = p.id)",
            )
            .bind(millis(now))
            .execute(pool)
            .await?;
            Ok(r.rows_affected())
        })
    }

    pub async fn append_audit(&self, e: &AuditEntry) -> Result<(), StoreError> {
        with_db!(self, write_pool, |pool| {
            let _r = sqlx::query(
                "INSERT INTO audit_log (project_id, user_id, actor, action, target, ip, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(e.project_id)
            .bind(e.user_id)
            .bind(e.actor.as_str())
            .bind(e.action.as_str())
            .bind(e.target.as_str())
            .bind(e.ip.as_deref())
            .bind(millis(e.at))
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The project's audit log, newest first: only what was done in the project. Account
    /// events (logins, password changes) are not a project's: see [`Self::list_account_audit`].
    pub async fn list_audit(
        &self,
        project_id: ProjectId,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let rows = sqlx::query(
                "SELECT project_id, user_id, actor, action, target, ip, created_at FROM audit_log
             WHERE project_id = $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(project_id)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(|r| audit_entry!(r)).collect())
        })
    }

    /// Account events (not tied to a project), newest first: one user's, or everyone's.
    pub async fn list_account_audit(
        &self,
        user_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let rows = sqlx::query(
                "SELECT project_id, user_id, actor, action, target, ip, created_at FROM audit_log
             WHERE project_id IS NULL AND ($1 IS NULL OR user_id = $1)
             ORDER BY id DESC LIMIT $2",
            )
            .bind(user_id)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(|r| audit_entry!(r)).collect())
        })
    }

    /// Every instance admin becomes an owner of the project: how a project created outside
    /// the dashboard (the CLI, the first start) gets owners at once.
    pub async fn give_project_to_admins(
        &self,
        project_id: ProjectId,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        with_db!(self, write_pool, |pool| {
            let r = sqlx::query(
                "INSERT INTO memberships (project_id, user_id, role, created_at)
             SELECT $1, id, 'owner', $2 FROM users WHERE is_admin = 1
             ON CONFLICT (project_id, user_id) DO NOTHING",
            )
            .bind(project_id)
            .bind(millis(now))
            .execute(pool)
            .await?;
            Ok(r.rows_affected())
        })
    }
}
