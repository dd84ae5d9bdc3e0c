//! Issue 9 for deliveries: two real collector processes on one PostgreSQL deliver each
//! notification once, and a process killed mid-delivery leaves nothing stuck (the next one,
//! or the other replica, delivers once its lease expires).

use crate::helpers;
use crate::helpers::standins;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const LEASE_MS: u64 = 3_000;
const WAIT: Duration = Duration::from_secs(20);

struct Replica {
    child: Child,
    base: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(database_url: &str) -> Replica {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pulseline-collector"))
        .env("PULSELINE_LISTEN", "127.0.0.1:0")
        .env("PULSELINE_DATABASE_URL", database_url)
        .env("PULSELINE_LOG", "warn")
        .env("PULSELINE_ALLOW_PRIVATE_WEBHOOKS", "true")
        .env("PULSELINE_DELIVERY_LEASE_MS", LEASE_MS.to_string())
        .env("PULSELINE_DELIVERY_TIMEOUT_MS", "1500")
        .env("PULSELINE_DELIVERY_PACE_BURST", "1000")
        .env("PULSELINE_DELIVERY_POLL_MS", "200")
        // These tests count exactly-once delivery of 100 events, not the flood cap.
        .env("PULSELINE_CATEGORY_MAX_PER_MINUTE", "1000")
        .stdout(Stdio::piped())
        .spawn()
        .expect("collector starts");
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines {
        let line = line.unwrap();
        if let Some(url) = line.strip_prefix("Listening on ") {
            return Replica {
                child,
                base: url.to_owned(),
            };
        }
    }
    let status = child.wait();
    panic!("the collector exited before listening: {status:?}");
}

struct Project {
    url: String,
    write: String,
    secret: String,
    _dir: tempfile::TempDir,
}

async fn project() -> Project {
    let dir = tempfile::tempdir().unwrap();
    let url = helpers::fresh_database_url(dir.path()).await;
    let created = Command::new(env!("CARGO_BIN_EXE_pulseline-collector"))
        .args(["project", "create", "--name", "Replicated", "--json"])
        .env("PULSELINE_DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let keys: Value = serde_json::from_slice(&created.stdout).unwrap();
    Project {
        url,
        write: keys["write_key"].as_str().unwrap().to_owned(),
        secret: keys["secret_key"].as_str().unwrap().to_owned(),
        _dir: dir,
    }
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
    let p = project().await;
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
    let p = project().await;
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
