//! Delivery end to end: events through real HTTP ingest become notifications on local
//! stand-ins for Discord, Slack, a signed webhook receiver and an SMTP server, exactly once.

use crate::helpers;
mod packing;
use crate::helpers::standins;
mod tenancy;

use std::time::{Duration, Instant};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use standins::Scripted;

const WAIT: Duration = Duration::from_secs(15);

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app
        .http
        .request(method, app.url(path))
        .bearer_auth(&app.keys.secret_key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn create_channel(app: &TestApp, body: Value) -> Value {
    let (status, channel) = send(app, reqwest::Method::POST, "/api/v1/channels", Some(body)).await;
    assert_eq!(status, 201, "{channel}");
    channel
}

async fn create_category(app: &TestApp, body: Value) -> Value {
    let (status, category) =
        send(app, reqwest::Method::POST, "/api/v1/categories", Some(body)).await;
    assert_eq!(status, 201, "{category}");
    category
}

fn event(name: &str, id: &str, properties: Value) -> Value {
    json!({"type": "track", "userId": "user-42", "event": name, "messageId": id,
           "timestamp": "2026-11-22T10:00:00.000Z", "properties": properties})
}

async fn ingest(app: &TestApp, batch: Vec<Value>) {
    let resp = app.post("/v1/batch", &json!({"batch": batch})).await;
    assert_eq!(resp.status(), 200);
}

/// Waits until the deliveries API shows `n` deliveries in `status`.
async fn deliveries_in(app: &TestApp, status: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let (code, body) = app
            .get_json(&format!("/api/v1/deliveries?status={status}"))
            .await;
        assert_eq!(code, 200, "{body}");
        let list = body["deliveries"].as_array().cloned().unwrap_or_default();
        if list.len() >= n {
            return list;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} {status} deliveries, have {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The header of each notification Slack accepted (one header block per notification, however
/// they were packed), waiting until there are at least `n`.
async fn slack_headers(slack: &standins::StandIn, n: usize) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let headers: Vec<String> = slack
            .receiver
            .accepted()
            .iter()
            .flat_map(|m| m["blocks"].as_array().cloned().unwrap_or_default())
            .filter(|b| b["type"] == "header")
            .map(|b| b["text"]["text"].as_str().unwrap_or_default().to_owned())
            .collect();
        if headers.len() >= n {
            return headers;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} Slack notifications: {headers:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn all_deliveries(app: &TestApp) -> Vec<Value> {
    let (_, body) = app.get_json("/api/v1/deliveries?limit=500").await;
    body["deliveries"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_category_event_reaches_discord_once_with_its_rendered_embed() {
    let app = spawn_app().await;
    let discord = standins::discord().await;
    // Stored before any category exists: resending it later must not notify.
    let early = event("payment.succeeded", "pay-0", json!({"amount": 1}));
    ingest(&app, vec![early.clone()]).await;
    let channel = create_channel(
        &app,
        json!({"name": "payments", "kind": "discord", "url": discord.url}),
    )
    .await;
    create_category(
        &app,
        json!({"name": "Payments", "pattern": "payment.*", "emoji": "💰",
        "colour": "#2ECC71", "channel_id": channel["id"]}),
    )
    .await;
    create_category(&app, json!({"name": "Big payments", "pattern": "payment.succeeded", "emoji": "🐳",
        "colour": 0xFF_0000, "channel_id": channel["id"],
        "title_template": "{user} paid {amount} {currency}", "description_template": "Plan: {plan.tier}"})).await;

    let sent = Instant::now();
    let payment = event(
        "payment.succeeded",
        "pay-1",
        json!({"amount": 42.5, "currency": "EUR", "plan": {"tier": "pro"}, "note": ""}),
    );
    ingest(
        &app,
        vec![payment.clone(), event("signup", "s-1", json!({}))],
    )
    .await;
    // The SDK resends the same batch (its response was lost): no second notification.
    ingest(&app, vec![payment, early]).await;

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

    let delivered = deliveries_in(&app, "delivered", 2).await;
    assert_eq!(delivered.len(), 2);
    for d in &delivered {
        assert_eq!(d["attempts"], 1);
        assert_eq!(d["attempt_log"][0]["status_code"], 204);
        assert_eq!(d["attempt_log"][0]["outcome"], "success");
    }
    // Nothing else arrives: wait past a poll interval and count again.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(discord.receiver.embeds().len(), 2);
    assert_eq!(all_deliveries(&app).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_leave_within_a_second_of_ingest() {
    // Ten notifications to one webhook in a row: lift the per-URL pace so it measures latency.
    let app = spawn_app_with(|c| c.delivery.pace_burst = 100).await;
    let discord = standins::discord().await;
    let channel = create_channel(
        &app,
        json!({"name": "n", "kind": "discord", "url": discord.url}),
    )
    .await;
    create_category(&app, json!({"name": "Signups", "pattern": "signup", "emoji": "🎉", "colour": "#5865F2", "channel_id": channel["id"]})).await;
    let mut latencies = Vec::new();
    for i in 0..10 {
        let started = Instant::now();
        ingest(
            &app,
            vec![event("signup", &format!("s-{i}"), json!({"i": i}))],
        )
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
    let channel = create_channel(
        &app,
        json!({"name": "n", "kind": "discord", "url": discord.url}),
    )
    .await;
    create_category(&app, json!({"name": "Huge", "pattern": "huge", "emoji": "🐘", "colour": "#000000",
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
    ingest(&app, vec![event("huge", "h-1", Value::Object(properties))]).await;
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
        let channel = create_channel(&app, json!({"name": name, "kind": kind, "url": url})).await;
        create_category(
            &app,
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
    ingest(&app, vec![e]).await;

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

/// A category sends at most PULSELINE_CATEGORY_MAX_PER_MINUTE messages a minute, however many
/// events the public write key sends; after the minute, one "and N more" message, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooded_category_sends_its_cap_then_one_summary() {
    use pulseline_collector::clock::FakeClock;
    let start: chrono::DateTime<chrono::Utc> = "2026-11-22T10:00:10Z".parse().unwrap();
    let clock = std::sync::Arc::new(FakeClock::new(start));
    let app = helpers::spawn_app_with_clock(
        |c| {
            c.delivery.category_max_per_minute = 3;
            // Pacing reschedules on the app's clock, which this test holds still.
            c.delivery.pace_burst = 100;
        },
        clock.clone(),
    )
    .await;
    let discord = standins::discord().await;
    let channel = create_channel(
        &app,
        json!({"name": "n", "kind": "discord", "url": discord.url}),
    )
    .await;
    create_category(
        &app,
        json!({"name": "Signups", "pattern": "signup", "emoji": "🎉",
        "colour": "#123456", "channel_id": channel["id"]}),
    )
    .await;
    let flood = |from: usize, n: usize| {
        (from..from + n)
            .map(|i| event("signup", &format!("s-{i}"), json!({"i": i})))
            .collect::<Vec<_>>()
    };
    ingest(&app, flood(0, 10)).await;
    ingest(&app, flood(10, 1_240)).await;
    // The outbox rows are written in the ingest commit: 3 of 1,250.
    assert_eq!(app.query_i64("SELECT COUNT(*) FROM deliveries").await, 3);
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let capped: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("pulseline_notifications_capped_total "))
        .unwrap_or_else(|| panic!("no capped counter: {metrics}"))
        .parse()
        .unwrap();
    // The registry is shared by the tests of this process: at least this test's 1,247.
    assert!(capped >= 1_247.0, "{capped}");
    discord.receiver.wait_for_embeds(3, WAIT).await;

    // The next minute: a new allowance, and the summary of the last one.
    clock.advance(chrono::Duration::seconds(60));
    ingest(&app, flood(2_000, 2)).await;
    let deadline = Instant::now() + WAIT;
    while discord.receiver.embeds().len() < 6 {
        assert!(
            Instant::now() < deadline,
            "{:#?}",
            all_deliveries(&app).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = discord.receiver.embeds();
    let titles: Vec<&str> = got.iter().map(|e| e["title"].as_str().unwrap()).collect();
    let summaries: Vec<&&str> = titles.iter().filter(|t| t.contains("more")).collect();
    assert_eq!(summaries, [&"🎉 Signups: and 1,247 more"], "{titles:?}");
    let summary = got
        .iter()
        .find(|e| e["title"] == "🎉 Signups: and 1,247 more")
        .unwrap();
    let description = summary["description"].as_str().unwrap();
    assert!(
        description.contains("from 10:00 to 10:01 UTC")
            && description.contains("PULSELINE_CATEGORY_MAX_PER_MINUTE"),
        "{description}"
    );
    assert_eq!(
        app.query_i64("SELECT COUNT(*) FROM deliveries WHERE source_key LIKE 'event-summary:%'")
            .await,
        1
    );
    assert_eq!(
        app.query_i64(
            "SELECT COUNT(*) FROM category_minutes WHERE summarized = 0 AND matched > sent"
        )
        .await,
        0,
        "no summary left to send"
    );
}

/// Two replicas on one database ingesting the same flood at once: together they send the cap,
/// and exactly one of them the summary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_category_cap_and_its_summary_hold_across_replicas() {
    use pulseline_collector::clock::FakeClock;
    use pulseline_collector::config::Config;
    use pulseline_collector::startup::Application;
    let start: chrono::DateTime<chrono::Utc> = "2026-11-22T10:00:10Z".parse().unwrap();
    let clock = std::sync::Arc::new(FakeClock::new(start));
    let configure = |c: &mut Config| {
        c.delivery.category_max_per_minute = 5;
        c.delivery.pace_burst = 100;
    };
    let first = helpers::spawn_app_with_clock(configure, clock.clone()).await;
    let discord = standins::discord().await;
    let channel = create_channel(
        &first,
        json!({"name": "n", "kind": "discord", "url": discord.url}),
    )
    .await;
    create_category(
        &first,
        json!({"name": "Signups", "pattern": "signup", "emoji": "",
        "colour": "#123456", "channel_id": channel["id"]}),
    )
    .await;
    let mut config = Config::for_tests_with_database(first.database_url.clone());
    configure(&mut config);
    let second = Application::build_with_clock(config, clock.clone())
        .await
        .unwrap();
    let bases = [
        first.base.clone(),
        format!("http://127.0.0.1:{}", second.port()),
    ];
    let stop = second.shutdown_handle();
    let task = tokio::spawn(second.run_until_stopped());

    let posts = (0..20).map(|r| {
        let url = format!("{}/v1/batch", bases[r % 2]);
        let batch: Vec<Value> = (0..10)
            .map(|i| event("signup", &format!("s-{r}-{i}"), json!({})))
            .collect();
        let request = first
            .http
            .post(url)
            .basic_auth(&first.keys.write_key, Some(""))
            .json(&json!({ "batch": batch }));
        async move { request.send().await.unwrap().status().as_u16() }
    });
    let statuses = futures::future::join_all(posts).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(first.query_i64("SELECT COUNT(*) FROM deliveries").await, 5);

    discord.receiver.wait_for_embeds(5, WAIT).await;
    clock.advance(chrono::Duration::seconds(60));
    let got = discord.receiver.wait_for_embeds(6, WAIT).await;
    assert_eq!(got[5]["title"], "Signups: and 195 more");
    // The finished minute's counter row is dropped once summed up; one summary, no more.
    let deadline = Instant::now() + WAIT;
    while first
        .query_i64("SELECT COUNT(*) FROM category_minutes")
        .await
        > 0
    {
        assert!(Instant::now() < deadline, "the finished minute's row stays");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        first
            .query_i64("SELECT COUNT(*) FROM deliveries WHERE source_key LIKE 'event-summary:%'")
            .await,
        1
    );
    stop.shutdown();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_429_is_honoured_and_every_attempt_recorded() {
    let app = spawn_app().await;
    let discord = standins::discord().await;
    discord.receiver.script(Scripted::RateLimited(0.6));
    let channel = create_channel(
        &app,
        json!({"name": "n", "kind": "discord", "url": discord.url}),
    )
    .await;
    create_category(&app, json!({"name": "Orders", "pattern": "order", "emoji": "📦", "colour": "#123456", "channel_id": channel["id"]})).await;
    ingest(&app, vec![event("order", "o-1", json!({"n": 1}))]).await;
    discord.receiver.wait_for(1, WAIT).await;
    let hits = discord.receiver.hits();
    assert_eq!(hits.len(), 2, "one 429, then the delivery");
    let waited = hits[1] - hits[0];
    assert!(
        waited >= Duration::from_millis(600),
        "retried after {waited:?}, before retry_after"
    );
    let d = &deliveries_in(&app, "delivered", 1).await[0];
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
    let bad = create_channel(
        &app,
        json!({"name": "hostile", "kind": "webhook", "url": hostile.url}),
    )
    .await;
    let good = create_channel(
        &app,
        json!({"name": "fine", "kind": "discord", "url": discord.url}),
    )
    .await;
    create_category(&app, json!({"name": "a", "pattern": "a", "emoji": "", "colour": "#123456", "channel_id": bad["id"]})).await;
    create_category(&app, json!({"name": "b", "pattern": "b", "emoji": "", "colour": "#123456", "channel_id": good["id"]})).await;
    let before = chrono::Utc::now();
    ingest(&app, vec![event("a", "a-1", json!({}))]).await;
    hostile.receiver.wait_for_hits(1, WAIT).await;
    let d = loop {
        let list = all_deliveries(&app).await;
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
    ingest(&app, vec![event("b", "b-1", json!({}))]).await;
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
    let channel = create_channel(
        &app,
        json!({"name": "n", "kind": "discord", "url": target.url}),
    )
    .await;
    create_category(&app, json!({"name": "e", "pattern": "e", "emoji": "", "colour": "#123456", "channel_id": channel["id"]})).await;
    ingest(&app, vec![event("e", "e-1", json!({}))]).await;
    let d = &deliveries_in(&app, "delivered", 1).await[0];
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
    let channel = create_channel(
        &app,
        json!({"name": "n", "kind": "discord", "url": discord.url}),
    )
    .await;
    create_category(&app, json!({"name": "e", "pattern": "e", "emoji": "", "colour": "#123456", "channel_id": channel["id"]})).await;
    ingest(&app, vec![event("e", "e-1", json!({}))]).await;
    discord.receiver.wait_for(1, WAIT).await;
    let d = &deliveries_in(&app, "delivered", 1).await[0];
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
    let channel = create_channel(
        &app,
        json!({"name": "gone", "kind": "discord", "url": discord.url}),
    )
    .await;
    create_category(&app, json!({"name": "e", "pattern": "e", "emoji": "", "colour": "#123456", "channel_id": channel["id"]})).await;
    ingest(&app, vec![event("e", "e-1", json!({}))]).await;
    let dead = deliveries_in(&app, "dead", 1).await;
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
    ingest(&app, vec![event("e", "e-2", json!({}))]).await;
    let dead = deliveries_in(&app, "dead", 2).await;
    assert!(
        dead[0]["last_error"].as_str().unwrap().contains("disabled"),
        "{}",
        dead[0]
    );
    assert_eq!(discord.receiver.hits().len(), 1);

    // Re-enabled, it delivers again.
    let (status, ch) = send(
        &app,
        reqwest::Method::PATCH,
        &format!("/api/v1/channels/{}", channel["id"]),
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(status, 200, "{ch}");
    assert_eq!(ch["enabled"], true);
    ingest(&app, vec![event("e", "e-3", json!({}))]).await;
    discord.receiver.wait_for(1, WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_events_become_one_message_per_channel() {
    let app = spawn_app().await;
    let (discord, slack) = (standins::discord().await, standins::slack().await);
    let d = create_channel(
        &app,
        json!({"name": "d", "kind": "discord", "url": discord.url}),
    )
    .await;
    let s = create_channel(
        &app,
        json!({"name": "s", "kind": "slack", "url": slack.url}),
    )
    .await;
    let project = app.keys.project_id;
    for (id, kind) in [(1, "firing"), (2, "resolved")] {
        app.exec_sql(&format!(
            "INSERT INTO alert_events (project_id, rule_id, kind, channel_ids, title, description, colour, fields, url, created_at)
             VALUES ({project}, 7, '{kind}', '[{}, {}]', 'Signups > 50/h ({kind})', 'Rule 7 is {kind}', {}, \
             '[{{\"name\": \"value\", \"value\": \"73\", \"inline\": true}}]', 'https://example.com/rules/7', {})",
            d["id"], s["id"], 0xE7_4C3C, 1_700_000_000_000i64 + id,
        ))
        .await;
    }
    let got = discord.receiver.wait_for_embeds(2, WAIT).await;
    let slack_got = slack_headers(&slack, 2).await;
    let mut titles: Vec<&str> = got.iter().map(|e| e["title"].as_str().unwrap()).collect();
    titles.sort();
    assert_eq!(
        titles,
        ["Signups > 50/h (firing)", "Signups > 50/h (resolved)"]
    );
    let e = &got
        .iter()
        .find(|e| e["title"] == "Signups > 50/h (firing)")
        .unwrap();
    assert_eq!(e["color"], 0xE7_4C3C);
    assert_eq!(e["url"], "https://example.com/rules/7");
    assert_eq!(
        e["fields"][0],
        json!({"name": "value", "value": "73", "inline": true})
    );
    assert!(
        slack_got.iter().any(|t| t == "Signups > 50/h (firing)"),
        "{slack_got:?}"
    );
    assert!(
        slack
            .receiver
            .accepted()
            .iter()
            .all(|m| m["text"].as_str().unwrap().contains("Rule 7 is"))
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(discord.receiver.embeds().len(), 2);
    assert_eq!(slack_headers(&slack, 2).await.len(), 2);
    assert_eq!(app.query_i64("SELECT COUNT(*) FROM deliveries").await, 4);
    assert_eq!(
        app.query_i64("SELECT COUNT(*) FROM alert_events_dispatched")
            .await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_verify_and_email_arrives_over_smtp() {
    let smtp = standins::SmtpSink::start().await;
    let smtp_url = smtp.url.clone();
    let app = spawn_app_with(move |c| {
        c.delivery.smtp_url = Some(smtp_url);
        c.delivery.smtp_from = Some("Pulseline <alerts@pulseline.test>".into());
    })
    .await;
    let hook = standins::webhook().await;
    let w = create_channel(
        &app,
        json!({"name": "w", "kind": "webhook", "url": hook.url}),
    )
    .await;
    let secret = w["signing_secret"]
        .as_str()
        .expect("the secret is shown on creation");
    assert!(secret.starts_with("whsec_"));
    *hook.receiver.0.secret.lock().unwrap() = Some(secret.to_owned());
    let (_, shown) = app.get_json(&format!("/api/v1/channels/{}", w["id"])).await;
    assert!(
        shown.get("signing_secret").is_none(),
        "shown once only: {shown}"
    );
    let m = create_channel(
        &app,
        json!({"name": "m", "kind": "email", "email": "ops@pulseline.test"}),
    )
    .await;
    for ch in [&w, &m] {
        create_category(&app, json!({"name": format!("c{}", ch["id"]), "pattern": "refund.*", "emoji": "💸", "colour": "#FF9900", "channel_id": ch["id"]})).await;
    }
    ingest(
        &app,
        vec![event("refund.issued", "r-1", json!({"amount": 10}))],
    )
    .await;
    let got = hook.receiver.wait_for(1, WAIT).await;
    assert_eq!(got[0]["type"], "pulseline.notification");
    assert_eq!(got[0]["data"]["title"], "💸 refund.issued");
    let headers = &hook.receiver.accepted_with_headers()[0].0;
    assert!(headers["webhook-id"].to_str().unwrap().starts_with("msg_"));
    let mails = smtp.wait_for(1, WAIT).await;
    assert!(mails[0].contains("ops@pulseline.test"), "{}", mails[0]);
    assert!(
        mails[0].contains("refund.issued") && mails[0].contains("amount: 10"),
        "{}",
        mails[0]
    );
    deliveries_in(&app, "delivered", 2).await;

    // A receiver with another secret refuses the signature: the attempt records its answer.
    *hook.receiver.0.secret.lock().unwrap() =
        Some("whsec_b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldA==".into());
    let (status, result) = send(
        &app,
        reqwest::Method::POST,
        &format!("/api/v1/channels/{}/test", w["id"]),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(result["delivered"], false);
    assert_eq!(result["status_code"], 401);
    assert!(
        result["response_excerpt"]
            .as_str()
            .unwrap()
            .contains("signature mismatch")
    );
}

/// A title built from event data cannot add headers (or a body) to a notification email.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_subjects_cannot_inject_headers() {
    let smtp = standins::SmtpSink::start().await;
    let smtp_url = smtp.url.clone();
    let app = spawn_app_with(move |c| {
        c.delivery.smtp_url = Some(smtp_url);
        c.delivery.smtp_from = Some("Pulseline <alerts@pulseline.test>".into());
    })
    .await;
    let m = create_channel(
        &app,
        json!({"name": "m", "kind": "email", "email": "ops@pulseline.test"}),
    )
    .await;
    create_category(
        &app,
        json!({"name": "r", "pattern": "refund", "emoji": "", "colour": "#FF9900",
        "channel_id": m["id"], "title_template": "{reason}"}),
    )
    .await;
    let reason = "Refund\r\nBcc: victim@evil.example\r\n\r\nFake body";
    ingest(
        &app,
        vec![event("refund", "r-1", json!({ "reason": reason }))],
    )
    .await;
    let mail = smtp.wait_for(1, WAIT).await.remove(0);
    let headers = mail.split("\n\n").next().unwrap();
    assert!(
        headers
            .lines()
            .any(|l| l == "Subject: Refund Bcc: victim@evil.example Fake body"),
        "{mail}"
    );
    assert!(
        !headers
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
        "{mail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_action_reports_the_real_outcome() {
    let app = spawn_app().await;
    let (discord, slack) = (standins::discord().await, standins::slack().await);
    let d = create_channel(
        &app,
        json!({"name": "d", "kind": "discord", "url": discord.url}),
    )
    .await;
    let s = create_channel(
        &app,
        json!({"name": "s", "kind": "slack", "url": slack.url}),
    )
    .await;
    let path = |c: &Value| format!("/api/v1/channels/{}/test", c["id"]);
    let (status, ok) = send(&app, reqwest::Method::POST, &path(&d), None).await;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["delivered"], true);
    assert_eq!(ok["status_code"], 204);
    assert_eq!(
        discord.receiver.accepted()[0]["embeds"][0]["title"],
        "🔔 Pulseline test notification"
    );
    let (_, ok) = send(&app, reqwest::Method::POST, &path(&s), None).await;
    assert_eq!(ok["delivered"], true, "{ok}");
    assert_eq!(ok["response_excerpt"], "ok");

    discord
        .receiver
        .script(Scripted::Status(500, "Discord is down".into()));
    let (_, failed) = send(&app, reqwest::Method::POST, &path(&d), None).await;
    assert_eq!(failed["delivered"], false);
    assert_eq!(failed["status_code"], 500);
    assert_eq!(failed["response_excerpt"], "Discord is down");

    // Nothing listens here: the error says so.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let gone = create_channel(
        &app,
        json!({"name": "x", "kind": "discord", "url": format!("http://127.0.0.1:{port}/hook")}),
    )
    .await;
    let (_, failed) = send(&app, reqwest::Method::POST, &path(&gone), None).await;
    assert_eq!(failed["delivered"], false);
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("could not connect"),
        "{failed}"
    );

    let (status, err) = send(
        &app,
        reqwest::Method::POST,
        "/api/v1/channels/999999/test",
        None,
    )
    .await;
    assert_eq!(status, 404, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_say_what_to_fix() {
    let app = spawn_app().await;
    let cases = [
        (
            "/api/v1/channels",
            json!({"name": "x", "kind": "discord"}),
            "needs \"url\"",
        ),
        (
            "/api/v1/channels",
            json!({"name": "x", "kind": "discord", "url": "not a url"}),
            "not a valid URL",
        ),
        (
            "/api/v1/channels",
            json!({"name": "x", "kind": "email", "email": "nope"}),
            "not an email address",
        ),
        (
            "/api/v1/channels",
            json!({"name": "", "kind": "slack", "url": "http://127.0.0.1:1/"}),
            "name must be 1 to 100",
        ),
        (
            "/api/v1/channels",
            json!({"name": "x", "kind": "pigeon", "url": "http://127.0.0.1:1/"}),
            "invalid JSON body",
        ),
        (
            "/api/v1/categories",
            json!({"name": "c", "pattern": "a", "colour": "#123456", "channel_id": 999}),
            "not a channel of this project",
        ),
    ];
    for (path, body, expected) in cases {
        let (status, err) = send(&app, reqwest::Method::POST, path, Some(body.clone())).await;
        assert_eq!(status, 400, "{body} → {err}");
        assert!(
            err["message"].as_str().unwrap().contains(expected),
            "{body} → {err}"
        );
    }
    let ch = create_channel(
        &app,
        json!({"name": "d", "kind": "discord", "url": "http://127.0.0.1:1/hook"}),
    )
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
        let (status, err) = send(
            &app,
            reqwest::Method::POST,
            "/api/v1/categories",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 400, "{body} → {err}");
        assert!(
            err["message"].as_str().unwrap().contains(expected),
            "{body} → {err}"
        );
    }
    let c = create_category(
        &app,
        json!({"name": "c", "pattern": "a", "colour": "#123456", "channel_id": ch["id"]}),
    )
    .await;
    let (status, err) = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/api/v1/channels/{}", ch["id"]),
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("used by the categories c"),
        "{err}"
    );
    let (status, updated) = send(
        &app,
        reqwest::Method::PUT,
        &format!("/api/v1/categories/{}", c["id"]),
        Some(json!({"name": "c2", "pattern": "b.*", "colour": 255, "channel_id": ch["id"]})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["colour"], "#0000FF");
    let (_, list) = app.get_json("/api/v1/categories").await;
    assert_eq!(list["categories"].as_array().unwrap().len(), 1);
    assert_eq!(
        send(
            &app,
            reqwest::Method::DELETE,
            &format!("/api/v1/categories/{}", c["id"]),
            None
        )
        .await
        .0,
        204
    );
    assert_eq!(
        send(
            &app,
            reqwest::Method::DELETE,
            &format!("/api/v1/channels/{}", ch["id"]),
            None
        )
        .await
        .0,
        204
    );
    let (status, err) = app.get_json("/api/v1/deliveries?status=lost").await;
    assert_eq!(status, 400);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("pending, delivered, failed, dead")
    );
    // A write key cannot manage channels.
    let resp = app
        .http
        .get(app.url("/api/v1/channels"))
        .bearer_auth(&app.keys.write_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    // The API is described.
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
async fn a_category_needs_no_colour_or_emoji() {
    let app = spawn_app().await;
    let ch = create_channel(
        &app,
        json!({"name": "d", "kind": "discord", "url": "http://127.0.0.1:1/hook"}),
    )
    .await;
    let c = create_category(
        &app,
        json!({"name": "c", "pattern": "signup", "channel_id": ch["id"]}),
    )
    .await;
    assert_eq!(c["colour"], "#5865F2");
    assert_eq!(c["emoji"], "");
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
        let (status, err) = send(
            &app,
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
    create_category(
        &app,
        json!({"name": "c", "pattern": "e", "emoji": "", "colour": "#123456", "channel_id": id}),
    )
    .await;
    ingest(&app, vec![event("e", "e-1", json!({}))]).await;
    let dead = deliveries_in(&app, "dead", 1).await;
    let error = dead[0]["attempt_log"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("refusing to send to localhost") && error.contains("loopback"),
        "{error}"
    );
    let (_, result) = send(
        &app,
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
        let (status, err) = send(
            &app,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_delivery_loses_and_duplicates_nothing() {
    use pulseline_collector::config::Config;
    use pulseline_collector::startup::Application;
    let configure = |c: &mut Config| {
        c.shutdown_grace_secs = 1;
        c.delivery.lease_ms = 2_500;
        c.delivery.timeout_ms = 1_000;
        c.delivery.retry_min_ms = 100;
    };
    let mut first = spawn_app_with(configure).await;
    let discord = standins::discord().await;
    discord
        .receiver
        .0
        .hold
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let channel = create_channel(
        &first,
        json!({"name": "d", "kind": "discord", "url": discord.url}),
    )
    .await;
    create_category(&first, json!({"name": "c", "pattern": "order", "emoji": "📦", "colour": "#123456", "channel_id": channel["id"]})).await;
    let batch: Vec<Value> = (0..5)
        .map(|i| event("order", &format!("o-{i}"), json!({"n": i})))
        .collect();
    ingest(&first, batch).await;
    // Requests are in flight (held open by the receiver) when the collector stops.
    discord.receiver.wait_for_hits(1, WAIT).await;
    first.shutdown.shutdown();
    (&mut first.task).await.unwrap().unwrap();
    assert!(discord.receiver.accepted().is_empty());

    discord
        .receiver
        .0
        .hold
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let mut config = Config::for_tests_with_database(first.database_url.clone());
    configure(&mut config);
    let second = Application::build(config).await.unwrap();
    let stop = second.shutdown_handle();
    let task = tokio::spawn(second.run_until_stopped());
    let got = discord.receiver.wait_for_embeds(5, WAIT).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let got_after = discord.receiver.embeds();
    assert_eq!(got_after.len(), 5, "exactly once each: {got_after:?}");
    let mut ns: Vec<String> = got
        .iter()
        .map(|e| {
            e["fields"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["name"] == "n")
                .unwrap()["value"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    ns.sort();
    assert_eq!(ns, ["0", "1", "2", "3", "4"]);
    assert_eq!(
        first
            .query_i64("SELECT COUNT(*) FROM deliveries WHERE status = 'delivered'")
            .await,
        5
    );
    stop.shutdown();
    task.await.unwrap().unwrap();
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
    let a = create_channel(
        &app,
        json!({"name": "a", "kind": "webhook", "url": paced.url}),
    )
    .await;
    let b = create_channel(
        &app,
        json!({"name": "b", "kind": "webhook", "url": exhausted.url}),
    )
    .await;
    for (hook, channel) in [(&paced, &a), (&exhausted, &b)] {
        *hook.receiver.0.secret.lock().unwrap() =
            Some(channel["signing_secret"].as_str().unwrap().to_owned());
    }
    create_category(&app, json!({"name": "a", "pattern": "a", "emoji": "", "colour": "#123456", "channel_id": a["id"]})).await;
    create_category(&app, json!({"name": "b", "pattern": "b", "emoji": "", "colour": "#123456", "channel_id": b["id"]})).await;
    let batch: Vec<Value> = (0..4)
        .flat_map(|i| {
            [
                event("a", &format!("a-{i}"), json!({})),
                event("b", &format!("b-{i}"), json!({})),
            ]
        })
        .collect();
    ingest(&app, batch).await;
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
    for d in deliveries_in(&app, "delivered", 8).await {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_lets_the_send_in_flight_finish() {
    let app = spawn_app_with(|c| c.shutdown_grace_secs = 5).await;
    let discord = standins::discord().await;
    discord
        .receiver
        .script(Scripted::Slow(Duration::from_millis(800)));
    let channel = create_channel(
        &app,
        json!({"name": "d", "kind": "discord", "url": discord.url}),
    )
    .await;
    create_category(&app, json!({"name": "c", "pattern": "e", "emoji": "", "colour": "#123456", "channel_id": channel["id"]})).await;
    ingest(&app, vec![event("e", "e-1", json!({}))]).await;
    discord.receiver.wait_for_hits(1, WAIT).await;
    app.shutdown.shutdown();
    let TestApp {
        task,
        database_url,
        dir: _dir,
        ..
    } = app;
    task.await.unwrap().unwrap();
    assert_eq!(discord.receiver.accepted().len(), 1);
    assert_eq!(
        helpers::query_i64(
            &database_url,
            "SELECT COUNT(*) FROM deliveries WHERE status = 'delivered' AND attempts = 1"
        )
        .await,
        1,
        "the answer was recorded before the process stopped"
    );
}
