//! Projects and their keys: the default plan of a new project, and write keys that stay
//! visible and rotate with a grace period.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use pulseline_collector::clock::{Clock, FakeClock, SystemClock};
use serde_json::json;

use super::{exec_sql, spawn};

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

/// Write keys are public, so the Keys page can always show them (and their snippets); a
/// rotation can leave the old key working for a grace period so no page breaks meanwhile.
#[tokio::test]
async fn write_keys_stay_visible_and_rotate_with_a_grace_period() {
    let clock = Arc::new(FakeClock::new(Utc::now()));
    let app = spawn(|_| {}, clock.clone()).await;
    let admin = app.admin().await;
    let keys_path = format!("/api/dash/projects/{}/keys", app.project);
    let (status, keys) = app.get(&admin, &keys_path).await;
    assert_eq!(status, 200, "{keys}");
    let write = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "write")
        .unwrap()
        .clone();
    assert_eq!(write["key"], app.write_key.as_str(), "shown at any time");
    assert_eq!(write["active"], true);
    let secret = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "secret")
        .unwrap();
    assert!(
        secret.get("key").is_none(),
        "secret keys are hashed: {secret}"
    );

    // Keys from before write keys were kept show no key; rotating one with a grace period
    // gives a key the page shows, while pages with the old key keep working.
    exec_sql(&app.database_url, "UPDATE api_keys SET plain = NULL").await;
    let (_, keys) = app.get(&admin, &keys_path).await;
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("key").is_none()),
        "{keys}"
    );
    let old_id = write["id"].as_i64().unwrap();
    let rotate = format!("{keys_path}/{old_id}/rotate");
    let (status, body) = app.post(&admin, &rotate, json!({"grace_hours": 721})).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("MAX_KEY_ROTATION_GRACE"),
        "{body}"
    );
    let (status, body) = app.post(&admin, &rotate, json!({"grace": 1})).await;
    assert_eq!(status, 400, "unknown fields are refused: {body}");
    let (status, rotated) = app.post(&admin, &rotate, json!({"grace_hours": 24})).await;
    assert_eq!(status, 200, "{rotated}");
    let new_key = rotated["key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, app.write_key);
    assert_eq!(
        app.track_with(&app.write_key).await,
        200,
        "old key within its grace"
    );
    assert_eq!(app.track_with(&new_key).await, 200);
    let (_, keys) = app.get(&admin, &keys_path).await;
    let old = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == old_id)
        .unwrap();
    assert_eq!(old["active"], true, "{old}");
    let until: DateTime<Utc> = old["revoked_at"].as_str().unwrap().parse().unwrap();
    // Stored in milliseconds.
    assert!(
        ((until - clock.now()).num_seconds() - 24 * 3600).abs() <= 1,
        "{until}"
    );
    let new = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == new_key.as_str());
    assert!(new.is_some_and(|k| k["active"] == true), "{keys}");

    clock.advance(chrono::Duration::hours(24) + chrono::Duration::seconds(1));
    let status = app.track_with(&app.write_key).await;
    assert_eq!(status, 401, "the grace period is over");
    assert_eq!(app.track_with(&new_key).await, 200);
    let (_, keys) = app.get(&admin, &keys_path).await;
    let old = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == old_id)
        .unwrap();
    assert_eq!(old["active"], false, "{old}");

    // Revoking a key within its grace period stops it at once.
    let new_id = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == new_key.as_str())
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (status, third) = app
        .post(
            &admin,
            &format!("{keys_path}/{new_id}/rotate"),
            json!({"grace_hours": 720}),
        )
        .await;
    assert_eq!(status, 200, "{third}");
    assert_eq!(app.track_with(&new_key).await, 200);
    let (status, _) = app
        .post(&admin, &format!("{keys_path}/{new_id}/revoke"), json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        app.track_with(&new_key).await,
        401,
        "revoked within its grace"
    );
    let (status, body) = app
        .post(&admin, &format!("{keys_path}/{new_id}/rotate"), json!({}))
        .await;
    assert_eq!(status, 400, "a revoked key is not rotated again: {body}");
}
