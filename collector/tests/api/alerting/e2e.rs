//! Rules and delivery together, the way a team meets them: events in over HTTP, a threshold
//! rule evaluated at (fake) times, and the Discord stand-in receiving exactly one message when
//! the rule fires and exactly one when it resolves — nothing for the passes in between.

use crate::helpers;
use crate::helpers::standins;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, TimeZone, Utc};
use pulseline_collector::alerting::rules::run_once;
use pulseline_collector::clock::FakeClock;
use serde_json::{Value, json};

const WAIT: StdDuration = StdDuration::from_secs(15);

fn hour(h: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap() + Duration::hours(h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_fires_once_and_resolves_once_on_discord() {
    let clock = Arc::new(FakeClock::new(hour(0)));
    let app = helpers::spawn_app_with_clock(|_| {}, clock.clone()).await;
    let store = app.store().await;
    let discord = standins::discord().await;
    let secret = app.keys.secret_key.clone();
    let post = |path: &str, body: Value| {
        app.http
            .post(app.url(path))
            .bearer_auth(&secret)
            .json(&body)
            .send()
    };

    let resp = post(
        "/api/v1/channels",
        json!({"name": "alerts", "kind": "discord", "url": discord.url}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 201);
    let channel: Value = resp.json().await.unwrap();
    let resp = post(
        "/api/v1/rules",
        json!({
            "name": "Checkout errors", "channel_ids": [channel["id"]],
            "series": {"event": "checkout.failed", "bucket": "hour"},
            "condition": {"type": "threshold", "op": ">", "value": 5},
            "for_secs": 0
        }),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());

    // Failures per hour: 2, 9 (breach), 9 (still), 1 (recovered), 1.
    let mut batch = Vec::new();
    for (h, n) in [(0, 2), (1, 9), (2, 9), (3, 1), (4, 1)] {
        for i in 0..n {
            batch.push(json!({
                "type": "track", "userId": format!("user-{i}"), "event": "checkout.failed",
                "messageId": format!("h{h}-{i}"),
                "timestamp": (hour(h) + Duration::minutes(5 * i)).to_rfc3339(),
                "properties": {"country": "DE"}
            }));
        }
    }
    let resp = app.post("/v1/batch", &json!({ "batch": batch })).await;
    assert_eq!(resp.status(), 200);

    let pass = |h: i64| {
        let now = hour(h) + Duration::seconds(20);
        clock.set(now);
        let store = store.clone();
        async move { run_once(&store, now, "e2e").await.unwrap() }
    };
    pass(1).await; // hour 0: 2, fine
    pass(2).await; // hour 1: 9 > 5, fires
    let fired = discord.receiver.wait_for(1, WAIT).await;
    let embed = &fired[0]["embeds"][0];
    assert!(
        embed["title"].as_str().unwrap().contains("Checkout errors"),
        "{embed}"
    );
    pass(3).await; // still breaching: nothing new
    pass(4).await; // hour 3: 1, resolves
    let both = discord.receiver.wait_for(2, WAIT).await;
    let resolved = &both[1]["embeds"][0];
    assert!(
        resolved.to_string().to_lowercase().contains("resolved"),
        "{resolved}"
    );
    pass(5).await; // still fine: nothing new
    tokio::time::sleep(StdDuration::from_millis(1_500)).await;
    assert_eq!(
        discord.receiver.accepted().len(),
        2,
        "one firing, one resolved"
    );
    assert_eq!(discord.receiver.rejected().len(), 0);
}

/// A category's message shows numbers with the digits they were sent with (`1.10`, a 128-bit
/// id), in templates and fields alike, not a float's rendering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn category_messages_show_numbers_as_sent() {
    let app = helpers::spawn_app().await;
    let discord = standins::discord().await;
    let secret = app.keys.secret_key.clone();
    let post = |path: &str, body: Value| {
        app.http
            .post(app.url(path))
            .bearer_auth(&secret)
            .json(&body)
            .send()
    };
    let resp = post(
        "/api/v1/channels",
        json!({"name": "payments", "kind": "discord", "url": discord.url}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 201);
    let channel: Value = resp.json().await.unwrap();
    let resp = post(
        "/api/v1/categories",
        json!({"name": "Payments", "pattern": "payment", "emoji": "💰", "colour": 0,
               "channel_id": channel["id"], "title_template": "{user} paid {amount}",
               "description_template": "order {order.id}"}),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());

    let resp = app
        .http
        .post(app.url("/v1/track"))
        .basic_auth(&app.keys.write_key, Some(""))
        .header("content-type", "application/json")
        .body(
            r#"{"userId":"u","event":"payment","properties":{"amount":1.10,
                "order":{"id":340282366920938463463374607431768211455}}}"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let got = discord.receiver.wait_for(1, WAIT).await;
    let embed = &got[0]["embeds"][0];
    assert_eq!(embed["title"], "u paid 1.10");
    assert_eq!(
        embed["description"],
        "order 340282366920938463463374607431768211455"
    );
    let fields = embed["fields"].as_array().unwrap();
    assert!(
        fields.contains(&json!({"name": "amount", "value": "1.10", "inline": true})),
        "{fields:?}"
    );
}
