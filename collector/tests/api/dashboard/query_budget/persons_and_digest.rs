//! A person's preview and the digest preview are heavy queries like the others: admitted and
//! budgeted. A person's export is admitted and holds its slot while it streams, but has no
//! time budget: it answers a right of access and must be complete.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use super::{Dash, Login, SEEDED, T0, assert_refused, get, metric, seeded};
use crate::helpers::{self, standins};

/// Events of the person `whale`, each carrying [`PAD`] bytes: their export is far larger than
/// what the sockets between the test and the collector buffer, so an export the test does
/// not read stays open.
const WHALE_EVENTS: i64 = 40_000;
const PAD: usize = 1_000;

fn with_smtp(smtp: &standins::SmtpSink) -> impl FnOnce(&mut pulseline_collector::config::Config) {
    let url = smtp.url.clone();
    move |c| {
        c.delivery.smtp_url = Some(url);
        c.delivery.smtp_from = Some("Pulseline <digest@pulseline.test>".to_owned());
    }
}

/// Page views in the digest's week (the clock's last complete week holds the seeded day),
/// one per seeded event, over a thousand paths: its top pages read them all.
async fn seed_page_views(app: &Dash) {
    helpers::exec_sql(
        &app.database_url,
        &format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {SEEDED})
             INSERT INTO web_pageviews (seq, project_id, ts, visitor, path)
             SELECT 1000000 + i, {}, {T0} + i * 1000, 'v' || (i % 700), '/p' || (i % 1000)
             FROM n",
            app.project
        ),
    )
    .await;
}

async fn seed_whale(app: &Dash) {
    let pad = "x".repeat(PAD);
    helpers::exec_sql(
        &app.database_url,
        &format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {WHALE_EVENTS})
             INSERT INTO events (project_id, message_id, type, event, user_id, anonymous_id,
                                 timestamp, received_at, body)
             SELECT {}, 'whale-' || i, 'track', 'buy', 'whale', NULL,
                    {T0} + i * 1000, {T0} + i * 1000,
                    '{{\"type\":\"track\",\"event\":\"buy\",\"properties\":{{\"pad\":\"{pad}\"}}}}'
             FROM n",
            app.project
        ),
    )
    .await;
}

/// Asks `path` until it is answered, while it is refused for load (a slot being freed).
async fn until_answered(app: &Dash, who: &Login, path: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = app.get(who, path).await;
        if status == StatusCode::OK {
            return body;
        }
        assert_eq!(body["code"], "overloaded", "{body}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} stayed refused: {body}"
        );
    }
}

/// A 503 `query_timeout` over a 1 ms budget whose advice is `advice`: these queries have no
/// range or filters to narrow.
async fn timed_out(resp: reqwest::Response, advice: &str) {
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "5");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "query_timeout", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("PULSELINE_DASHBOARD_QUERY_TIMEOUT_MS = 1"),
        "{message}"
    );
    assert!(message.contains(advice), "{message}");
    assert!(!message.contains("range"), "{message}");
}

fn persons(project: i64) -> String {
    format!("/api/dash/projects/{project}/persons")
}

async fn digest_preview(app: &Dash, who: &Login, project: i64) -> reqwest::Response {
    app.http
        .post(app.url(&format!("/api/dash/projects/{project}/digest/preview")))
        .header("cookie", &who.cookie)
        .header("x-csrf-token", &who.csrf)
        .header("origin", &app.base)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn previews_over_their_budget_answer_503_and_an_export_is_never_cut() {
    let smtp = standins::SmtpSink::start().await;
    let configure = with_smtp(&smtp);
    let (app, admin) = seeded(|c| {
        configure(c);
        c.dashboard.query_timeout_ms = 1;
    })
    .await;
    seed_page_views(&app).await;
    // Linking a person's ids and counting their events scan the project's events, through
    // the read API and the dashboard alike.
    let resp = app
        .http
        .get(app.url("/api/v1/persons?user_id=u1"))
        .bearer_auth(&app.secret_key)
        .send()
        .await
        .unwrap();
    let reads_all = "finding a person's events reads all of the project's";
    timed_out(resp, reads_all).await;
    let preview = format!("{}?user_id=u1", persons(app.project));
    timed_out(get(&app, &admin, &preview).await, reads_all).await;
    // The digest's top pages read the week's page views; no e-mail goes out.
    let resp = digest_preview(&app, &admin, app.project).await;
    timed_out(resp, "stopped: try again when the server is less busy").await;
    assert!(smtp.messages.lock().unwrap().is_empty());
    // An export has no time budget: every event of the person comes, oldest first.
    let export = format!("{}/export?user_id=u1", persons(app.project));
    let resp = get(&app, &admin, &export).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as i64, SEEDED / 500, "{text}");
    assert_eq!(lines[0]["messageId"], format!("seed-{}-1", app.project));

    // Within the default budget both previews answer, and the e-mail goes out.
    let (app, admin) = seeded(with_smtp(&smtp)).await;
    seed_page_views(&app).await;
    let (status, body) = app
        .get(&admin, &format!("{}?user_id=u1", persons(app.project)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["events"], SEEDED / 500);
    let resp = digest_preview(&app, &admin, app.project).await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "{}",
        resp.text().await.unwrap()
    );
    smtp.wait_for(1, helpers::WAIT).await;
}

#[tokio::test]
async fn exports_hold_their_slots_while_they_stream_and_previews_beyond_the_bound_get_503() {
    let smtp = standins::SmtpSink::start().await;
    let configure = with_smtp(&smtp);
    let (app, admin) = seeded(|c| {
        configure(c);
        c.dashboard.queries_per_project = 2;
        c.dashboard.queries = 2;
        c.dashboard.query_wait_ms = 100;
    })
    .await;
    seed_whale(&app).await;
    let a = app.project;
    let (status, b) = app
        .post(
            &admin,
            "/api/dash/projects",
            serde_json::json!({"name": "Project B"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{b}");
    let b = b["id"].as_i64().unwrap();
    let whale = format!("{}/export?user_id=whale", persons(a));

    // Two exports the client does not read: each holds one of the project's two slots.
    let mut held = Vec::new();
    for _ in 0..2 {
        let resp = get(&app, &admin, &whale).await;
        assert_eq!(resp.status(), StatusCode::OK);
        held.push(resp);
    }
    let per_project = "PULSELINE_DASHBOARD_QUERIES_PER_PROJECT = 2";
    assert_refused(
        get(&app, &admin, &whale).await,
        "overloaded",
        per_project,
        "2",
    )
    .await;
    let preview = format!("{}?user_id=u1", persons(a));
    assert_refused(
        get(&app, &admin, &preview).await,
        "overloaded",
        per_project,
        "2",
    )
    .await;
    let resp = app
        .http
        .get(app.url("/api/v1/persons?user_id=u1"))
        .bearer_auth(&app.secret_key)
        .send()
        .await
        .unwrap();
    assert_refused(resp, "overloaded", per_project, "2").await;
    assert_refused(
        digest_preview(&app, &admin, a).await,
        "overloaded",
        per_project,
        "2",
    )
    .await;
    // Another project is not held up by A's exports: they keep A's slots, but the server's
    // (two, as many as A's) only while they read a page, never while their client stalls.
    until_answered(&app, &admin, &format!("{}?user_id=u1", persons(b))).await;

    // A client that goes away frees its export's slot.
    drop(held.pop());
    let body = until_answered(&app, &admin, &preview).await;
    assert_eq!(body["events"], SEEDED / 500);
    // The digest previews refused for load were not counted against the member's hourly
    // previews: all three are still there.
    drop(held);
    for _ in 0..3 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let resp = digest_preview(&app, &admin, a).await;
            if resp.status() == StatusCode::OK {
                break;
            }
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["code"], "overloaded", "{body}");
            assert!(tokio::time::Instant::now() < deadline, "{body}");
        }
    }
}

/// An export halfway is slowed by load, not cut: its next page waits for the server's slot.
/// PostgreSQL only: there a lock on the Web Vitals rollup holds another project's query (and
/// the server's only slot) for as long as the test needs, while the export, reading `events`,
/// is held up by nothing but the slot. SQLite readers never wait for a lock.
#[tokio::test]
async fn an_export_halfway_waits_for_the_servers_slot_and_completes() {
    if !helpers::on_postgres() {
        return;
    }
    let (app, admin) = seeded(|c| {
        c.dashboard.queries_per_project = 2;
        c.dashboard.queries = 1;
        c.dashboard.query_wait_ms = 200;
        c.dashboard.query_timeout_ms = 120_000;
    })
    .await;
    seed_whale(&app).await;
    let (status, b) = app
        .post(
            &admin,
            "/api/dash/projects",
            serde_json::json!({"name": "Project B"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{b}");
    let b = b["id"].as_i64().unwrap();
    let export = get(
        &app,
        &admin,
        &format!("{}/export?user_id=whale", persons(app.project)),
    )
    .await;
    assert_eq!(export.status(), StatusCode::OK);

    let lock = RollupLocked::take(&app.database_url).await;
    // B's query takes the server's only slot (asked again while an export page being read
    // has it) and waits on the lock.
    let ask_b = {
        let (app_http, url, cookie) = (
            app.http.clone(),
            app.url(&format!("/api/dash/projects/{b}/vitals")),
            admin.cookie.clone(),
        );
        move || {
            let request = app_http.get(&url).header("cookie", &cookie);
            async move { request.send().await.unwrap().status() }
        }
    };
    let held = tokio::spawn(async move {
        loop {
            let status = ask_b().await;
            if status != StatusCode::SERVICE_UNAVAILABLE {
                return status;
            }
        }
    });
    super::until_waiting(&app, 1).await;
    // The server's only slot is B's: the export's pages beyond what the sockets buffered
    // wait for it, and then come, every one.
    let reading = tokio::spawn(async move { export.text().await.unwrap() });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while queries_waiting(&app).await < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the export never waited for the server's slot"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A query asked now waits PULSELINE_DASHBOARD_QUERY_WAIT_MS for the slot and is refused;
    // the export, which has waited longer, still waits.
    let (status, body) = app
        .get(&admin, &format!("{}?user_id=u1", persons(app.project)))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("PULSELINE_DASHBOARD_QUERIES = 1"),
        "{body}"
    );
    assert!(queries_waiting(&app).await >= 1.0, "the export gave up");
    lock.release().await;
    assert_eq!(held.await.unwrap(), StatusCode::OK);
    let text = reading.await.unwrap();
    assert_eq!(text.lines().count() as i64, WHALE_EVENTS);
    assert!(
        text.lines().last().unwrap().contains("whale-40000"),
        "oldest first, the last page last"
    );
}

/// Heavy queries of the process waiting for a slot (tests running beside this one may add to
/// it; none of them waits for long).
async fn queries_waiting(app: &Dash) -> f64 {
    metric(app, "pulseline_dashboard_queries_waiting").await
}

/// A PostgreSQL connection holding the Web Vitals rollup locked.
struct RollupLocked(sqlx::PgConnection);

impl RollupLocked {
    async fn take(database_url: &str) -> Self {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(database_url).await.unwrap();
        for sql in ["BEGIN", "LOCK TABLE vitals_hourly IN ACCESS EXCLUSIVE MODE"] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
        Self(conn)
    }

    async fn release(mut self) {
        sqlx::query("ROLLBACK").execute(&mut self.0).await.unwrap();
    }
}
