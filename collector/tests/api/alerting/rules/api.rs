//! The rules API: validation that says what to fix, projects isolated, the OpenAPI entry,
//! and channels only of the rule's own project.

use super::*;

#[tokio::test]
async fn rules_api_validates_isolates_projects_and_is_documented() {
    let rig = rig().await;
    let app = &rig.app;
    let post = |body: Value| {
        app.http
            .post(app.url("/api/v1/rules"))
            .bearer_auth(&app.keys.secret_key)
            .json(&body)
            .send()
    };
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
        let resp = post(body).await.unwrap();
        assert_eq!(resp.status(), 400);
        let err: Value = resp.json().await.unwrap();
        assert!(err["message"].as_str().unwrap().contains(says), "{err}");
    }
    // A write key cannot manage rules.
    let resp = app
        .http
        .get(app.url("/api/v1/rules"))
        .bearer_auth(&app.keys.write_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    let rule = json!({"name": "Signups", "series": {"event": "signup"},
        "condition": {"type": "threshold", "op": ">", "value": 50}});
    let id = rig.create_rule(rule.clone()).await;
    let (status, got) = app.get_json(&format!("/api/v1/rules/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(got["name"], "Signups");
    assert_eq!(got["series"]["bucket"], "hour");
    assert_eq!(got["no_data"], "zero");
    assert_eq!(got["state"], "ok");
    let mut changed = rule.clone();
    changed["condition"]["value"] = json!(80);
    let resp = app
        .http
        .put(app.url(&format!("/api/v1/rules/{id}")))
        .bearer_auth(&app.keys.secret_key)
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (_, list) = app.get_json("/api/v1/rules").await;
    assert_eq!(list["rules"].as_array().unwrap().len(), 1);
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
    assert_eq!(list["rules"][0]["condition"]["value"], 80.0);

    // Project B's secret key sees none of A's rules.
    let b = pulseline_collector::projects::create_project(&rig.store, "B", "unlimited", Utc::now())
        .await
        .unwrap();
    for (method, path) in [
        ("GET", format!("/api/v1/rules/{id}")),
        ("GET", format!("/api/v1/rules/{id}/preview")),
        ("PUT", format!("/api/v1/rules/{id}")),
        ("DELETE", format!("/api/v1/rules/{id}")),
    ] {
        let resp = app
            .http
            .request(method.parse().unwrap(), app.url(&path))
            .bearer_auth(&b.secret_key)
            .json(&rule)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{method} {path}");
    }
    let resp = app
        .http
        .get(app.url("/api/v1/rules"))
        .bearer_auth(&b.secret_key)
        .send()
        .await
        .unwrap();
    let list: Value = resp.json().await.unwrap();
    assert_eq!(list["rules"], json!([]));

    let resp = app
        .http
        .delete(app.url(&format!("/api/v1/rules/{id}")))
        .bearer_auth(&app.keys.secret_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let (status, _) = app.get_json(&format!("/api/v1/rules/{id}")).await;
    assert_eq!(status, 404);

    let (_, doc) = app.get_json("/openapi.json").await;
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
