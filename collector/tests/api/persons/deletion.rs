//! Deleting a person: what remains is what a store without them shows, and a person who
//! comes back counts as active again.

use super::*;

#[tokio::test]
async fn deleting_a_person_leaves_what_a_store_without_them_shows() {
    let with = spawn().await;
    let without = spawn().await;
    notify_purchases(&with).await;
    notify_purchases(&without).await;
    let mut everyone = others();
    everyone.extend(alice());
    with.ingest(everyone).await;
    without.ingest(others()).await;
    let before = with.view().await;
    assert_ne!(before, without.view().await, "alice's events are counted");
    assert_eq!(delivery_sources(&with).await.len(), 4);
    let (status, preview) = with
        .secret_json(reqwest::Method::GET, "/api/v1/persons?user_id=alice")
        .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(
        preview,
        json!({"ids": ["alice", "anon-a", "old-alice"], "events": 7})
    );

    let (status, body) = with
        .secret_json(reqwest::Method::DELETE, "/api/v1/persons?user_id=alice")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["ids"],
        json!(["alice", "anon-a", "old-alice"]),
        "{body}"
    );
    assert_eq!(body["deleted"]["events"], 7, "{body}");
    assert_eq!(body["deleted"]["deliveries"], 2, "{body}");
    assert_eq!(body["suppressed"], false);

    assert_eq!(with.view().await, without.view().await);
    let sources = delivery_sources(&with).await;
    assert_eq!(sources.len(), 2, "{sources:?}");
    assert!(
        sources
            .iter()
            .all(|s| !s.ends_with(":a-2") && !s.ends_with(":a-6"))
    );

    // The audit log says who deleted how much, without the ids themselves.
    let log = with.dash("/audit").await;
    let entry = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "person.deleted")
        .unwrap_or_else(|| panic!("no person.deleted entry in {log}"));
    let target = entry["target"].as_str().unwrap();
    assert!(entry["actor"].as_str().unwrap().starts_with("secret key"));
    assert!(target.contains("events 7"), "{target}");
    assert!(!log.to_string().contains("alice"), "{log}");
    assert!(!log.to_string().contains("anon-a"), "{log}");
}

#[tokio::test]
async fn a_deleted_person_who_comes_back_today_counts_as_active_again() {
    let app = spawn().await;
    app.ingest(alice()).await;
    app.ingest(others()).await;
    let dau = |o: &Value| o["dau"].as_i64().unwrap();
    let before = dau(&app.dash("/overview").await);
    let (status, body) = app
        .secret_json(
            reqwest::Method::DELETE,
            "/api/v1/persons?anonymous_id=anon-a",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Active today under two keys: alice and anon-a (her anonymous-only page view).
    assert_eq!(dau(&app.dash("/overview").await), before - 2);
    app.ingest(vec![track(Some("alice"), None, "signup", "again-1", 0)])
        .await;
    assert_eq!(dau(&app.dash("/overview").await), before - 1);
}

/// Only `context.bot = true` makes a bot, at ingest and at deletion alike: deleting a person
/// whose messages carry `bot: 1` or `bot: "true"` leaves the real bot's count alone.
#[tokio::test]
async fn deleting_a_person_takes_from_the_bot_rollup_only_what_ingest_put_there() {
    let app = spawn().await;
    let with_bot = |user: &str, id: &str, bot: Value| {
        let mut m = track(Some(user), None, "visit", id, 1);
        m["context"] = json!({"bot": bot});
        m
    };
    app.ingest(vec![
        with_bot("crawler", "b-1", json!(true)),
        with_bot("alice", "a-1", json!(1)),
        with_bot("alice", "a-2", json!("true")),
    ])
    .await;
    let counts = |table: &'static str| {
        let url = app.database_url.clone();
        async move {
            helpers::query_column::<i64>(
                &url,
                &format!("SELECT events FROM {table} WHERE name = 'visit'"),
            )
            .await
        }
    };
    assert_eq!(counts("rollups_hourly").await, [3]);
    assert_eq!(counts("rollups_hourly_bots").await, [1]);

    let (status, body) = app
        .secret_json(reqwest::Method::DELETE, "/api/v1/persons?user_id=alice")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deleted"]["events"], 2, "{body}");
    assert_eq!(counts("rollups_hourly").await, [1]);
    assert_eq!(counts("rollups_hourly_bots").await, [1]);
}
