//! Durability: SIGKILL the real binary while clients stream batches, restart it, and check
//! that every batch that got a 2xx is stored, exactly once.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers;

struct Collector {
    child: Child,
    base: String,
    keys: Option<(String, String)>,
}

fn start(database_url: &str) -> Collector {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pulseline-collector"))
        .arg("serve")
        .env("PULSELINE_LISTEN", "127.0.0.1:0")
        .env("PULSELINE_DATABASE_URL", database_url)
        .env("PULSELINE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("collector starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut write, mut secret) = (None, None);
    loop {
        let line = lines.next().expect("collector prints its address").unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["write", "key:", key, ..] => write = Some(key.to_string()),
            ["secret", "key:", key, ..] => secret = Some(key.to_string()),
            ["Listening", "on", url] => {
                let keys = write.zip(secret);
                return Collector {
                    child,
                    base: url.to_string(),
                    keys,
                };
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_batch_survives_sigkill_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = helpers::fresh_database_url(dir.path()).await;
    let mut first = start(&database_url);
    let (write_key, secret_key) = first.keys.clone().expect("first start prints keys");
    let http = reqwest::Client::new();

    let mut streams = Vec::new();
    for stream in 0..6 {
        let http = http.clone();
        let url = format!("{}/v1/batch", first.base);
        let key = write_key.clone();
        streams.push(tokio::spawn(async move {
            let mut acked: Vec<String> = Vec::new();
            for n in 0.. {
                let ids: Vec<String> = (0..50).map(|i| format!("s{stream}-b{n}-m{i}")).collect();
                let batch: Vec<Value> = ids
                    .iter()
                    .map(|id| json!({"type": "track", "userId": "u", "event": "crash", "messageId": id}))
                    .collect();
                match http.post(&url).basic_auth(&key, Some("")).json(&json!({"batch": batch})).send().await {
                    Ok(r) if r.status() == 200 => acked.extend(ids),
                    Ok(r) => panic!("unexpected status {} before the kill", r.status()),
                    Err(_) => return acked, // the collector died under us
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // SIGKILL: no chance to flush or clean up.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let mut acked = Vec::new();
    for s in streams {
        acked.extend(s.await.unwrap());
    }
    assert!(
        acked.len() >= 1000,
        "too few batches acknowledged before the kill: {}",
        acked.len()
    );

    let mut second = start(&database_url);
    assert!(
        second.keys.is_none(),
        "a restart must not create another project"
    );
    let mut stored: HashMap<String, usize> = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{}/api/v1/events?limit=1000", second.base);
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = http
            .get(&url)
            .bearer_auth(&secret_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for e in page["events"].as_array().unwrap() {
            *stored
                .entry(e["messageId"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    second.child.kill().unwrap();
    second.child.wait().unwrap();

    let missing: Vec<&String> = acked
        .iter()
        .filter(|id| !stored.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(
        stored.values().all(|&n| n == 1),
        "an event was stored twice"
    );
}
