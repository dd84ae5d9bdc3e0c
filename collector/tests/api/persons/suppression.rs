//! Suppressed persons are dropped at ingest until lifted, and listed a thousand at a time.

use super::*;

#[tokio::test]
async fn suppressed_persons_are_dropped_at_ingest_until_lifted() {
    let app = spawn().await;
    app.ingest(alice()).await;
    let (status, body) = app
        .secret_json(
            reqwest::Method::DELETE,
            "/api/v1/persons?user_id=alice&suppress=true",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["suppressed"], true);
    let (_, list) = app
        .secret_json(reqwest::Method::GET, "/api/v1/persons/suppressions")
        .await;
    let listed: Vec<&str> = list["suppressions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["person_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["alice", "anon-a", "old-alice"]);

    // Accepted (the SDK must not retry), but not stored; others still are.
    let answer = app
        .ingest(vec![
            track(Some("alice"), None, "signup", "s-1", 0),
            track(None, Some("anon-a"), "signup", "s-2", 0),
            track(Some("bob"), None, "signup", "s-3", 0),
        ])
        .await;
    assert_eq!(answer["accepted"], 3, "{answer}");
    let (_, stats) = app.secret_json(reqwest::Method::GET, "/api/v1/stats").await;
    assert_eq!(stats["events_total"], 1, "{stats}");

    let (status, _) = app
        .secret(
            reqwest::Method::DELETE,
            "/api/v1/persons/suppressions?user_id=alice",
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, body) = app
        .secret_json(
            reqwest::Method::DELETE,
            "/api/v1/persons/suppressions?user_id=alice",
        )
        .await;
    assert_eq!(status, 404, "{body}");
    app.ingest(vec![
        track(Some("alice"), None, "signup", "s-4", 0),
        track(None, Some("anon-a"), "signup", "s-5", 0),
    ])
    .await;
    let (_, stats) = app.secret_json(reqwest::Method::GET, "/api/v1/stats").await;
    assert_eq!(
        stats["events_total"], 2,
        "alice is back, anon-a still suppressed: {stats}"
    );
}

#[tokio::test]
async fn suppressions_are_listed_a_thousand_at_a_time() {
    let app = spawn().await;
    let ids: Vec<String> = (0..1001).map(|i| format!("p-{i:04}")).collect();
    let store = pulseline_collector::store::Store::open(&app.database_url, Default::default())
        .await
        .unwrap();
    store
        .suppress_persons(app.project, &ids, now())
        .await
        .unwrap();
    store.close().await;
    let (status, first) = app
        .secret_json(reqwest::Method::GET, "/api/v1/persons/suppressions")
        .await;
    assert_eq!(status, 200);
    assert_eq!(first["suppressions"].as_array().unwrap().len(), 1000);
    assert_eq!(first["next_after"], "p-0999");
    let (_, second) = app
        .secret_json(
            reqwest::Method::GET,
            "/api/v1/persons/suppressions?after=p-0999",
        )
        .await;
    assert_eq!(second["suppressions"][0]["person_id"], "p-1000");
    assert_eq!(second["suppressions"].as_array().unwrap().len(), 1);
    assert_eq!(second["next_after"], Value::Null);
}
