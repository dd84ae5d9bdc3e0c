//! Batches and single messages stored with their fields intact, once per message id.

use super::*;

#[tokio::test]
async fn batch_is_stored_and_read_back_with_fields_intact() {
    let app = spawn_app().await;
    let batch = json!({"batch": [
        track("u1", "Signed Up", "m-1"),
        {"type": "identify", "userId": "u1", "messageId": "m-2", "traits": {"email": "ada@example.com"}},
        {"type": "page", "anonymousId": "a1", "messageId": "m-3", "name": "Pricing", "properties": {"path": "/pricing"}},
        {"type": "screen", "userId": "u1", "messageId": "m-4", "name": "Home"},
        {"type": "group", "userId": "u1", "messageId": "m-5", "groupId": "acme"},
        {"type": "alias", "userId": "u1", "previousId": "a1", "messageId": "m-6"},
    ], "sentAt": "2026-11-22T10:00:01.000Z"});
    let (status, resp) = body(app.post("/v1/batch", &batch).await).await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(
        resp,
        json!({"success": true, "accepted": 6, "rejected": []})
    );

    let events = app.all_events("").await;
    assert_eq!(events.len(), 6);
    let first = events.iter().find(|e| e["messageId"] == "m-1").unwrap();
    assert_eq!(first["event"], "Signed Up");
    assert_eq!(first["userId"], "u1");
    assert_eq!(
        first["properties"],
        json!({"plan": "pro", "amount": 42.5, "flag": true})
    );
    assert_eq!(first["timestamp"], "2026-11-22T10:00:00.000Z");
    assert!(first["receivedAt"].is_string());
    let identify = events.iter().find(|e| e["messageId"] == "m-2").unwrap();
    assert_eq!(identify["traits"]["email"], "ada@example.com");
    assert_eq!(app.events_total().await, 6);
}

#[tokio::test]
async fn single_message_endpoints_imply_their_type() {
    let app = spawn_app().await;
    for (path, msg) in [
        ("/v1/track", json!({"userId": "u", "event": "Clicked"})),
        (
            "/v1/identify",
            json!({"userId": "u", "traits": {"name": "Ada"}}),
        ),
        ("/v1/page", json!({"anonymousId": "a", "name": "Home"})),
        ("/v1/screen", json!({"userId": "u", "name": "Settings"})),
        ("/v1/group", json!({"userId": "u", "groupId": "g"})),
        ("/v1/alias", json!({"userId": "u", "previousId": "a"})),
    ] {
        let (status, resp) = body(app.post(path, &msg).await).await;
        assert_eq!(status, 200, "{path}: {resp}");
        assert_eq!(resp["accepted"], 1);
    }
    let kinds: Vec<String> = app
        .all_events("")
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        ["alias", "group", "screen", "page", "identify", "track"]
    );

    let (status, resp) = body(app.post("/v1/track", &json!({"userId": "u"})).await).await;
    assert_eq!(status, 400);
    assert!(
        resp["message"]
            .as_str()
            .unwrap()
            .contains("missing 'event'"),
        "{resp}"
    );
}

#[tokio::test]
async fn partially_invalid_batch_stores_the_valid_and_names_the_rest() {
    let app = spawn_app().await;
    let batch = json!({"batch": [
        track("u1", "ok", "good-1"),
        {"type": "track", "userId": "u1", "messageId": "bad-1"},
        {"type": "track", "event": "no identity", "messageId": "bad-2"},
        {"type": "track", "userId": "u", "event": "e", "timestamp": "last tuesday", "messageId": "bad-3"},
        track("u2", "ok", "good-2"),
    ]});
    let (status, resp) = body(app.post("/v1/batch", &batch).await).await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["accepted"], 2);
    let rejected = resp["rejected"].as_array().unwrap();
    let summary: Vec<(u64, &str)> = rejected
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap(),
                r["messageId"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(summary, [(1, "bad-1"), (2, "bad-2"), (3, "bad-3")]);
    assert!(rejected[2]["error"].as_str().unwrap().contains("RFC 3339"));
    assert_eq!(app.events_total().await, 2);

    let all_bad = json!({"batch": [{"type": "nope", "userId": "u"}]});
    let (status, resp) = body(app.post("/v1/batch", &all_bad).await).await;
    assert_eq!(status, 400, "{resp}");
    assert_eq!(resp["code"], "invalid_messages");
    assert_eq!(resp["rejected"][0]["index"], 0);
}

#[tokio::test]
async fn a_repeated_message_id_is_acknowledged_and_stored_once() {
    let app = spawn_app().await;
    let batch = json!({"batch": [track("u", "e", "dup-1"), track("u", "e", "dup-2"), track("u", "e", "dup-1")]});
    for _ in 0..3 {
        let (status, resp) = body(app.post("/v1/batch", &batch).await).await;
        assert_eq!(status, 200, "{resp}");
        assert_eq!(resp["accepted"], 3);
    }
    assert_eq!(app.events_total().await, 2);
    assert_eq!(app.all_events("").await.len(), 2);
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dedup = metrics
        .lines()
        .find(|l| l.starts_with("pulseline_events_deduplicated_total"))
        .expect("dedupe counter");
    let n: f64 = dedup.split_whitespace().last().unwrap().parse().unwrap();
    assert!(n >= 7.0, "{dedup}");
}

#[tokio::test]
async fn missing_message_id_is_assigned() {
    let app = spawn_app().await;
    let resp = app
        .post("/v1/track", &json!({"userId": "u", "event": "e"}))
        .await;
    assert_eq!(resp.status(), 200);
    let events = app.all_events("").await;
    let id = events[0]["messageId"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
}
