//! Heavy dashboard queries have a time budget and a concurrency bound (issue 20): over its
//! budget a query's statements are stopped and it answers 503; beyond the bounds a query
//! waits PULSELINE_DASHBOARD_QUERY_WAIT_MS, then 503; members and shared links alike.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use pulseline_collector::clock::FakeClock;
use pulseline_collector::config::{Config, DashboardConfig};
use pulseline_collector::store::budget::POSTGRES_APPLICATION_NAME;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Dash, Login, spawn};
use crate::helpers;

/// The person's preview and export, and the digest preview.
mod persons_and_digest;

/// 2026-11-22 00:00 UTC, where the seeded events start (one a second).
const T0: i64 = 1_795_305_600_000;
/// Events seeded for a heavy query: its scan takes far longer than a millisecond anywhere.
const SEEDED: i64 = 20_000;

/// A collector set up by `configure` whose project holds [`SEEDED`] events named `buy`
/// (written with SQL: ingest would take longer and is not what is tested), and its admin.
async fn seeded(configure: impl FnOnce(&mut Config)) -> (Dash, Login) {
    let clock = Arc::new(FakeClock::new(
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap(),
    ));
    let app = spawn(configure, clock).await;
    let admin = app.admin().await;
    seed(&app, app.project).await;
    (app, admin)
}

async fn seed(app: &Dash, project: i64) {
    helpers::exec_sql(
        &app.database_url,
        &format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {SEEDED})
             INSERT INTO events (project_id, message_id, type, event, user_id, anonymous_id,
                                 timestamp, received_at, body)
             SELECT {project}, 'seed-{project}-' || i, 'track', 'buy', 'u' || (i % 500), NULL,
                    {T0} + i * 1000, {T0} + i * 1000,
                    '{{\"type\":\"track\",\"event\":\"buy\",\"properties\":{{\"plan\":\"pro\"}}}}'
             FROM n"
        ),
    )
    .await;
}

/// Explore's chart of `buy` with a property filter: read from the raw events.
fn heavy(project: i64) -> String {
    format!(
        "/api/dash/projects/{project}/series?event=buy&filter_property=plan&filter_value=pro\
         &from={T0}&to={}&bucket=3600000",
        T0 + 86_400_000
    )
}

async fn get(app: &Dash, who: &Login, path: &str) -> reqwest::Response {
    app.http
        .get(app.url(path))
        .header("cookie", &who.cookie)
        .send()
        .await
        .unwrap()
}

/// A 503 with Retry-After `retry_after` and the `code`, whose message names `setting`.
async fn assert_refused(resp: reqwest::Response, code: &str, setting: &str, retry_after: &str) {
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], retry_after);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains(setting),
        "{body}"
    );
}

/// A process-wide gauge or counter of `/metrics` (0 before it is first set). Tests running
/// beside the caller may add to it.
async fn metric(app: &Dash, name: &str) -> f64 {
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// The process-wide count of statements the databases stopped for their budget.
async fn statements_stopped(app: &Dash) -> f64 {
    metric(app, "pulseline_dashboard_statements_stopped_total").await
}

#[tokio::test]
async fn a_query_over_its_budget_is_stopped_and_answers_503() {
    let (app, admin) = seeded(|c| c.dashboard.query_timeout_ms = 1).await;
    let stopped_before = statements_stopped(&app).await;
    let resp = get(&app, &admin, &heavy(app.project)).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "5");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "query_timeout", "{body}");
    let message = body["message"].as_str().unwrap();
    for words in [
        "longer than 1 ms",
        "PULSELINE_DASHBOARD_QUERY_TIMEOUT_MS = 1",
        "shorter range or fewer filters",
    ] {
        assert!(message.contains(words), "{message}");
    }
    // The database itself stopped the statement (SQLite's progress handler, PostgreSQL's
    // statement_timeout), rather than the answer leaving it running. Only this test runs
    // queries over a budget this small, so the process-wide count is its own.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while statements_stopped(&app).await <= stopped_before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no statement was stopped by the database"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The read API's event list is bounded too: a user id with no event walks every one.
    let resp = app
        .http
        .get(app.url("/api/v1/events?user_id=nobody"))
        .bearer_auth(&app.secret_key)
        .send()
        .await
        .unwrap();
    assert_refused(
        resp,
        "query_timeout",
        "PULSELINE_DASHBOARD_QUERY_TIMEOUT_MS = 1",
        "5",
    )
    .await;
    // Writes go on, and cheap reads are not budgeted.
    app.ingest(vec![
        json!({"type": "track", "userId": "u", "event": "after"}),
    ])
    .await;
    let (status, body) = app
        .get(
            &admin,
            &format!("/api/dash/projects/{}/overview", app.project),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The same question within the default budget is answered.
    let (app, admin) = seeded(|c| {
        c.dashboard.query_timeout_ms = DashboardConfig::default().query_timeout_ms;
    })
    .await;
    let (status, body) = app.get(&admin, &heavy(app.project)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let counted: f64 = body["series"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap_or(0.0))
        .sum();
    assert_eq!(counted, SEEDED as f64, "every seeded event is in the range");
    let resp = app
        .http
        .get(app.url("/api/v1/events?user_id=nobody"))
        .bearer_auth(&app.secret_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

/// A PostgreSQL connection holding `events` locked: every statement reading it waits, so a
/// heavy query stays open for as long as a test needs, whatever the machine's speed.
struct EventsLocked(sqlx::PgConnection);

impl EventsLocked {
    async fn take(database_url: &str) -> Self {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(database_url).await.unwrap();
        for sql in ["BEGIN", "LOCK TABLE events IN ACCESS EXCLUSIVE MODE"] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
        Self(conn)
    }

    async fn release(mut self) {
        sqlx::query("ROLLBACK").execute(&mut self.0).await.unwrap();
    }
}

/// Heavy queries' statements waiting for a lock (their connections say who they are), not
/// the collector's background work.
async fn waiting_for_locks(app: &Dash) -> i64 {
    helpers::query_i64(
        &app.database_url,
        &format!(
            "SELECT COUNT(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'
               AND application_name = '{POSTGRES_APPLICATION_NAME}'"
        ),
    )
    .await
}

/// Waits until `n` statements of the app wait for a lock.
async fn until_waiting(app: &Dash, n: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while waiting_for_locks(app).await != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} statements never waited"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn postgresql_cancels_a_statement_still_waiting_when_the_budget_is_spent() {
    if !helpers::on_postgres() {
        // SQLite readers never wait for a lock (WAL): the first test covers its statements.
        return;
    }
    let (app, admin) = seeded(|c| c.dashboard.query_timeout_ms = 3_000).await;
    let lock = EventsLocked::take(&app.database_url).await;
    let resp = tokio::time::timeout(
        Duration::from_secs(60),
        get(&app, &admin, &heavy(app.project)),
    )
    .await
    .expect("the query answers when its budget is spent, not when the lock goes");
    assert_refused(
        resp,
        "query_timeout",
        "PULSELINE_DASHBOARD_QUERY_TIMEOUT_MS = 3000",
        "5",
    )
    .await;
    // Nothing is left waiting on the server, though the lock is still held.
    until_waiting(&app, 0).await;
    lock.release().await;
    let (status, body) = app.get(&admin, &heavy(app.project)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn heavy_queries_beyond_a_project_or_the_server_bound_get_503() {
    if !helpers::on_postgres() {
        return sqlite_concurrent_heavy_queries().await;
    }
    let (app, admin) = seeded(|c| {
        c.dashboard.queries_per_project = 2;
        c.dashboard.queries = 3;
        c.dashboard.query_wait_ms = 100;
        c.dashboard.query_timeout_ms = 120_000;
    })
    .await;
    let a = app.project;
    let (status, b) = app
        .post(&admin, "/api/dash/projects", json!({"name": "Project B"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{b}");
    let b = b["id"].as_i64().unwrap();
    let (status, share) = app
        .post(
            &admin,
            &format!("/api/dash/projects/{a}/shares"),
            json!({"page": "vitals"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{share}");
    let shared_vitals = format!("{}/api/vitals", share["path"].as_str().unwrap());
    // Web Vitals come from their rollups, not `events`: they answer under the lock.
    let vitals = |p: i64| format!("/api/dash/projects/{p}/vitals");

    let lock = EventsLocked::take(&app.database_url).await;
    let held_a: Vec<_> = (0..2)
        .map(|_| tokio::spawn(get_owned(&app, &admin, heavy(a))))
        .collect();
    until_waiting(&app, 2).await;
    // Project A runs its two: a third waits PULSELINE_DASHBOARD_QUERY_WAIT_MS, then 503,
    // whether a member or a shared link asks.
    assert_refused(
        get(&app, &admin, &vitals(a)).await,
        "overloaded",
        "PULSELINE_DASHBOARD_QUERIES_PER_PROJECT = 2",
        "2",
    )
    .await;
    let resp = app.http.get(app.url(&shared_vitals)).send().await.unwrap();
    assert_refused(
        resp,
        "overloaded",
        "PULSELINE_DASHBOARD_QUERIES_PER_PROJECT = 2",
        "2",
    )
    .await;
    // Cheap reads of A are not held up, and project B is not held up by A.
    let (status, body) = app
        .get(&admin, &format!("/api/dash/projects/{a}/overview"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.get(&admin, &vitals(b)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // With one of B's running too, the server runs its three: B's second waits, then 503.
    let held_b = tokio::spawn(get_owned(&app, &admin, heavy(b)));
    until_waiting(&app, 3).await;
    assert_refused(
        get(&app, &admin, &vitals(b)).await,
        "overloaded",
        "PULSELINE_DASHBOARD_QUERIES = 3",
        "2",
    )
    .await;
    // Once the queries finish, their slots are free again.
    lock.release().await;
    for held in held_a.into_iter().chain([held_b]) {
        assert_eq!(held.await.unwrap(), StatusCode::OK);
    }
    let resp = app.http.get(app.url(&shared_vitals)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

/// `get` for a spawned task: the status.
fn get_owned(
    app: &Dash,
    who: &Login,
    path: String,
) -> impl Future<Output = StatusCode> + Send + 'static {
    let request = app
        .http
        .get(app.url(&path))
        .header("cookie", who.cookie.clone());
    async move { request.send().await.unwrap().status() }
}

/// SQLite has no lock to hold a query open, so three heavy queries of one project go at once,
/// each scanning the seeded events: while two run, the third is refused. A round in which the
/// first finished before the third arrived proves nothing and is tried again.
async fn sqlite_concurrent_heavy_queries() {
    let (app, admin) = seeded(|c| {
        c.dashboard.queries_per_project = 2;
        c.dashboard.queries = 8;
        c.dashboard.query_wait_ms = 0;
    })
    .await;
    let (status, b) = app
        .post(&admin, "/api/dash/projects", json!({"name": "Project B"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{b}");
    let b = b["id"].as_i64().unwrap();
    let ask = |p: i64| {
        app.http
            .get(app.url(&heavy(p)))
            .header("cookie", &admin.cookie)
            .send()
    };
    for _round in 0..10 {
        // Project B's query goes with A's three and is admitted whatever A runs.
        let (a, b) = tokio::join!(
            futures::future::join_all((0..3).map(|_| ask(app.project))),
            ask(b)
        );
        assert_eq!(b.unwrap().status(), StatusCode::OK);
        let mut refused = 0;
        for resp in a {
            let resp = resp.unwrap();
            if resp.status() == StatusCode::OK {
                continue;
            }
            refused += 1;
            assert_refused(
                resp,
                "overloaded",
                "PULSELINE_DASHBOARD_QUERIES_PER_PROJECT = 2",
                "2",
            )
            .await;
        }
        assert!(refused <= 1, "two of a project's queries may run at once");
        if refused == 1 {
            return;
        }
    }
    panic!("three heavy queries at once were never refused");
}
