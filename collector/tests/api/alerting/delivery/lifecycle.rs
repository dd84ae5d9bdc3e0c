//! Restarts and shutdowns: nothing lost or sent twice, the send in flight finished.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_delivery_loses_and_duplicates_nothing() {
    use pulseline_collector::config::Config;
    use pulseline_collector::startup::Application;
    let configure = |c: &mut Config| {
        c.shutdown_grace_secs = 1;
        c.delivery.lease_ms = 2_500;
        c.delivery.timeout_ms = 1_000;
        c.delivery.retry_min_ms = 100;
    };
    let mut first = spawn_app_with(configure).await;
    let discord = standins::discord().await;
    discord
        .receiver
        .0
        .hold
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let channel = first
        .create_channel(json!({"name": "d", "kind": "discord", "url": discord.url}))
        .await;
    first.create_category(json!({"name": "c", "pattern": "order", "emoji": "📦", "colour": "#123456", "channel_id": channel["id"]})).await;
    let batch: Vec<Value> = (0..5)
        .map(|i| event("order", &format!("o-{i}"), json!({"n": i})))
        .collect();
    first.post_batch(batch).await;
    // Requests are in flight (held open by the receiver) when the collector stops.
    discord.receiver.wait_for_hits(1, WAIT).await;
    first.shutdown.shutdown();
    (&mut first.task).await.unwrap().unwrap();
    assert!(discord.receiver.accepted().is_empty());

    discord
        .receiver
        .0
        .hold
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let mut config = Config::for_tests_with_database(first.database_url.clone());
    configure(&mut config);
    let second = Application::build(config).await.unwrap();
    let stop = second.shutdown_handle();
    let task = tokio::spawn(second.run_until_stopped());
    let got = discord.receiver.wait_for_embeds(5, WAIT).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let got_after = discord.receiver.embeds();
    assert_eq!(got_after.len(), 5, "exactly once each: {got_after:?}");
    let mut ns: Vec<String> = got
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
                .to_owned()
        })
        .collect();
    ns.sort();
    assert_eq!(ns, ["0", "1", "2", "3", "4"]);
    assert_eq!(
        first
            .query_i64("SELECT COUNT(*) FROM deliveries WHERE status = 'delivered'")
            .await,
        5
    );
    stop.shutdown();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_lets_the_send_in_flight_finish() {
    let app = spawn_app_with(|c| c.shutdown_grace_secs = 5).await;
    let discord = standins::discord().await;
    discord
        .receiver
        .script(Scripted::Slow(Duration::from_millis(800)));
    let channel = app
        .create_channel(json!({"name": "d", "kind": "discord", "url": discord.url}))
        .await;
    app.create_category(json!({"name": "c", "pattern": "e", "emoji": "", "colour": "#123456", "channel_id": channel["id"]})).await;
    app.post_batch(vec![event("e", "e-1", json!({}))]).await;
    discord.receiver.wait_for_hits(1, WAIT).await;
    app.shutdown.shutdown();
    let TestApp {
        task,
        database_url,
        dir: _dir,
        ..
    } = app;
    task.await.unwrap().unwrap();
    assert_eq!(discord.receiver.accepted().len(), 1);
    assert_eq!(
        helpers::query_i64(
            &database_url,
            "SELECT COUNT(*) FROM deliveries WHERE status = 'delivered' AND attempts = 1"
        )
        .await,
        1,
        "the answer was recorded before the process stopped"
    );
}
