//! Inbound deliveries count against the plan's monthly quota and the ingest rate limit, like
//! any other ingest: over either, the sender gets a 429 with Retry-After (Stripe and GitHub
//! retry later) and nothing is stored.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use pulseline_collector::clock::{Clock, FakeClock};
use pulseline_collector::store::Plan;
use serde_json::{Value, json};

use super::{deliver, error_text, fixture, github_headers, github_source};
use crate::helpers::{self, TestApp};

/// A GitHub release delivery with its own delivery id, so each is a new event.
async fn release(app: &TestApp, source: &Value, delivery: &str) -> (u16, Value, Option<i64>) {
    let body = fixture("github_release_published.json");
    let headers = github_headers("release", delivery, &body, "s");
    let mut req = app
        .http
        .post(app.url(source["path"].as_str().unwrap()))
        .header("content-type", "application/json")
        .body(body.clone());
    for (name, value) in &headers {
        req = req.header(*name, value);
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (
        status,
        resp.json().await.unwrap_or(Value::Null),
        retry_after,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_count_against_the_monthly_quota_and_are_refused_past_it() {
    let clock = Arc::new(FakeClock::new(
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap(),
    ));
    let app = helpers::spawn_app_with_clock(|_| {}, clock.clone()).await;
    let store = app.store().await;
    store
        .upsert_plan(&Plan {
            name: "tiny".into(),
            events_per_month: Some(3),
            retention_days: None,
        })
        .await
        .unwrap();
    assert!(
        store
            .set_project_plan(app.keys.project_id, "tiny")
            .await
            .unwrap()
    );
    store.close().await;
    let source = github_source(&app, "repo").await;

    // One event through /v1/batch and two deliveries use the quota of 3.
    app.post_batch(vec![helpers::track("u", "e", "ingested-1")])
        .await;
    for delivery in ["d-1", "d-2"] {
        let (status, got, _) = release(&app, &source, delivery).await;
        assert_eq!(status, 200, "{got}");
    }
    let (status, got, retry_after) = release(&app, &source, "d-3").await;
    assert_eq!(status, 429, "{got}");
    assert!(
        error_text(&got).contains("monthly quota of 3 events (plan 'tiny')"),
        "{got}"
    );
    assert_eq!(
        retry_after,
        Some((Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap() - clock.now()).num_seconds())
    );
    assert_eq!(app.events_total().await, 3);
    // The write key is refused too: the deliveries used the same quota.
    let resp = app
        .post(
            "/v1/batch",
            &json!({"batch": [helpers::track("u", "e", "ingested-2")]}),
        )
        .await;
    assert_eq!(resp.status(), 429);

    // Next month the sender's retry goes through.
    clock.set(Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 1).unwrap());
    let (status, got, _) = release(&app, &source, "d-3").await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(app.events_total().await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_source_is_rate_limited_and_another_source_is_not() {
    // The fake clock stands still, so the limiter refills nothing during the test.
    let clock = Arc::new(FakeClock::new(Utc::now()));
    let app = helpers::spawn_app_with_clock(
        |c| {
            c.rate_limit_events_per_sec = 1;
            c.rate_limit_burst = 2;
            c.limits.max_batch_messages = 2;
        },
        clock,
    )
    .await;
    let flooding = github_source(&app, "busy repo").await;
    let quiet = github_source(&app, "quiet repo").await;
    for delivery in ["f-1", "f-2"] {
        let (status, got, _) = release(&app, &flooding, delivery).await;
        assert_eq!(status, 200, "{got}");
    }
    let (status, got, retry_after) = release(&app, &flooding, "f-3").await;
    assert_eq!(status, 429, "{got}");
    assert!(
        error_text(&got).contains("this inbound source is over its rate limit of 1 events/s"),
        "{got}"
    );
    assert!(retry_after.is_some_and(|s| s >= 1), "{retry_after:?}");
    let (status, got, _) = release(&app, &quiet, "q-1").await;
    assert_eq!(status, 200, "another source has its own allowance: {got}");
    assert_eq!(app.events_total().await, 3);
    // A forged delivery is refused before it spends the quiet source's allowance.
    let body = fixture("github_release_published.json");
    let forged = github_headers("release", "q-x", &body, "not the secret");
    let (status, _) = deliver(&app, &quiet, &forged, &body).await;
    assert_eq!(status, 401);
    let (status, got, _) = release(&app, &quiet, "q-2").await;
    assert_eq!(status, 200, "{got}");
}
