//! Creating dashboard users: the first admin on first start, and `pulseline-collector user
//! create`. Projects nobody owns (the default project, projects made with the CLI) are owned by
//! the instance admins.

use chrono::{DateTime, Utc};

use crate::config::DashboardConfig;
use crate::domain::account::{Email, hash_password, random_token};
use crate::store::Store;
use crate::store::accounts::AuditEntry;

/// The first admin's login, shown once on the first start.
#[derive(Debug, Clone)]
pub struct FirstAdmin {
    pub email: String,
    pub password: String,
}

/// On a database without users, creates the first admin with a random password. On every
/// start, hands projects without members to the instance admins.
pub async fn bootstrap(
    store: &Store,
    config: &DashboardConfig,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<FirstAdmin>> {
    let created = if store.count_users().await? == 0 {
        let password = random_token(20);
        let email = create_user(store, &config.admin_email, &password, true, now).await?;
        Some(FirstAdmin { email, password })
    } else {
        None
    };
    store.adopt_unowned_projects(now).await?;
    Ok(created)
}

/// Creates a user; returns the normalised e-mail. Fails if the address is taken.
pub async fn create_user(
    store: &Store,
    email: &str,
    password: &str,
    is_admin: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    let email = Email::parse(email).map_err(anyhow::Error::msg)?;
    let hash = hash_password(password).map_err(anyhow::Error::msg)?;
    let Some(id) = store
        .create_user(email.as_str(), &hash, is_admin, now)
        .await?
    else {
        anyhow::bail!("a user {} already exists", email.as_str());
    };
    store
        .append_audit(&AuditEntry {
            project_id: None,
            user_id: Some(id),
            actor: "cli".to_owned(),
            action: "user.created".to_owned(),
            target: format!(
                "{}{}",
                email.as_str(),
                if is_admin { " (admin)" } else { "" }
            ),
            ip: None,
            at: now,
        })
        .await?;
    if is_admin {
        store.adopt_unowned_projects(now).await?;
    }
    Ok(email.as_str().to_owned())
}
