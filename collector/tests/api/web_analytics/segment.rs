//! Segment's short paths and settings endpoint, as analytics.js meets them.

use super::*;

#[tokio::test]
async fn segment_short_paths_take_each_message_type_from_a_browser() {
    let app = spawn(|_| {}).await;
    let paths = [
        (
            "/v1/p",
            json!({"type": "page", "messageId": "sp", "anonymousId": "a", "name": "Home"}),
        ),
        (
            "/v1/i",
            json!({"type": "identify", "messageId": "si", "userId": "u", "traits": {"plan": "pro"}}),
        ),
        (
            "/v1/t",
            json!({"type": "track", "messageId": "st", "userId": "u", "event": "Clicked"}),
        ),
        (
            "/v1/g",
            json!({"type": "group", "messageId": "sg", "userId": "u", "groupId": "g"}),
        ),
        (
            "/v1/a",
            json!({"type": "alias", "messageId": "sa", "userId": "u", "previousId": "a"}),
        ),
        (
            "/v1/s",
            json!({"type": "screen", "messageId": "ss", "userId": "u", "name": "Main"}),
        ),
    ];
    for (path, message) in &paths {
        assert_eq!(
            app.send_as_browser(path, SAFARI_MAC, message.clone()).await,
            StatusCode::OK,
            "{path}"
        );
    }
    let batch =
        json!({"batch": [{"type": "track", "messageId": "sb", "userId": "u", "event": "B"}]});
    assert_eq!(
        app.send_as_browser("/v1/b", SAFARI_MAC, batch).await,
        StatusCode::OK
    );
    for id in ["sp", "si", "st", "sg", "sa", "ss", "sb"] {
        assert_eq!(
            app.stored(id).await["context"]["browser"]["name"],
            "Safari",
            "{id}"
        );
    }
}

/// A preflight, for pages that post with other headers than a simple request allows.
#[tokio::test]
async fn a_short_path_answers_the_cors_preflight() {
    let app = spawn(|_| {}).await;
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/v1/t", app.base))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
}

#[tokio::test]
async fn a_type_sent_to_another_types_short_path_says_where_it_belongs() {
    let app = spawn(|_| {}).await;
    let resp = app
        .http
        .post(format!("{}/v1/p", app.base))
        .header("content-type", "text/plain")
        .body(
            json!({"type": "track", "event": "x", "userId": "u", "writeKey": app.write_key})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let error = resp.text().await.unwrap();
    assert!(
        error.contains("send track messages to /v1/track"),
        "{error}"
    );
}

/// What analytics.js fetches first: where to send, for any page's origin.
#[tokio::test]
async fn the_settings_endpoint_tells_analytics_js_where_to_send() {
    let app = spawn(|_| {}).await;
    let resp = app
        .http
        .get(format!(
            "{}/v1/projects/{}/settings",
            app.base, app.write_key
        ))
        .header("origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    let settings: Value = resp.json().await.unwrap();
    let host = app.base.trim_start_matches("http://");
    assert_eq!(
        settings["integrations"]["Segment.io"]["apiHost"],
        format!("{host}/v1")
    );
    assert_eq!(settings["integrations"]["Segment.io"]["protocol"], "http");
    assert_eq!(
        settings["integrations"]["Segment.io"]["apiKey"],
        app.write_key
    );
}

#[tokio::test]
async fn settings_need_a_known_write_key() {
    let app = spawn(|_| {}).await;
    let unknown = app
        .http
        .get(format!("{}/v1/projects/wk_nope/settings", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let secret = app
        .http
        .get(format!(
            "{}/v1/projects/{}/settings",
            app.base, app.secret_key
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(secret.status(), StatusCode::FORBIDDEN);
}
