//! Sessions (issue 20) from the sessions kept at ingest against the plain computation over the
//! events sent: each user's (userId, else anonymousId) events, bots and repeats left out, in time
//! order, a new session after more than 30 minutes of silence; a range counts the sessions that
//! start in it, each whole. Seeded random streams with gaps just under, at and over 30 minutes,
//! events in the same millisecond, anonymous users, bots (one of them in the gap of a person's
//! two sessions), batches sent out of order (late events that extend or bridge sessions) and
//! twice, ranges whose edges fall on events; then after a person delete, after a plan
//! retention run and on a database upgraded by migration 0042's backfill (and 0052's for bots).
//! With `include_bots=true` the bots' sessions (migration 0052) count too, each made of a key's
//! bot events alone: crawlers, and people with bot-flagged events of their own. The scan limit
//! is set far below the streams' size: the old code refused every one of these ranges.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use pulseline_collector::clock::FakeClock;
use pulseline_collector::store::{Plan, Store};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Dash, Login, spawn};
use crate::helpers;

const MINUTE: i64 = 60_000;
const GAP: i64 = 30 * MINUTE;
const DAY: i64 = 86_400_000;
/// Far below the streams' event count: sessions must not read the range's events.
const SCAN_LIMIT: u32 = 10;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 9, 7, 0, 0, 0).unwrap()
}

fn clock() -> Arc<FakeClock> {
    Arc::new(FakeClock::new(
        Utc.with_ymd_and_hms(2026, 9, 20, 12, 0, 0).unwrap(),
    ))
}

fn ms(at: &Value) -> i64 {
    DateTime::parse_from_rfc3339(at.as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

/// Three days of activity by ten people (some anonymous, some with both ids): runs of events
/// separated by a few minutes, by 30 minutes less a millisecond, exactly 30 minutes, 30 minutes
/// and a millisecond, or hours; some in the same millisecond. Plus a crawler, and a
/// bot-flagged event of `user-0` in the middle of the hour between two of their sessions.
fn activity(seed: u64, from: DateTime<Utc>) -> Vec<Value> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sent = Vec::new();
    let mut message = |user: &Option<String>, anon: &Option<String>, at: i64, bot: bool| {
        let mut m = json!({"type": "track", "event": "view",
                           "timestamp": (from + Duration::milliseconds(at)).to_rfc3339()});
        if let Some(user) = user {
            m["userId"] = json!(user);
        }
        if let Some(anon) = anon {
            m["anonymousId"] = json!(anon);
        }
        if bot {
            m["context"] = json!({"bot": true});
        }
        m["messageId"] = json!(uuid::Uuid::now_v7().to_string());
        sent.push(m);
    };
    for u in 0..13 {
        let (user, anon) = match u % 4 {
            3 => (None, Some(format!("anon-{u}"))),
            2 => (Some(format!("user-{u}")), Some(format!("device-{u}"))),
            _ => (Some(format!("user-{u}")), None),
        };
        // Users 10 to 12 are crawlers of their own ids; the others' events are now and then
        // bot-flagged (an automated browser logged in as them).
        let crawler = u >= 10;
        let mut at = rng.random_range(0..DAY / 2);
        for _ in 0..rng.random_range(15..40) {
            let bot = crawler || rng.random_bool(0.1);
            message(&user, &anon, at, bot);
            at += match rng.random_range(0..12) {
                0..=4 => rng.random_range(0..10 * MINUTE),
                5 => GAP - 1,
                6 => GAP,
                7 => GAP + 1,
                8 => 0,
                _ => rng.random_range(GAP..8 * 60 * MINUTE),
            };
        }
    }
    let user0 = Some("user-0".to_owned());
    let (before, after) = (2 * DAY + 3 * 60 * MINUTE, 2 * DAY + 4 * 60 * MINUTE);
    message(&user0, &None, before, false);
    message(&user0, &None, before + GAP, true);
    message(&user0, &None, after, false);
    let crawler = Some("crawler".to_owned());
    for i in 0..30 {
        message(&crawler, &None, i * 7 * MINUTE, true);
    }
    sent
}

/// Sends `messages` out of time order (every batch after the first holds late events), six
/// batches at a time (concurrent commits of the same users, on PostgreSQL), then one batch
/// again.
async fn ingest_shuffled(app: &Dash, mut messages: Vec<Value>, seed: u64) {
    messages.shuffle(&mut StdRng::seed_from_u64(seed));
    let chunks: Vec<&[Value]> = messages.chunks(23).collect();
    for wave in chunks.chunks(6) {
        futures::future::join_all(wave.iter().map(|chunk| app.ingest(chunk.to_vec()))).await;
    }
    app.ingest(messages[..20].to_vec()).await;
}

/// Sessions per user key, from the messages: `(start, end, events)`. Bots' events are left
/// out unless `bots`; then a key's bot events make sessions of their own, apart from its other
/// events'.
fn plain_sessions(messages: &[Value], bots: bool) -> Vec<(i64, i64, i64)> {
    let mut seen = HashSet::new();
    let mut times: BTreeMap<(&str, bool), Vec<i64>> = BTreeMap::new();
    for m in messages {
        let bot = m["context"]["bot"] == json!(true);
        let Some(key) = m["userId"].as_str().or(m["anonymousId"].as_str()) else {
            continue;
        };
        if (bot && !bots) || !seen.insert(m["messageId"].as_str().unwrap()) {
            continue;
        }
        times
            .entry((key, bot))
            .or_default()
            .push(ms(&m["timestamp"]));
    }
    let mut sessions = Vec::new();
    for ts in times.values_mut() {
        ts.sort_unstable();
        let mut current = (ts[0], ts[0], 1);
        for &t in &ts[1..] {
            if t - current.1 > GAP {
                sessions.push(current);
                current = (t, t, 0);
            }
            current.1 = t;
            current.2 += 1;
        }
        sessions.push(current);
    }
    sessions
}

/// The answer for `[from, to)`: the sessions that start in it, each whole.
fn plain(sessions: &[(i64, i64, i64)], from: i64, to: i64) -> (u64, f64, f64) {
    let counted: Vec<_> = sessions
        .iter()
        .filter(|(s, _, _)| (from..to).contains(s))
        .collect();
    let n = counted.len() as f64;
    let total: i64 = counted.iter().map(|(s, e, _)| e - s).sum();
    let bounces = counted.iter().filter(|(_, _, events)| *events == 1).count();
    if counted.is_empty() {
        return (0, 0.0, 0.0);
    }
    (
        counted.len() as u64,
        total as f64 / n / 1000.0,
        bounces as f64 / n,
    )
}

/// Whole span, edges on events' times (an event at `from` counts, at `to` does not), mid-day
/// cuts through sessions, one day, and one millisecond either side of an event.
fn ranges(messages: &[Value], from: DateTime<Utc>) -> Vec<(i64, i64)> {
    let s = from.timestamp_millis();
    let t = |i: usize| ms(&messages[i * 7 % messages.len()]["timestamp"]);
    let (a, b) = (t(3).min(t(40)), t(3).max(t(40)) + 1);
    vec![
        (s - DAY, s + 4 * DAY),
        (a, b),
        (a, b - 1),
        (a + 1, b),
        (s + DAY / 3, s + 2 * DAY + 5 * 60 * MINUTE),
        (s + DAY, s + 2 * DAY),
        (t(11) - 1, t(11) + 1),
    ]
}

fn assert_answer(got: &Value, want: (u64, f64, f64), what: &str) {
    assert_eq!(got["sessions"].as_u64(), Some(want.0), "{what}: {got}");
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    assert!(
        close(got["avg_length_secs"].as_f64().unwrap(), want.1),
        "{what}: {got}, want {want:?}"
    );
    assert!(
        close(got["bounce_rate"].as_f64().unwrap(), want.2),
        "{what}: {got}, want {want:?}"
    );
}

/// Every range's answer equals the plain computation over `messages`, bots left out and
/// counted in; returns how many ranges counted sessions.
async fn answers_equal_the_plain_computation(
    app: &Dash,
    me: &Login,
    messages: &[Value],
    ranges: &[(i64, i64)],
) -> usize {
    let mut counted = 0;
    let mut bots_changed = 0;
    for &(from, to) in ranges {
        let mut answers = Vec::new();
        for bots in [false, true] {
            let sessions = plain_sessions(messages, bots);
            let path = format!(
                "/api/dash/projects/{}/sessions?from={from}&to={to}&include_bots={bots}",
                app.project
            );
            let (status, got) = app.get(me, &path).await;
            assert_eq!(status, StatusCode::OK, "{path}: {got}");
            let want = plain(&sessions, from, to);
            assert_answer(&got, want, &path);
            counted += usize::from(want.0 > 0 && !bots);
            answers.push(want.0);
        }
        bots_changed += usize::from(answers[0] != answers[1]);
    }
    assert!(bots_changed >= 3, "bots changed only {bots_changed} ranges");
    counted
}

/// `sessions_hourly` (and the bots' `sessions_hourly_bots`) hold exactly the sums of
/// `user_sessions` (`user_sessions_bots`) by the UTC hour of their start, recomputed from
/// scratch (rows that sum to zero aside).
async fn assert_hourly_exact(database_url: &str) {
    for (hourly, sessions) in [
        ("sessions_hourly", "user_sessions"),
        ("sessions_hourly_bots", "user_sessions_bots"),
    ] {
        let kept = format!(
            "SELECT project_id, hour, sessions, total_ms, bounces
             FROM {hourly} WHERE sessions <> 0 OR total_ms <> 0 OR bounces <> 0"
        );
        let recomputed = format!(
            "SELECT project_id,
                start_ts - ((start_ts % 3600000) + 3600000) % 3600000, COUNT(*),
                SUM(end_ts - start_ts), SUM(CASE WHEN events = 1 THEN 1 ELSE 0 END)
             FROM {sessions} GROUP BY 1, 2"
        );
        let differ = format!(
            "SELECT (SELECT COUNT(*) FROM ({kept} EXCEPT {recomputed}) AS a)
                  + (SELECT COUNT(*) FROM ({recomputed} EXCEPT {kept}) AS b)"
        );
        assert_eq!(
            helpers::query_i64(database_url, &differ).await,
            0,
            "{hourly}"
        );
    }
    assert!(helpers::query_i64(database_url, "SELECT COUNT(*) FROM sessions_hourly").await > 0);
}

/// How many sessions people's and bots' tables hold.
const SESSION_ROWS: &str =
    "SELECT (SELECT COUNT(*) FROM user_sessions) + (SELECT COUNT(*) FROM user_sessions_bots)";

async fn seeded(seed: u64) -> (Dash, Login, Vec<Value>) {
    let app = spawn(|c| c.dashboard.max_scan_events = SCAN_LIMIT, clock()).await;
    let me = app.admin().await;
    let messages = activity(seed, start());
    ingest_shuffled(&app, messages.clone(), seed + 1).await;
    (app, me, messages)
}

async fn stored_sessions_equal_the_plain_computation(seed: u64) {
    let (app, me, messages) = seeded(seed).await;
    let counted =
        answers_equal_the_plain_computation(&app, &me, &messages, &ranges(&messages, start()))
            .await;
    assert!(counted >= 5, "only {counted} ranges held sessions");
    let sessions = plain_sessions(&messages, false);
    let rows = helpers::query_i64(&app.database_url, "SELECT COUNT(*) FROM user_sessions").await;
    assert_eq!(rows, sessions.len() as i64, "one row per session");
    let rows = helpers::query_i64(&app.database_url, SESSION_ROWS).await;
    assert_eq!(rows, plain_sessions(&messages, true).len() as i64);
    assert_hourly_exact(&app.database_url).await;
}

#[tokio::test]
async fn sessions_kept_at_ingest_equal_the_plain_computation_seed_1() {
    stored_sessions_equal_the_plain_computation(1).await;
}

#[tokio::test]
async fn sessions_kept_at_ingest_equal_the_plain_computation_seed_2() {
    stored_sessions_equal_the_plain_computation(2).await;
}

/// A late event in the gap between two sessions makes them one; the bot's event in the same
/// place did not.
#[tokio::test]
async fn a_late_event_bridges_two_sessions_and_a_bot_event_does_not() {
    let app = spawn(|c| c.dashboard.max_scan_events = SCAN_LIMIT, clock()).await;
    let me = app.admin().await;
    let at = |m: i64| (start() + Duration::milliseconds(m)).to_rfc3339();
    let track = |t: i64| {
        json!({"type": "track", "event": "view", "userId": "u", "timestamp": at(t),
               "messageId": uuid::Uuid::now_v7().to_string()})
    };
    let mut bot = track(GAP);
    bot["context"] = json!({"bot": true});
    app.ingest(vec![track(0), track(2 * GAP), bot]).await;
    let path = format!(
        "/api/dash/projects/{}/sessions?from={}&to={}",
        app.project,
        start().timestamp_millis(),
        (start() + Duration::days(1)).timestamp_millis()
    );
    let (_, two) = app.get(&me, &path).await;
    assert_answer(&two, (2, 0.0, 1.0), "before the late event");
    app.ingest(vec![track(GAP)]).await;
    let (_, one) = app.get(&me, &path).await;
    assert_answer(&one, (1, 2.0 * GAP as f64 / 1000.0, 0.0), "after it");
}

/// With bots the answer comes from the kept sessions too, over the scan limit, and says how
/// many bot events the range holds either way.
#[tokio::test]
async fn with_bots_sessions_are_answered_over_the_scan_limit() {
    let (app, me, messages) = seeded(3).await;
    let s = start().timestamp_millis();
    let path = format!(
        "/api/dash/projects/{}/sessions?from={}&to={}",
        app.project,
        s - DAY,
        s + 4 * DAY
    );
    let resp = app
        .http
        .get(app.url(&path))
        .header("cookie", &me.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Every bot event sent, left out but counted.
    let bots = messages
        .iter()
        .filter(|m| m["context"]["bot"] == json!(true))
        .count();
    assert!(bots > 31);
    assert_eq!(resp.headers()["pulseline-bot-events"], bots.to_string());
    let (status, body) = app.get(&me, &format!("{path}&include_bots=true")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["bot_events"], bots);
    let s = start().timestamp_millis();
    assert_answer(
        &body,
        plain(&plain_sessions(&messages, true), s - DAY, s + 4 * DAY),
        &path,
    );
}

/// Many requests at once, each one event of the same two users, each event within the gap of
/// the next, in random order: commits running together (PostgreSQL runs several) must each see
/// the sessions the others wrote, so each user ends with one session.
#[tokio::test]
async fn concurrent_commits_of_one_user_make_one_session() {
    let app = spawn(|c| c.dashboard.max_scan_events = SCAN_LIMIT, clock()).await;
    let me = app.admin().await;
    let mut messages: Vec<Value> = (0..80)
        .map(|i| {
            let at = start() + Duration::milliseconds(i / 2 * (GAP - MINUTE));
            json!({"type": "track", "event": "view", "userId": format!("u{}", i % 2),
                   "timestamp": at.to_rfc3339(),
                   "messageId": uuid::Uuid::now_v7().to_string()})
        })
        .collect();
    messages.shuffle(&mut StdRng::seed_from_u64(11));
    futures::future::join_all(messages.iter().map(|m| app.ingest(vec![m.clone()]))).await;
    let path = format!(
        "/api/dash/projects/{}/sessions?from={}&to={}",
        app.project,
        start().timestamp_millis(),
        (start() + Duration::days(2)).timestamp_millis()
    );
    let (_, got) = app.get(&me, &path).await;
    assert_answer(&got, (2, (39 * (GAP - MINUTE)) as f64 / 1000.0, 0.0), &path);
    assert_hourly_exact(&app.database_url).await;
}

#[tokio::test]
async fn a_person_delete_takes_their_sessions_out() {
    let (app, me, messages) = seeded(4).await;
    let rows_of = "SELECT (SELECT COUNT(*) FROM user_sessions
                           WHERE user_key IN ('user-2', 'device-2', 'user-5'))
                 * 1000 + (SELECT COUNT(*) FROM user_sessions_bots
                           WHERE user_key IN ('user-2', 'device-2', 'user-5'))";
    assert!(helpers::query_i64(&app.database_url, rows_of).await % 1000 > 0);
    assert!(helpers::query_i64(&app.database_url, rows_of).await > 0);
    let mut deleted: HashSet<&str> = HashSet::new();
    for (who, ids) in [
        ("user_id=user-2", ["user-2", "device-2"]),
        ("user_id=user-5", ["user-5", "user-5"]),
    ] {
        let resp = app
            .http
            .delete(app.url(&format!("/api/v1/persons?{who}")))
            .bearer_auth(&app.secret_key)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(body["deleted"]["sessions"].as_u64().unwrap() > 0, "{body}");
        deleted.extend(ids);
    }
    assert_eq!(helpers::query_i64(&app.database_url, rows_of).await, 0);
    assert_hourly_exact(&app.database_url).await;
    let kept: Vec<Value> = messages
        .iter()
        .filter(|m| {
            ![&m["userId"], &m["anonymousId"]]
                .iter()
                .any(|id| id.as_str().is_some_and(|id| deleted.contains(id)))
        })
        .cloned()
        .collect();
    assert!(kept.len() < messages.len());
    let counted =
        answers_equal_the_plain_computation(&app, &me, &kept, &ranges(&messages, start())).await;
    assert!(counted >= 5, "only {counted} ranges held sessions");
}

/// Plan retention removes the sessions that ended before its cutoff's day and keeps the rest
/// whole, raw events or not.
#[tokio::test]
async fn plan_retention_removes_the_sessions_that_ended_before_its_cutoff_day() {
    let app = spawn(|c| c.dashboard.max_scan_events = SCAN_LIMIT, clock()).await;
    let messages = activity(5, start());
    ingest_shuffled(&app, messages.clone(), 6).await;
    let store = Store::open(&app.database_url, Default::default())
        .await
        .unwrap();
    store
        .upsert_plan(&Plan {
            name: "month".into(),
            events_per_month: None,
            retention_days: Some(30),
        })
        .await
        .unwrap();
    assert!(store.set_project_plan(app.project, "month").await.unwrap());
    // The cutoff falls on the stream's second day, at 06:00 UTC.
    let now = start() + Duration::days(31) + Duration::hours(6);
    pulseline_collector::maintenance::run_once(&store, now)
        .await
        .unwrap();
    let cutoff_day = (start() + Duration::days(1)).timestamp_millis();
    let kept = |bots| {
        let sessions = plain_sessions(&messages, bots);
        let kept: Vec<(i64, i64, i64)> = sessions
            .iter()
            .filter(|(_, end, _)| *end >= cutoff_day)
            .copied()
            .collect();
        assert!(
            kept.len() < sessions.len(),
            "some sessions ended on day one"
        );
        assert!(
            kept.iter().any(|(start, _, _)| *start < cutoff_day),
            "a session across the cutoff's midnight stays"
        );
        kept
    };
    let rows = helpers::query_i64(&app.database_url, "SELECT COUNT(*) FROM user_sessions").await;
    assert_eq!(rows, kept(false).len() as i64);
    let rows = helpers::query_i64(&app.database_url, SESSION_ROWS).await;
    assert_eq!(rows, kept(true).len() as i64);
    assert_hourly_exact(&app.database_url).await;
    // Maintenance at that time also ended the login sessions older than it.
    let me = app.admin().await;
    let s = start().timestamp_millis();
    for (from, to) in [(s - DAY, s + 4 * DAY), (s, s + DAY + 1)] {
        for bots in [false, true] {
            let path = format!(
                "/api/dash/projects/{}/sessions?from={from}&to={to}&include_bots={bots}",
                app.project
            );
            let (status, got) = app.get(&me, &path).await;
            assert_eq!(status, 200, "{got}");
            assert_answer(&got, plain(&kept(bots), from, to), &path);
        }
    }
}

/// A database of an older collector (migration 0041) holding events, upgraded by opening it:
/// the backfilled sessions answer as the plain computation does.
#[tokio::test]
async fn the_upgrade_backfills_the_sessions_from_stored_events() {
    let dir = tempfile::tempdir().unwrap();
    let url = helpers::fresh_database_url(dir.path()).await;
    helpers::migrate_to(&url, 41).await;
    helpers::exec_sql(
        &url,
        "INSERT INTO projects (name, created_at) VALUES ('A', 0)",
    )
    .await;
    let project = helpers::query_i64(&url, "SELECT MIN(id) FROM projects").await;
    let messages = activity(9, start());
    helpers::insert_raw_events(&url, project, &messages).await;
    let store = Store::open(&url, Default::default()).await.unwrap();
    assert_eq!(
        helpers::query_i64(&url, "SELECT COUNT(*) FROM user_sessions").await,
        plain_sessions(&messages, false).len() as i64
    );
    assert_eq!(
        helpers::query_i64(&url, SESSION_ROWS).await,
        plain_sessions(&messages, true).len() as i64
    );
    assert_hourly_exact(&url).await;
    for (from, to) in ranges(&messages, start()) {
        for bots in [false, true] {
            let got = store.session_stats(project, from, to, bots).await.unwrap();
            assert_answer(
                &serde_json::to_value(got).unwrap(),
                plain(&plain_sessions(&messages, bots), from, to),
                &format!("[{from}, {to}) bots {bots}"),
            );
        }
    }
}
