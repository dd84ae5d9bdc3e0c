//! Limiters hold bounded state: they forget clients, keys and URLs they no longer limit.

use super::*;

#[tokio::test]
async fn an_overlong_email_is_refused_before_it_costs_a_limiter_key() {
    let app = spawn(|_| {}, Arc::new(SystemClock)).await;
    let huge = format!("{}@example.com", "a".repeat(100_000));
    let (status, body) = app.login_body(&huge, "wrong password", None).await;
    assert_eq!(status, 400, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("254"), "{message}");
    assert!(message.len() < 300, "the address is not echoed back");
    assert_eq!(app.limiter_keys("login").await, 0);
}

#[tokio::test]
async fn the_login_limiter_forgets_clients_once_their_limit_has_refilled() {
    let clock = Arc::new(FakeClock::new(Utc::now()));
    let app = spawn(
        |c| {
            trusting_loopback(c);
            c.dashboard.login_attempts_per_minute = 2;
        },
        clock.clone(),
    )
    .await;
    // Each attempt from a new address leaves one key per address (the e-mail's is shared).
    for n in 0..30 {
        let ip = format!("203.0.113.{n}");
        let status = app
            .login("victim@example.com", "wrong password", Some((XFF, &ip)))
            .await;
        assert!(matches!(status.as_u16(), 401 | 429), "{status}");
    }
    assert_eq!(app.limiter_keys("login").await, 31);

    clock.advance(chrono::Duration::minutes(2));
    let status = app
        .login(
            &app.admin_email,
            &app.admin_password,
            Some((XFF, "192.0.2.1")),
        )
        .await;
    assert_eq!(status, 200);
    // The first check after a refill time prunes: only this login's two keys remain.
    assert_eq!(app.limiter_keys("login").await, 2);
    // The fake clock drives the limit itself too: the e-mail's allowance is back.
    assert_eq!(
        app.login(
            "victim@example.com",
            "wrong password",
            Some((XFF, "192.0.2.2"))
        )
        .await,
        401
    );
}

#[tokio::test]
async fn the_ingest_limiter_forgets_idle_write_keys() {
    let clock = Arc::new(FakeClock::new(Utc::now()));
    let app = spawn(
        |c| {
            c.rate_limit_events_per_sec = 1_000;
            c.rate_limit_burst = 2_500;
        },
        clock.clone(),
    )
    .await;
    let store = pulseline_collector::store::Store::open(&app.database_url, Default::default())
        .await
        .unwrap();
    let mut keys = Vec::new();
    for n in 0..5 {
        let p = pulseline_collector::projects::create_project(
            &store,
            &format!("p{n}"),
            "unlimited",
            clock.now(),
        )
        .await
        .unwrap();
        keys.push(p.write_key);
    }
    let send = |key: String| {
        let app = &app;
        async move {
            let resp = app
                .http
                .post(app.url("/v1/batch"))
                .basic_auth(key, Some(""))
                .json(
                    &json!({"batch": [helpers::track("u", "e", &uuid::Uuid::now_v7().to_string())]}),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
        }
    };
    for key in &keys {
        send(key.clone()).await;
    }
    assert_eq!(app.limiter_keys("ingest").await, 5);
    clock.advance(chrono::Duration::seconds(10));
    send(keys[0].clone()).await;
    assert_eq!(app.limiter_keys("ingest").await, 1);
}

#[tokio::test]
async fn webhook_pacing_forgets_urls_it_no_longer_paces() {
    let slack = standins::slack().await;
    // One request per millisecond per URL: a URL used once is fresh again almost at once.
    let app = spawn(
        |c| {
            c.delivery.pace_burst = 1;
            c.delivery.pace_period_ms = 1;
        },
        Arc::new(SystemClock),
    )
    .await;
    let call = |method: reqwest::Method, path: String, body: Option<Value>| {
        let app = &app;
        async move {
            let mut req = app
                .http
                .request(method, app.url(&path))
                .bearer_auth(&app.secret_key);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // Channels whose URL changes (a query string per channel): each URL is a pacing key.
    for n in 0..12 {
        let (status, channel) = call(
            reqwest::Method::POST,
            "/api/v1/channels".into(),
            Some(json!({"name": format!("s{n}"), "kind": "slack",
                        "url": format!("{}?n={n}", slack.url)})),
        )
        .await;
        assert_eq!(status, 201, "{channel}");
        let (status, result) = call(
            reqwest::Method::POST,
            format!("/api/v1/channels/{}/test", channel["id"]),
            None,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(result["delivered"], true, "{result}");
    }
    let held = app.limiter_keys("webhook_pace").await;
    assert!(
        held <= 2,
        "{held} URLs still held after 12 sends to distinct URLs"
    );
}
