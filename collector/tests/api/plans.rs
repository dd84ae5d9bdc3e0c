//! Plans, quotas, retention, rate limits and rollups, on whichever backend the suite runs.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use pulseline_collector::clock::{Clock, FakeClock};
use pulseline_collector::store::Plan;
use serde_json::{Value, json};

use crate::helpers::{self, TestApp, spawn_app_with, spawn_app_with_clock, track};

fn batch(ids: std::ops::Range<u32>, prefix: &str) -> Value {
    json!({"batch": ids.map(|i| track("u", "e", &format!("{prefix}-{i}"))).collect::<Vec<_>>()})
}

#[tokio::test]
async fn monthly_quota_counts_stored_events_once_and_resets_next_month() {
    let clock = Arc::new(FakeClock::new(
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap(),
    ));
    let app = spawn_app_with_clock(|_| {}, clock.clone()).await;
    let store = app.store().await;
    store
        .upsert_plan(&Plan {
            name: "tiny".into(),
            events_per_month: Some(10),
            retention_days: None,
        })
        .await
        .unwrap();
    assert!(
        store
            .set_project_plan(app.keys.project_id, "tiny")
            .await
            .unwrap()
    );

    assert_eq!(app.post("/v1/batch", &batch(0..6, "q")).await.status(), 200);
    // Resending the same events (an SDK retry) is acknowledged and does not count.
    assert_eq!(app.post("/v1/batch", &batch(0..6, "q")).await.status(), 200);
    let (_, stats) = app.get_json("/api/v1/stats").await;
    assert_eq!(stats["events_this_month"], 6);
    assert_eq!(
        app.post("/v1/batch", &batch(6..10, "q")).await.status(),
        200
    );

    let resp = app.post("/v1/batch", &batch(10..11, "q")).await;
    assert_eq!(resp.status(), 429);
    let retry_after: i64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        retry_after,
        (Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap() - clock.now()).num_seconds()
    );
    let body: Value = resp.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("monthly quota of 10 events (plan 'tiny')"),
        "{message}"
    );
    assert!(message.contains("2026-12-01T00:00:00Z"), "{message}");
    assert_eq!(app.events_total().await, 10);

    clock.set(Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 1).unwrap());
    assert_eq!(
        app.post("/v1/batch", &batch(10..11, "q")).await.status(),
        200
    );
}

#[tokio::test]
async fn retention_removes_data_past_the_plan_and_keeps_the_rest() {
    let start = Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap();
    let clock = Arc::new(FakeClock::new(start));
    let app = spawn_app_with_clock(|_| {}, clock.clone()).await;
    let store = app.store().await;
    assert!(
        store
            .set_project_plan(app.keys.project_id, "free")
            .await
            .unwrap()
    ); // 30 days
    let other =
        pulseline_collector::projects::create_project(&store, "Forever", "unlimited", start)
            .await
            .unwrap();
    let send_other = |id: &str| {
        app.http
            .post(app.url("/v1/batch"))
            .basic_auth(&other.write_key, Some(""))
            .json(&json!({"batch": [track("u", "e", id)]}))
            .send()
    };

    assert_eq!(
        app.post("/v1/batch", &batch(0..5, "old")).await.status(),
        200
    );
    assert_eq!(send_other("other-old").await.unwrap().status(), 200);
    clock.advance(Duration::days(20));
    store.prepare_partitions(clock.now()).await.unwrap();
    assert_eq!(
        app.post("/v1/batch", &batch(0..3, "new")).await.status(),
        200
    );

    clock.advance(Duration::days(11)); // the first batch is now 31 days old, the second 11
    let report = pulseline_collector::maintenance::run_once(&store, clock.now())
        .await
        .unwrap();
    assert_eq!(report.events_deleted, 5);
    let left: Vec<String> = app
        .all_events("")
        .await
        .iter()
        .map(|e| e["messageId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(left, ["new-2", "new-1", "new-0"]);
    // The unlimited project keeps everything.
    let theirs: Value = app
        .http
        .get(app.url("/api/v1/events"))
        .bearer_auth(&other.secret_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["events"].as_array().unwrap().len(), 1);
}

/// The Web page's day and pair rows of days that ended before the plan's cutoff go with
/// retention, and the visits of raw events past it with the pages they viewed; the recent
/// ones stay.
#[tokio::test]
async fn retention_removes_web_day_and_pair_rows_past_the_plan() {
    let start = Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap();
    let clock = Arc::new(FakeClock::new(start));
    let app = spawn_app_with_clock(|_| {}, clock.clone()).await;
    let store = app.store().await;
    assert!(
        store
            .set_project_plan(app.keys.project_id, "free")
            .await
            .unwrap()
    ); // 30 days
    let page = |id: &str, at: chrono::DateTime<Utc>| {
        json!({"type": "page", "messageId": id, "anonymousId": "a",
               "timestamp": at.to_rfc3339(),
               "context": {"page": {"path": "/"}, "source": {"name": "Google"}}})
    };
    let old = page("old", start);
    assert_eq!(
        app.post("/v1/batch", &json!({"batch": [old]}))
            .await
            .status(),
        200
    );
    clock.advance(Duration::days(20));
    store.prepare_partitions(clock.now()).await.unwrap();
    let recent = page("recent", clock.now());
    let recent_ts = clock.now().timestamp_millis();
    assert_eq!(
        app.post("/v1/batch", &json!({"batch": [recent]}))
            .await
            .status(),
        200
    );
    store.fold_web_visits().await.unwrap();
    let days = |table: &str| {
        format!(
            "SELECT DISTINCT day FROM {table} WHERE project_id = {} ORDER BY day",
            app.keys.project_id
        )
    };
    let midnight = |t: chrono::DateTime<Utc>| {
        t.date_naive()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_millis()
    };
    let both = [midnight(start), midnight(clock.now())];
    let pages = format!(
        "SELECT start_ts FROM web_visit_pages WHERE project_id = {} ORDER BY start_ts",
        app.keys.project_id
    );
    assert_eq!(
        helpers::query_column::<i64>(&app.database_url, &pages).await,
        [start.timestamp_millis(), recent_ts]
    );
    assert_eq!(
        helpers::query_column::<i64>(&app.database_url, &days("web_daily")).await,
        both
    );
    assert_eq!(
        helpers::query_column::<i64>(&app.database_url, &days("web_daily_pairs")).await,
        both
    );

    clock.advance(Duration::days(12)); // the first day ended 31 days ago, the second 12
    pulseline_collector::maintenance::run_once(&store, clock.now())
        .await
        .unwrap();
    for table in ["web_daily", "web_daily_pairs"] {
        assert_eq!(
            helpers::query_column::<i64>(&app.database_url, &days(table)).await,
            [both[1]],
            "{table}"
        );
    }
    // The old visit went with its page view, and which pages it viewed with it.
    assert_eq!(
        helpers::query_column::<i64>(&app.database_url, &pages).await,
        [recent_ts]
    );
}

/// The hour that holds the retention cutoff keeps its rollup: part of it is still within the
/// plan. Both backends cut at the same hour.
#[tokio::test]
async fn retention_keeps_the_rollup_hour_that_holds_the_cutoff() {
    let start = Utc.with_ymd_and_hms(2026, 11, 22, 11, 0, 0).unwrap();
    let clock = Arc::new(FakeClock::new(start));
    let app = spawn_app_with_clock(|_| {}, clock.clone()).await;
    let store = app.store().await;
    assert!(
        store
            .set_project_plan(app.keys.project_id, "free")
            .await
            .unwrap()
    ); // 30 days
    let mut early = track("u", "e", "nine");
    early["timestamp"] = json!("2026-11-22T09:30:00.000Z");
    let late = track("u", "e", "ten"); // 10:00
    let body = json!({"batch": [early, late]});
    assert_eq!(app.post("/v1/batch", &body).await.status(), 200);

    // The cutoff falls at 10:20, thirty days back: the 10:00 hour straddles it.
    clock.set(Utc.with_ymd_and_hms(2026, 12, 22, 10, 20, 0).unwrap());
    store.prepare_partitions(clock.now()).await.unwrap();
    pulseline_collector::maintenance::run_once(&store, clock.now())
        .await
        .unwrap();
    let hours: Vec<i64> = helpers::query_column(
        &app.database_url,
        "SELECT hour FROM rollups_hourly ORDER BY hour",
    )
    .await;
    let ten = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
    assert_eq!(hours, [ten.timestamp_millis()]);
}

/// Deliveries (with an attempt each), alerts and alert events of two projects, old and recent,
/// in every state retention must tell apart. Named by their key, rule name or title.
async fn seed_retention_rows(app: &TestApp, mine: i64, theirs: i64, old: i64, recent: i64) {
    let deliveries = [
        ("old-delivered", mine, "delivered", old),
        ("old-dead", mine, "dead", old),
        ("old-pending", mine, "pending", old),
        ("old-failed", mine, "failed", old),
        ("recent-delivered", mine, "delivered", recent),
        ("forever-delivered", theirs, "delivered", old),
    ];
    for (key, project, status, at) in deliveries {
        app.exec_sql(&format!(
            "INSERT INTO deliveries (project_id, channel_id, source_key, content, status,
                                     next_attempt_at, created_at)
             VALUES ({project}, 1, '{key}', '{{}}', '{status}', {at}, {at})"
        ))
        .await;
        app.exec_sql(&format!(
            "INSERT INTO delivery_attempts (delivery_id, attempt, started_at, latency_ms, outcome)
             SELECT id, 1, {at}, 5, 'delivered' FROM deliveries WHERE source_key = '{key}'"
        ))
        .await;
    }
    let alerts = [
        ("old-resolved", mine, Some(old)),
        ("old-open", mine, None),
        ("recent-resolved", mine, Some(recent)),
        ("forever-resolved", theirs, Some(old)),
    ];
    for (name, project, resolved) in alerts {
        let resolved = resolved.map_or("NULL".to_owned(), |t| t.to_string());
        app.exec_sql(&format!(
            "INSERT INTO alert_history (project_id, rule_id, rule_name, reason, bucket_start,
                                        started_at, resolved_at, explanation)
             VALUES ({project}, 1, '{name}', 'threshold', {old}, {old}, {resolved}, 'x')"
        ))
        .await;
    }
    let alert_events = [
        ("old-dispatched", mine, old, true),
        ("old-waiting", mine, old, false),
        ("recent-dispatched", mine, recent, true),
    ];
    for (title, project, at, dispatched) in alert_events {
        app.exec_sql(&format!(
            "INSERT INTO alert_events (project_id, rule_id, kind, channel_ids, title, description,
                                       colour, fields, created_at)
             VALUES ({project}, 1, 'firing', '[]', '{title}', 'x', 0, '[]', {at})"
        ))
        .await;
        if dispatched {
            app.exec_sql(&format!(
                "INSERT INTO alert_events_dispatched (alert_event_id, dispatched_at)
                 SELECT id, {at} FROM alert_events WHERE title = '{title}'"
            ))
            .await;
        }
    }
}

/// Notification history is project data too: finished deliveries (with their attempts),
/// resolved alerts and dispatched alert events past the plan's retention go; what is still
/// being retried, still firing or not yet dispatched stays, and so does every recent row.
#[tokio::test]
async fn retention_removes_old_finished_deliveries_and_resolved_alerts() {
    let start = Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap();
    let mut app = spawn_app_with_clock(|_| {}, Arc::new(FakeClock::new(start))).await;
    // The rows are written straight into the tables: no worker may deliver or dispatch them.
    app.shutdown.shutdown();
    (&mut app.task).await.unwrap().unwrap();
    let store = app.store().await;
    store
        .set_project_plan(app.keys.project_id, "free") // 30 days
        .await
        .unwrap();
    let other =
        pulseline_collector::projects::create_project(&store, "Forever", "unlimited", start)
            .await
            .unwrap();
    let (mine, theirs) = (app.keys.project_id, other.project_id);
    let now = start + Duration::days(40);
    let (old, recent) = (
        start.timestamp_millis(),
        (now - Duration::days(5)).timestamp_millis(),
    );

    seed_retention_rows(&app, mine, theirs, old, recent).await;

    let report = pulseline_collector::maintenance::run_once(&store, now)
        .await
        .unwrap();
    assert_eq!((report.deliveries_deleted, report.alerts_deleted), (2, 1));
    let names = |sql| helpers::query_column::<String>(&app.database_url, sql);
    assert_eq!(
        names("SELECT source_key FROM deliveries ORDER BY source_key").await,
        [
            "forever-delivered",
            "old-failed",
            "old-pending",
            "recent-delivered"
        ]
    );
    assert_eq!(
        names(
            "SELECT d.source_key FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
             ORDER BY d.source_key"
        )
        .await,
        [
            "forever-delivered",
            "old-failed",
            "old-pending",
            "recent-delivered"
        ]
    );
    assert_eq!(
        names("SELECT rule_name FROM alert_history ORDER BY rule_name").await,
        ["forever-resolved", "old-open", "recent-resolved"]
    );
    assert_eq!(
        names("SELECT title FROM alert_events ORDER BY title").await,
        ["old-waiting", "recent-dispatched"]
    );
    assert_eq!(
        app.query_i64("SELECT COUNT(*) FROM alert_events_dispatched")
            .await,
        1,
        "the removed event's dispatch marker goes with it"
    );
}

#[tokio::test]
async fn whole_partitions_are_dropped_when_every_project_is_past_them() {
    if !helpers::on_postgres() {
        return; // partitions exist only on PostgreSQL; the SQLite run covers row deletes above
    }
    let start = Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap();
    let clock = Arc::new(FakeClock::new(start));
    let app = spawn_app_with_clock(|_| {}, clock.clone()).await;
    let store = app.store().await;
    store
        .set_project_plan(app.keys.project_id, "free")
        .await
        .unwrap();
    assert_eq!(app.post("/v1/batch", &batch(0..4, "p")).await.status(), 200);
    let in_partition = app.query_i64("SELECT COUNT(*) FROM events_p20261101").await;
    assert_eq!(in_partition, 4, "today's events go to today's partition");

    clock.advance(Duration::days(32));
    // The app's own pass at startup, late on a busy machine, may hold the retention lock when
    // this one runs (which then does nothing) or drop the partition itself: run until it goes.
    let partition = "SELECT COUNT(*) FROM pg_class WHERE relname = 'events_p20261101'";
    let mut reports = Vec::new();
    for _ in 0..50 {
        let report = pulseline_collector::maintenance::run_once(&store, clock.now())
            .await
            .unwrap();
        reports.push(report);
        if app.query_i64(partition).await == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(app.query_i64(partition).await, 0, "{reports:?}");
    assert_eq!(app.all_events("").await.len(), 0);
    // Dedupe ids went with the data: the same id is a new event again.
    assert_eq!(app.post("/v1/batch", &batch(0..1, "p")).await.status(), 200);
    assert_eq!(app.all_events("").await.len(), 1);
}

#[tokio::test]
async fn a_flooding_key_is_rate_limited_and_its_neighbour_is_not() {
    let app = spawn_app_with(|c| {
        c.rate_limit_events_per_sec = 1_000;
        c.rate_limit_burst = 2_500;
    })
    .await;
    let store = app.store().await;
    let quiet =
        pulseline_collector::projects::create_project(&store, "Quiet", "unlimited", Utc::now())
            .await
            .unwrap();

    let mut limited = None;
    for round in 0..20 {
        let resp = app
            .post("/v1/batch", &batch(round * 500..(round + 1) * 500, "flood"))
            .await;
        if resp.status() == 429 {
            limited = Some(resp);
            break;
        }
        assert_eq!(resp.status(), 200);
        let neighbour = app
            .http
            .post(app.url("/v1/batch"))
            .basic_auth(&quiet.write_key, Some(""))
            .json(&batch(round * 10..(round + 1) * 10, "quiet"))
            .send()
            .await
            .unwrap();
        assert_eq!(neighbour.status(), 200, "the neighbour must not be limited");
    }
    let resp = limited.expect("the flooding key was never limited");
    assert!(resp.headers().contains_key("retry-after"));
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("PULSELINE_RATE_LIMIT_EVENTS_PER_SEC")
    );
    let quiet_after = app
        .http
        .post(app.url("/v1/batch"))
        .basic_auth(&quiet.write_key, Some(""))
        .json(&batch(1000..1010, "quiet"))
        .send()
        .await
        .unwrap();
    assert_eq!(quiet_after.status(), 200);
}

#[tokio::test]
async fn a_low_rate_set_alone_starts_and_admits_a_full_batch() {
    // No PULSELINE_RATE_LIMIT_BURST: the default burst must still fit a full batch.
    let app = spawn_app_with(|c| c.rate_limit_events_per_sec = 10).await;
    let full =
        u32::try_from(pulseline_collector::config::Limits::default().max_batch_messages).unwrap();
    let resp = app.post("/v1/batch", &batch(0..full, "full")).await;
    assert_eq!(resp.status(), 200);
    let resp = app.post("/v1/batch", &batch(full..full + 50, "over")).await;
    assert_eq!(resp.status(), 429, "the burst is spent: the rate applies");
    assert!(resp.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn a_burst_below_the_batch_limit_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = pulseline_collector::config::Config::for_tests(dir.path());
    config.rate_limit_events_per_sec = 10;
    config.rate_limit_burst = 100;
    let err = pulseline_collector::startup::Application::build(config)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("PULSELINE_RATE_LIMIT_BURST"),
        "{err}"
    );
}

#[tokio::test]
async fn hourly_rollups_count_each_stored_event_once() {
    let app = spawn_app_with(|_| {}).await;
    let at = |h: u32, id: &str| {
        json!({"type": "track", "userId": "u", "event": "signup", "messageId": id,
               "timestamp": format!("2026-11-20T{h:02}:30:00Z")})
    };
    let body = json!({"batch": [at(9, "r1"), at(9, "r2"), at(10, "r3"),
        {"type": "page", "userId": "u", "messageId": "r4", "timestamp": "2026-11-20T09:10:00Z", "name": "Home"}]});
    assert_eq!(app.post("/v1/batch", &body).await.status(), 200);
    assert_eq!(app.post("/v1/batch", &body).await.status(), 200); // duplicates: not counted
    let store = app.store().await;
    let from = Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap();
    let to = from + Duration::days(1);
    let signups = store
        .hourly_counts(app.keys.project_id, "signup", from, to)
        .await
        .unwrap();
    let hours: Vec<(u32, i64)> = signups
        .iter()
        .map(|(t, n)| (chrono::Timelike::hour(t), *n))
        .collect();
    assert_eq!(hours, [(9, 2), (10, 1)]);
    let pages = store
        .hourly_counts(app.keys.project_id, "$page", from, to)
        .await
        .unwrap();
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].1, 1);
}
