//! Write keys by Basic, Bearer or in the body; bad keys and secret keys refused.

use super::*;

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
