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
