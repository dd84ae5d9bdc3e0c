//! Request bodies: malformed, too large, gzip (and gzip bombs), content types, beacons.

use super::*;

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
