//! Discord notifications: the rendered embed, sent once and quickly; oversize properties
//! truncated; attacker text that cannot ping or disguise links.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_category_event_reaches_discord_once_with_its_rendered_embed() {
    let app = spawn_app().await;
    let discord = standins::discord().await;
    // Stored before any category exists: resending it later must not notify.
    let early = event("payment.succeeded", "pay-0", json!({"amount": 1}));
    app.post_batch(vec![early.clone()]).await;
    let channel = app
        .create_channel(json!({"name": "payments", "kind": "discord", "url": discord.url}))
        .await;
    app.create_category(
        json!({"name": "Payments", "pattern": "payment.*", "emoji": "💰",
        "colour": "#2ECC71", "channel_id": channel["id"]}),
    )
    .await;
    app.create_category(json!({"name": "Big payments", "pattern": "payment.succeeded", "emoji": "🐳",
        "colour": 0xFF_0000, "channel_id": channel["id"],
        "title_template": "{user} paid {amount} {currency}", "description_template": "Plan: {plan.tier}"})).await;

    let sent = Instant::now();
    let payment = event(
        "payment.succeeded",
        "pay-1",
        json!({"amount": 42.5, "currency": "EUR", "plan": {"tier": "pro"}, "note": ""}),
    );
    app.post_batch(vec![payment.clone(), event("signup", "s-1", json!({}))])
        .await;
    // The SDK resends the same batch (its response was lost): no second notification.
    app.post_batch(vec![payment, early]).await;

    let got = discord.receiver.wait_for_embeds(2, WAIT).await;
    let latency = sent.elapsed();
    let mut titles: Vec<&str> = got.iter().map(|e| e["title"].as_str().unwrap()).collect();
    titles.sort();
    assert_eq!(titles, ["user-42 paid 42.5 EUR", "💰 payment.succeeded"]);
    let plain = got
        .iter()
        .find(|e| e["title"] == "💰 payment.succeeded")
        .unwrap();
    let embed = plain;
    assert_eq!(embed["color"], 0x2E_CC71);
    assert_eq!(embed["author"]["name"], "user-42");
    assert_eq!(embed["timestamp"], "2026-11-22T10:00:00.000Z");
    assert_eq!(embed["footer"]["text"], "Pulseline · Payments");
    let fields = embed["fields"].as_array().unwrap();
    assert!(
        fields.contains(&json!({"name": "amount", "value": "42.5", "inline": true})),
        "{fields:?}"
    );
    assert!(fields.contains(&json!({"name": "currency", "value": "EUR", "inline": true})));
    assert!(
        fields
            .iter()
            .all(|f| !f["value"].as_str().unwrap().is_empty()),
        "empty values are filled: {fields:?}"
    );
    let templated = got
        .iter()
        .find(|e| e["title"] == "user-42 paid 42.5 EUR")
        .unwrap();
    assert_eq!(templated["description"], "Plan: pro");
    assert_eq!(templated["color"], 0xFF_0000);
    assert!(
        latency < Duration::from_secs(2),
        "notification took {latency:?}"
    );

    let delivered = app.deliveries_in("delivered", 2).await;
    assert_eq!(delivered.len(), 2);
    for d in &delivered {
        assert_eq!(d["attempts"], 1);
        assert_eq!(d["attempt_log"][0]["status_code"], 204);
        assert_eq!(d["attempt_log"][0]["outcome"], "success");
    }
    // Nothing else arrives: wait past a poll interval and count again.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(discord.receiver.embeds().len(), 2);
    assert_eq!(app.all_deliveries().await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_leave_within_a_second_of_ingest() {
    // Ten notifications to one webhook in a row: lift the per-URL pace so it measures latency.
    let app = spawn_app_with(|c| c.delivery.pace_burst = 100).await;
    let discord = standins::discord().await;
    let channel = app
        .create_channel(json!({"name": "n", "kind": "discord", "url": discord.url}))
        .await;
    app.create_category(json!({"name": "Signups", "pattern": "signup", "emoji": "🎉", "colour": "#5865F2", "channel_id": channel["id"]})).await;
    let mut latencies = Vec::new();
    for i in 0..10 {
        let started = Instant::now();
        app.post_batch(vec![event("signup", &format!("s-{i}"), json!({"i": i}))])
            .await;
        discord.receiver.wait_for(i + 1, WAIT).await;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    println!(
        "ingest → Discord latency: p50 {p50:?}, max {:?}",
        latencies.last().unwrap()
    );
    assert!(p50 < Duration::from_secs(1), "p50 {p50:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_properties_are_truncated_not_rejected() {
    let app = spawn_app().await;
    let discord = standins::discord().await;
    let channel = app
        .create_channel(json!({"name": "n", "kind": "discord", "url": discord.url}))
        .await;
    app.create_category(json!({"name": "Huge", "pattern": "huge", "emoji": "🐘", "colour": "#000000",
        "channel_id": channel["id"], "title_template": "{long}", "description_template": "{long}{long}{long}"})).await;
    let mut properties = serde_json::Map::new();
    properties.insert("long".into(), json!("x".repeat(1_500)));
    // Within ingest's 32 KB message limit, but far over Discord's: 30 fields (25 max), names
    // over 256, values over 1,024, a title over 256, a description over 4,096, 6,000 in total.
    for i in 0..10 {
        properties.insert(format!("short{i}"), json!(i));
    }
    for i in 0..20 {
        properties.insert(format!("{i}-{}", "k".repeat(270)), json!("v".repeat(1_100)));
    }
    app.post_batch(vec![event("huge", "h-1", Value::Object(properties))])
        .await;
    let got = discord.receiver.wait_for(1, WAIT).await;
    let embed = &got[0]["embeds"][0];
    assert_eq!(embed["title"].as_str().unwrap().chars().count(), 256);
    assert!(embed["title"].as_str().unwrap().ends_with('…'));
    let fields = embed["fields"].as_array().unwrap();
    assert!(!fields.is_empty() && fields.len() <= 25, "{}", fields.len());
    let cut = fields
        .iter()
        .find(|f| f["value"].as_str().unwrap().chars().count() == 1_024)
        .expect("a long value cut to 1,024");
    assert!(cut["value"].as_str().unwrap().ends_with('…'));
    assert!(
        fields
            .iter()
            .any(|f| f["name"].as_str().unwrap().ends_with('…')),
        "long names are cut"
    );
    assert!(embed["description"].as_str().unwrap().ends_with('…'));
    assert!(
        discord.receiver.rejected().is_empty(),
        "{:?}",
        discord.receiver.rejected()
    );
    // The stand-in enforces every limit, so acceptance proves them; check the total anyway.
    standins::discord_limits(&got[0]).unwrap();
}

/// Whoever holds the public write key cannot make a notification ping a channel or carry a
/// disguised link: Slack and Discord (the stand-ins reject what would render so) show the text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacker_text_cannot_ping_or_disguise_links() {
    let app = spawn_app().await;
    let discord = standins::discord().await;
    let slack = standins::slack().await;
    for (name, kind, url) in [("d", "discord", &discord.url), ("s", "slack", &slack.url)] {
        let channel = app
            .create_channel(json!({"name": name, "kind": kind, "url": url}))
            .await;
        app.create_category(
            json!({"name": name, "pattern": "payment.failed", "emoji": "",
            "colour": "#123456", "channel_id": channel["id"], "description_template": "{note}"}),
        )
        .await;
    }
    let phish = "<!channel> <https://evil.example|Payment failed — re-enter card> \\[Update card](https://evil.example) & more";
    let mut e = event(
        "payment.failed",
        "p-1",
        json!({"note": phish, "[Billing](https://evil.example)": "[Re-enter card](https://evil.example)"}),
    );
    e["userId"] = json!("<!everyone>");
    app.post_batch(vec![e]).await;

    let d = &discord.receiver.wait_for(1, WAIT).await[0];
    assert!(discord.receiver.rejected().is_empty());
    assert_eq!(d["allowed_mentions"], json!({"parse": []}));
    let description = d["embeds"][0]["description"].as_str().unwrap();
    assert!(
        description.contains("Update card](https://evil.example)"),
        "{description}"
    );
    let s = &slack.receiver.wait_for(1, WAIT).await[0];
    assert!(slack.receiver.rejected().is_empty());
    let section = s["blocks"][1]["text"]["text"].as_str().unwrap();
    assert!(
        section.starts_with("&lt;!channel&gt; &lt;https://evil.example|Payment failed")
            && section.ends_with("&amp; more"),
        "{section}"
    );
    assert!(
        s["text"]
            .as_str()
            .unwrap()
            .contains("User: &lt;!everyone&gt;"),
        "{s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_category_needs_no_colour_or_emoji() {
    let app = spawn_app().await;
    let ch = app
        .create_channel(json!({"name": "d", "kind": "discord", "url": "http://127.0.0.1:1/hook"}))
        .await;
    let c = app
        .create_category(json!({"name": "c", "pattern": "signup", "channel_id": ch["id"]}))
        .await;
    assert_eq!(c["colour"], "#5865F2");
    assert_eq!(c["emoji"], "");
}
