//! Issue 23: a burst for one channel leaves packed — Discord embeds and Slack blocks up to the
//! limits the strict stand-ins enforce, email as capped digests — each notification delivered
//! once, in order, with its own attempt log.

use super::*;

const BURST: usize = 40;

/// An app whose category cap lets the whole burst through (the cap is tested elsewhere).
async fn app_for_bursts() -> TestApp {
    spawn_app_with(|c| c.delivery.category_max_per_minute = 1_000).await
}

async fn burst_category(app: &TestApp, channel: &Value) {
    app.create_category(
        json!({"name": "Signups", "pattern": "signup", "emoji": "🎉",
        "colour": "#123456", "channel_id": channel["id"]}),
    )
    .await;
    // Ids that sort in capture order, as the SDKs' UUIDv7 do: PostgreSQL queues one batch's
    // notifications in key order (so concurrent commits cannot deadlock).
    let batch = (0..BURST)
        .map(|i| event("signup", &format!("s-{i:03}"), json!({"i": i})))
        .collect();
    app.post_batch(batch).await;
}

/// Every delivery delivered by exactly one successful attempt.
async fn each_delivered_once(app: &TestApp, status_code: i64) {
    let delivered = app.deliveries_in("delivered", BURST).await;
    assert_eq!(delivered.len(), BURST);
    for d in &delivered {
        assert_eq!(d["attempts"], 1, "{d}");
        assert_eq!(d["attempt_log"][0]["status_code"], status_code, "{d}");
        assert_eq!(d["attempt_log"][0]["outcome"], "success", "{d}");
    }
}

/// The `i` property of each notification, in the order the stand-in showed them.
fn order(texts: impl Iterator<Item = String>) -> Vec<usize> {
    texts
        .map(|t| {
            let at = t.find("i: ").or_else(|| t.find("*i*\n")).expect(&t);
            t[at..]
                .trim_start_matches("i: ")
                .trim_start_matches("*i*\n")
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .expect(&t)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_reaches_discord_in_at_most_five_messages() {
    let app = app_for_bursts().await;
    let discord = standins::discord().await;
    let channel = app
        .create_channel(json!({"name": "d", "kind": "discord", "url": discord.url}))
        .await;
    burst_category(&app, &channel).await;
    each_delivered_once(&app, 204).await;
    let messages = discord.receiver.accepted();
    assert!(
        discord.receiver.rejected().is_empty(),
        "{:?}",
        discord.receiver.rejected()
    );
    assert!(messages.len() <= 5, "{} messages", messages.len());
    let embeds: Vec<Value> = messages
        .iter()
        .flat_map(|m| m["embeds"].as_array().cloned().unwrap())
        .collect();
    let fields = embeds.iter().map(|e| {
        e["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                format!(
                    "{}: {}",
                    f["name"].as_str().unwrap(),
                    f["value"].as_str().unwrap()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    assert_eq!(
        order(fields),
        (0..BURST).collect::<Vec<_>>(),
        "once each, in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_reaches_slack_packed_within_fifty_blocks() {
    let app = app_for_bursts().await;
    let slack = standins::slack().await;
    let channel = app
        .create_channel(json!({"name": "s", "kind": "slack", "url": slack.url}))
        .await;
    burst_category(&app, &channel).await;
    each_delivered_once(&app, 200).await;
    let messages = slack.receiver.accepted();
    assert!(
        slack.receiver.rejected().is_empty(),
        "{:?}",
        slack.receiver.rejected()
    );
    assert!(messages.len() <= 5, "{} messages", messages.len());
    let sections = messages.iter().flat_map(|m| {
        m["blocks"]
            .as_array()
            .cloned()
            .unwrap()
            .into_iter()
            .filter_map(|b| {
                b["fields"]
                    .as_array()
                    .map(|f| f[0]["text"].as_str().unwrap().to_owned())
            })
    });
    assert_eq!(
        order(sections),
        (0..BURST).collect::<Vec<_>>(),
        "once each, in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_by_email_goes_as_capped_digests() {
    let smtp = standins::SmtpSink::start().await;
    let smtp_url = smtp.url.clone();
    let app = spawn_app_with(move |c| {
        c.delivery.category_max_per_minute = 1_000;
        c.delivery.smtp_url = Some(smtp_url);
        c.delivery.smtp_from = Some("Pulseline <alerts@pulseline.test>".into());
    })
    .await;
    let channel = app
        .create_channel(json!({"name": "m", "kind": "email", "email": "ops@pulseline.test"}))
        .await;
    burst_category(&app, &channel).await;
    each_delivered_once(&app, 250).await;
    let mails = smtp.wait_for(2, WAIT).await;
    assert_eq!(mails.len(), 2, "two digests of 20: {mails:?}");
    for m in &mails {
        let count = m.lines().filter(|l| l.starts_with("i: ")).count();
        assert_eq!(count, 20, "a digest holds the cap: {m}");
    }
    let lines = mails.iter().flat_map(|m| {
        m.lines()
            .filter(|l| l.starts_with("i: "))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    });
    assert_eq!(
        order(lines),
        (0..BURST).collect::<Vec<_>>(),
        "once each, in order"
    );
}

/// The packed message refused (400): every notification in it records that answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_pack_records_the_failure_for_each_notification() {
    let app = app_for_bursts().await;
    let discord = standins::discord().await;
    discord.receiver.script(Scripted::Status(
        400,
        "{\"message\": \"Invalid Form Body\"}".into(),
    ));
    let channel = app
        .create_channel(json!({"name": "d", "kind": "discord", "url": discord.url}))
        .await;
    burst_category(&app, &channel).await;
    let dead = app.deliveries_in("dead", 10).await;
    assert_eq!(dead.len(), 10, "the first pack of 10: {dead:?}");
    for d in &dead {
        assert_eq!(d["attempts"], 1, "{d}");
        assert_eq!(d["attempt_log"][0]["status_code"], 400, "{d}");
        assert!(
            d["last_error"]
                .as_str()
                .unwrap()
                .contains("Invalid Form Body"),
            "{d}"
        );
    }
    let delivered = app.deliveries_in("delivered", BURST - 10).await;
    assert_eq!(delivered.len(), BURST - 10);
    assert_eq!(
        discord.receiver.hits().len(),
        4,
        "3 packs accepted after the refused one"
    );
}
