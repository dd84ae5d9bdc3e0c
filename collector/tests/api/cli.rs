//! The administration commands, run as a user would, against a running collector's database.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::process::Command;

use serde_json::{Value, json};

use crate::helpers::{self, spawn_app, track};

/// Runs the binary without blocking the test's runtime: the collector under test runs on it,
/// and a blocked runtime would freeze its open transactions while the command waits on them.
async fn cli(database_url: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pulseline-collector"))
        .args(args)
        .env("PULSELINE_DATABASE_URL", database_url)
        .env("PULSELINE_LOG", "warn")
        .output()
        .await
        .expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn cli_json(database_url: &str, args: &[&str]) -> Value {
    let (ok, stdout, stderr) = cli(database_url, args).await;
    assert!(ok, "{args:?} failed: {stderr}");
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{args:?} printed non-JSON ({e}): {stdout}"))
}

async fn ingest_status(app: &helpers::TestApp, key: &str, id: &str) -> u16 {
    app.http
        .post(app.url("/v1/batch"))
        .basic_auth(key, Some(""))
        .json(&json!({"batch": [track("u", "e", id)]}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn project_create_prints_usable_keys_as_json() {
    let app = spawn_app().await;
    let created = cli_json(
        &app.database_url,
        &["project", "create", "--name", "Shop", "--json"],
    )
    .await;
    let write_key = created["write_key"].as_str().unwrap();
    assert!(created["project_id"].as_i64().unwrap() > 1);
    assert!(created["secret_key"].as_str().unwrap().starts_with("pls_"));
    assert_eq!(ingest_status(&app, write_key, "shop-1").await, 200);

    let projects = cli_json(&app.database_url, &["project", "list", "--json"]).await;
    assert_eq!(projects.as_array().unwrap().len(), 2);
    let keys = cli_json(&app.database_url, &["key", "list", "--json"]).await;
    let listing = keys.to_string();
    assert!(
        !listing.contains(created["secret_key"].as_str().unwrap()),
        "a listing must never show a whole secret key"
    );
    assert!(
        listing.contains(write_key),
        "write keys are public: {listing}"
    );
    assert_eq!(keys.as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn revoked_keys_stop_working_at_once_and_rotation_swaps_keys() {
    let app = spawn_app().await;
    let url = &app.database_url;
    let write_id = cli_json(url, &["key", "list", "--project", "1", "--json"])
        .await
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "write")
        .unwrap()["key_id"]
        .as_i64()
        .unwrap()
        .to_string();

    let extra = cli_json(
        url,
        &[
            "key",
            "create",
            "--project",
            "1",
            "--kind",
            "write",
            "--json",
        ],
    )
    .await;
    let extra_key = extra["key"].as_str().unwrap().to_owned();
    assert_eq!(ingest_status(&app, &extra_key, "r-1").await, 200);
    let (ok, _, stderr) = cli(url, &["key", "revoke", &extra["key_id"].to_string()]).await;
    assert!(ok, "{stderr}");
    assert_eq!(ingest_status(&app, &extra_key, "r-2").await, 401);

    let rotated = cli_json(url, &["key", "rotate", &write_id, "--json"]).await;
    let new_key = rotated["key"].as_str().unwrap();
    assert_eq!(ingest_status(&app, &app.keys.write_key, "r-3").await, 401);
    assert_eq!(ingest_status(&app, new_key, "r-4").await, 200);
    assert_eq!(app.events_total().await, 2);

    // Write keys are listed with the key itself; secret keys never are. A rotation with a
    // grace period leaves the old key working beside the new one.
    let listed = cli_json(url, &["key", "list", "--project", "1", "--json"]).await;
    let listed = listed.as_array().unwrap();
    assert!(listed.iter().any(|k| k["key"] == new_key), "{listed:?}");
    assert!(
        listed
            .iter()
            .filter(|k| k["kind"] == "secret")
            .all(|k| k["key"].is_null())
    );
    let new_id = rotated["key_id"].to_string();
    let (ok, _, stderr) = cli(url, &["key", "rotate", &new_id, "--grace-hours", "721"]).await;
    assert!(!ok && stderr.contains("--grace-hours 721"), "{stderr}");
    let (ok, stdout, stderr) = cli(url, &["key", "rotate", &new_id, "--grace-hours", "2"]).await;
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("keeps working for 2 more hours"),
        "{stdout}"
    );
    assert_eq!(ingest_status(&app, new_key, "r-5").await, 200);
    let (_, list, _) = cli(url, &["key", "list", "--project", "1"]).await;
    assert!(list.contains("active until"), "{list}");
}

#[tokio::test]
async fn mistakes_are_explained() {
    let app = spawn_app().await;
    let (ok, _, stderr) = cli(&app.database_url, &["key", "revoke", "999"]).await;
    assert!(!ok);
    assert!(stderr.contains("there is no key 999"), "{stderr}");
    let (ok, _, stderr) = cli(
        &app.database_url,
        &["key", "create", "--project", "42", "--kind", "write"],
    )
    .await;
    assert!(!ok);
    assert!(stderr.contains("there is no project 42"), "{stderr}");
    let (ok, _, stderr) = cli("mysql://nope", &["project", "list"]).await;
    assert!(!ok);
    assert!(stderr.contains("PULSELINE_DATABASE_URL"), "{stderr}");
}

#[tokio::test]
async fn plan_and_help_output_reads_right() {
    let app = spawn_app().await;
    let url = &app.database_url;
    let (ok, stdout, stderr) = cli(
        url,
        &[
            "plan",
            "set",
            "team",
            "--events-per-month",
            "5000000",
            "--retention-days",
            "forever",
        ],
    )
    .await;
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout.trim(),
        "Plan team: 5000000 events/month, data kept forever."
    );
    let (ok, stdout, stderr) = cli(
        url,
        &[
            "plan",
            "set",
            "team",
            "--events-per-month",
            "unlimited",
            "--retention-days",
            "90",
        ],
    )
    .await;
    assert!(ok, "{stderr}");
    assert!(stdout.trim().ends_with("data kept 90 days."), "{stdout}");
    let (ok, help, _) = cli(url, &["serve", "--help"]).await;
    assert!(ok);
    assert!(help.contains("postgres://user:pass@host:5432/db"), "{help}");
    assert!(!help.contains("later"), "{help}");
}

#[tokio::test]
async fn serve_refuses_a_default_plan_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let url = helpers::fresh_database_url(dir.path()).await;
    let out = Command::new(env!("CARGO_BIN_EXE_pulseline-collector"))
        .arg("serve")
        .env("PULSELINE_DATABASE_URL", &url)
        .env("PULSELINE_LISTEN", "127.0.0.1:0")
        .env("PULSELINE_DEFAULT_PLAN", "platinum")
        .env("PULSELINE_LOG", "warn")
        .output()
        .await
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("PULSELINE_DEFAULT_PLAN=platinum is not a plan")
            && stderr.contains("free")
            && stderr.contains("plan set"),
        "{stderr}"
    );
}

#[tokio::test]
async fn serve_refuses_a_category_cap_of_zero() {
    let dir = tempfile::tempdir().unwrap();
    let url = helpers::fresh_database_url(dir.path()).await;
    let out = Command::new(env!("CARGO_BIN_EXE_pulseline-collector"))
        .arg("serve")
        .env("PULSELINE_DATABASE_URL", &url)
        .env("PULSELINE_LISTEN", "127.0.0.1:0")
        .env("PULSELINE_CATEGORY_MAX_PER_MINUTE", "0")
        .env("PULSELINE_LOG", "warn")
        .output()
        .await
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("PULSELINE_CATEGORY_MAX_PER_MINUTE must be at least 1"),
        "{stderr}"
    );
}

#[tokio::test]
async fn project_raw_retention_is_set_within_the_plan() {
    let app = spawn_app().await;
    let db = app.database_url.as_str();
    let project = app.keys.project_id.to_string();
    let (ok, _, stderr) = cli(
        db,
        &[
            "plan",
            "set",
            "trial",
            "--events-per-month",
            "unlimited",
            "--retention-days",
            "30",
        ],
    )
    .await;
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = cli(db, &["project", "set-plan", &project, "trial"]).await;
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = cli(db, &["project", "set-raw-retention", &project, "31"]).await;
    assert!(!ok);
    assert!(
        stderr.contains("from 1 to 30 (the plan keeps data 30 days)"),
        "{stderr}"
    );
    let (ok, _, stderr) = cli(db, &["project", "set-raw-retention", &project, "a week"]).await;
    assert!(
        !ok && stderr.contains("a number of days or 'plan'"),
        "{stderr}"
    );
    let (ok, stdout, stderr) = cli(db, &["project", "set-raw-retention", &project, "7"]).await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("keeps raw events 7 days"), "{stdout}");
    let store = app.store().await;
    let retention = store
        .raw_retention(app.keys.project_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(retention.effective_raw_retention_days, Some(7));
    let (ok, _, stderr) = cli(db, &["project", "set-raw-retention", &project, "plan"]).await;
    assert!(ok, "{stderr}");
    let retention = store
        .raw_retention(app.keys.project_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(retention.raw_retention_days, None);
    assert_eq!(retention.effective_raw_retention_days, Some(30));
}

/// Every event of the database at `database_url`, read through a collector started on it.
async fn events_served_from(database_url: &str, keys: &helpers::TestApp) -> Vec<Value> {
    use pulseline_collector::startup::Application;
    let config = pulseline_collector::config::Config::for_tests_with_database(database_url.into());
    let app = Application::build(config)
        .await
        .expect("a collector starts on the copy");
    let copy = helpers::TestApp {
        base: format!("http://127.0.0.1:{}", app.port()),
        keys: keys.keys.clone(),
        http: reqwest::Client::new(),
        dir: tempfile::tempdir().unwrap(),
        database_url: database_url.into(),
        shutdown: app.shutdown_handle(),
        task: tokio::spawn(app.run_until_stopped()),
    };
    let events = copy.all_events("").await;
    copy.shutdown.shutdown();
    events
}

/// A client sending batches of [`LOAD_BATCH`] events one after the other without pause,
/// recording which it got acknowledged, in order.
struct SteadyLoad {
    acked: Arc<Mutex<Vec<usize>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

/// Events per batch of [`SteadyLoad`].
const LOAD_BATCH: usize = 50;

impl SteadyLoad {
    fn start(app: &helpers::TestApp) -> Self {
        let acked: Arc<Mutex<Vec<usize>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (acked_by_task, stop_seen_by_task) = (Arc::clone(&acked), Arc::clone(&stop));
        let (http, url, key) = (
            app.http.clone(),
            app.url("/v1/batch"),
            app.keys.write_key.clone(),
        );
        let task = tokio::spawn(async move {
            for n in 0.. {
                if stop_seen_by_task.load(Ordering::Relaxed) {
                    break;
                }
                let batch: Vec<Value> = (0..LOAD_BATCH)
                    .map(|i| track("loader", "Load", &format!("b{n}-{i}")))
                    .collect();
                let response = http
                    .post(&url)
                    .basic_auth(&key, Some(""))
                    .json(&json!({ "batch": batch }))
                    .send()
                    .await
                    .expect("ingest reachable");
                assert_eq!(response.status(), 200);
                acked_by_task.lock().unwrap().push(n);
            }
        });
        SteadyLoad { acked, stop, task }
    }

    fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Waits until `n` batches are acknowledged in all.
    async fn wait_for(&self, n: usize, deadline: Instant, what: &str) {
        while self.acked() < n {
            assert!(Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the client: the number of batches acknowledged in all.
    async fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        let acked = Arc::clone(&self.acked);
        self.task.await.unwrap();
        acked.lock().unwrap().len()
    }
}

/// `backup`, as the CLI would run beside the collector.
async fn backup(database_url: &str, to: &str) -> (bool, String, String) {
    cli(database_url, &["backup", "--to", to]).await
}

/// `backup` while a client keeps ingesting: the copy starts as a collector, holds every event
/// acknowledged before the backup started, and is one point in time: each batch wholly in or
/// out, and no batch without every batch acknowledged before it.
#[tokio::test]
async fn backup_under_load_is_a_point_in_time_copy_holding_every_acknowledged_event() {
    if helpers::on_postgres() {
        return; // see the next test
    }
    let app = spawn_app().await;
    let to = app.dir.path().join("backup.db");
    let to_arg = to.to_str().unwrap().to_owned();
    let load = SteadyLoad::start(&app);
    let deadline = Instant::now() + Duration::from_secs(60);
    load.wait_for(20, deadline, "ingest too slow").await;
    let acked_before = load.acked();
    let (ok, stdout, stderr) = backup(&app.database_url, &to_arg).await;
    assert!(ok, "backup failed: {stderr}");
    assert!(stdout.contains(&to_arg), "{stdout}");
    // Ingest went on through the backup and after it.
    load.wait_for(load.acked() + 5, deadline, "ingest stopped")
        .await;
    let acked_in_all = load.stop().await;

    let events = events_served_from(&format!("sqlite://{to_arg}"), &app).await;
    let mut per_batch = std::collections::BTreeMap::<usize, usize>::new();
    for event in &events {
        let id = event["messageId"].as_str().unwrap();
        let n: usize = id[1..id.find('-').unwrap()].parse().unwrap();
        *per_batch.entry(n).or_default() += 1;
    }
    assert!(
        per_batch.values().all(|&count| count == LOAD_BATCH),
        "a batch is partly in the copy: {per_batch:?}"
    );
    let batches: Vec<usize> = per_batch.keys().copied().collect();
    assert_eq!(
        batches,
        (0..batches.len()).collect::<Vec<_>>(),
        "the copy has a batch without one acknowledged before it"
    );
    assert!(
        batches.len() >= acked_before,
        "{} batches acknowledged before the backup, {} in the copy",
        acked_before,
        batches.len()
    );
    assert!(batches.len() <= acked_in_all);
}

#[tokio::test]
async fn a_postgresql_backup_is_left_to_pg_dump() {
    if !helpers::on_postgres() {
        return;
    }
    let app = spawn_app().await;
    let to = app.dir.path().join("backup.db");
    let (ok, _, stderr) = cli(&app.database_url, &["backup", "--to", to.to_str().unwrap()]).await;
    assert!(!ok, "a PostgreSQL backup is pg_dump's job");
    assert!(
        stderr.contains("pg_dump") && stderr.contains("pg_restore"),
        "{stderr}"
    );
    assert!(!to.exists());
}

/// It never overwrites, and says so.
#[tokio::test]
async fn a_backup_never_overwrites_a_file() {
    if helpers::on_postgres() {
        return; // see a_postgresql_backup_is_left_to_pg_dump
    }
    let app = spawn_app().await;
    let to = app.dir.path().join("backup.db");
    let to_arg = to.to_str().unwrap();
    let (ok, _, stderr) = backup(&app.database_url, to_arg).await;
    assert!(ok, "backup failed: {stderr}");
    let (ok, _, stderr) = cli(&app.database_url, &["backup", "--to", to_arg]).await;
    assert!(!ok);
    assert!(stderr.contains("already exists"), "{stderr}");
}

#[tokio::test]
async fn a_reader_that_goes_away_ends_a_listing_quietly() {
    let app = spawn_app().await;
    for name in ["a", "b", "c"] {
        cli_json(
            &app.database_url,
            &["project", "create", "--name", name, "--json"],
        )
        .await;
    }
    for args in [&["key", "list"][..], &["project", "list", "--json"][..]] {
        // As `pulseline-collector key list | head -0` would: the reader closes before any line.
        let mut child = Command::new(env!("CARGO_BIN_EXE_pulseline-collector"))
            .args(args)
            .env("PULSELINE_DATABASE_URL", &app.database_url)
            .env("PULSELINE_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the binary runs");
        drop(child.stdout.take());
        let out = child.wait_with_output().await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?}, {stderr}", out.status);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
