//! Deleting, exporting and suppressing one person's data (docs/privacy.md), over HTTP on both
//! backends: what the read API and the dashboard show after a deletion is what a store that
//! never had the person shows. Also the rest of docs/privacy.md: cookieless visitor ids and
//! raw-event retention.

use crate::helpers;
mod cookieless;
mod raw_retention;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use pulseline_collector::clock::{Clock, FakeClock};
use pulseline_collector::config::Config;
use pulseline_collector::startup::Application;
use serde_json::{Value, json};

struct App {
    base: String,
    http: reqwest::Client,
    write_key: String,
    secret_key: String,
    project: i64,
    cookie: String,
    csrf: String,
    database_url: String,
    _dir: tempfile::TempDir,
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 30, 0).unwrap()
}

async fn spawn() -> App {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::for_tests_with_database(helpers::fresh_database_url(dir.path()).await);
    let database_url = config.database_url.clone();
    let clock: Arc<dyn Clock> = Arc::new(FakeClock::new(now()));
    let app = Application::build_with_clock(config, clock).await.unwrap();
    let admin = app.first_admin().unwrap();
    let keys = app.bootstrap_keys().unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{base}/api/dash/session"))
        .json(&json!({"email": admin.email, "password": admin.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    App {
        base,
        http,
        write_key: keys.write_key,
        secret_key: keys.secret_key,
        project: keys.project_id,
        cookie,
        csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        database_url,
        _dir: dir,
    }
}

impl App {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn ingest(&self, batch: Vec<Value>) -> Value {
        let resp = self
            .http
            .post(self.url("/v1/batch"))
            .basic_auth(&self.write_key, Some(""))
            .json(&json!({ "batch": batch }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    /// A secret-key request; the status and the body as text.
    async fn secret(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, String) {
        let mut req = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.secret_key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    async fn secret_json(&self, method: reqwest::Method, path: &str) -> (u16, Value) {
        let (status, text) = self.secret(method, path, None).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A dashboard change as the user with this cookie and CSRF token.
    async fn dash_send(
        &self,
        method: reqwest::Method,
        (cookie, csrf): (&str, &str),
        path: &str,
        body: Value,
    ) -> (u16, Value) {
        let resp = self
            .http
            .request(method, self.url(path))
            .header("cookie", cookie)
            .header("x-csrf-token", csrf)
            .header("origin", &self.base)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn dash(&self, path: &str) -> Value {
        let resp = self
            .http
            .get(self.url(&format!("/api/dash/projects/{}{path}", self.project)))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        resp.json().await.unwrap()
    }

    /// Everything the read API and the dashboard say about the project, except event ids.
    async fn view(&self) -> Value {
        let (_, stats) = self
            .secret_json(reqwest::Method::GET, "/api/v1/stats")
            .await;
        let (_, events) = self
            .secret_json(reqwest::Method::GET, "/api/v1/events?limit=1000")
            .await;
        let mut ids: Vec<String> = events["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["messageId"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        let day = 86_400_000;
        let to = now().timestamp_millis() + day;
        let from = to - 30 * day;
        let series = self
            .dash(&format!("/series?from={from}&to={to}&bucket=3600000"))
            .await;
        json!({
            "events_total": stats["events_total"],
            "events": ids,
            "overview": self.dash("/overview").await,
            "series": series,
        })
    }
}

fn hours_ago(h: i64) -> String {
    (now() - chrono::Duration::hours(h)).to_rfc3339()
}

fn track(user: Option<&str>, anon: Option<&str>, event: &str, id: &str, hours: i64) -> Value {
    json!({"type": "track", "userId": user, "anonymousId": anon, "event": event,
           "messageId": id, "timestamp": hours_ago(hours), "properties": {"plan": "pro"}})
}

/// Everyone else: present in both stores.
fn others() -> Vec<Value> {
    vec![
        track(Some("bob"), None, "signup", "o-1", 1),
        track(Some("bob"), None, "purchase", "o-2", 30),
        track(None, Some("anon-c"), "signup", "o-3", 1),
        track(Some("carol"), Some("anon-c2"), "purchase", "o-4", 50),
        json!({"type": "page", "userId": "bob", "name": "Home", "messageId": "o-5",
               "timestamp": hours_ago(1)}),
    ]
}

/// Alice under three ids: her user id, the anonymous id an identify links to it, and the id an
/// alias renamed. Her events share hours and names with the others', so rollups must be
/// decremented, not dropped.
fn alice() -> Vec<Value> {
    vec![
        track(Some("alice"), None, "signup", "a-1", 1),
        track(Some("alice"), None, "purchase", "a-2", 30),
        json!({"type": "identify", "userId": "alice", "anonymousId": "anon-a",
               "messageId": "a-3", "timestamp": hours_ago(2), "traits": {"email": "a@x"}}),
        track(None, Some("anon-a"), "signup", "a-4", 75),
        json!({"type": "alias", "userId": "alice", "previousId": "old-alice",
               "messageId": "a-5", "timestamp": hours_ago(3)}),
        track(Some("old-alice"), None, "purchase", "a-6", 50),
        json!({"type": "page", "anonymousId": "anon-a", "name": "Home", "messageId": "a-7",
               "timestamp": hours_ago(1)}),
    ]
}

/// Every `purchase` becomes an outbox notification (to a closed loopback port).
async fn notify_purchases(app: &App) {
    let (status, channel) = app
        .secret(
            reqwest::Method::POST,
            "/api/v1/channels",
            Some(json!({"name": "w", "kind": "webhook", "url": "http://127.0.0.1:9/hook"})),
        )
        .await;
    assert_eq!(status, 201, "{channel}");
    let channel: Value = serde_json::from_str(&channel).unwrap();
    let (status, body) = app
        .secret(
            reqwest::Method::POST,
            "/api/v1/categories",
            Some(
                json!({"name": "Purchases", "pattern": "purchase", "emoji": "💰",
                        "colour": 0x2ECC71, "channel_id": channel["id"]}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

async fn delivery_sources(app: &App) -> Vec<String> {
    let (status, body) = app
        .secret_json(reqwest::Method::GET, "/api/v1/deliveries?limit=100")
        .await;
    assert_eq!(status, 200, "{body}");
    let list = body
        .get("deliveries")
        .unwrap_or(&body)
        .as_array()
        .unwrap_or_else(|| panic!("a list of deliveries: {body}"));
    let mut sources: Vec<String> = list
        .iter()
        .map(|d| d["source"].as_str().unwrap().to_owned())
        .collect();
    sources.sort();
    sources
}

#[tokio::test]
async fn deleting_a_person_leaves_what_a_store_without_them_shows() {
    let with = spawn().await;
    let without = spawn().await;
    notify_purchases(&with).await;
    notify_purchases(&without).await;
    let mut everyone = others();
    everyone.extend(alice());
    with.ingest(everyone).await;
    without.ingest(others()).await;
    let before = with.view().await;
    assert_ne!(before, without.view().await, "alice's events are counted");
    assert_eq!(delivery_sources(&with).await.len(), 4);
    let (status, preview) = with
        .secret_json(reqwest::Method::GET, "/api/v1/persons?user_id=alice")
        .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(
        preview,
        json!({"ids": ["alice", "anon-a", "old-alice"], "events": 7})
    );

    let (status, body) = with
        .secret_json(reqwest::Method::DELETE, "/api/v1/persons?user_id=alice")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["ids"],
        json!(["alice", "anon-a", "old-alice"]),
        "{body}"
    );
    assert_eq!(body["deleted"]["events"], 7, "{body}");
    assert_eq!(body["deleted"]["deliveries"], 2, "{body}");
    assert_eq!(body["suppressed"], false);

    assert_eq!(with.view().await, without.view().await);
    let sources = delivery_sources(&with).await;
    assert_eq!(sources.len(), 2, "{sources:?}");
    assert!(
        sources
            .iter()
            .all(|s| !s.ends_with(":a-2") && !s.ends_with(":a-6"))
    );

    // The audit log says who deleted how much, without the ids themselves.
    let log = with.dash("/audit").await;
    let entry = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "person.deleted")
        .unwrap_or_else(|| panic!("no person.deleted entry in {log}"));
    let target = entry["target"].as_str().unwrap();
    assert!(entry["actor"].as_str().unwrap().starts_with("secret key"));
    assert!(target.contains("events 7"), "{target}");
    assert!(!log.to_string().contains("alice"), "{log}");
    assert!(!log.to_string().contains("anon-a"), "{log}");
}

#[tokio::test]
async fn a_deleted_person_who_comes_back_today_counts_as_active_again() {
    let app = spawn().await;
    app.ingest(alice()).await;
    app.ingest(others()).await;
    let dau = |o: &Value| o["dau"].as_i64().unwrap();
    let before = dau(&app.dash("/overview").await);
    let (status, body) = app
        .secret_json(
            reqwest::Method::DELETE,
            "/api/v1/persons?anonymous_id=anon-a",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Active today under two keys: alice and anon-a (her anonymous-only page view).
    assert_eq!(dau(&app.dash("/overview").await), before - 2);
    app.ingest(vec![track(Some("alice"), None, "signup", "again-1", 0)])
        .await;
    assert_eq!(dau(&app.dash("/overview").await), before - 1);
}

#[tokio::test]
async fn export_streams_every_event_of_the_person_as_ndjson() {
    let app = spawn().await;
    app.ingest(others()).await;
    app.ingest(alice()).await;
    // More than one page of the export (500 events), interleaved with someone else's.
    for chunk in 0..3 {
        let batch: Vec<Value> = (0..400)
            .map(|i| {
                let n = chunk * 400 + i;
                if n % 2 == 0 {
                    track(Some("alice"), None, "view", &format!("av-{n:04}"), 4)
                } else {
                    track(Some("dave"), None, "view", &format!("dv-{n:04}"), 4)
                }
            })
            .collect();
        app.ingest(batch).await;
    }
    let resp = app
        .http
        .get(app.url("/api/v1/persons/export?user_id=alice"))
        .bearer_auth(&app.secret_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let text = resp.text().await.unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 7 + 600);
    let mut ids: Vec<&str> = events
        .iter()
        .map(|e| e["messageId"].as_str().unwrap())
        .collect();
    // Oldest first, each once, nobody else's.
    assert_eq!(&ids[..7], ["a-1", "a-2", "a-3", "a-4", "a-5", "a-6", "a-7"]);
    assert!(ids.iter().all(|id| id.starts_with("a")), "{ids:?}");
    ids.dedup();
    assert_eq!(ids.len(), 607);
    // Rendered as the read API renders events.
    assert_eq!(events[0]["type"], "track");
    assert_eq!(events[0]["properties"]["plan"], "pro");
    assert!(events[0]["receivedAt"].is_string());
}

#[tokio::test]
async fn suppressed_persons_are_dropped_at_ingest_until_lifted() {
    let app = spawn().await;
    app.ingest(alice()).await;
    let (status, body) = app
        .secret_json(
            reqwest::Method::DELETE,
            "/api/v1/persons?user_id=alice&suppress=true",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["suppressed"], true);
    let (_, list) = app
        .secret_json(reqwest::Method::GET, "/api/v1/persons/suppressions")
        .await;
    let listed: Vec<&str> = list["suppressions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["person_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["alice", "anon-a", "old-alice"]);

    // Accepted (the SDK must not retry), but not stored; others still are.
    let answer = app
        .ingest(vec![
            track(Some("alice"), None, "signup", "s-1", 0),
            track(None, Some("anon-a"), "signup", "s-2", 0),
            track(Some("bob"), None, "signup", "s-3", 0),
        ])
        .await;
    assert_eq!(answer["accepted"], 3, "{answer}");
    let (_, stats) = app.secret_json(reqwest::Method::GET, "/api/v1/stats").await;
    assert_eq!(stats["events_total"], 1, "{stats}");

    let (status, _) = app
        .secret(
            reqwest::Method::DELETE,
            "/api/v1/persons/suppressions?user_id=alice",
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, body) = app
        .secret_json(
            reqwest::Method::DELETE,
            "/api/v1/persons/suppressions?user_id=alice",
        )
        .await;
    assert_eq!(status, 404, "{body}");
    app.ingest(vec![
        track(Some("alice"), None, "signup", "s-4", 0),
        track(None, Some("anon-a"), "signup", "s-5", 0),
    ])
    .await;
    let (_, stats) = app.secret_json(reqwest::Method::GET, "/api/v1/stats").await;
    assert_eq!(
        stats["events_total"], 2,
        "alice is back, anon-a still suppressed: {stats}"
    );
}

#[tokio::test]
async fn bad_requests_say_what_to_fix() {
    let app = spawn().await;
    let (status, body) = app
        .secret_json(reqwest::Method::DELETE, "/api/v1/persons")
        .await;
    assert_eq!(status, 400);
    assert!(body.to_string().contains("user_id"), "{body}");
    let (status, body) = app
        .secret_json(reqwest::Method::GET, "/api/v1/persons/export?user_id=")
        .await;
    assert_eq!(status, 400, "{body}");
    // The public write key cannot delete or read anyone.
    let resp = app
        .http
        .delete(app.url("/api/v1/persons?user_id=alice"))
        .basic_auth(&app.write_key, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    // A shared anonymous id linking more than the limit of users is refused, not followed.
    let shared: Vec<Value> = (0..120)
        .map(|i| {
            track(
                Some(&format!("u-{i}")),
                Some("shared"),
                "x",
                &format!("sh-{i}"),
                1,
            )
        })
        .collect();
    app.ingest(shared).await;
    let (status, body) = app
        .secret_json(reqwest::Method::DELETE, "/api/v1/persons?user_id=u-1")
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("100"), "{body}");
    let (_, stats) = app.secret_json(reqwest::Method::GET, "/api/v1/stats").await;
    assert_eq!(stats["events_total"], 120);
}

#[tokio::test]
async fn the_dashboard_lets_owners_and_admins_only_and_stays_in_the_project() {
    let app = spawn().await;
    let admin = (app.cookie.as_str(), app.csrf.as_str());
    // A second project with an "alice" of its own, which no deletion here may touch.
    let (status, other) = app
        .dash_send(
            reqwest::Method::POST,
            admin,
            "/api/dash/projects",
            json!({"name": "b"}),
        )
        .await;
    assert_eq!(status, 200, "{other}");
    let other_write = other["write_key"].as_str().unwrap();
    let resp = app
        .http
        .post(app.url("/v1/batch"))
        .basic_auth(other_write, Some(""))
        .json(&json!({"batch": [track(Some("alice"), None, "signup", "b-1", 1)]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    app.ingest(alice()).await;

    let store = pulseline_collector::store::Store::open(&app.database_url, Default::default())
        .await
        .unwrap();
    pulseline_collector::accounts::create_user(
        &store,
        "dev@example.com",
        "developer-pw",
        false,
        now(),
    )
    .await
    .unwrap();
    store.close().await;
    let p = format!("/api/dash/projects/{}", app.project);
    // Members join by invitation: the admin invites, the developer accepts.
    let (status, invitation) = app
        .dash_send(
            reqwest::Method::POST,
            admin,
            &format!("{p}/invitations"),
            json!({"email": "dev@example.com", "role": "developer"}),
        )
        .await;
    assert_eq!(status, 200, "{invitation}");
    let resp = app
        .http
        .post(app.url("/api/dash/session"))
        .json(&json!({"email": "dev@example.com", "password": "developer-pw"}))
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    let dev = (cookie.as_str(), body["csrf_token"].as_str().unwrap());
    let (status, body) = app
        .dash_send(
            reqwest::Method::POST,
            dev,
            &format!("/api/dash/invitations/{}/accept", invitation["id"]),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let delete = format!("{p}/persons?user_id=alice");
    let (status, body) = app
        .dash_send(reqwest::Method::DELETE, dev, &delete, Value::Null)
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.to_string().contains("admin"), "{body}");
    let (status, _) = app
        .dash_send(
            reqwest::Method::GET,
            dev,
            &format!("{p}/persons/export?user_id=alice"),
            Value::Null,
        )
        .await;
    assert_eq!(status, 403);

    let (status, body) = app
        .dash_send(reqwest::Method::DELETE, admin, &delete, Value::Null)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deleted"]["events"], 7, "{body}");
    let log = app.dash("/audit").await;
    let entry = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "person.deleted")
        .unwrap_or_else(|| panic!("no person.deleted entry in {log}"));
    assert_eq!(entry["actor"], "admin@localhost", "{entry}");

    // The other project's alice is still there.
    let resp = app
        .http
        .get(app.url("/api/v1/stats"))
        .bearer_auth(other["secret_key"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let stats: Value = resp.json().await.unwrap();
    assert_eq!(stats["events_total"], 1, "{stats}");
}

#[tokio::test]
async fn suppressions_are_listed_a_thousand_at_a_time() {
    let app = spawn().await;
    let ids: Vec<String> = (0..1001).map(|i| format!("p-{i:04}")).collect();
    let store = pulseline_collector::store::Store::open(&app.database_url, Default::default())
        .await
        .unwrap();
    store
        .suppress_persons(app.project, &ids, now())
        .await
        .unwrap();
    store.close().await;
    let (status, first) = app
        .secret_json(reqwest::Method::GET, "/api/v1/persons/suppressions")
        .await;
    assert_eq!(status, 200);
    assert_eq!(first["suppressions"].as_array().unwrap().len(), 1000);
    assert_eq!(first["next_after"], "p-0999");
    let (_, second) = app
        .secret_json(
            reqwest::Method::GET,
            "/api/v1/persons/suppressions?after=p-0999",
        )
        .await;
    assert_eq!(second["suppressions"][0]["person_id"], "p-1000");
    assert_eq!(second["suppressions"].as_array().unwrap().len(), 1);
    assert_eq!(second["next_after"], Value::Null);
}
