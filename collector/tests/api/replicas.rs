//! Two real collector processes on one PostgreSQL behave as one.

use serde_json::{Value, json};

use crate::helpers;
use crate::helpers::process::{cli_project, start_replica};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_store_each_event_once() {
    if !helpers::on_postgres() {
        return; // replicas share a PostgreSQL server; the test command runs this on one
    }
    let project = cli_project().await;
    let (url, write, secret) = (
        &project.url,
        project.write.as_str(),
        project.secret.as_str(),
    );

    let (a, b) = (start_replica(url, &[]), start_replica(url, &[]));
    let http = reqwest::Client::new();
    // The same 40 batches through both replicas at once: every event reaches the database
    // twice, concurrently, and must be stored once.
    let mut sends = Vec::new();
    for n in 0..40 {
        for base in [&a.base, &b.base] {
            let (http, url, write) = (http.clone(), format!("{base}/v1/batch"), write.to_owned());
            sends.push(tokio::spawn(async move {
                let batch: Vec<Value> = (0..50)
                    .map(|i| json!({"type": "track", "userId": "u", "event": "e", "messageId": format!("r{n}-{i}")}))
                    .collect();
                http.post(url).basic_auth(write, Some("")).json(&json!({"batch": batch})).send().await.unwrap().status()
            }));
        }
    }
    for s in sends {
        assert_eq!(s.await.unwrap(), 200);
    }
    for base in [&a.base, &b.base] {
        let stats: Value = http
            .get(format!("{base}/api/v1/stats"))
            .bearer_auth(secret)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(stats["events_total"], 2_000);
        assert_eq!(stats["events_this_month"], 2_000);
    }
    let stored = helpers::query_i64(url, "SELECT COUNT(*) FROM events").await;
    assert_eq!(stored, 2_000);
    let distinct = helpers::query_i64(url, "SELECT COUNT(DISTINCT message_id) FROM events").await;
    assert_eq!(distinct, 2_000);
}

/// A suppression made through one replica reaches the others' ingest (each reloads the
/// suppressed ids every `SUPPRESSION_REFRESH`): the person's events stop being stored there too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_suppression_through_one_replica_applies_on_the_others() {
    if !helpers::on_postgres() {
        return; // replicas share a PostgreSQL server; the test command runs this on one
    }
    let project = cli_project().await;
    let (url, write, secret) = (
        &project.url,
        project.write.as_str(),
        project.secret.as_str(),
    );
    let (a, b) = (start_replica(url, &[]), start_replica(url, &[]));
    let http = reqwest::Client::new();
    let send_to_b = |n: u32| {
        let req = http
            .post(format!("{}/v1/track", b.base))
            .basic_auth(write, Some(""))
            .json(&json!({"userId": "gone", "event": "e", "messageId": format!("g{n}")}));
        async move { assert_eq!(req.send().await.unwrap().status(), 200) }
    };
    let events_of_gone = || {
        let req = http
            .get(format!("{}/api/v1/persons?user_id=gone", b.base))
            .bearer_auth(secret);
        async move {
            let v: Value = req.send().await.unwrap().json().await.unwrap();
            v["events"].as_i64().unwrap()
        }
    };
    send_to_b(0).await;
    assert_eq!(events_of_gone().await, 1);
    let resp = http
        .delete(format!(
            "{}/api/v1/persons?user_id=gone&suppress=true",
            a.base
        ))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // B drops them once it has reloaded; until then each send is stored (and deleted again).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut n = 1;
    loop {
        send_to_b(n).await;
        n += 1;
        if events_of_gone().await == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "replica B still stores a person suppressed through A"
        );
        let resp = http
            .delete(format!("{}/api/v1/persons?user_id=gone", b.base))
            .bearer_auth(secret)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    send_to_b(n).await;
    assert_eq!(events_of_gone().await, 0);
}
