//! Issue 16: one project's notifications never reach another project's channel, ids are never
//! handed out twice, and an upgrade ends deliveries left waiting for a channel that is gone.

use std::sync::Arc;

use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use pulseline_collector::clock::FakeClock;
use pulseline_collector::projects::{ProjectKeys, create_project};
use pulseline_collector::store::Store;
use pulseline_collector::store::delivery::CategoryInput;

use super::*;

/// The time of `event(..)`'s timestamp: the fake clock starts there.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
}

async fn created(app: &TestApp, key: &str, path: &str, body: Value) -> Value {
    let (status, got) = app
        .api_as(key, reqwest::Method::POST, path, Some(body))
        .await;
    assert_eq!(status, 201, "{path}: {got}");
    got
}

async fn deleted(app: &TestApp, key: &str, path: &str) {
    let (status, got) = app.api_as(key, reqwest::Method::DELETE, path, None).await;
    assert_eq!(status, 204, "{path}: {got}");
}

/// What queues project A's private notification.
#[derive(Clone, Copy, Debug)]
enum Source {
    Category,
    Rule,
}

/// The exact sequence of the issue: A's notification fails and waits for its retry; A deletes
/// what queued it and the channel; project B creates a channel (on SQLite it used to get the
/// same id); the retry comes due. B's receiver must never see A's notification.
async fn a_retry_never_reaches_another_projects_channel(source: Source) {
    let clock = Arc::new(FakeClock::new(t0()));
    let app = helpers::spawn_app_with_clock(|_| {}, clock.clone()).await;
    let a_key = app.keys.secret_key.clone();
    let (a_hook, b_hook) = (standins::webhook().await, standins::webhook().await);
    a_hook
        .receiver
        .script(Scripted::Status(503, "down for maintenance".into()));
    let a_channel = created(
        &app,
        &a_key,
        "/api/v1/channels",
        json!({"name": "a", "kind": "webhook", "url": a_hook.url}),
    )
    .await;
    *a_hook.receiver.0.secret.lock().unwrap() =
        a_channel["signing_secret"].as_str().map(str::to_owned);
    let private = json!({"salary": 250_000, "employee": "Jane Roe"});
    let queued_by = match source {
        Source::Category => {
            let c = created(
                &app,
                &a_key,
                "/api/v1/categories",
                json!({"name": "Secret",
                "pattern": "secret.*", "emoji": "🔒", "colour": "#000000",
                "channel_id": a_channel["id"]}),
            )
            .await;
            app.post_batch(vec![event("secret.payroll", "p-1", private)])
                .await;
            format!("/api/v1/categories/{}", c["id"])
        }
        Source::Rule => {
            let r = created(
                &app,
                &a_key,
                "/api/v1/rules",
                json!({"name": "Payroll ran",
                "series": {"event": "secret.payroll"},
                "condition": {"type": "threshold", "op": ">", "value": 0},
                "channel_ids": [a_channel["id"]]}),
            )
            .await;
            app.post_batch(vec![event("secret.payroll", "p-1", private)])
                .await;
            // The hour of the event has closed: the rule fires, its alert is queued.
            let evaluated = t0() + Span::hours(1) + Span::seconds(20);
            clock.set(evaluated);
            let store = app.store().await;
            pulseline_collector::alerting::rules::run_once(&store, evaluated, "test")
                .await
                .unwrap();
            store.close().await;
            format!("/api/v1/rules/{}", r["id"])
        }
    };
    let failed = app.deliveries_in("failed", 1).await;
    let delivery_id = failed[0]["id"].clone();

    deleted(&app, &a_key, &queued_by).await;
    deleted(
        &app,
        &a_key,
        &format!("/api/v1/channels/{}", a_channel["id"]),
    )
    .await;
    // Deleting the channel ended the delivery that waited for it, at once.
    let dead = app.deliveries_in("dead", 1).await;
    assert_eq!(dead[0]["id"], delivery_id);
    assert_eq!(
        dead[0]["last_error"], "the channel was deleted",
        "{}",
        dead[0]
    );
    assert_eq!(dead[0]["attempts"], 1);

    let b = project_b(&app).await;
    let b_channel = created(
        &app,
        &b.secret_key,
        "/api/v1/channels",
        json!({"name": "b", "kind": "webhook", "url": b_hook.url}),
    )
    .await;
    assert_ne!(
        b_channel["id"], a_channel["id"],
        "a deleted channel's id came back"
    );
    *b_hook.receiver.0.secret.lock().unwrap() =
        b_channel["signing_secret"].as_str().map(str::to_owned);
    created(
        &app,
        &b.secret_key,
        "/api/v1/categories",
        json!({"name": "B", "pattern": "b.*",
        "emoji": "", "colour": "#123456", "channel_id": b_channel["id"]}),
    )
    .await;

    // A's retry is long due; B's own notification is sent after it (due later).
    clock.set(t0() + Span::hours(3));
    let resp = app
        .http
        .post(app.url("/v1/batch"))
        .basic_auth(&b.write_key, Some(""))
        .json(&json!({"batch": [event("b.hello", "b-1", json!({}))]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    b_hook.receiver.wait_for(1, WAIT).await;
    // B's row came due after A's retry: a claimable A row is claimed with it or before.
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, page) = app
            .api_as(
                &b.secret_key,
                reqwest::Method::GET,
                "/api/v1/deliveries?status=delivered",
                None,
            )
            .await;
        if page["deliveries"].as_array().is_some_and(|d| d.len() == 1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "B's delivery not recorded: {page}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = b_hook.receiver.accepted();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["data"]["title"], "b.hello");
    assert!(
        !serde_json::to_string(&got).unwrap().contains("salary"),
        "{got:?}"
    );
    assert_eq!(b_hook.receiver.hits().len(), 1);
    assert_eq!(
        a_hook.receiver.hits().len(),
        1,
        "A's endpoint: the first try only"
    );
    let (_, a_deliveries) = app.get_json("/api/v1/deliveries").await;
    let a_deliveries = a_deliveries["deliveries"].as_array().unwrap().clone();
    assert_eq!(a_deliveries.len(), 1);
    assert_eq!(a_deliveries[0]["status"], "dead");
    assert_eq!(a_deliveries[0]["attempts"], 1);
}

async fn project_b(app: &TestApp) -> ProjectKeys {
    let store = app.store().await;
    let b = create_project(&store, "B", "unlimited", Utc::now())
        .await
        .unwrap();
    store.close().await;
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_category_notification_never_reaches_another_projects_channel() {
    a_retry_never_reaches_another_projects_channel(Source::Category).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_alert_never_reaches_another_projects_channel() {
    a_retry_never_reaches_another_projects_channel(Source::Rule).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_channel_category_and_rule_ids_are_never_handed_out_again() {
    let app = spawn_app().await;
    let key = app.keys.secret_key.clone();
    let channel_body = json!({"name": "c", "kind": "email", "email": "ops@pulseline.test"});
    let old_channel = created(&app, &key, "/api/v1/channels", channel_body.clone()).await;
    let category_body = |channel: &Value| json!({"name": "c", "pattern": "e", "colour": "#123456", "channel_id": channel["id"]});
    let old_category = created(
        &app,
        &key,
        "/api/v1/categories",
        category_body(&old_channel),
    )
    .await;
    let rule_body = json!({"name": "r", "series": {"event": "e"},
        "condition": {"type": "threshold", "op": ">", "value": 1}});
    let old_rule = created(&app, &key, "/api/v1/rules", rule_body.clone()).await;
    deleted(&app, &key, &format!("/api/v1/rules/{}", old_rule["id"])).await;
    deleted(
        &app,
        &key,
        &format!("/api/v1/categories/{}", old_category["id"]),
    )
    .await;
    deleted(
        &app,
        &key,
        &format!("/api/v1/channels/{}", old_channel["id"]),
    )
    .await;

    let channel = created(&app, &key, "/api/v1/channels", channel_body).await;
    let category = created(&app, &key, "/api/v1/categories", category_body(&channel)).await;
    let rule = created(&app, &key, "/api/v1/rules", rule_body).await;
    for (what, old, new) in [
        ("channel", &old_channel, &channel),
        ("category", &old_category, &category),
        ("rule", &old_rule, &rule),
    ] {
        assert!(
            new["id"].as_i64() > old["id"].as_i64(),
            "the {what} id {} was handed out again",
            old["id"]
        );
    }
}

/// A category may name only its own project's channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_category_cannot_name_another_projects_channel() {
    let app = spawn_app().await;
    let b = project_b(&app).await;
    let theirs = created(
        &app,
        &b.secret_key,
        "/api/v1/channels",
        json!({"name": "b", "kind": "email", "email": "b@pulseline.test"}),
    )
    .await;
    let (status, err) = app
        .api(
            reqwest::Method::POST,
            "/api/v1/categories",
            Some(json!({"name": "c", "pattern": "e", "colour": "#123456",
                    "channel_id": theirs["id"]})),
        )
        .await;
    assert_eq!(status, 400, "{err}");
    assert!(
        err["message"].as_str().unwrap().contains(&format!(
            "channel_id {} is not a channel of this project",
            theirs["id"]
        )),
        "{err}"
    );
}

/// Projects A and B, channels "kept" and "gone" of A, and deliveries naming them, on a database
/// at migration 0008; then "gone" is deleted, as the old code did while deliveries named it.
struct Orphans {
    a: i64,
    kept: i64,
    gone: i64,
}

async fn orphans_at_migration_8(url: &str) -> Orphans {
    helpers::migrate_to(url, 8).await;
    for sql in [
        "INSERT INTO projects (name, created_at) VALUES ('A', 0)",
        "INSERT INTO projects (name, created_at) VALUES ('B', 0)",
        "INSERT INTO users (email, password_hash, created_at) VALUES ('a@pulseline.test', 'x', 0)",
        "INSERT INTO memberships (project_id, user_id, role, created_at)
         SELECT MIN(p.id), MIN(u.id), 'owner', 0 FROM projects p, users u",
        "INSERT INTO notification_channels (project_id, name, kind, target, created_at, updated_at)
         SELECT MIN(id), 'kept', 'email', 'a@pulseline.test', 0, 0 FROM projects",
        "INSERT INTO notification_channels (project_id, name, kind, target, created_at, updated_at)
         SELECT MIN(id), 'gone', 'email', 'a@pulseline.test', 0, 0 FROM projects",
    ] {
        helpers::exec_sql(url, sql).await;
    }
    let a = helpers::query_i64(url, "SELECT MIN(id) FROM projects").await;
    let b = helpers::query_i64(url, "SELECT MAX(id) FROM projects").await;
    let id_of = |name: &str| format!("SELECT id FROM notification_channels WHERE name = '{name}'");
    let kept = helpers::query_i64(url, &id_of("kept")).await;
    let gone = helpers::query_i64(url, &id_of("gone")).await;
    for (project, channel, key, status) in [
        (a, kept, "waits", "pending"),
        (a, gone, "orphan", "failed"),
        (b, kept, "not-its-project", "pending"),
        (a, gone, "sent", "delivered"),
    ] {
        helpers::exec_sql(
            url,
            &format!(
                "INSERT INTO deliveries (project_id, channel_id, source_key, content, status,
                     next_attempt_at, created_at)
                 VALUES ({project}, {channel}, '{key}', '{{}}', '{status}', 0, 0)"
            ),
        )
        .await;
    }
    helpers::exec_sql(
        url,
        &format!("DELETE FROM notification_channels WHERE id = {gone}"),
    )
    .await;
    Orphans { a, kept, gone }
}

/// A database at migration 0008 with a channel deleted while deliveries still named it (what
/// the old code left behind), upgraded by opening it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upgrade_ends_orphaned_deliveries_and_never_reuses_a_named_id() {
    let dir = tempfile::tempdir().unwrap();
    let url = helpers::fresh_database_url(dir.path()).await;
    let sqlite = url.starts_with("sqlite:");
    let Orphans { a, kept, gone } = orphans_at_migration_8(&url).await;

    let store = Store::open(&url, Default::default()).await.unwrap();
    let status_of = |key: &str| format!("SELECT status FROM deliveries WHERE source_key = '{key}'");
    for (key, status) in [
        ("waits", "pending"),
        ("orphan", "dead"),
        ("not-its-project", "dead"),
        ("sent", "delivered"),
    ] {
        let got: Vec<String> = helpers::query_column(&url, &status_of(key)).await;
        assert_eq!(got, [status], "{key}");
    }
    let reason: Vec<String> = helpers::query_column(
        &url,
        "SELECT last_error FROM deliveries WHERE source_key = 'orphan'",
    )
    .await;
    assert_eq!(reason, ["the channel was deleted"]);
    let still = format!(
        "SELECT COUNT(*) FROM notification_channels WHERE id = {kept} AND project_id = {a}"
    );
    assert_eq!(helpers::query_i64(&url, &still).await, 1, "ids are kept");
    let members = helpers::query_i64(&url, "SELECT COUNT(*) FROM memberships").await;
    assert_eq!(
        members, 1,
        "rebuilding users must not cascade to memberships"
    );

    let new = store
        .create_channel(a, "new", "email", "a@pulseline.test", None, Utc::now())
        .await
        .unwrap();
    assert!(new.id > gone, "channel {gone} is still named by deliveries");
    // Foreign keys are enforced again after the rebuild.
    let input = CategoryInput {
        name: "c".into(),
        pattern: "e".into(),
        emoji: String::new(),
        colour: 0,
        channel_id: gone + 1_000,
        title_template: None,
        description_template: None,
    };
    assert!(store.create_category(a, &input, Utc::now()).await.is_err());
    if sqlite {
        let problems: Vec<String> =
            helpers::query_column(&url, "SELECT \"table\" FROM pragma_foreign_key_check").await;
        assert!(problems.is_empty(), "{problems:?}");
    }
    store.close().await;
}

/// A send in flight when its channel is deleted still has its attempt recorded, and the
/// delivery stays ended instead of being scheduled for a retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_in_flight_during_the_delete_leaves_the_delivery_dead() {
    let clock = Arc::new(FakeClock::new(t0()));
    let app = helpers::spawn_app_with_clock(|c| c.delivery.timeout_ms = 1_000, clock).await;
    let key = app.keys.secret_key.clone();
    let hook = standins::webhook().await;
    hook.receiver
        .0
        .hold
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let channel = created(
        &app,
        &key,
        "/api/v1/channels",
        json!({"name": "slow", "kind": "webhook", "url": hook.url}),
    )
    .await;
    let category = created(
        &app,
        &key,
        "/api/v1/categories",
        json!({"name": "c",
        "pattern": "e", "emoji": "", "colour": "#123456", "channel_id": channel["id"]}),
    )
    .await;
    app.post_batch(vec![event("e", "e-1", json!({}))]).await;
    hook.receiver.wait_for_hits(1, WAIT).await;
    deleted(
        &app,
        &key,
        &format!("/api/v1/categories/{}", category["id"]),
    )
    .await;
    deleted(&app, &key, &format!("/api/v1/channels/{}", channel["id"])).await;
    // The held request times out; its attempt is recorded on the ended delivery.
    let deadline = Instant::now() + WAIT;
    let d = loop {
        let d = app.all_deliveries().await.swap_remove(0);
        if d["attempts"] == 1 {
            break d;
        }
        assert!(
            Instant::now() < deadline,
            "the attempt was not recorded: {d}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(d["status"], "dead", "{d}");
    assert_eq!(d["last_error"], "the channel was deleted", "{d}");
    assert!(d["attempt_log"][0]["error"].is_string(), "{d}");
}
