//! Channels and categories that cannot be made: errors that say what to fix, and targets
//! that are not public addresses, in every spelling.

use super::*;

/// POSTs `body` to `path` and expects a 400 whose message contains `expected`.
async fn refused(app: &TestApp, path: &str, body: Value, expected: &str) {
    let (status, err) = app
        .api(reqwest::Method::POST, path, Some(body.clone()))
        .await;
    assert_eq!(status, 400, "{body} → {err}");
    assert!(
        err["message"].as_str().unwrap().contains(expected),
        "{body} → {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_channel_gets_a_400_that_says_what_to_fix() {
    let app = spawn_app().await;
    for (body, expected) in [
        (json!({"name": "x", "kind": "discord"}), "needs \"url\""),
        (
            json!({"name": "x", "kind": "discord", "url": "not a url"}),
            "not a valid URL",
        ),
        (
            json!({"name": "x", "kind": "email", "email": "nope"}),
            "not an email address",
        ),
        (
            json!({"name": "", "kind": "slack", "url": "http://127.0.0.1:1/"}),
            "name must be 1 to 100",
        ),
        (
            json!({"name": "x", "kind": "pigeon", "url": "http://127.0.0.1:1/"}),
            "invalid JSON body",
        ),
    ] {
        refused(&app, "/api/v1/channels", body, expected).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_category_gets_a_400_that_says_what_to_fix() {
    let app = spawn_app().await;
    refused(
        &app,
        "/api/v1/categories",
        json!({"name": "c", "pattern": "a", "colour": "#123456", "channel_id": 999}),
        "not a channel of this project",
    )
    .await;
    let ch = app
        .create_channel(json!({"name": "d", "kind": "discord", "url": "http://127.0.0.1:1/hook"}))
        .await;
    for (body, expected) in [
        (
            json!({"name": "c", "pattern": "pay[", "colour": "#123456", "channel_id": ch["id"]}),
            "not a valid glob",
        ),
        (
            json!({"name": "c", "pattern": "a", "colour": "green", "channel_id": ch["id"]}),
            "#RRGGBB",
        ),
        (
            json!({"name": "c", "pattern": "", "colour": "#123456", "channel_id": ch["id"]}),
            "must not be empty",
        ),
    ] {
        refused(&app, "/api/v1/categories", body, expected).await;
    }
}

/// A channel in use by a category is not deleted; the category is updated, then both go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_goes_only_after_the_categories_that_use_it() {
    let app = spawn_app().await;
    let ch = app
        .create_channel(json!({"name": "d", "kind": "discord", "url": "http://127.0.0.1:1/hook"}))
        .await;
    let c = app
        .create_category(
            json!({"name": "c", "pattern": "a", "colour": "#123456", "channel_id": ch["id"]}),
        )
        .await;
    let channel = format!("/api/v1/channels/{}", ch["id"]);
    let category = format!("/api/v1/categories/{}", c["id"]);
    let (status, err) = app.api(reqwest::Method::DELETE, &channel, None).await;
    assert_eq!(status, 400);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("used by the categories c"),
        "{err}"
    );
    let edit = json!({"name": "c2", "pattern": "b.*", "colour": 255, "channel_id": ch["id"]});
    let (status, updated) = app.api(reqwest::Method::PUT, &category, Some(edit)).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["colour"], "#0000FF");
    let (_, list) = app.get_json("/api/v1/categories").await;
    assert_eq!(list["categories"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.api(reqwest::Method::DELETE, &category, None).await.0,
        204
    );
    assert_eq!(
        app.api(reqwest::Method::DELETE, &channel, None).await.0,
        204
    );
}

/// Bad filters say what is allowed; a write key cannot manage channels; the API is described.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delivery_api_is_guarded_and_described() {
    let app = spawn_app().await;
    let (status, err) = app.get_json("/api/v1/deliveries?status=lost").await;
    assert_eq!(status, 400);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("pending, delivered, failed, dead")
    );
    let (status, _) = app
        .api_as(
            &app.keys.write_key,
            reqwest::Method::GET,
            "/api/v1/channels",
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (_, doc) = app.get_json("/openapi.json").await;
    for p in [
        "/api/v1/channels",
        "/api/v1/channels/{id}/test",
        "/api/v1/categories/{id}",
        "/api/v1/deliveries",
    ] {
        assert!(
            doc["paths"].get(p).is_some(),
            "{p} missing from /openapi.json"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_targets_are_refused_without_the_operator_flag() {
    let app = spawn_app_with(|c| c.delivery.allow_private_webhooks = false).await;
    let discord = standins::discord().await;
    for url in [
        discord.url.clone(),
        format!("http://localhost:{}/hook", discord.port),
        "http://169.254.169.254/latest".into(),
        "http://[::1]:9/x".into(),
    ] {
        let (status, err) = app
            .api(
                reqwest::Method::POST,
                "/api/v1/channels",
                Some(json!({"name": "x", "kind": "discord", "url": url})),
            )
            .await;
        assert_eq!(status, 400, "{url} → {err}");
        let message = err["message"].as_str().unwrap();
        assert!(
            message.contains("PULSELINE_ALLOW_PRIVATE_WEBHOOKS=true"),
            "{message}"
        );
    }
    // A name that resolved to a public address when the channel was created and to a loopback
    // one now (DNS rebinding) is caught at send time.
    let project = app.keys.project_id;
    app.exec_sql(&format!(
        "INSERT INTO notification_channels (project_id, name, kind, target, created_at, updated_at)
         VALUES ({project}, 'rebound', 'discord', 'http://localhost:{}/hook', 0, 0)",
        discord.port
    ))
    .await;
    let id = app
        .query_i64("SELECT MAX(id) FROM notification_channels")
        .await;
    app.create_category(
        json!({"name": "c", "pattern": "e", "emoji": "", "colour": "#123456", "channel_id": id}),
    )
    .await;
    app.post_batch(vec![event("e", "e-1", json!({}))]).await;
    let dead = app.deliveries_in("dead", 1).await;
    let error = dead[0]["attempt_log"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("refusing to send to localhost") && error.contains("loopback"),
        "{error}"
    );
    let (_, result) = app
        .api(
            reqwest::Method::POST,
            &format!("/api/v1/channels/{id}/test"),
            None,
        )
        .await;
    assert_eq!(result["delivered"], false);
    assert!(
        result["error"]
            .as_str()
            .unwrap()
            .contains("PULSELINE_ALLOW_PRIVATE_WEBHOOKS")
    );
    assert!(
        discord.receiver.hits().is_empty(),
        "nothing reached the private address"
    );
}

/// Every form that leads back to loopback or a private network, spelled the ways a blocklist
/// misses: IPv4 inside IPv6 (NAT64, 6to4, compatible, translated) and the special-purpose ranges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_global_addresses_in_every_spelling_are_refused() {
    let app = spawn_app_with(|c| c.delivery.allow_private_webhooks = false).await;
    for (host, why) in [
        ("[64:ff9b::7f00:1]", "loopback"),
        ("[64:ff9b::a00:1]", "private"),
        ("[2002:7f00:1::]", "loopback"),
        ("[2002:a9fe:a9fe::]", "link-local"),
        ("[::127.0.0.1]", "loopback"),
        ("[::ffff:127.0.0.1]", "loopback"),
        ("[::ffff:0:7f00:1]", "loopback"),
        ("[fec0::1]", "site-local"),
        ("[100::1]", "discard"),
        ("198.18.0.1", "benchmarking"),
        ("192.0.0.8", "IETF"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "broadcast"),
    ] {
        let url = format!("http://{host}:9/hook");
        let (status, err) = app
            .api(
                reqwest::Method::POST,
                "/api/v1/channels",
                Some(json!({"name": "x", "kind": "webhook", "url": url})),
            )
            .await;
        assert_eq!(status, 400, "{url} → {err}");
        let message = err["message"].as_str().unwrap();
        assert!(
            message.contains(why) && message.contains("PULSELINE_ALLOW_PRIVATE_WEBHOOKS=true"),
            "{url}: {message}"
        );
    }
}
