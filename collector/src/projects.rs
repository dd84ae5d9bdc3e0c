//! Creating projects and issuing their keys: the one place keys are generated and shown.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::domain::account::Role;
use crate::domain::{KeyKind, PlainKey, ProjectId};
use crate::store::{KeyRecord, NewKey, Store, StoreError};

/// A new project's keys, in plain text. The secret key is shown once (only its hash is
/// stored); the write key, public by design, stays visible in the dashboard.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectKeys {
    pub project_id: ProjectId,
    pub name: String,
    pub write_key: String,
    pub secret_key: String,
}

/// Creates a project owned by the instance admins (the CLI, the first start): it shows in
/// their dashboard at once, without waiting for the next start to adopt it.
pub async fn create_project(
    store: &Store,
    name: &str,
    plan: &str,
    now: DateTime<Utc>,
) -> Result<ProjectKeys, StoreError> {
    let keys = create_ownerless(store, name, plan, now).await?;
    store.give_project_to_admins(keys.project_id, now).await?;
    Ok(keys)
}

/// Creates a project owned by one dashboard user, who also issued its keys.
pub async fn create_project_owned_by(
    store: &Store,
    name: &str,
    plan: &str,
    owner: i64,
    now: DateTime<Utc>,
) -> Result<ProjectKeys, StoreError> {
    let keys = create_ownerless(store, name, plan, now).await?;
    store
        .set_member(keys.project_id, owner, Role::Owner, now)
        .await?;
    store
        .set_project_keys_creator(keys.project_id, owner)
        .await?;
    Ok(keys)
}

async fn create_ownerless(
    store: &Store,
    name: &str,
    plan: &str,
    now: DateTime<Utc>,
) -> Result<ProjectKeys, StoreError> {
    let write = PlainKey::generate(KeyKind::Write);
    let secret = PlainKey::generate(KeyKind::Secret);
    let project_id = store
        .create_project(name, plan, &NewKey::of(&write), &NewKey::of(&secret), now)
        .await?;
    Ok(ProjectKeys {
        project_id,
        name: name.to_owned(),
        write_key: write.as_str().to_owned(),
        secret_key: secret.as_str().to_owned(),
    })
}

/// A key just issued: its record and, this once, the key itself.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    pub record: KeyRecord,
    pub key: PlainKey,
}

pub async fn create_key(
    store: &Store,
    project_id: ProjectId,
    kind: KeyKind,
    now: DateTime<Utc>,
) -> Result<Option<IssuedKey>, StoreError> {
    let key = PlainKey::generate(kind);
    let record = store.create_key(project_id, &NewKey::of(&key), now).await?;
    Ok(record.map(|record| IssuedKey { record, key }))
}

/// The longest a rotated key may keep working beside its replacement.
pub const MAX_KEY_ROTATION_GRACE: Duration = Duration::days(30);

/// Replaces a key with a new one of the same kind; the old one keeps working for `grace`
/// (zero: stops at once), so pages still carrying it can be updated first. `grace` is at most
/// [`MAX_KEY_ROTATION_GRACE`] (the caller checks).
pub async fn rotate_key(
    store: &Store,
    key_id: i64,
    grace: Duration,
    now: DateTime<Utc>,
) -> Result<Option<IssuedKey>, StoreError> {
    let Some(old) = store
        .list_keys(None)
        .await?
        .into_iter()
        .find(|k| k.id == key_id)
    else {
        return Ok(None);
    };
    let key = PlainKey::generate(old.kind);
    let record = store
        .rotate_key(key_id, &NewKey::of(&key), now + grace, now)
        .await?;
    Ok(record.map(|record| IssuedKey { record, key }))
}
