//! Issue 9 for deliveries: two real collector processes on one PostgreSQL deliver each
//! notification once, and a process killed mid-delivery leaves nothing stuck (the next one,
//! or the other replica, delivers once its lease expires).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers;
use crate::helpers::process::{Replica, cli_project, start_replica};
use crate::helpers::standins;

const LEASE_MS: u64 = 3_000;
const WAIT: Duration = Duration::from_secs(20);

/// A replica with short leases and fast polling, allowed to deliver to loopback stand-ins.
fn start(database_url: &str) -> Replica {
    let lease = LEASE_MS.to_string();
    start_replica(
        database_url,
        &[
            ("PULSELINE_ALLOW_PRIVATE_WEBHOOKS", "true"),
            ("PULSELINE_DELIVERY_LEASE_MS", &lease),
            ("PULSELINE_DELIVERY_TIMEOUT_MS", "1500"),
            ("PULSELINE_DELIVERY_PACE_BURST", "1000"),
            ("PULSELINE_DELIVERY_POLL_MS", "200"),
            // These tests count exactly-once delivery of 100 events, not the flood cap.
            ("PULSELINE_CATEGORY_MAX_PER_MINUTE", "1000"),
        ],
    )
}

async fn setup_channel(http: &reqwest::Client, base: &str, secret: &str, hook: &str) {
    let ch: Value = http
        .post(format!("{base}/api/v1/channels"))
        .bearer_auth(secret)
        .json(&json!({"name": "d", "kind": "discord", "url": hook}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let resp = http
        .post(format!("{base}/api/v1/categories"))
        .bearer_auth(secret)
        .json(&json!({"name": "Orders", "pattern": "order.*", "emoji": "📦", "colour": "#123456", "channel_id": ch["id"]}))
        .send().await.unwrap();
    assert_eq!(resp.status(), 201);
}

fn order(i: usize) -> Value {
    json!({"type": "track", "userId": "u", "event": "order.placed", "messageId": format!("o-{i}"), "properties": {"n": i}})
}

fn numbers(got: &[Value]) -> Vec<i64> {
    let mut ns: Vec<i64> = got
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
                .parse()
                .unwrap()
        })
        .collect();
    ns.sort();
    ns
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_deliver_each_notification_once() {
    if !helpers::on_postgres() {
        return; // replicas share a PostgreSQL server; the test command runs this on one
    }
    let p = cli_project().await;
    let discord = standins::discord().await;
    let (a, b) = (start(&p.url), start(&p.url));
    let http = reqwest::Client::new();
    setup_channel(&http, &a.base, &p.secret, &discord.url).await;
    // Replica b learns of the category through its periodic refresh (CATEGORY_REFRESH, 1 s).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    // Every event reaches both replicas, concurrently: each must be notified once.
    let mut sends = Vec::new();
    for chunk in 0..10 {
        for base in [&a.base, &b.base] {
            let (http, url, write) = (http.clone(), format!("{base}/v1/batch"), p.write.clone());
            sends.push(tokio::spawn(async move {
                let batch: Vec<Value> = (chunk * 10..chunk * 10 + 10).map(order).collect();
                http.post(url)
                    .basic_auth(write, Some(""))
                    .json(&json!({"batch": batch}))
                    .send()
                    .await
                    .unwrap()
                    .status()
            }));
        }
    }
    for s in sends {
        assert_eq!(s.await.unwrap(), 200);
    }
    let got = discord.receiver.wait_for_embeds(100, WAIT).await;
    // Both replicas keep polling; nothing more may arrive.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let got_after = discord.receiver.embeds();
    assert_eq!(got_after.len(), 100);
    assert_eq!(numbers(&got), (0..100).collect::<Vec<i64>>());
    assert_eq!(
        helpers::query_i64(
            &p.url,
            "SELECT COUNT(*) FROM deliveries WHERE status = 'delivered' AND attempts = 1"
        )
        .await,
        100
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_mid_delivery_leaves_the_work_to_the_other() {
    // Also on SQLite: the process killed right after acknowledging, and the next one started
    // on the same file, is the single-node crash case.
    let p = cli_project().await;
    let discord = standins::discord().await;
    discord.receiver.0.hold.store(true, Ordering::SeqCst);
    let mut a = start(&p.url);
    let http = reqwest::Client::new();
    setup_channel(&http, &a.base, &p.secret, &discord.url).await;
    let resp = http
        .post(format!("{}/v1/batch", a.base))
        .basic_auth(&p.write, Some(""))
        .json(&json!({"batch": [order(1)]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // a holds the lease and its request is open at the receiver.
    discord.receiver.wait_for_hits(1, WAIT).await;
    // On PostgreSQL the other replica is already running; on SQLite the next process starts.
    let running = helpers::on_postgres().then(|| start(&p.url));
    a.child.kill().unwrap(); // SIGKILL: no graceful shutdown, the lease stays behind
    a.child.wait().unwrap();
    let killed = Instant::now();
    let b = running.unwrap_or_else(|| start(&p.url));
    discord.receiver.0.hold.store(false, Ordering::SeqCst);

    let got = discord.receiver.wait_for_embeds(1, WAIT).await;
    let took = killed.elapsed();
    assert_eq!(numbers(&got), [1]);
    assert!(
        took < Duration::from_millis(LEASE_MS) + Duration::from_secs(5),
        "took {took:?}"
    );
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(discord.receiver.accepted().len(), 1);
    let (status, attempts): (String, i64) = {
        let d: Value = http
            .get(format!("{}/api/v1/deliveries", b.base))
            .bearer_auth(&p.secret)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            d["deliveries"][0]["status"].as_str().unwrap().to_owned(),
            d["deliveries"][0]["attempts"].as_i64().unwrap(),
        )
    };
    assert_eq!(
        (status.as_str(), attempts),
        ("delivered", 1),
        "the killed replica recorded nothing; b delivered once"
    );
    drop(b);
}
