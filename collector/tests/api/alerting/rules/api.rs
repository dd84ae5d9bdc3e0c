//! The rules API: validation that says what to fix, projects isolated, the OpenAPI entry,
//! and channels only of the rule's own project.

use reqwest::Method;

use super::*;

fn signups_rule() -> Value {
    json!({"name": "Signups", "series": {"event": "signup"},
        "condition": {"type": "threshold", "op": ">", "value": 50}})
}

#[tokio::test]
async fn a_bad_rule_gets_a_400_that_says_what_to_fix() {
    let rig = rig().await;
    for (body, says) in [
        (
            json!({"name": "x", "series": {"event": "e"}, "condition": {"type": "threshold", "op": "=>", "value": 1}}),
            "unknown variant `=>`",
        ),
        (
            json!({"name": "", "series": {"event": "e"}, "condition": {"type": "threshold", "op": ">", "value": 1}}),
            "name must be 1 to 200",
        ),
        (
            json!({"name": "x", "series": {"event": "e", "property": "v"}, "condition": {"type": "threshold", "op": ">", "value": 1}}),
            "remove it for count",
        ),
        (
            json!({"name": "x", "series": {"event": "e", "filters": {"a": [1]}}, "condition": {"type": "threshold", "op": ">", "value": 1}}),
            "must be a string, number or boolean",
        ),
        (
            json!({"name": "x", "series": {"event": "e"}, "condition": {"type": "anomaly", "sensitivity": 0}}),
            "sensitivity must be above 0",
        ),
        (
            json!({"name": "x", "series": {"event": "e"}, "condition": {"type": "threshold", "op": ">", "value": 1}, "for_secs": 99999999}),
            "at most 2592000",
        ),
        (
            json!({"name": "x", "series": {"event": "e"}, "condition": {"type": "threshold", "op": ">", "value": 1}, "colour": 1}),
            "unknown field `colour`",
        ),
    ] {
        let (status, err) = rig.app.api(Method::POST, "/api/v1/rules", Some(body)).await;
        assert_eq!(status, 400);
        assert!(err["message"].as_str().unwrap().contains(says), "{err}");
    }
}

#[tokio::test]
async fn a_write_key_cannot_manage_rules() {
    let rig = rig().await;
    let app = &rig.app;
    let (status, _) = app
        .api_as(&app.keys.write_key, Method::GET, "/api/v1/rules", None)
        .await;
    assert_eq!(status, 403);
}

/// Created with its defaults, read, updated, listed and deleted; bad parameters say why.
#[tokio::test]
async fn a_rule_is_created_read_updated_and_deleted() {
    let rig = rig().await;
    let app = &rig.app;
    let id = rig.create_rule(signups_rule()).await;
    let (status, got) = app.get_json(&format!("/api/v1/rules/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(got["name"], "Signups");
    assert_eq!(got["series"]["bucket"], "hour");
    assert_eq!(got["no_data"], "zero");
    assert_eq!(got["state"], "ok");
    let mut changed = signups_rule();
    changed["condition"]["value"] = json!(80);
    let path = format!("/api/v1/rules/{id}");
    let (status, _) = app.api(Method::PUT, &path, Some(changed)).await;
    assert_eq!(status, 200);
    let (_, list) = app.get_json("/api/v1/rules").await;
    assert_eq!(list["rules"].as_array().unwrap().len(), 1);
    assert_eq!(list["rules"][0]["condition"]["value"], 80.0);
    let (status, err) = app
        .get_json(&format!("/api/v1/rules/{id}/preview?buckets=5000"))
        .await;
    assert_eq!(status, 400);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("between 1 and 1000"),
        "{err}"
    );
    let (status, err) = app.get_json("/api/v1/alerts?limit=0").await;
    assert_eq!(status, 400, "{err}");
    let (status, _) = app.get_json("/api/v1/rules/not-a-number").await;
    assert_eq!(status, 404);

    let (status, _) = app.api(Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    let (status, _) = app.get_json(&path).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn another_projects_secret_key_sees_none_of_a_projects_rules() {
    let rig = rig().await;
    let app = &rig.app;
    let id = rig.create_rule(signups_rule()).await;
    let b = pulseline_collector::projects::create_project(&rig.store, "B", "unlimited", Utc::now())
        .await
        .unwrap();
    for (method, path) in [
        (Method::GET, format!("/api/v1/rules/{id}")),
        (Method::GET, format!("/api/v1/rules/{id}/preview")),
        (Method::PUT, format!("/api/v1/rules/{id}")),
        (Method::DELETE, format!("/api/v1/rules/{id}")),
    ] {
        let (status, _) = app
            .api_as(&b.secret_key, method.clone(), &path, Some(signups_rule()))
            .await;
        assert_eq!(status, 404, "{method} {path}");
    }
    let (_, list) = app
        .api_as(&b.secret_key, Method::GET, "/api/v1/rules", None)
        .await;
    assert_eq!(list["rules"], json!([]));
}

#[tokio::test]
async fn the_rules_api_is_in_the_openapi_description() {
    let rig = rig().await;
    let (_, doc) = rig.app.get_json("/openapi.json").await;
    for path in [
        "/api/v1/rules",
        "/api/v1/rules/{id}",
        "/api/v1/rules/{id}/preview",
        "/api/v1/alerts",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} documented");
    }
}

/// Issue 16: a rule may name only its own project's channels, on create and on update.
#[tokio::test]
async fn rule_channel_ids_must_be_channels_of_the_rules_project() {
    let rig = rig().await;
    let app = &rig.app;
    let own = rig.channel("own").await;
    let b = pulseline_collector::projects::create_project(&rig.store, "B", "unlimited", Utc::now())
        .await
        .unwrap();
    let resp = app
        .http
        .post(app.url("/api/v1/channels"))
        .bearer_auth(&b.secret_key)
        .json(&json!({"name": "b", "kind": "email", "email": "b@pulseline.test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let theirs = resp.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let rule = |channels: Value| {
        json!({"name": "Signups", "series": {"event": "signup"},
               "condition": {"type": "threshold", "op": ">", "value": 50}, "channel_ids": channels})
    };
    let write = |method: reqwest::Method, path: String, body: Value| {
        app.http
            .request(method, app.url(&path))
            .bearer_auth(&app.keys.secret_key)
            .json(&body)
            .send()
    };
    let missing = own + theirs + 1_000;
    for (channels, named) in [(json!([missing]), missing), (json!([own, theirs]), theirs)] {
        let resp = write(
            reqwest::Method::POST,
            "/api/v1/rules".into(),
            rule(channels),
        )
        .await
        .unwrap();
        assert_eq!(resp.status(), 400);
        let err: Value = resp.json().await.unwrap();
        let message = err["message"].as_str().unwrap();
        assert!(
            message.contains(&format!(
                "channel_ids: {named} is not a channel of this project"
            )),
            "{message}"
        );
    }
    let (_, list) = app.get_json("/api/v1/rules").await;
    assert_eq!(list["rules"], json!([]), "nothing was stored");

    let id = rig.create_rule(rule(json!([own]))).await;
    let resp = write(
        reqwest::Method::PUT,
        format!("/api/v1/rules/{id}"),
        rule(json!([theirs])),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains(&theirs.to_string()),
        "{err}"
    );
    let (_, got) = app.get_json(&format!("/api/v1/rules/{id}")).await;
    assert_eq!(got["channel_ids"], json!([own]), "the rule is unchanged");
}
