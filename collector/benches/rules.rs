//! The rules benchmark (issue 20; figures in docs/benchmarks.md#alert-rules): 1,000 rules over
//! 10 M events on SQLite, release build.
//!
//! 1. Seeds two projects of `RULES_BENCH_EVENTS / 2` events each (default 10 M in all) over the
//!    30 days before the start, through the real ingest path of an in-process collector with
//!    a fake clock, and creates 500 rules in each over the API (`seed::rules`). The data and
//!    keys are kept in `RULES_BENCH_DIR` and reused by the next run.
//! 2. Drives evaluation passes at fake times: the backfill of every rule's history, an hour
//!    of steady minute passes, the pass when an hour closes (every rule has a new bucket), and
//!    the first such pass after a restart (an evaluator with empty memory).
//! 3. Starts the release collector binary on the same database with the default settings, a
//!    Discord stand-in and a minute probe rule, and measures when each notification arrives
//!    after its bucket closes (plus `CLOSE_GRACE_MS`).
//!
//! Run: `RULES_BENCH_DIR=/somewhere/with/10GB cargo bench -p pulseline-collector --bench rules`
//! and delete the directory afterwards.

#[path = "rules/seed.rs"]
mod seed;
// The tests' Discord stand-in, which enforces Discord's payload limits.
#[path = "../tests/api/helpers"]
#[allow(unused_imports)]
mod helpers {
    pub mod standins;
}

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant, SystemTime};

use chrono::{DateTime, Duration, DurationRound, Utc};
use pulseline_collector::alerting::rules::evaluate::CLOSE_GRACE_MS;
use pulseline_collector::alerting::rules::{Evaluator, PassReport};
use pulseline_collector::clock::FakeClock;
use pulseline_collector::config::Config;
use pulseline_collector::startup::Application;
use pulseline_collector::store::Store;
use serde_json::{Value, json};

const DAYS: i64 = 30;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists benchmarks; this one runs only when asked
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run());
}

struct Project {
    write: String,
    secret: String,
}

async fn run() {
    let dir = PathBuf::from(
        std::env::var("RULES_BENCH_DIR").expect("set RULES_BENCH_DIR to a directory for the data"),
    );
    std::fs::create_dir_all(&dir).unwrap();
    let events: u64 = std::env::var("RULES_BENCH_EVENTS")
        .ok()
        .map_or(10_000_000, |v| {
            v.parse().expect("RULES_BENCH_EVENTS is a number")
        });
    let url = format!("sqlite://{}", dir.join("rules.db").display());
    let marker = dir.join("seeded.json");
    let clock = Arc::new(FakeClock::new(Utc::now()));
    let (end, projects) = if let Ok(text) = std::fs::read_to_string(&marker) {
        let v: Value = serde_json::from_str(&text).unwrap();
        let end = DateTime::parse_from_rfc3339(v["end"].as_str().unwrap())
            .unwrap()
            .to_utc();
        let projects = v["projects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| Project {
                write: p["write"].as_str().unwrap().to_owned(),
                secret: p["secret"].as_str().unwrap().to_owned(),
            })
            .collect();
        eprintln!("reusing the data seeded up to {end}");
        (end, projects)
    } else {
        seed_all(&dir, &url, &clock, events).await
    };
    let seeded_events = count(&url, "SELECT COUNT(*) FROM events").await;
    let rules = count(&url, "SELECT COUNT(*) FROM alert_rules").await;
    eprintln!("{seeded_events} events, {rules} rules");

    passes(&url, end).await;
    latency(&url, &projects[0]).await;
}

async fn seed_all(
    dir: &std::path::Path,
    url: &str,
    clock: &Arc<FakeClock>,
    events: u64,
) -> (DateTime<Utc>, Vec<Project>) {
    let end = Utc::now().duration_trunc(Duration::minutes(1)).unwrap();
    clock.set(end);
    let mut config = Config::for_tests_with_database(url.to_owned());
    config.limits.max_queued_events = 1_000_000;
    let app = Application::build_with_clock(config, clock.clone())
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let first = app.bootstrap_keys().expect("a fresh database");
    let shutdown = app.shutdown_handle();
    let task = tokio::spawn(app.run_until_stopped());
    let second = cli_project(url);
    let projects = vec![
        Project {
            write: first.write_key.clone(),
            secret: first.secret_key.clone(),
        },
        second,
    ];
    let http = reqwest::Client::new();
    for (i, p) in projects.iter().enumerate() {
        let started = Instant::now();
        seed::ingest(&base, &p.write, events / 2, DAYS, end, i as u64).await;
        eprintln!(
            "project {i}: {} events in {:.0?}",
            events / 2,
            started.elapsed()
        );
        for rule in seed::rules() {
            let resp = http
                .post(format!("{base}/api/v1/rules"))
                .bearer_auth(&p.secret)
                .json(&rule)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
        }
    }
    shutdown.shutdown();
    task.await.unwrap().unwrap();
    let keys: Vec<Value> = projects
        .iter()
        .map(|p| json!({"write": p.write, "secret": p.secret}))
        .collect();
    let marker = json!({"end": end.to_rfc3339(), "projects": keys});
    std::fs::write(dir.join("seeded.json"), marker.to_string()).unwrap();
    (end, projects)
}

fn cli_project(url: &str) -> Project {
    let out = Command::new(env!("CARGO_BIN_EXE_pulseline-collector"))
        .args(["project", "create", "--name", "Second", "--json"])
        .env("PULSELINE_DATABASE_URL", url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys: Value = serde_json::from_slice(&out.stdout).unwrap();
    Project {
        write: keys["write_key"].as_str().unwrap().to_owned(),
        secret: keys["secret_key"].as_str().unwrap().to_owned(),
    }
}

async fn count(url: &str, sql: &'static str) -> i64 {
    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
    sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
}

async fn timed(e: &mut Evaluator, store: &Store, at: DateTime<Utc>) -> (StdDuration, PassReport) {
    let started = Instant::now();
    let report = e.pass(store, at).await.unwrap();
    (started.elapsed(), report)
}

/// Passes at fake times in the last two hours of the data.
async fn passes(url: &str, end: DateTime<Utc>) {
    let store = Store::open(url, Default::default()).await.unwrap();
    let grace = Duration::milliseconds(CLOSE_GRACE_MS + 1_000);
    let h0 = end.duration_trunc(Duration::hours(1)).unwrap() - Duration::hours(2);
    let mut e = Evaluator::new("bench");
    // Run the reset so a rerun measures the backfill again.
    store_exec(url, "DELETE FROM rule_buckets").await;
    store_exec(
        url,
        "UPDATE alert_rules SET last_bucket = NULL, last_outcome = NULL",
    )
    .await;
    let started = Instant::now();
    let mut n = 0;
    loop {
        let (took, report) = timed(&mut e, &store, h0 + grace).await;
        n += 1;
        eprintln!("backfill pass {n}: {took:.2?} {report:?}");
        if report.backfilling == 0 {
            break;
        }
    }
    println!(
        "backfill of 1,000 rules: {:.1?} in {n} passes",
        started.elapsed()
    );
    let mut minute = Vec::new();
    for m in 1..60 {
        let (took, _) = timed(&mut e, &store, h0 + Duration::minutes(m) + grace).await;
        minute.push(took);
    }
    let (hour, report) = timed(&mut e, &store, h0 + Duration::hours(1) + grace).await;
    println!(
        "steady pass when an hour closes (every rule has a new bucket): {hour:.2?} {report:?}"
    );
    for m in 61..120 {
        let (took, _) = timed(&mut e, &store, h0 + Duration::minutes(m) + grace).await;
        minute.push(took);
    }
    minute.sort();
    println!(
        "steady minute passes: median {:.0?}, max {:.0?} ({} passes)",
        minute[minute.len() / 2],
        minute[minute.len() - 1],
        minute.len()
    );
    let mut restarted = Evaluator::new("bench-restarted");
    let (took, report) = timed(&mut restarted, &store, h0 + Duration::hours(2) + grace).await;
    println!("first pass after a restart, when an hour closes: {took:.2?} {report:?}");
    let (took, _) = timed(&mut restarted, &store, h0 + Duration::hours(2) + grace * 2).await;
    println!("the next pass in the same minute: {took:.2?}");
    let sizes = count(url, "SELECT COUNT(*) FROM rule_buckets").await;
    println!("rule_buckets rows: {sizes}");
}

async fn store_exec(url: &str, sql: &'static str) {
    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
    sqlx::query(sql).execute(&mut c).await.unwrap();
}

/// The release binary with its own clock and default pass interval: bucket close (plus the
/// grace) → Discord stand-in receipt for a minute probe rule, alongside the 1,000 rules.
async fn latency(url: &str, project: &Project) {
    let discord = helpers::standins::discord().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_pulseline-collector"))
        .env("PULSELINE_LISTEN", "127.0.0.1:0")
        .env("PULSELINE_DATABASE_URL", url)
        .env("PULSELINE_LOG", "warn")
        .env("PULSELINE_ALLOW_PRIVATE_WEBHOOKS", "true")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let base = {
        use std::io::BufRead;
        let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        lines
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix("Listening on ").map(str::to_owned))
            .expect("the collector listens")
    };
    let http = reqwest::Client::new();
    let channel: Value = http
        .post(format!("{base}/api/v1/channels"))
        .bearer_auth(&project.secret)
        .json(&json!({"name": "probe", "kind": "discord", "url": discord.url}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The project holds its 500 rules, the most allowed: the probe takes the last one's place.
    let listed: Value = http
        .get(format!("{base}/api/v1/rules"))
        .bearer_auth(&project.secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let last = listed["rules"].as_array().and_then(|r| r.last()).unwrap()["id"].clone();
    let resp = http
        .delete(format!("{base}/api/v1/rules/{last}"))
        .bearer_auth(&project.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = http
        .post(format!("{base}/api/v1/rules"))
        .bearer_auth(&project.secret)
        .json(
            &json!({"name": "probe", "series": {"event": "bench.probe", "bucket": "minute"},
            "condition": {"type": "threshold", "op": ">", "value": 0},
            "channel_ids": [channel["id"]]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    // Probes in every other minute: a firing notification after each minute with one, a
    // resolved one after each minute without.
    let mut latencies = Vec::new();
    let first = Utc::now().duration_trunc(Duration::minutes(1)).unwrap() + Duration::minutes(1);
    for k in 0..4 {
        let minute = first + Duration::minutes(k);
        let now = Utc::now();
        if now < minute {
            tokio::time::sleep((minute - now).to_std().unwrap()).await;
        }
        let firing = k % 2 == 0;
        if firing {
            let probe = json!({"type": "track", "userId": "probe", "event": "bench.probe",
                "messageId": format!("probe-{}", minute.timestamp())});
            let resp = http
                .post(format!("{base}/v1/track"))
                .basic_auth(&project.write, Some(""))
                .json(&probe)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
        }
        let due = minute + Duration::minutes(1) + Duration::milliseconds(CLOSE_GRACE_MS);
        let deadline = Instant::now() + StdDuration::from_secs(150);
        let want = usize::try_from(k).unwrap() + 1;
        while discord.receiver.accepted().len() < want && Instant::now() < deadline {
            tokio::time::sleep(StdDuration::from_millis(10)).await;
        }
        let accepted = discord.receiver.accepted_with_headers();
        let Some((_, _, at)) = accepted.get(want - 1) else {
            println!("minute {k}: no notification within 150 s");
            break;
        };
        let at: DateTime<Utc> = (SystemTime::now() - at.elapsed()).into();
        let late = at - due;
        println!(
            "minute {k} ({}): notification {:.2} s after close + grace",
            if firing { "firing" } else { "resolved" },
            late.num_milliseconds() as f64 / 1000.0
        );
        latencies.push(late.num_milliseconds());
    }
    let _ = child.kill();
    let _ = child.wait();
    latencies.sort();
    if let (Some(first), Some(last)) = (latencies.first(), latencies.last()) {
        println!(
            "bucket close + grace → Discord stand-in: {first}–{last} ms over {} notifications",
            latencies.len()
        );
    }
}
