//! Ingest over real HTTP against a real SQLite file: every status the API promises.

use crate::helpers;

use std::io::Write;

use crate::helpers::{spawn_app, spawn_app_with, track};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::best());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

async fn body(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

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

#[tokio::test]
async fn auth_by_basic_bearer_and_body_write_key() {
    let app = spawn_app().await;
    let msg = json!({"batch": [track("u", "e", "a-1")]});
    let bearer = app
        .http
        .post(app.url("/v1/batch"))
        .bearer_auth(&app.keys.write_key)
        .json(&msg)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 200);
    let in_body = json!({"batch": [track("u", "e", "a-2")], "writeKey": app.keys.write_key});
    let resp = app
        .http
        .post(app.url("/v1/batch"))
        .json(&in_body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(app.events_total().await, 2);
}

#[tokio::test]
async fn bad_keys_get_401_and_secret_keys_cannot_ingest() {
    let app = spawn_app().await;
    let msg = json!({"batch": [track("u", "e", "k-1")]});

    let (status, resp) = body(
        app.http
            .post(app.url("/v1/batch"))
            .json(&msg)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    assert!(
        resp["message"]
            .as_str()
            .unwrap()
            .contains("missing write key"),
        "{resp}"
    );

    let wrong = app
        .http
        .post(app.url("/v1/batch"))
        .basic_auth("plw_nope", Some(""))
        .json(&msg);
    let (status, resp) = body(wrong.send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert!(
        resp["message"]
            .as_str()
            .unwrap()
            .contains("unknown write key"),
        "{resp}"
    );

    let secret = app
        .http
        .post(app.url("/v1/batch"))
        .bearer_auth(&app.keys.secret_key)
        .json(&msg);
    let (status, resp) = body(secret.send().await.unwrap()).await;
    assert_eq!(status, 403, "{resp}");

    let read_with_write = app
        .http
        .get(app.url("/api/v1/events"))
        .bearer_auth(&app.keys.write_key);
    let (status, resp) = body(read_with_write.send().await.unwrap()).await;
    assert_eq!(status, 403, "{resp}");
    assert!(resp["message"].as_str().unwrap().contains("secret key"));
    assert_eq!(app.events_total().await, 0);
}

#[tokio::test]
async fn malformed_bodies_get_400_that_says_why() {
    let app = spawn_app().await;
    let send = |body: &'static str| {
        app.http
            .post(app.url("/v1/batch"))
            .basic_auth(&app.keys.write_key, Some(""))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let (status, resp) = body(send("{not json").await.unwrap()).await;
    assert_eq!(status, 400);
    assert!(
        resp["message"]
            .as_str()
            .unwrap()
            .contains("expected {\"batch\""),
        "{resp}"
    );
    let (status, resp) = body(send(r#"{"events": []}"#).await.unwrap()).await;
    assert_eq!(status, 400);
    assert!(
        resp["message"]
            .as_str()
            .unwrap()
            .contains("missing field `batch`"),
        "{resp}"
    );
    let (status, resp) = body(send(r#"{"batch": []}"#).await.unwrap()).await;
    assert_eq!(status, 400);
    assert!(
        resp["message"].as_str().unwrap().contains("empty"),
        "{resp}"
    );
    let (status, _) = body(send(r#"{"batch": ["a string"]}"#).await.unwrap()).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn limits_answer_413_naming_the_setting() {
    let app = spawn_app_with(|c| {
        c.limits.max_batch_messages = 10;
        c.limits.max_message_bytes = 1024;
        c.limits.max_request_bytes = 64 * 1024;
    })
    .await;
    let many: Vec<Value> = (0..11)
        .map(|i| track("u", "e", &format!("n-{i}")))
        .collect();
    let (status, resp) = body(app.post("/v1/batch", &json!({"batch": many})).await).await;
    assert_eq!(status, 413);
    assert!(
        resp["message"]
            .as_str()
            .unwrap()
            .contains("PULSELINE_MAX_BATCH_MESSAGES"),
        "{resp}"
    );

    let huge = json!({"batch": [{"type": "track", "userId": "u", "event": "e", "properties": {"blob": "x".repeat(70_000)}}]});
    let (status, resp) = body(app.post("/v1/batch", &huge).await).await;
    assert_eq!(status, 413);
    assert!(
        resp["message"]
            .as_str()
            .unwrap()
            .contains("PULSELINE_MAX_REQUEST_BYTES"),
        "{resp}"
    );

    let big_message = json!({"batch": [
        {"type": "track", "userId": "u", "event": "e", "properties": {"blob": "x".repeat(2_000)}},
        track("u", "e", "small"),
    ]});
    let (status, resp) = body(app.post("/v1/batch", &big_message).await).await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["accepted"], 1);
    assert!(
        resp["rejected"][0]["error"]
            .as_str()
            .unwrap()
            .contains("PULSELINE_MAX_MESSAGE_BYTES")
    );
}

#[tokio::test]
async fn gzip_bodies_are_accepted() {
    let app = spawn_app().await;
    let batch = json!({"batch": [track("u", "e", "gz-1"), track("u", "e", "gz-2")]});
    let resp = app
        .http
        .post(app.url("/v1/batch"))
        .basic_auth(&app.keys.write_key, Some(""))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gzip(batch.to_string().as_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(app.events_total().await, 2);

    let (status, resp) = body(
        app.http
            .post(app.url("/v1/batch"))
            .basic_auth(&app.keys.write_key, Some(""))
            .header("content-encoding", "gzip")
            .body("not gzip at all")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        resp["message"].as_str().unwrap().contains("not valid gzip"),
        "{resp}"
    );
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_gzip_bomb_is_refused_without_inflating_it() {
    let app = spawn_app().await;
    // 400 MiB of one byte compresses to ~400 KiB: under the compressed-size limit.
    let bomb = {
        let mut enc = GzEncoder::new(Vec::new(), Compression::best());
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..400 {
            enc.write_all(&chunk).unwrap();
        }
        enc.finish().unwrap()
    };
    assert!(bomb.len() < 512 * 1024, "bomb is {} bytes", bomb.len());
    let before = peak_rss_kib();
    let (status, resp) = body(
        app.http
            .post(app.url("/v1/batch"))
            .basic_auth(&app.keys.write_key, Some(""))
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(bomb)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 413, "{resp}");
    let grown_mib = (peak_rss_kib() - before) / 1024;
    assert!(
        grown_mib < 64,
        "peak RSS grew by {grown_mib} MiB while refusing the bomb"
    );
}

#[tokio::test]
async fn wrong_content_type_or_encoding_gets_415() {
    let app = spawn_app().await;
    let form = app
        .http
        .post(app.url("/v1/batch"))
        .basic_auth(&app.keys.write_key, Some(""))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("batch=1");
    let (status, resp) = body(form.send().await.unwrap()).await;
    assert_eq!(status, 415);
    assert!(
        resp["message"]
            .as_str()
            .unwrap()
            .contains("Content-Type: application/json")
    );
    let br = app
        .http
        .post(app.url("/v1/batch"))
        .basic_auth(&app.keys.write_key, Some(""))
        .header("content-type", "application/json")
        .header("content-encoding", "br")
        .body("{}");
    assert_eq!(br.send().await.unwrap().status(), 415);
}

#[tokio::test]
async fn beacon_text_plain_with_body_key_and_cors_preflight() {
    let app = spawn_app().await;
    let beacon = json!({"batch": [track("u", "e", "beacon-1")], "writeKey": app.keys.write_key});
    let resp = app
        .http
        .post(app.url("/v1/batch"))
        .header("content-type", "text/plain;charset=UTF-8")
        .header("origin", "https://shop.example")
        .body(beacon.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/v1/batch"))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );
}

#[tokio::test]
async fn overload_is_refused_with_503_and_retry_after() {
    let app = spawn_app_with(|c| c.limits.max_queued_events = 1).await;
    let batch = json!({"batch": [track("u", "e", "o-1"), track("u", "e", "o-2")]});
    let resp = app.post("/v1/batch", &batch).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    let (_, body) = body(resp).await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("PULSELINE_MAX_QUEUED_EVENTS")
    );
    assert_eq!(app.events_total().await, 0);
    // One event fits: the queue is bounded by events, and frees up after each commit.
    assert_eq!(
        app.post("/v1/batch", &json!({"batch": [track("u", "e", "o-3")]}))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.post("/v1/batch", &json!({"batch": [track("u", "e", "o-4")]}))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_failing_database_answers_503_and_loses_nothing_acknowledged() {
    let app = spawn_app().await;
    assert_eq!(
        app.post("/v1/batch", &json!({"batch": [track("u", "e", "before")]}))
            .await
            .status(),
        200
    );

    // Make every insert fail, as a full disk or a broken volume would.
    if helpers::on_postgres() {
        app.exec_sql("CREATE FUNCTION fail_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk I/O error'; END $$").await;
        app.exec_sql("CREATE TRIGGER fail_inserts BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION fail_insert()").await;
    } else {
        app.exec_sql("CREATE TRIGGER fail_inserts BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END").await;
    }
    let resp = app
        .post("/v1/batch", &json!({"batch": [track("u", "e", "during")]}))
        .await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    let (_, body) = body(resp).await;
    assert_eq!(body["code"], "storage_unavailable");
    assert!(
        !body["message"].as_str().unwrap().contains("disk I/O"),
        "internals leaked: {body}"
    );

    if helpers::on_postgres() {
        app.exec_sql("DROP TRIGGER fail_inserts ON events").await;
    } else {
        app.exec_sql("DROP TRIGGER fail_inserts").await;
    }
    assert_eq!(
        app.post("/v1/batch", &json!({"batch": [track("u", "e", "during")]}))
            .await
            .status(),
        200
    );
    let ids: Vec<String> = app
        .all_events("")
        .await
        .iter()
        .map(|e| e["messageId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["during", "before"]);
}

#[tokio::test]
async fn concurrent_requests_are_group_committed_and_all_stored() {
    let app = spawn_app().await;
    let mut tasks = Vec::new();
    for t in 0..16 {
        let http = app.http.clone();
        let url = app.url("/v1/batch");
        let key = app.keys.write_key.clone();
        tasks.push(tokio::spawn(async move {
            for r in 0..10 {
                let batch: Vec<Value> = (0..50)
                    .map(|i| track("u", "e", &format!("c-{t}-{r}-{i}")))
                    .collect();
                let resp = http
                    .post(&url)
                    .basic_auth(&key, Some(""))
                    .json(&json!({"batch": batch}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(app.events_total().await, 16 * 10 * 50);
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_commits() {
    let app = spawn_app().await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let http = app.http.clone();
        let url = app.url("/v1/batch");
        let key = app.keys.write_key.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = 0;
            for r in 0.. {
                let batch: Vec<Value> = (0..100)
                    .map(|i| track("u", "e", &format!("g-{t}-{r}-{i}")))
                    .collect();
                match http
                    .post(&url)
                    .basic_auth(&key, Some(""))
                    .json(&json!({"batch": batch}))
                    .send()
                    .await
                {
                    Ok(resp) if resp.status() == 200 => acked += 100,
                    _ => break,
                }
            }
            acked
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    app.shutdown.shutdown();
    let mut acked = 0;
    for t in tasks {
        acked += t.await.unwrap();
    }
    app.task.await.unwrap().unwrap();
    assert!(acked > 0);

    let stored = helpers::query_i64(&app.database_url, "SELECT COUNT(*) FROM events").await;
    assert!(stored >= acked, "acknowledged {acked}, stored {stored}");
}
