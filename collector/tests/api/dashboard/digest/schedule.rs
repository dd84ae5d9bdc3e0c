//! The digest across processes and passes: two replicas send a week once; a project made
//! mid-week gets nothing about the week before it existed.

use std::sync::Arc;

use chrono::Utc;
use pulseline_collector::clock::FakeClock;
use reqwest::StatusCode;
use serde_json::json;

use super::mail::parse_mail;
use super::{FROM, at};
use crate::dashboard::spawn;
use crate::helpers::{self, WAIT, standins};

/// Two collector processes on one PostgreSQL, started together so both find the week due:
/// one digest is recorded, one e-mail and one Slack message leave.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_send_the_digest_once() {
    use crate::helpers::process::{cli_project, start_replica};
    use pulseline_collector::domain::account::Role;
    if !helpers::on_postgres() {
        return; // replicas share a PostgreSQL server; the test command runs this on one
    }
    let smtp = standins::SmtpSink::start().await;
    let slack = standins::slack().await;
    let project = cli_project().await;
    let url = &project.url;
    let store = pulseline_collector::store::Store::open(url, Default::default())
        .await
        .unwrap();
    let now = Utc::now();
    let id = helpers::query_i64(url, "SELECT MIN(id) FROM projects").await;
    pulseline_collector::accounts::create_user(
        &store,
        "ops@example.com",
        "ops-password",
        false,
        now,
    )
    .await
    .unwrap();
    let user = store
        .find_user_by_email("ops@example.com")
        .await
        .unwrap()
        .unwrap();
    store
        .set_member(id, user.id, Role::Owner, now)
        .await
        .unwrap();
    store
        .set_digest_subscription(id, user.id, true, now)
        .await
        .unwrap();
    let channel = store
        .create_channel(id, "digest", "slack", &slack.url, None, now)
        .await
        .unwrap()
        .id;
    store.set_digest_channel(id, Some(channel)).await.unwrap();
    store.close().await;
    // A project made before last week, so last week is the replicas' to report.
    helpers::exec_sql(url, "UPDATE projects SET created_at = 0").await;

    let env = [
        ("PULSELINE_SMTP_URL", smtp.url.as_str()),
        ("PULSELINE_SMTP_FROM", FROM),
        ("PULSELINE_DIGEST_INTERVAL_MS", "20"),
        ("PULSELINE_DELIVERY_POLL_MS", "50"),
        ("PULSELINE_ALLOW_PRIVATE_WEBHOOKS", "true"),
    ];
    let (_a, _b) = (start_replica(url, &env), start_replica(url, &env));
    let mail = parse_mail(&smtp.wait_for(1, WAIT).await[0]);
    assert_eq!(mail.to, "ops@example.com");
    slack.receiver.wait_for(1, WAIT).await;
    // Once the database says both went out, nothing can send them again.
    let deadline = std::time::Instant::now() + WAIT;
    let done = format!(
        "SELECT (SELECT COUNT(*) FROM digest_emails WHERE status = 'sent') + \
                (SELECT COUNT(*) FROM deliveries WHERE status = 'delivered' AND channel_id = {channel})"
    );
    while helpers::query_i64(url, &done).await < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the digest was not recorded as sent"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(smtp.messages.lock().unwrap().len(), 1);
    assert_eq!(slack.receiver.accepted().len(), 1);
    assert_eq!(
        helpers::query_i64(url, "SELECT COUNT(*) FROM digest_weeks").await,
        1
    );
    assert_eq!(
        helpers::query_i64(url, "SELECT COUNT(*) FROM digest_emails").await,
        1
    );
    assert_eq!(
        helpers::query_i64(url, "SELECT MAX(attempts) FROM digest_emails").await,
        1
    );
}

/// A project made on Wednesday has no digest of the week before; its first is the next Monday's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_project_gets_no_digest_of_the_week_before_it_existed() {
    use pulseline_collector::reports::digest::DigestScheduler;
    let smtp = standins::SmtpSink::start().await;
    let clock = Arc::new(FakeClock::new(at("2026-11-25T12:00:00Z")));
    let url = smtp.url.clone();
    // No background passes: this test runs them at the times it picks.
    let dash = spawn(
        move |c| {
            c.delivery.smtp_url = Some(url);
            c.delivery.smtp_from = Some(FROM.to_owned());
            c.digest_interval_ms = 0;
        },
        clock.clone(),
    )
    .await;
    let admin = dash.admin().await;
    let (status, created) = dash
        .post(&admin, "/api/dash/projects", json!({"name": "New"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let project = created["id"].as_i64().unwrap();
    dash.subscribe(&admin, project, true).await;
    let store = pulseline_collector::store::Store::open(&dash.database_url, Default::default())
        .await
        .unwrap();
    let mut config = pulseline_collector::config::Config::for_tests_with_database(String::new());
    config.delivery.smtp_url = Some(smtp.url.clone());
    config.delivery.smtp_from = Some(FROM.to_owned());
    let scheduler = DigestScheduler {
        store: store.clone(),
        clock: clock.clone(),
        config: Arc::new(config.delivery),
        wake: Arc::default(),
        dashboard_url: None,
        owner: "test".to_owned(),
    };
    scheduler.pass().await.unwrap();
    let emails = format!("SELECT COUNT(*) FROM digest_emails WHERE project_id = {project}");
    assert_eq!(helpers::query_i64(&dash.database_url, &emails).await, 0);
    let weeks = format!(
        "SELECT COUNT(*) FROM digest_weeks WHERE project_id = {project} AND content IS NULL"
    );
    assert_eq!(helpers::query_i64(&dash.database_url, &weeks).await, 1);

    clock.set(at("2026-11-30T00:30:00Z"));
    scheduler.pass().await.unwrap();
    let mail = parse_mail(&smtp.wait_for(1, WAIT).await[0]);
    assert_eq!(mail.to, dash.admin_email);
    assert!(
        mail.subject
            .starts_with("Weekly digest: New · Mon 23 Nov 2026"),
        "{}",
        mail.subject
    );

    // DIGEST_KEEP_WEEKS: fifteen more Mondays leave the newest week and the 13 before it.
    for week in 1..=15 {
        clock.set(at("2026-11-30T00:30:00Z") + chrono::Duration::weeks(week));
        scheduler.pass().await.unwrap();
    }
    let weeks = format!("SELECT COUNT(*) FROM digest_weeks WHERE project_id = {project}");
    assert_eq!(helpers::query_i64(&dash.database_url, &weeks).await, 14);
    assert_eq!(helpers::query_i64(&dash.database_url, &emails).await, 14);
    store.close().await;
}
