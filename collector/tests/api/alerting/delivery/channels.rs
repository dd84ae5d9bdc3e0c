//! Every kind of channel: alerts to each channel once, signed webhooks, e-mail over SMTP
//! with subjects that cannot inject headers, and the test action.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_events_become_one_message_per_channel() {
    let app = spawn_app().await;
    let (discord, slack) = (standins::discord().await, standins::slack().await);
    let d = app
        .create_channel(json!({"name": "d", "kind": "discord", "url": discord.url}))
        .await;
    let s = app
        .create_channel(json!({"name": "s", "kind": "slack", "url": slack.url}))
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
    let w = app
        .create_channel(json!({"name": "w", "kind": "webhook", "url": hook.url}))
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
    let m = app
        .create_channel(json!({"name": "m", "kind": "email", "email": "ops@pulseline.test"}))
        .await;
    for ch in [&w, &m] {
        app.create_category(json!({"name": format!("c{}", ch["id"]), "pattern": "refund.*", "emoji": "💸", "colour": "#FF9900", "channel_id": ch["id"]})).await;
    }
    app.post_batch(vec![event("refund.issued", "r-1", json!({"amount": 10}))])
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
    app.deliveries_in("delivered", 2).await;

    // A receiver with another secret refuses the signature: the attempt records its answer.
    *hook.receiver.0.secret.lock().unwrap() =
        Some("whsec_b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldA==".into());
    let (status, result) = app
        .api(
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
    let m = app
        .create_channel(json!({"name": "m", "kind": "email", "email": "ops@pulseline.test"}))
        .await;
    app.create_category(
        json!({"name": "r", "pattern": "refund", "emoji": "", "colour": "#FF9900",
        "channel_id": m["id"], "title_template": "{reason}"}),
    )
    .await;
    let reason = "Refund\r\nBcc: victim@evil.example\r\n\r\nFake body";
    app.post_batch(vec![event("refund", "r-1", json!({ "reason": reason }))])
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
    let d = app
        .create_channel(json!({"name": "d", "kind": "discord", "url": discord.url}))
        .await;
    let s = app
        .create_channel(json!({"name": "s", "kind": "slack", "url": slack.url}))
        .await;
    let path = |c: &Value| format!("/api/v1/channels/{}/test", c["id"]);
    let (status, ok) = app.api(reqwest::Method::POST, &path(&d), None).await;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["delivered"], true);
    assert_eq!(ok["status_code"], 204);
    assert_eq!(
        discord.receiver.accepted()[0]["embeds"][0]["title"],
        "🔔 Pulseline test notification"
    );
    let (_, ok) = app.api(reqwest::Method::POST, &path(&s), None).await;
    assert_eq!(ok["delivered"], true, "{ok}");
    assert_eq!(ok["response_excerpt"], "ok");

    discord
        .receiver
        .script(Scripted::Status(500, "Discord is down".into()));
    let (_, failed) = app.api(reqwest::Method::POST, &path(&d), None).await;
    assert_eq!(failed["delivered"], false);
    assert_eq!(failed["status_code"], 500);
    assert_eq!(failed["response_excerpt"], "Discord is down");

    // Nothing listens here: the error says so.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let gone = app
        .create_channel(
            json!({"name": "x", "kind": "discord", "url": format!("http://127.0.0.1:{port}/hook")}),
        )
        .await;
    let (_, failed) = app.api(reqwest::Method::POST, &path(&gone), None).await;
    assert_eq!(failed["delivered"], false);
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("could not connect"),
        "{failed}"
    );

    let (status, err) = app
        .api(reqwest::Method::POST, "/api/v1/channels/999999/test", None)
        .await;
    assert_eq!(status, 404, "{err}");
}
