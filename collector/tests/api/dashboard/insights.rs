//! The insight pages against hand-computed values: active users from the rollups, the query
//! endpoints, and the live tail.

use std::sync::Arc;

use chrono::{Duration, Utc};

use pulseline_collector::clock::{Clock, FakeClock, SystemClock};
use serde_json::{Value, json};

use super::{Dash, Login, at, ev, spawn};
use crate::helpers;

/// DAU/WAU/MAU and the daily-active chart come from rollups maintained at ingest (migration
/// 0007): a user counts once per window however many events or days, late and repeated events
/// change nothing they should not, and retention removes the rollups of expired days.
#[tokio::test]
async fn active_users_follow_windows_late_events_repeats_and_retention() {
    let clock = Arc::new(FakeClock::new(at(12, 0)));
    let app = spawn(|_| {}, clock.clone()).await;
    let days_ago = |d: i64| at(9, 0) - chrono::Duration::days(d);
    let none = json!({});
    let late = ev("c", "Seen", days_ago(20), none.clone());
    app.ingest(vec![
        ev("a", "Seen", days_ago(0), none.clone()),
        ev("a", "Seen", days_ago(0), none.clone()),
        ev("b", "Seen", days_ago(3), none.clone()),
        ev("c", "Seen", days_ago(10), none.clone()),
        ev("d", "Seen", days_ago(40), none.clone()),
        ev("e", "Seen", days_ago(3), none.clone()),
        ev("e", "Seen", days_ago(0), none.clone()),
    ])
    .await;
    // A late event for an older day, sent twice: c's latest day stays 10 days ago.
    app.ingest(vec![late.clone()]).await;
    app.ingest(vec![late]).await;
    let me = app.admin().await;
    let p = format!("/api/dash/projects/{}", app.project);
    let windows = |o: &Value| (o["dau"].as_i64(), o["wau"].as_i64(), o["mau"].as_i64());
    let day = |d: i64| at(0, 0).timestamp_millis() - d * 86_400_000;

    let (status, o) = app.get(&me, &format!("{p}/overview")).await;
    assert_eq!(status, 200, "{o}");
    assert_eq!(windows(&o), (Some(2), Some(3), Some(4)), "{o}");
    assert_eq!(o["daily_active"][29], json!([day(0), 2]));
    assert_eq!(o["daily_active"][26], json!([day(3), 2]));
    assert_eq!(o["daily_active"][19], json!([day(10), 1]));
    assert_eq!(o["daily_active"][9], json!([day(20), 1]));
    assert_eq!(o["daily_active"][28], json!([day(1), 0]));

    // d comes back today: in every window now.
    app.ingest(vec![ev("d", "Seen", days_ago(0), none.clone())])
        .await;
    let o = app.get(&me, &format!("{p}/overview")).await.1;
    assert_eq!(windows(&o), (Some(3), Some(4), Some(5)), "{o}");
    // A day later, yesterday's users leave DAU but stay in WAU and MAU.
    clock.advance(chrono::Duration::days(1));
    let o = app.get(&me, &format!("{p}/overview")).await.1;
    assert_eq!(windows(&o), (Some(0), Some(4), Some(5)), "{o}");

    // Retention (the free plan keeps 30 days) drops the rollup rows of days that ended before it.
    let rows = |table: &str| {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let url = app.database_url.clone();
        async move { helpers::query_i64(&url, &sql).await }
    };
    assert_eq!(rows("active_users_days").await, 5);
    let store = pulseline_collector::store::Store::open(&app.database_url, Default::default())
        .await
        .unwrap();
    assert!(store.set_project_plan(app.project, "free").await.unwrap());
    pulseline_collector::maintenance::run_once(&store, clock.now())
        .await
        .unwrap();
    assert_eq!(rows("active_users_days").await, 4, "day 40 is gone");
    assert_eq!(rows("active_users_daily").await, 7);
    assert_eq!(rows("users_last_seen").await, 5, "d was seen since");
    let o = app.get(&me, &format!("{p}/overview")).await.1;
    assert_eq!(windows(&o), (Some(0), Some(4), Some(5)), "{o}");
}

/// The traffic the query endpoints are checked against, by hand: a day of sign-ups,
/// activations and payments, and four Web Vitals, seen at 12:00 with a fake clock. The app, a
/// logged-in admin, the project's path and the day's start (ms).
async fn known_traffic() -> (Dash, Login, String, i64) {
    let clock = Arc::new(FakeClock::new(at(12, 0)));
    let app = spawn(|_| {}, clock).await;
    let none = json!({});
    let vital = |v: f64, t| {
        ev(
            "u6",
            "Web Vital",
            t,
            json!({"metric": "LCP", "value": v, "rating": "x", "path": "/"}),
        )
    };
    let paid = |user: &str, t, amount: i64, plan: &str| {
        ev(user, "Paid", t, json!({"amount": amount, "plan": plan}))
    };
    app.ingest(vec![
        ev("u1", "Visited", at(10, 0) - Duration::days(1), none.clone()),
        ev("u1", "Signed Up", at(10, 0), none.clone()),
        ev("u1", "Activated", at(10, 10), none.clone()),
        paid("u1", at(10, 20), 10, "pro"),
        ev("u2", "Signed Up", at(10, 0), none.clone()),
        ev("u2", "Activated", at(11, 0), none.clone()),
        ev("u3", "Signed Up", at(9, 0), none.clone()),
        paid("u4", at(11, 30), 30, "free"),
        paid("u5", at(11, 40), 20, "pro"),
        vital(1000.0, at(11, 0)),
        vital(2000.0, at(11, 1)),
        vital(3000.0, at(11, 2)),
        vital(5000.0, at(11, 3)),
    ])
    .await;
    let me = app.admin().await;
    let p = format!("/api/dash/projects/{}", app.project);
    (app, me, p, at(0, 0).timestamp_millis())
}

const DAY: i64 = 86_400_000;

#[tokio::test]
async fn the_overview_counts_todays_events_and_active_users() {
    let (app, me, p, day) = known_traffic().await;
    let (status, o) = app.get(&me, &format!("{p}/overview")).await;
    assert_eq!(status, 200, "{o}");
    assert_eq!(o["events_today"], 12);
    assert_eq!(
        (o["dau"].as_i64(), o["wau"].as_i64(), o["mau"].as_i64()),
        (Some(6), Some(6), Some(6))
    );
    assert_eq!(o["top_events"][0], json!(["Web Vital", 4]));
    assert_eq!(o["daily_active"][28], json!([day - DAY, 1]));
    assert_eq!(o["daily_active"][29], json!([day, 6]));
}

/// Counts per hour from the rollups; aggregates of a property, filters and groups from the
/// events.
#[tokio::test]
async fn series_count_per_hour_and_aggregate_filter_and_group_a_property() {
    let (app, me, p, day) = known_traffic().await;
    let next = day + DAY;
    let hour = 3_600_000;
    let (_, s) = app
        .get(
            &me,
            &format!("{p}/series?event=Paid&from={day}&to={next}&bucket={hour}"),
        )
        .await;
    let values = &s["series"][0]["values"];
    assert_eq!(values.as_array().map(Vec::len), Some(24), "{s}");
    assert_eq!(
        (values[10].as_f64(), values[11].as_f64(), values[9].as_f64()),
        (Some(1.0), Some(2.0), Some(0.0))
    );
    let q =
        |extra: &str| format!("{p}/series?event=Paid&from={day}&to={next}&bucket=86400000{extra}");
    let values = |extra: &str| {
        let path = q(extra);
        let (app, me) = (&app, &me);
        async move { app.get(me, &path).await.1["series"][0]["values"].clone() }
    };
    assert_eq!(values("&agg=sum&property=amount").await, json!([60.0]));
    assert_eq!(values("&agg=p75&property=amount").await, json!([25.0]));
    assert_eq!(values("&agg=avg&property=amount").await, json!([20.0]));
    let pro_only = "&agg=sum&property=amount&filter_property=plan&filter_value=pro";
    assert_eq!(values(pro_only).await, json!([30.0]));
    let (_, grouped) = app.get(&me, &q("&group_by=plan")).await;
    assert_eq!(
        grouped["series"],
        json!([{"name": "pro", "values": [2.0]}, {"name": "free", "values": [1.0]}])
    );
    let (status, body) = app.get(&me, &q("&agg=sum")).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn the_series_and_the_events_download_as_csv() {
    let (app, me, p, day) = known_traffic().await;
    let next = day + DAY;
    let csv = |path: String| {
        let (app, me) = (&app, &me);
        async move {
            app.http
                .get(app.url(&path))
                .header("cookie", &me.cookie)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let series_csv = csv(format!(
        "{p}/series?event=Paid&from={day}&to={next}&bucket=86400000&group_by=plan&format=csv"
    ))
    .await;
    assert_eq!(
        series_csv,
        "bucket,pro,free\n2026-11-22T00:00:00.000Z,2,1\n"
    );
    let events_csv = csv(format!(
        "{p}/events?event=Paid&from={day}&to={next}&format=csv"
    ))
    .await;
    let lines: Vec<&str> = events_csv.lines().collect();
    assert_eq!(lines.len(), 4, "{events_csv}");
    assert_eq!(lines[0], "timestamp,event,user,message_id,properties");
    assert!(
        lines[1].starts_with("2026-11-22T11:40:00.000Z,Paid,u5,"),
        "{}",
        lines[1]
    );
}

/// 3 signed up, 2 of them activated within a day, 1 of those paid.
#[tokio::test]
async fn the_funnel_counts_each_step_and_its_drop_off() {
    let (app, me, p, day) = known_traffic().await;
    let next = day + DAY;
    let (_, f) = app
        .get(
            &me,
            &format!("{p}/funnel?steps=Signed Up,Activated,Paid&from={day}&to={next}"),
        )
        .await;
    let steps = f.as_array().unwrap();
    let column =
        |key: &str| -> Vec<i64> { steps.iter().map(|s| s[key].as_i64().unwrap()).collect() };
    assert_eq!(
        (column("users"), column("drop_off")),
        (vec![3, 2, 1], vec![0, 1, 1])
    );
}

/// Retention: u1 first seen the day before and back today; five new users today. Sessions
/// (30 minutes of silence ends one): 8 sessions, 6 of one event, 1380 s in all.
#[tokio::test]
async fn retention_and_sessions_match_hand_computed_values() {
    let (app, me, p, day) = known_traffic().await;
    let (from, next) = (day - DAY, day + DAY);
    let (_, r) = app
        .get(
            &me,
            &format!("{p}/retention?from={from}&to={next}&period=day"),
        )
        .await;
    assert_eq!(r[0]["users"], 1);
    assert_eq!(r[0]["returning"], json!([1, 1]));
    assert_eq!(r[1]["users"], 5);

    let (_, s) = app
        .get(&me, &format!("{p}/sessions?from={from}&to={next}"))
        .await;
    assert_eq!(s["sessions"], 8);
    assert_eq!(s["bounce_rate"], 0.75);
    assert_eq!(s["avg_length_secs"], 172.5);
}

/// p75 (interpolated) of 1000, 2000, 3000, 5000 ms is 3500 (within the sketch's 1%); 2 good,
/// 1 poor.
#[tokio::test]
async fn web_vitals_show_the_p75_and_the_share_of_each_rating() {
    let (app, me, p, day) = known_traffic().await;
    let next = day + DAY;
    let (_, v) = app
        .get(&me, &format!("{p}/vitals?from={day}&to={next}"))
        .await;
    let lcp = &v["metrics"][0];
    assert_eq!(lcp["vital"]["metric"], "LCP");
    let p75 = lcp["overall"]["p75"].as_f64().unwrap();
    assert!((p75 - 3500.0).abs() <= 35.0, "{p75}");
    assert_eq!(
        (
            lcp["overall"]["good"].as_f64(),
            lcp["overall"]["poor"].as_f64()
        ),
        (Some(0.5), Some(0.25))
    );
    assert_eq!(lcp["pages"][0][0], "/");
    assert_eq!(v["metrics"][1]["overall"]["samples"], 0);
}

#[tokio::test]
async fn usage_counts_the_month_against_the_plans_quota() {
    let (app, me, p, _) = known_traffic().await;
    let (_, u) = app.get(&me, &format!("{p}/usage")).await;
    assert_eq!(
        (u["events_this_month"].as_i64(), u["over_quota"].as_bool()),
        (Some(13), Some(false))
    );
}

#[tokio::test]
async fn the_live_tail_streams_new_events() {
    let app = spawn(|_| {}, Arc::new(SystemClock)).await;
    let me = app.admin().await;
    let mut resp = app
        .http
        .get(app.url(&format!("/api/dash/projects/{}/tail", app.project)))
        .header("cookie", &me.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    app.ingest(vec![ev("tail-user", "Tail Test", Utc::now(), json!({}))])
        .await;
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !seen.contains("Tail Test") {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .expect("within 10 s");
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap()));
    }
    assert!(seen.contains("event: events"));
    assert_eq!(
        seen.matches("Tail Test").count(),
        1,
        "sent once despite overlapping polls"
    );
}

/// The tail's read finds what was received since a time even when seq and arrival disagree a
/// little (a request that waited longer for its commit), and nothing older, on both backends
/// (PostgreSQL's read starts from a binary search over seq rather than walking the partition).
#[tokio::test]
async fn the_tail_reads_what_was_received_since_in_seq_order() {
    let app = spawn(|_| {}, Arc::new(SystemClock)).await;
    let names = ["old", "before", "late", "early", "last", "other"];
    app.ingest(
        names
            .iter()
            .map(|n| ev("u", n, Utc::now(), json!({})))
            .collect(),
    )
    .await;
    let seqs: Vec<i64> = helpers::query_column(
        &app.database_url,
        &format!(
            "SELECT seq FROM events WHERE project_id = {} ORDER BY seq",
            app.project
        ),
    )
    .await;
    assert_eq!(seqs.len(), 6);
    // Received: "late" (3rd seq) after "early" (4th); "old" days ago.
    let t = Utc::now().timestamp_millis() - 5 * 60_000;
    let received = [t - 3 * 86_400_000, t - 5, t + 7, t + 5, t + 9, t + 8];
    for (seq, at) in seqs.iter().zip(received) {
        helpers::exec_sql(
            &app.database_url,
            &format!("UPDATE events SET received_at = {at} WHERE seq = {seq}"),
        )
        .await;
    }
    let store = pulseline_collector::store::Store::open(&app.database_url, Default::default())
        .await
        .unwrap();
    let names_since = |since: i64, limit: i64| {
        let store = store.clone();
        let project = app.project;
        async move {
            store
                .events_received_since(project, since, limit)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.event.unwrap_or_default())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names_since(t + 6, 10).await, ["late", "last", "other"]);
    assert_eq!(
        names_since(t + 6, 2).await,
        ["last", "other"],
        "the newest two"
    );
    assert_eq!(
        names_since(t - 10, 10).await,
        ["before", "late", "early", "last", "other"]
    );
    assert!(names_since(t + 10, 10).await.is_empty());
    assert_eq!(names_since(t - 4 * 86_400_000, 10).await.len(), 6);
}

/// One percentile definition: Explore's p75 and a rule preview's p75 over the same events are
/// the same number (interpolated, as PostgreSQL's `percentile_cont`).
#[tokio::test]
async fn explore_and_rule_previews_agree_on_p75() {
    // Past 12:00 by more than the rules' grace: 11:00–12:00 is their latest closed bucket.
    let clock = Arc::new(FakeClock::new(at(12, 30)));
    let app = spawn(|_| {}, clock).await;
    let sample = |m: u32, v: f64| ev("u1", "latency", at(11, m), json!({ "value": v }));
    app.ingest(vec![
        sample(5, 4.0),
        sample(10, 1.0),
        sample(20, 3.0),
        sample(30, 2.0),
    ])
    .await;
    let me = app.admin().await;
    let p = format!("/api/dash/projects/{}", app.project);
    let (from, to) = (at(11, 0).timestamp_millis(), at(12, 0).timestamp_millis());

    let (status, explore) = app
        .get(
            &me,
            &format!(
                "{p}/series?event=latency&from={from}&to={to}&bucket=3600000\
                 &agg=p75&property=value"
            ),
        )
        .await;
    assert_eq!(status, 200, "{explore}");
    let rule = json!({"name": "Slow", "channel_ids": [],
        "series": {"event": "latency", "aggregate": "p75", "bucket": "hour"},
        "condition": {"type": "threshold", "op": ">", "value": 100}});
    let (status, preview) = app
        .post(&me, &format!("{p}/rules/preview?buckets=1"), rule)
        .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(explore["series"][0]["values"], json!([3.25]), "{explore}");
    assert_eq!(preview["points"][0]["value"], json!(3.25), "{preview}");
}

/// Page views (and other non-track messages) are named `$page`, `$identify`… on every read
/// path; Explore finds them by that name on both backends, also when it scans events.
#[tokio::test]
async fn explore_finds_page_views_by_their_dollar_name() {
    let clock = Arc::new(FakeClock::new(at(12, 0)));
    let app = spawn(|_| {}, clock).await;
    app.ingest(vec![json!({
        "type": "page", "userId": "u1", "name": "Home", "properties": {"path": "/"},
        "timestamp": at(11, 10).to_rfc3339(), "messageId": uuid::Uuid::now_v7().to_string(),
    })])
    .await;
    let me = app.admin().await;
    let p = format!("/api/dash/projects/{}", app.project);
    let (from, to) = (at(11, 0).timestamp_millis(), at(12, 0).timestamp_millis());
    // Half-hour buckets are counted from the events, not from the hourly rollups.
    let (status, s) = app
        .get(
            &me,
            &format!("{p}/series?event=%24page&from={from}&to={to}&bucket=1800000"),
        )
        .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["series"][0]["values"], json!([1.0, 0.0]), "{s}");
}
