//! Runs the quickstart binary against an in-process collector.

use std::process::Command;

use pulseline_collector::{config::Config, startup::Application};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_delivers_its_events_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let app = Application::build(Config::for_tests(dir.path()))
        .await
        .unwrap();
    let port = app.port();
    let keys = app.bootstrap_keys().unwrap();
    tokio::spawn(app.run_until_stopped());

    let buffer = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_rust-quickstart");
    let write_key = keys.write_key.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .env("PULSELINE_HOST", format!("http://127.0.0.1:{port}"))
            .env("PULSELINE_WRITE_KEY", write_key)
            .env("TMPDIR", buffer.path())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let events: serde_json::Value = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/v1/events?limit=100"))
        .bearer_auth(&keys.secret_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), 4);
    for line in stdout.lines().filter_map(|l| l.strip_prefix("captured ")) {
        assert!(
            events.iter().any(|e| e["messageId"] == line),
            "{line} not stored"
        );
    }
    let order = events
        .iter()
        .find(|e| e["event"] == "order_completed")
        .unwrap();
    assert_eq!(order["properties"]["currency"], "EUR");
}

#[test]
fn quickstart_fails_without_a_write_key() {
    let status = Command::new(env!("CARGO_BIN_EXE_rust-quickstart"))
        .env_remove("PULSELINE_WRITE_KEY")
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_exits_non_zero_when_the_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let app = Application::build(Config::for_tests(dir.path()))
        .await
        .unwrap();
    let port = app.port();
    tokio::spawn(app.run_until_stopped());
    let buffer = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_rust-quickstart");
    let status = tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .env("PULSELINE_HOST", format!("http://127.0.0.1:{port}"))
            .env("PULSELINE_WRITE_KEY", "wk_wrong")
            .env("TMPDIR", buffer.path())
            .status()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(1));
}
