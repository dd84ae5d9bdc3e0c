//! What targets answer: 429s honoured and clamped, 5xx retried with backoff, a 404 that
//! disables the channel, only an excerpt of the response read, and the pace per webhook.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_429_is_honoured_and_every_attempt_recorded() {
    let app = spawn_app().await;
    let discord = standins::discord().await;
    discord.receiver.script(Scripted::RateLimited(0.6));
    let channel = app
        .create_channel(json!({"name": "n", "kind": "discord", "url": discord.url}))
        .await;
    app.create_category(json!({"name": "Orders", "pattern": "order", "emoji": "📦", "colour": "#123456", "channel_id": channel["id"]})).await;
    app.post_batch(vec![event("order", "o-1", json!({"n": 1}))])
        .await;
    discord.receiver.wait_for(1, WAIT).await;
    let hits = discord.receiver.hits();
    assert_eq!(hits.len(), 2, "one 429, then the delivery");
    let waited = hits[1] - hits[0];
    assert!(
        waited >= Duration::from_millis(600),
        "retried after {waited:?}, before retry_after"
    );
    let d = &app.deliveries_in("delivered", 1).await[0];
    assert_eq!(d["attempts"], 2);
    assert_eq!(d["attempt_log"][0]["status_code"], 429);
    assert!(
        d["attempt_log"][0]["response_excerpt"]
            .as_str()
            .unwrap()
            .contains("retry_after")
    );
    assert_eq!(d["attempt_log"][1]["status_code"], 204);
}

/// A target answering 429 with absurd waits (1e300 seconds) gets one recorded attempt and a
/// retry at most a day away; the worker keeps delivering to other channels meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_rate_limit_answers_are_clamped_not_fatal() {
    let app = spawn_app().await;
    let hostile = standins::webhook().await;
    let discord = standins::discord().await;
    hostile.receiver.script(Scripted::Raw(
        429,
        vec![
            ("retry-after", "1".repeat(400)),
            ("x-ratelimit-remaining", "0".into()),
            ("x-ratelimit-reset-after", "1e300".into()),
            ("content-type", "application/json".into()),
        ],
        r#"{"retry_after": 1e300}"#.into(),
    ));
    let bad = app
        .create_channel(json!({"name": "hostile", "kind": "webhook", "url": hostile.url}))
        .await;
    let good = app
        .create_channel(json!({"name": "fine", "kind": "discord", "url": discord.url}))
        .await;
    app.create_category(json!({"name": "a", "pattern": "a", "emoji": "", "colour": "#123456", "channel_id": bad["id"]})).await;
    app.create_category(json!({"name": "b", "pattern": "b", "emoji": "", "colour": "#123456", "channel_id": good["id"]})).await;
    let before = chrono::Utc::now();
    app.post_batch(vec![event("a", "a-1", json!({}))]).await;
    hostile.receiver.wait_for_hits(1, WAIT).await;
    let d = loop {
        let list = app.all_deliveries().await;
        let d = list.iter().find(|d| d["channel_id"] == bad["id"]).cloned();
        if let Some(d) = d.filter(|d| d["attempts"] == 1) {
            break d;
        }
        assert!(
            chrono::Utc::now() < before + chrono::Duration::seconds(15),
            "no attempt recorded: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(d["status"], "failed", "a retry is scheduled: {d}");
    assert_eq!(d["attempt_log"][0]["status_code"], 429);
    let next: chrono::DateTime<chrono::Utc> =
        d["next_attempt_at"].as_str().unwrap().parse().unwrap();
    assert!(
        next > before + chrono::Duration::hours(23) && next < before + chrono::Duration::hours(25),
        "retry at most a day away, got {next}"
    );
    // The same worker still delivers.
    app.post_batch(vec![event("b", "b-1", json!({}))]).await;
    discord.receiver.wait_for(1, WAIT).await;
    assert_eq!(
        hostile.receiver.hits().len(),
        1,
        "no resend of the rate-limited one"
    );
}

/// A target answering with an endless body: the attempt keeps the first 512 bytes and ends at
/// once instead of reading until the request timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_kept_excerpt_of_a_response_is_read() {
    let app = spawn_app_with(|c| c.delivery.timeout_ms = 5_000).await;
    let target = standins::discord().await;
    target.receiver.script(Scripted::Endless);
    let channel = app
        .create_channel(json!({"name": "n", "kind": "discord", "url": target.url}))
        .await;
    app.create_category(json!({"name": "e", "pattern": "e", "emoji": "", "colour": "#123456", "channel_id": channel["id"]})).await;
    app.post_batch(vec![event("e", "e-1", json!({}))]).await;
    let d = &app.deliveries_in("delivered", 1).await[0];
    let attempt = &d["attempt_log"][0];
    let excerpt = attempt["response_excerpt"].as_str().unwrap();
    assert_eq!(excerpt, format!("{}…", "x".repeat(512)), "{attempt}");
    assert!(
        attempt["latency_ms"].as_i64().unwrap() < 4_000,
        "read until the timeout: {attempt}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_with_backoff() {
    let app = spawn_app_with(|c| c.delivery.retry_min_ms = 200).await;
    let discord = standins::discord().await;
    discord
        .receiver
        .script(Scripted::Status(502, "bad gateway".into()));
    discord
        .receiver
        .script(Scripted::Status(500, "oops".into()));
    let channel = app
        .create_channel(json!({"name": "n", "kind": "discord", "url": discord.url}))
        .await;
    app.create_category(json!({"name": "e", "pattern": "e", "emoji": "", "colour": "#123456", "channel_id": channel["id"]})).await;
    app.post_batch(vec![event("e", "e-1", json!({}))]).await;
    discord.receiver.wait_for(1, WAIT).await;
    let d = &app.deliveries_in("delivered", 1).await[0];
    let codes: Vec<&Value> = d["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status_code"])
        .collect();
    assert_eq!(codes, [&json!(502), &json!(500), &json!(204)]);
    let hits = discord.receiver.hits();
    assert!(
        hits[2] - hits[1] >= hits[1] - hits[0] - Duration::from_millis(150),
        "backoff grows: {hits:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_answering_404_disables_its_channel_with_a_reason() {
    let app = spawn_app().await;
    let discord = standins::discord().await;
    discord.receiver.script(Scripted::Status(
        404,
        r#"{"message": "Unknown Webhook", "code": 10015}"#.into(),
    ));
    let channel = app
        .create_channel(json!({"name": "gone", "kind": "discord", "url": discord.url}))
        .await;
    app.create_category(json!({"name": "e", "pattern": "e", "emoji": "", "colour": "#123456", "channel_id": channel["id"]})).await;
    app.post_batch(vec![event("e", "e-1", json!({}))]).await;
    let dead = app.deliveries_in("dead", 1).await;
    assert_eq!(dead[0]["attempt_log"][0]["status_code"], 404);
    let (_, ch) = app
        .get_json(&format!("/api/v1/channels/{}", channel["id"]))
        .await;
    assert_eq!(ch["enabled"], false, "{ch}");
    let reason = ch["disabled_reason"].as_str().unwrap();
    assert!(
        reason.contains("404")
            && reason.contains("Unknown Webhook")
            && reason.contains("re-enable"),
        "{reason}"
    );
    let (_, list) = app.get_json("/api/v1/channels").await;
    assert_eq!(list["channels"][0]["disabled_reason"], reason);

    // Later events are not sent to a disabled channel; they are recorded as refused.
    app.post_batch(vec![event("e", "e-2", json!({}))]).await;
    let dead = app.deliveries_in("dead", 2).await;
    assert!(
        dead[0]["last_error"].as_str().unwrap().contains("disabled"),
        "{}",
        dead[0]
    );
    assert_eq!(discord.receiver.hits().len(), 1);

    // Re-enabled, it delivers again.
    let (status, ch) = app
        .api(
            reqwest::Method::PATCH,
            &format!("/api/v1/channels/{}", channel["id"]),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, 200, "{ch}");
    assert_eq!(ch["enabled"], true);
    app.post_batch(vec![event("e", "e-3", json!({}))]).await;
    discord.receiver.wait_for(1, WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_headers_and_the_per_webhook_pace_space_out_sends() {
    let app = spawn_app_with(|c| {
        c.delivery.pace_burst = 2;
        c.delivery.pace_period_ms = 300;
    })
    .await;
    // Generic webhooks: one request per notification (Discord and Slack would pack these).
    let (paced, exhausted) = (standins::webhook().await, standins::webhook().await);
    exhausted.receiver.script(Scripted::Exhausted(0.8));
    let a = app
        .create_channel(json!({"name": "a", "kind": "webhook", "url": paced.url}))
        .await;
    let b = app
        .create_channel(json!({"name": "b", "kind": "webhook", "url": exhausted.url}))
        .await;
    for (hook, channel) in [(&paced, &a), (&exhausted, &b)] {
        *hook.receiver.0.secret.lock().unwrap() =
            Some(channel["signing_secret"].as_str().unwrap().to_owned());
    }
    app.create_category(json!({"name": "a", "pattern": "a", "emoji": "", "colour": "#123456", "channel_id": a["id"]})).await;
    app.create_category(json!({"name": "b", "pattern": "b", "emoji": "", "colour": "#123456", "channel_id": b["id"]})).await;
    let batch: Vec<Value> = (0..4)
        .flat_map(|i| {
            [
                event("a", &format!("a-{i}"), json!({})),
                event("b", &format!("b-{i}"), json!({})),
            ]
        })
        .collect();
    app.post_batch(batch).await;
    paced.receiver.wait_for(4, WAIT).await;
    exhausted.receiver.wait_for(4, WAIT).await;
    // Burst of 2, then one per 300 ms: the 4th is at least ~600 ms after the 1st.
    let hits = paced.receiver.hits();
    assert_eq!(hits.len(), 4, "paced, not refused: nothing was sent twice");
    assert!(
        hits[3] - hits[0] >= Duration::from_millis(550),
        "{:?}",
        hits[3] - hits[0]
    );
    // After `X-RateLimit-Remaining: 0`, nothing goes to that webhook until the reset.
    let hits = exhausted.receiver.hits();
    assert!(
        hits[1] - hits[0] >= Duration::from_millis(800),
        "{:?}",
        hits[1] - hits[0]
    );
    for d in app.deliveries_in("delivered", 8).await {
        assert_eq!(d["attempts"], 1, "pacing is not a failed attempt: {d}");
    }
    let (_, metrics) = (
        200,
        app.http
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert!(
        metrics.contains("pulseline_delivery_attempts_total"),
        "{metrics}"
    );
    assert!(metrics.contains("pulseline_deliveries_enqueued_total"));
}
