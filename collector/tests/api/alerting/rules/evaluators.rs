//! Who evaluates: the background loop on its interval, two replicas that fire a rule once,
//! and racing evaluators that store each transition once.

use super::*;
use crate::helpers::process::{cli_project, start_replica};

#[tokio::test]
async fn the_background_loop_evaluates_on_its_interval_with_the_injected_clock() {
    let clock = Arc::new(FakeClock::new(at(0, 0, 0)));
    let app = helpers::spawn_app_with_clock(|c| c.rules_interval_secs = 1, clock.clone()).await;
    let batch: Vec<Value> = (0..3)
        .map(|i| {
            json!({"type": "track", "userId": "u", "event": "signup", "messageId": format!("l{i}"),
            "timestamp": (hour(0) + Duration::minutes(i)).to_rfc3339()})
        })
        .collect();
    assert_eq!(
        app.post("/v1/batch", &json!({"batch": batch}))
            .await
            .status(),
        200
    );
    let resp = app
        .http
        .post(app.url("/api/v1/rules"))
        .bearer_auth(&app.keys.secret_key)
        .json(&json!({"name": "any signup", "series": {"event": "signup"},
            "condition": {"type": "threshold", "op": ">", "value": 0}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    clock.set(after(1));
    let sql = "SELECT COUNT(*) FROM alert_events WHERE kind = 'firing'";
    let mut fired = 0;
    for _ in 0..100 {
        fired = app.query_i64(sql).await;
        if fired > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(fired, 1, "the loop fired the rule at the fake time");
}

/// Issue 9: two collector processes on one PostgreSQL, both evaluating every second, store
/// each transition once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_fire_a_rule_once() {
    if !helpers::on_postgres() {
        return; // replicas share a PostgreSQL server; the test command runs this on one
    }
    let project = cli_project().await;
    let (url, write, secret) = (&project.url, &project.write, &project.secret);
    let interval = [("PULSELINE_RULES_INTERVAL_SECS", "1")];
    let (a, b) = (start_replica(url, &interval), start_replica(url, &interval));
    let http = reqwest::Client::new();
    // Yesterday (the latest closed day bucket) gets 5 orders; the rule fires above 2.
    let day = pulseline_collector::alerting::rules::latest_closed_bucket(
        Utc::now().timestamp_millis(),
        86_400_000,
    );
    let noon = DateTime::from_timestamp_millis(day + 43_200_000).unwrap();
    let batch: Vec<Value> = (0..5)
        .map(|i| {
            json!({"type": "track", "userId": "u", "event": "order",
            "messageId": format!("o{i}"), "timestamp": noon.to_rfc3339()})
        })
        .collect();
    let resp = http
        .post(format!("{}/v1/batch", a.base))
        .basic_auth(write, Some(""))
        .json(&json!({ "batch": batch }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = http
        .post(format!("{}/api/v1/rules", b.base))
        .bearer_auth(secret)
        .json(
            &json!({"name": "Orders", "series": {"event": "order", "bucket": "day"},
            "condition": {"type": "threshold", "op": ">", "value": 2}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let sql = "SELECT COUNT(*) FROM alert_events WHERE kind = 'firing'";
    let mut fired = 0;
    for _ in 0..100 {
        fired = helpers::query_i64(url, sql).await;
        if fired > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(fired, 1);
    // Several more passes by both replicas: still one row, one alert.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(helpers::query_i64(url, sql).await, 1);
    assert_eq!(
        helpers::query_i64(url, "SELECT COUNT(*) FROM alert_history").await,
        1
    );
    assert_eq!(
        helpers::query_i64(url, "SELECT COUNT(*) FROM alert_events").await,
        1
    );
}

/// Many evaluators racing on the same rules at the same instant: each transition once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_evaluators_store_each_transition_once() {
    let mut rig = rig().await;
    rig.send_hour("signup", hour(0), 10, json!({})).await;
    for i in 0..5 {
        rig.create_rule(
            json!({"name": format!("r{i}"), "series": {"event": "signup"},
            "condition": {"type": "threshold", "op": ">", "value": 5}}),
        )
        .await;
    }
    let now = after(1);
    let mut passes = Vec::new();
    for n in 0..6 {
        let store = rig.app.store().await;
        passes.push(tokio::spawn(async move {
            run_once(&store, now, &format!("evaluator-{n}"))
                .await
                .unwrap()
        }));
    }
    for p in passes {
        p.await.unwrap();
    }
    // A second round at the same instant changes nothing.
    run_once(&rig.store, now, "late").await.unwrap();
    assert_eq!(rig.counts().await, [5, 0, 0, 0]);
    assert_eq!(
        rig.app
            .query_i64("SELECT COUNT(*) FROM alert_history")
            .await,
        5
    );
}
