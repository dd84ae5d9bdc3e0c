//! A flooded category sends its cap, then one summary; on one process and across replicas.

use super::*;

/// A category sends at most PULSELINE_CATEGORY_MAX_PER_MINUTE messages a minute, however many
/// events the public write key sends; after the minute, one "and N more" message, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooded_category_sends_its_cap_then_one_summary() {
    use pulseline_collector::clock::FakeClock;
    let start: chrono::DateTime<chrono::Utc> = "2026-11-22T10:00:10Z".parse().unwrap();
    let clock = std::sync::Arc::new(FakeClock::new(start));
    let app = helpers::spawn_app_with_clock(
        |c| {
            c.delivery.category_max_per_minute = 3;
            // Pacing reschedules on the app's clock, which this test holds still.
            c.delivery.pace_burst = 100;
        },
        clock.clone(),
    )
    .await;
    let discord = standins::discord().await;
    let channel = app
        .create_channel(json!({"name": "n", "kind": "discord", "url": discord.url}))
        .await;
    app.create_category(
        json!({"name": "Signups", "pattern": "signup", "emoji": "🎉",
        "colour": "#123456", "channel_id": channel["id"]}),
    )
    .await;
    let flood = |from: usize, n: usize| {
        (from..from + n)
            .map(|i| event("signup", &format!("s-{i}"), json!({"i": i})))
            .collect::<Vec<_>>()
    };
    app.post_batch(flood(0, 10)).await;
    app.post_batch(flood(10, 1_240)).await;
    // The outbox rows are written in the ingest commit: 3 of 1,250.
    assert_eq!(app.query_i64("SELECT COUNT(*) FROM deliveries").await, 3);
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let capped: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("pulseline_notifications_capped_total "))
        .unwrap_or_else(|| panic!("no capped counter: {metrics}"))
        .parse()
        .unwrap();
    // The registry is shared by the tests of this process: at least this test's 1,247.
    assert!(capped >= 1_247.0, "{capped}");
    discord.receiver.wait_for_embeds(3, WAIT).await;

    // The next minute: a new allowance, and the summary of the last one.
    clock.advance(chrono::Duration::seconds(60));
    app.post_batch(flood(2_000, 2)).await;
    let deadline = Instant::now() + WAIT;
    while discord.receiver.embeds().len() < 6 {
        assert!(
            Instant::now() < deadline,
            "{:#?}",
            app.all_deliveries().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = discord.receiver.embeds();
    let titles: Vec<&str> = got.iter().map(|e| e["title"].as_str().unwrap()).collect();
    let summaries: Vec<&&str> = titles.iter().filter(|t| t.contains("more")).collect();
    assert_eq!(summaries, [&"🎉 Signups: and 1,247 more"], "{titles:?}");
    let summary = got
        .iter()
        .find(|e| e["title"] == "🎉 Signups: and 1,247 more")
        .unwrap();
    let description = summary["description"].as_str().unwrap();
    assert!(
        description.contains("from 10:00 to 10:01 UTC")
            && description.contains("PULSELINE_CATEGORY_MAX_PER_MINUTE"),
        "{description}"
    );
    assert_eq!(
        app.query_i64("SELECT COUNT(*) FROM deliveries WHERE source_key LIKE 'event-summary:%'")
            .await,
        1
    );
    assert_eq!(
        app.query_i64(
            "SELECT COUNT(*) FROM category_minutes WHERE summarized = 0 AND matched > sent"
        )
        .await,
        0,
        "no summary left to send"
    );
}

/// Two replicas on one database ingesting the same flood at once: together they send the cap,
/// and exactly one of them the summary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_category_cap_and_its_summary_hold_across_replicas() {
    use pulseline_collector::clock::FakeClock;
    use pulseline_collector::config::Config;
    use pulseline_collector::startup::Application;
    let start: chrono::DateTime<chrono::Utc> = "2026-11-22T10:00:10Z".parse().unwrap();
    let clock = std::sync::Arc::new(FakeClock::new(start));
    let configure = |c: &mut Config| {
        c.delivery.category_max_per_minute = 5;
        c.delivery.pace_burst = 100;
    };
    let first = helpers::spawn_app_with_clock(configure, clock.clone()).await;
    let discord = standins::discord().await;
    let channel = first
        .create_channel(json!({"name": "n", "kind": "discord", "url": discord.url}))
        .await;
    first
        .create_category(json!({"name": "Signups", "pattern": "signup", "emoji": "",
        "colour": "#123456", "channel_id": channel["id"]}))
        .await;
    let mut config = Config::for_tests_with_database(first.database_url.clone());
    configure(&mut config);
    let second = Application::build_with_clock(config, clock.clone())
        .await
        .unwrap();
    let bases = [
        first.base.clone(),
        format!("http://127.0.0.1:{}", second.port()),
    ];
    let stop = second.shutdown_handle();
    let task = tokio::spawn(second.run_until_stopped());

    let posts = (0..20).map(|r| {
        let url = format!("{}/v1/batch", bases[r % 2]);
        let batch: Vec<Value> = (0..10)
            .map(|i| event("signup", &format!("s-{r}-{i}"), json!({})))
            .collect();
        let request = first
            .http
            .post(url)
            .basic_auth(&first.keys.write_key, Some(""))
            .json(&json!({ "batch": batch }));
        async move { request.send().await.unwrap().status().as_u16() }
    });
    let statuses = futures::future::join_all(posts).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(first.query_i64("SELECT COUNT(*) FROM deliveries").await, 5);

    discord.receiver.wait_for_embeds(5, WAIT).await;
    clock.advance(chrono::Duration::seconds(60));
    let got = discord.receiver.wait_for_embeds(6, WAIT).await;
    assert_eq!(got[5]["title"], "Signups: and 195 more");
    // The finished minute's counter row is dropped once summed up; one summary, no more.
    let deadline = Instant::now() + WAIT;
    while first
        .query_i64("SELECT COUNT(*) FROM category_minutes")
        .await
        > 0
    {
        assert!(Instant::now() < deadline, "the finished minute's row stays");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        first
            .query_i64("SELECT COUNT(*) FROM deliveries WHERE source_key LIKE 'event-summary:%'")
            .await,
        1
    );
    stop.shutdown();
    task.await.unwrap().unwrap();
}
