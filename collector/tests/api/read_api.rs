//! The read API: pagination, filters, and what bad parameters say.

use crate::helpers::{spawn_app, track};
use serde_json::{Value, json};

#[tokio::test]
async fn pages_newest_first_and_filters() {
    let app = spawn_app().await;
    let batch: Vec<Value> = (0..25)
        .map(|i| {
            track(
                &format!("user-{}", i % 3),
                if i % 2 == 0 { "even" } else { "odd" },
                &format!("p-{i:02}"),
            )
        })
        .collect();
    assert_eq!(
        app.post("/v1/batch", &json!({"batch": batch}))
            .await
            .status(),
        200
    );

    let (status, page) = app.get_json("/api/v1/events?limit=10").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["messageId"].as_str().unwrap())
        .collect();
    assert_eq!(ids[0], "p-24");
    assert_eq!(ids.len(), 10);
    let all = app.all_events("&limit=7").await;
    assert_eq!(all.len(), 25);
    let mut seen: Vec<&str> = all
        .iter()
        .map(|e| e["messageId"].as_str().unwrap())
        .collect();
    seen.dedup();
    assert_eq!(seen.len(), 25);

    let even = app.all_events("&event=even").await;
    assert_eq!(even.len(), 13);
    assert!(even.iter().all(|e| e["event"] == "even"));
    let user = app.all_events("&user_id=user-1").await;
    assert_eq!(user.len(), 8);
    let both = app.all_events("&user_id=user-1&event=odd").await;
    assert!(
        both.iter()
            .all(|e| e["userId"] == "user-1" && e["event"] == "odd")
    );
    assert_eq!(both.len(), 4);
}

#[tokio::test]
async fn bad_parameters_say_what_is_wrong() {
    let app = spawn_app().await;
    let (status, body) = app.get_json("/api/v1/events?limit=0").await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("between 1 and 1000")
    );
    let (status, body) = app.get_json("/api/v1/events?cursor=abc").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("next_cursor"));
    let (status, _) = app.get_json("/api/v1/events?limit=many").await;
    assert_eq!(status, 400);
    let (status, body) = app.get_json("/api/v1/nothing-here").await;
    assert_eq!(status, 404);
    assert!(body["message"].as_str().unwrap().contains("/openapi.json"));
}

#[tokio::test]
async fn operations_endpoints() {
    let app = spawn_app().await;
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        app.post("/v1/batch", &json!({"batch": [track("u", "e", "x")]}))
            .await
            .status(),
        200
    );
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "pulseline_http_requests_total",
        "pulseline_events_accepted_total",
        "pulseline_commit_duration_seconds_bucket",
        "pulseline_batch_messages_bucket",
    ] {
        assert!(metrics.contains(name), "missing {name} in\n{metrics}");
    }
    let spec: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/v1/batch",
        "/v1/track",
        "/v1/identify",
        "/v1/page",
        "/v1/screen",
        "/v1/group",
        "/v1/alias",
        "/api/v1/events",
        "/api/v1/stats",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(
            spec["paths"].get(path).is_some(),
            "{path} missing from /openapi.json"
        );
    }
}

/// The public routes as registered in the source (`routes::router` and the browser SDK's
/// router), with their methods: what `/openapi.json` must describe. The dashboard's and the
/// alerting API's routes have their own check in `dashboard_api`.
fn registered_public_routes() -> Vec<(String, String)> {
    let src = |file: &str| {
        std::fs::read_to_string(format!("{}/src/routes/{file}", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
    };
    let routes = src("mod.rs");
    let start = routes.find("pub fn router(").expect("routes::router");
    let end = start
        + routes[start..]
            .find("\n}\n")
            .expect("end of routes::router");
    let sdk = src("sdk.rs");
    let mut found = Vec::new();
    for text in [&routes[start..end], sdk.as_str()] {
        for (at, _) in text.match_indices(".route(\"") {
            let rest = &text[at + ".route(\"".len()..];
            let path = &rest[..rest.find('"').unwrap()];
            let method = rest[path.len() + 1..]
                .trim_start_matches([',', ' ', '\n'])
                .split('(')
                .next()
                .unwrap();
            found.push((path.to_owned(), method.to_owned()));
        }
    }
    found
}

#[tokio::test]
async fn every_public_route_is_in_the_openapi_description() {
    let app = spawn_app().await;
    let (status, spec) = app.get_json("/openapi.json").await;
    assert_eq!(status, 200);
    let routes = registered_public_routes();
    for known in ["/v1/batch", "/v1/import", "/sdk/v1/{file}", "/healthz"] {
        assert!(
            routes.iter().any(|(p, _)| p == known),
            "{known} not found in {routes:?}"
        );
    }
    // The description itself, and the page that renders it, need not be described.
    let missing: Vec<_> = routes
        .iter()
        .filter(|(path, _)| path != "/openapi.json" && !path.starts_with("/docs/api"))
        .filter(|(path, method)| spec["paths"][path].get(method).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "missing from /openapi.json: {missing:?}"
    );
    let import = &spec["paths"]["/v1/import"]["post"];
    assert_eq!(
        import["requestBody"]["content"]["application/json"]["schema"],
        spec["paths"]["/v1/batch"]["post"]["requestBody"]["content"]["application/json"]["schema"],
        "/v1/import takes what /v1/batch takes"
    );
    let sdk = &spec["paths"]["/sdk/v1/{file}"]["get"]["responses"];
    assert!(sdk["200"]["content"].get("application/wasm").is_some());
    assert!(sdk["404"].is_object());
}

#[tokio::test]
async fn one_projects_keys_never_see_another_projects_events() {
    let app = spawn_app().await;
    let db = app.store().await;
    let other = pulseline_collector::projects::create_project(
        &db,
        "Other",
        "unlimited",
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(
        app.post(
            "/v1/batch",
            &json!({"batch": [track("u", "mine", "same-id")]})
        )
        .await
        .status(),
        200
    );
    // The same messageId in another project is a different event, not a duplicate.
    let resp = app
        .http
        .post(app.url("/v1/batch"))
        .basic_auth(&other.write_key, Some(""))
        .json(&json!({"batch": [track("u", "theirs", "same-id")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let theirs: Value = app
        .http
        .get(app.url("/api/v1/events"))
        .bearer_auth(&other.secret_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = theirs["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["theirs"]);
    let mine = app.all_events("").await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["event"], "mine");
}

mod numbers;
