//! Projects and their keys: the default plan of a new project, and write keys that stay
//! visible and rotate with a grace period.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use pulseline_collector::clock::{Clock, FakeClock, SystemClock};
use serde_json::{Value, json};

use super::{Dash, Login, exec_sql, spawn};

#[tokio::test]
async fn projects_created_in_the_dashboard_get_the_default_plan() {
    let app = spawn(|c| c.default_plan = "free".into(), Arc::new(SystemClock)).await;
    let me = app.admin().await;
    let (status, created) = app
        .post(
            &me,
            "/api/dash/projects",
            json!({"name": "On the free plan"}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let (_, usage) = app
        .get(&me, &format!("/api/dash/projects/{}/usage", created["id"]))
        .await;
    assert_eq!(usage["plan"], "free", "{usage}");
    assert!(usage["quota"].as_i64().is_some(), "{usage}");
}

/// The Keys page of the app's project, as its admin, with a fake clock.
struct KeysPage {
    app: Dash,
    admin: Login,
    clock: Arc<FakeClock>,
    path: String,
}

async fn keys_page() -> KeysPage {
    let clock = Arc::new(FakeClock::new(Utc::now()));
    let app = spawn(|_| {}, clock.clone()).await;
    let admin = app.admin().await;
    let path = format!("/api/dash/projects/{}/keys", app.project);
    KeysPage {
        app,
        admin,
        clock,
        path,
    }
}

impl KeysPage {
    async fn keys(&self) -> Vec<Value> {
        let (status, keys) = self.app.get(&self.admin, &self.path).await;
        assert_eq!(status, 200, "{keys}");
        keys.as_array().unwrap().clone()
    }

    async fn key(&self, which: impl Fn(&Value) -> bool) -> Value {
        let keys = self.keys().await;
        let found = keys.iter().find(|k| which(k)).cloned();
        found.unwrap_or_else(|| panic!("no such key in {keys:?}"))
    }

    async fn write_key_id(&self) -> i64 {
        self.key(|k| k["kind"] == "write").await["id"]
            .as_i64()
            .unwrap()
    }

    async fn rotate(&self, id: i64, body: Value) -> (reqwest::StatusCode, Value) {
        let path = format!("{}/{id}/rotate", self.path);
        self.app.post(&self.admin, &path, body).await
    }

    /// Rotates key `id` with `grace_hours` of grace: the new key.
    async fn rotated(&self, id: i64, grace_hours: i64) -> String {
        let (status, rotated) = self.rotate(id, json!({"grace_hours": grace_hours})).await;
        assert_eq!(status, 200, "{rotated}");
        rotated["key"].as_str().unwrap().to_owned()
    }
}

/// Write keys are public, so the Keys page can always show them (and their snippets).
#[tokio::test]
async fn write_keys_are_shown_at_any_time_and_secret_keys_never() {
    let page = keys_page().await;
    let write = page.key(|k| k["kind"] == "write").await;
    assert_eq!(
        write["key"],
        page.app.write_key.as_str(),
        "shown at any time"
    );
    assert_eq!(write["active"], true);
    let secret = page.key(|k| k["kind"] == "secret").await;
    assert!(
        secret.get("key").is_none(),
        "secret keys are hashed: {secret}"
    );
}

/// Keys from before write keys were kept show no key; rotating one gives a key the page shows.
#[tokio::test]
async fn a_key_from_before_is_shown_once_rotated() {
    let page = keys_page().await;
    exec_sql(&page.app.database_url, "UPDATE api_keys SET plain = NULL").await;
    let keys = page.keys().await;
    assert!(keys.iter().all(|k| k.get("key").is_none()), "{keys:?}");
    let new_key = page.rotated(page.write_key_id().await, 24).await;
    let new = page.key(|k| k["key"] == new_key.as_str()).await;
    assert_eq!(new["active"], true, "{new}");
}

#[tokio::test]
async fn a_rotations_grace_is_bounded_and_its_fields_checked() {
    let page = keys_page().await;
    let id = page.write_key_id().await;
    let (status, body) = page.rotate(id, json!({"grace_hours": 721})).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("MAX_KEY_ROTATION_GRACE"),
        "{body}"
    );
    let (status, body) = page.rotate(id, json!({"grace": 1})).await;
    assert_eq!(status, 400, "unknown fields are refused: {body}");
}

/// A rotation can leave the old key working for a grace period so no page breaks meanwhile.
#[tokio::test]
async fn a_rotated_key_keeps_working_for_its_grace_period() {
    let page = keys_page().await;
    let app = &page.app;
    let old_id = page.write_key_id().await;
    let new_key = page.rotated(old_id, 24).await;
    assert_ne!(new_key, app.write_key);
    assert_eq!(
        app.track_with(&app.write_key).await,
        200,
        "old key within its grace"
    );
    assert_eq!(app.track_with(&new_key).await, 200);
    let old = page.key(|k| k["id"] == old_id).await;
    assert_eq!(old["active"], true, "{old}");
    let until: DateTime<Utc> = old["revoked_at"].as_str().unwrap().parse().unwrap();
    // Stored in milliseconds.
    assert!(
        ((until - page.clock.now()).num_seconds() - 24 * 3600).abs() <= 1,
        "{until}"
    );

    page.clock
        .advance(chrono::Duration::hours(24) + chrono::Duration::seconds(1));
    let status = app.track_with(&app.write_key).await;
    assert_eq!(status, 401, "the grace period is over");
    assert_eq!(app.track_with(&new_key).await, 200);
    let old = page.key(|k| k["id"] == old_id).await;
    assert_eq!(old["active"], false, "{old}");
}

/// Revoking a key within its grace period stops it at once, and it is not rotated again.
#[tokio::test]
async fn a_key_revoked_within_its_grace_stops_at_once() {
    let page = keys_page().await;
    let app = &page.app;
    let first = page.rotated(page.write_key_id().await, 24).await;
    let first_id = page.key(|k| k["key"] == first.as_str()).await["id"]
        .as_i64()
        .unwrap();
    page.rotated(first_id, 720).await;
    assert_eq!(app.track_with(&first).await, 200);
    let revoke = format!("{}/{first_id}/revoke", page.path);
    let (status, _) = app.post(&page.admin, &revoke, json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(
        app.track_with(&first).await,
        401,
        "revoked within its grace"
    );
    let (status, body) = page.rotate(first_id, json!({})).await;
    assert_eq!(status, 400, "a revoked key is not rotated again: {body}");
}
