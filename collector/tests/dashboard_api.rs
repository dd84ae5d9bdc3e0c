//! The dashboard's HTTP API over a real socket, on both backends: accounts, sessions, CSRF,
//! roles, tenancy, the audit log, and the query endpoints against hand-computed values.

mod common;
mod standins;
/// The Web page (issue 21).
#[path = "dashboard_api/web.rs"]
mod web;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use pulseline_collector::clock::{Clock, FakeClock, SystemClock};
use pulseline_collector::config::Config;
use pulseline_collector::routes::DASHBOARD_PREFIX;
use pulseline_collector::startup::Application;
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Dash {
    base: String,
    http: reqwest::Client,
    admin_email: String,
    admin_password: String,
    write_key: String,
    secret_key: String,
    project: i64,
    database_url: String,
    _dir: tempfile::TempDir,
}

async fn spawn(configure: impl FnOnce(&mut Config), clock: Arc<dyn Clock>) -> Dash {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests_with_database(common::fresh_database_url(dir.path()).await);
    configure(&mut config);
    let database_url = config.database_url.clone();
    let app = Application::build_with_clock(config, clock).await.unwrap();
    let admin = app
        .first_admin()
        .expect("a fresh database creates the first admin");
    let keys = app.bootstrap_keys().unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    Dash {
        base,
        http: reqwest::Client::new(),
        admin_email: admin.email,
        admin_password: admin.password,
        write_key: keys.write_key,
        secret_key: keys.secret_key,
        project: keys.project_id,
        database_url,
        _dir: dir,
    }
}

/// A logged-in browser: its cookie and CSRF token.
#[derive(Clone)]
struct Login {
    cookie: String,
    csrf: String,
}

impl Dash {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn login(&self, email: &str, password: &str) -> Result<Login, (StatusCode, Value)> {
        let resp = self
            .http
            .post(self.url("/api/dash/session"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let set_cookie = resp
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status != StatusCode::OK {
            return Err((status, body));
        }
        let set_cookie = set_cookie.expect("login sets the session cookie");
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        Ok(Login {
            cookie,
            csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        })
    }

    async fn admin(&self) -> Login {
        self.login(&self.admin_email, &self.admin_password)
            .await
            .unwrap()
    }

    async fn get(&self, who: &Login, path: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(self.url(path))
            .header("cookie", &who.cookie)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn send(
        &self,
        method: reqwest::Method,
        who: &Login,
        path: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let resp = self
            .http
            .request(method, self.url(path))
            .header("cookie", &who.cookie)
            .header("x-csrf-token", &who.csrf)
            .header("origin", &self.base)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, who: &Login, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, who, path, body).await
    }

    async fn ingest(&self, batch: Vec<Value>) {
        let resp = self
            .http
            .post(self.url("/v1/batch"))
            .basic_auth(&self.write_key, Some(""))
            .json(&json!({ "batch": batch }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    }

    /// Invites `email` to `project` as `role`, and accepts as that user: how members join.
    async fn add_member(&self, by: &Login, project: i64, email: &str, password: &str, role: &str) {
        let (status, invitation) = self
            .post(
                by,
                &format!("/api/dash/projects/{project}/invitations"),
                json!({"email": email, "role": role}),
            )
            .await;
        assert_eq!(status, 200, "{invitation}");
        let invitee = self.login(email, password).await.unwrap();
        let (status, body) = self
            .post(
                &invitee,
                &format!("/api/dash/invitations/{}/accept", invitation["id"]),
                json!({}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    async fn make_user(&self, email: &str, password: &str) {
        let store = pulseline_collector::store::Store::open(&self.database_url, Default::default())
            .await
            .unwrap();
        pulseline_collector::accounts::create_user(&store, email, password, false, Utc::now())
            .await
            .unwrap();
        store.close().await;
    }
}

#[tokio::test]
async fn login_sessions_logout_and_csrf() {
    let app = spawn(|_| {}, Arc::new(SystemClock)).await;

    let (status, body) = app
        .login(&app.admin_email, "wrong password!")
        .await
        .err()
        .unwrap();
    assert_eq!(status, 401);
    assert_eq!(body["message"], "wrong e-mail or password");
    let (status, _) = app
        .login("nobody@example.com", "whatever123")
        .await
        .err()
        .unwrap();
    assert_eq!(status, 401, "an unknown user gets the same answer");

    // The cookie: HttpOnly, SameSite=Lax, not Secure over plain HTTP; Secure behind TLS.
    let resp = app
        .http
        .post(app.url("/api/dash/session"))
        .json(&json!({"email": app.admin_email, "password": app.admin_password}))
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "{cookie}");
    // A client's own X-Forwarded-Proto is not believed; a trusted proxy's is (tested in
    // dashboard_security).
    let resp = app
        .http
        .post(app.url("/api/dash/session"))
        .header("x-forwarded-proto", "https")
        .json(&json!({"email": app.admin_email, "password": app.admin_password}))
        .send()
        .await
        .unwrap();
    assert!(
        !resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Secure")
    );

    let anonymous = app
        .http
        .get(app.url("/api/dash/session"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(
        anonymous.headers().get("www-authenticate").is_none(),
        "a browser must not pop up a Basic-auth prompt"
    );

    let me = app.admin().await;
    let (status, body) = app.get(&me, "/api/dash/session").await;
    assert_eq!(status, 200);
    assert_eq!(body["email"], "admin@localhost");
    // The first admin owns the default project.
    let (_, projects) = app.get(&me, "/api/dash/projects").await;
    assert_eq!(projects[0]["id"], app.project);
    assert_eq!(projects[0]["role"], "owner");

    // A change without the CSRF token, with a wrong one, or from another site is refused.
    let no_token = app
        .http
        .post(app.url("/api/dash/projects"))
        .header("cookie", &me.cookie)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 403);
    let forged = Login {
        cookie: me.cookie.clone(),
        csrf: "guess".into(),
    };
    assert_eq!(
        app.post(&forged, "/api/dash/projects", json!({"name": "x"}))
            .await
            .0,
        403
    );
    let cross_site = app
        .http
        .post(app.url("/api/dash/projects"))
        .header("cookie", &me.cookie)
        .header("x-csrf-token", &me.csrf)
        .header("origin", "https://evil.example")
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    let (status, _) = app.get(&me, "/api/dash/projects").await;
    assert_eq!(status, 200);
    let (_, projects) = app.get(&me, "/api/dash/projects").await;
    assert_eq!(
        projects.as_array().unwrap().len(),
        1,
        "no refused request created anything"
    );

    // Password change: the old password stops working; other sessions end.
    let other = app.admin().await;
    let (status, body) = app
        .post(
            &me,
            "/api/dash/password",
            json!({"current_password": "nope", "new_password": "a-new-password"}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = app
        .post(
            &me,
            "/api/dash/password",
            json!({"current_password": app.admin_password, "new_password": "short"}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("at least 10"));
    let (status, _) = app
        .post(
            &me,
            "/api/dash/password",
            json!({"current_password": app.admin_password, "new_password": "a-new-password"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.get(&other, "/api/dash/session").await.0, 401);
    assert_eq!(app.get(&me, "/api/dash/session").await.0, 200);
    assert!(
        app.login(&app.admin_email, &app.admin_password)
            .await
            .is_err()
    );
    assert!(app.login(&app.admin_email, "a-new-password").await.is_ok());

    // Logout ends the session on the server: the same cookie no longer works.
    let (status, _) = app
        .send(reqwest::Method::DELETE, &me, "/api/dash/session", json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.get(&me, "/api/dash/session").await.0, 401);
}

#[tokio::test]
async fn expired_sessions_are_refused() {
    let clock = Arc::new(FakeClock::new(Utc::now()));
    let app = spawn(|c| c.dashboard.session_ttl_hours = 2, clock.clone()).await;
    let me = app.admin().await;
    clock.advance(chrono::Duration::minutes(119));
    assert_eq!(app.get(&me, "/api/dash/session").await.0, 200);
    clock.advance(chrono::Duration::minutes(2));
    let (status, body) = app.get(&me, "/api/dash/session").await;
    assert_eq!(status, 401);
    assert!(body["message"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn login_attempts_are_rate_limited() {
    let app = spawn(
        |c| c.dashboard.login_attempts_per_minute = 3,
        Arc::new(SystemClock),
    )
    .await;
    for _ in 0..3 {
        assert_eq!(
            app.login(&app.admin_email, "wrong password!")
                .await
                .err()
                .unwrap()
                .0,
            401
        );
    }
    let (status, body) = app
        .login(&app.admin_email, &app.admin_password)
        .await
        .err()
        .unwrap();
    assert_eq!(status, 429);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("PULSELINE_LOGIN_ATTEMPTS_PER_MINUTE")
    );
}

#[tokio::test]
async fn roles_are_enforced_and_tenants_never_see_each_other() {
    let app = spawn(|_| {}, Arc::new(SystemClock)).await;
    let admin = app.admin().await;
    let a = app.project;
    let (status, b) = app
        .post(&admin, "/api/dash/projects", json!({"name": "Project B"}))
        .await;
    assert_eq!(status, 200, "{b}");
    let b = b["id"].as_i64().unwrap();

    app.make_user("viewer@example.com", "viewer-password").await;
    app.make_user("dev@example.com", "developer-password").await;
    let add = |email: &str, role: &str| json!({"email": email, "role": role});
    let path = format!("/api/dash/projects/{a}/members");
    app.add_member(&admin, a, "viewer@example.com", "viewer-password", "viewer")
        .await;
    app.add_member(
        &admin,
        a,
        "dev@example.com",
        "developer-password",
        "developer",
    )
    .await;

    let viewer = app
        .login("viewer@example.com", "viewer-password")
        .await
        .unwrap();
    let dev = app
        .login("dev@example.com", "developer-password")
        .await
        .unwrap();

    // Viewers read; they cannot create, rotate or revoke keys, nor manage members.
    let keys_path = format!("/api/dash/projects/{a}/keys");
    let (status, keys) = app.get(&viewer, &keys_path).await;
    assert_eq!(status, 200);
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .all(|k| match k["kind"].as_str() {
                Some("write") => k["key"].as_str().is_some_and(|key| key.starts_with("plw_")),
                _ => k.get("key").is_none(),
            }),
        "write keys (public) shown, secret keys never: {keys}"
    );
    let (status, body) = app
        .post(&viewer, &keys_path, json!({"kind": "write"}))
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body["message"].as_str().unwrap().contains("developer"));
    let key_id = keys[0]["id"].as_i64().unwrap();
    let rotate = format!("/api/dash/projects/{a}/keys/{key_id}/rotate");
    assert_eq!(app.post(&viewer, &rotate, json!({})).await.0, 403);
    assert_eq!(
        app.post(&viewer, &path, add("dev@example.com", "viewer"))
            .await
            .0,
        403
    );
    assert_eq!(
        app.get(&viewer, &format!("/api/dash/projects/{a}/audit"))
            .await
            .0,
        403
    );

    // Developers manage keys, shown once; a rotated key stops ingest at once.
    let (status, created) = app.post(&dev, &keys_path, json!({"kind": "write"})).await;
    assert_eq!(status, 200, "{created}");
    let new_key = created["key"].as_str().unwrap().to_owned();
    assert!(new_key.starts_with("plw_"));
    let new_id = created["id"].as_i64().unwrap();
    let (status, rotated) = app
        .post(
            &dev,
            &format!("/api/dash/projects/{a}/keys/{new_id}/rotate"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let refused = app
        .http
        .post(app.url("/v1/track"))
        .basic_auth(&new_key, Some(""))
        .json(&json!({"type": "track", "userId": "u", "event": "e"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        401,
        "the rotated-away key no longer ingests"
    );
    let rotated_id = rotated["id"].as_i64().unwrap();
    let (status, revoked) = app
        .post(
            &dev,
            &format!("/api/dash/projects/{a}/keys/{rotated_id}/revoke"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(revoked["revoked_at"].is_string());
    assert_eq!(
        app.post(&dev, &path, add("viewer@example.com", "admin"))
            .await
            .0,
        403
    );

    // Tenancy: project B and its keys do not exist for A's members (404, not 403), even
    // through A's URL with B's key id.
    let (_, b_keys) = app
        .get(&admin, &format!("/api/dash/projects/{b}/keys"))
        .await;
    let b_key = b_keys[0]["id"].as_i64().unwrap();
    for who in [&viewer, &dev] {
        for p in [
            "",
            "/keys",
            "/overview",
            "/series",
            "/events",
            "/members",
            "/usage",
            "/tail",
        ] {
            let (status, _) = app.get(who, &format!("/api/dash/projects/{b}{p}")).await;
            assert_eq!(status, 404, "{p}");
        }
        let (status, _) = app
            .post(
                who,
                &format!("/api/dash/projects/{b}/keys"),
                json!({"kind": "write"}),
            )
            .await;
        assert_eq!(status, 404);
        let (_, list) = app.get(who, "/api/dash/projects").await;
        assert_eq!(list.as_array().unwrap().len(), 1);
    }
    let (status, _) = app
        .post(
            &dev,
            &format!("/api/dash/projects/{a}/keys/{b_key}/revoke"),
            json!({}),
        )
        .await;
    assert_eq!(
        status, 404,
        "another project's key through this project's URL"
    );
    assert_eq!(
        app.get(&admin, &format!("/api/dash/projects/{b}/keys"))
            .await
            .1[0]["revoked_at"],
        Value::Null
    );

    // Only owners make owners; the last owner cannot be demoted.
    assert_eq!(
        app.post(&admin, &path, add("viewer@example.com", "admin"))
            .await
            .0,
        200
    );
    let promoted = app
        .login("viewer@example.com", "viewer-password")
        .await
        .unwrap();
    assert_eq!(
        app.post(&promoted, &path, add("dev@example.com", "owner"))
            .await
            .0,
        403
    );
    let (status, body) = app
        .post(&admin, &path, add("admin@localhost", "viewer"))
        .await;
    assert_eq!(status, 400, "{body}");

    // The audit log: who, what, when, from where; admins read it; it cannot be rewritten.
    let (status, log) = app
        .get(&admin, &format!("/api/dash/projects/{a}/audit"))
        .await;
    assert_eq!(status, 200);
    let actions: Vec<(&str, &str)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    for expected in [
        ("key.created", "dev@example.com"),
        ("key.rotated", "dev@example.com"),
        ("key.revoked", "dev@example.com"),
        ("member.invited", "admin@localhost"),
        ("member.joined", "viewer@example.com"),
        ("member.role_changed", "admin@localhost"),
    ] {
        assert!(actions.contains(&expected), "{expected:?} in {actions:?}");
    }
    let from_the_web = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] != "cli");
    assert!(from_the_web.clone().count() >= 6);
    assert!(
        from_the_web.clone().all(|e| e["ip"] == "127.0.0.1"),
        "{log}"
    );
    let (_, b_log) = app
        .get(&admin, &format!("/api/dash/projects/{b}/audit"))
        .await;
    assert!(
        b_log
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["action"] != "key.created"),
        "A's key events are not in B's log"
    );
    let n = common::query_i64(&app.database_url, "SELECT COUNT(*) FROM audit_log").await;
    for sql in ["UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"] {
        assert!(
            try_exec(&app.database_url, sql).await.is_err(),
            "{sql} must fail"
        );
    }
    assert_eq!(
        common::query_i64(&app.database_url, "SELECT COUNT(*) FROM audit_log").await,
        n
    );
}

async fn try_exec(url: &str, sql: &str) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await?;
        sqlx::query(sql).execute(&mut c).await.map(|_| ())
    } else {
        let mut c = sqlx::PgConnection::connect(url).await?;
        sqlx::query(sql).execute(&mut c).await.map(|_| ())
    }
}

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, h, m, 0).unwrap()
}

fn ev(user: &str, event: &str, t: DateTime<Utc>, props: Value) -> Value {
    json!({
        "type": "track", "userId": user, "event": event, "properties": props,
        "timestamp": t.to_rfc3339(), "messageId": uuid::Uuid::now_v7().to_string(),
    })
}

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
        async move { common::query_i64(&url, &sql).await }
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

#[tokio::test]
async fn query_endpoints_match_hand_computed_values() {
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
    app.ingest(vec![
        ev(
            "u1",
            "Visited",
            at(10, 0) - chrono::Duration::days(1),
            none.clone(),
        ),
        ev("u1", "Signed Up", at(10, 0), none.clone()),
        ev("u1", "Activated", at(10, 10), none.clone()),
        ev(
            "u1",
            "Paid",
            at(10, 20),
            json!({"amount": 10, "plan": "pro"}),
        ),
        ev("u2", "Signed Up", at(10, 0), none.clone()),
        ev("u2", "Activated", at(11, 0), none.clone()),
        ev("u3", "Signed Up", at(9, 0), none.clone()),
        ev(
            "u4",
            "Paid",
            at(11, 30),
            json!({"amount": 30, "plan": "free"}),
        ),
        ev(
            "u5",
            "Paid",
            at(11, 40),
            json!({"amount": 20, "plan": "pro"}),
        ),
        vital(1000.0, at(11, 0)),
        vital(2000.0, at(11, 1)),
        vital(3000.0, at(11, 2)),
        vital(5000.0, at(11, 3)),
    ])
    .await;
    let me = app.admin().await;
    let p = format!("/api/dash/projects/{}", app.project);
    let day = at(0, 0).timestamp_millis();
    let next = day + 86_400_000;
    let hour = 3_600_000;

    let (status, o) = app.get(&me, &format!("{p}/overview")).await;
    assert_eq!(status, 200, "{o}");
    assert_eq!(o["events_today"], 12);
    assert_eq!(
        (o["dau"].as_i64(), o["wau"].as_i64(), o["mau"].as_i64()),
        (Some(6), Some(6), Some(6))
    );
    assert_eq!(o["top_events"][0], json!(["Web Vital", 4]));
    assert_eq!(o["daily_active"][28], json!([day - 86_400_000, 1]));
    assert_eq!(o["daily_active"][29], json!([day, 6]));

    // Counts per hour, from the rollups.
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
    // Aggregates of a property, filters and groups, from the events.
    let q =
        |extra: &str| format!("{p}/series?event=Paid&from={day}&to={next}&bucket=86400000{extra}");
    assert_eq!(
        app.get(&me, &q("&agg=sum&property=amount")).await.1["series"][0]["values"],
        json!([60.0])
    );
    assert_eq!(
        app.get(&me, &q("&agg=p75&property=amount")).await.1["series"][0]["values"],
        json!([25.0])
    );
    assert_eq!(
        app.get(&me, &q("&agg=avg&property=amount")).await.1["series"][0]["values"],
        json!([20.0])
    );
    assert_eq!(
        app.get(
            &me,
            &q("&agg=sum&property=amount&filter_property=plan&filter_value=pro")
        )
        .await
        .1["series"][0]["values"],
        json!([30.0])
    );
    let (_, grouped) = app.get(&me, &q("&group_by=plan")).await;
    assert_eq!(
        grouped["series"],
        json!([{"name": "pro", "values": [2.0]}, {"name": "free", "values": [1.0]}])
    );
    let (status, body) = app.get(&me, &q("&agg=sum")).await;
    assert_eq!(status, 400, "{body}");

    // CSV of the series and of the events.
    let csv = |path: String| {
        let me = me.clone();
        let app = &app;
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
    let series_csv = csv(q("&group_by=plan&format=csv")).await;
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

    // Funnel: 3 signed up, 2 of them activated within a day, 1 of those paid.
    let (_, f) = app
        .get(
            &me,
            &format!("{p}/funnel?steps=Signed Up,Activated,Paid&from={day}&to={next}"),
        )
        .await;
    let users: Vec<i64> = f
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["users"].as_i64().unwrap())
        .collect();
    let drops: Vec<i64> = f
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["drop_off"].as_i64().unwrap())
        .collect();
    assert_eq!((users, drops), (vec![3, 2, 1], vec![0, 1, 1]));

    // Retention: u1 first seen the day before and back today; five new users today.
    let (_, r) = app
        .get(
            &me,
            &format!(
                "{p}/retention?from={}&to={next}&period=day",
                day - 86_400_000
            ),
        )
        .await;
    assert_eq!(r[0]["users"], 1);
    assert_eq!(r[0]["returning"], json!([1, 1]));
    assert_eq!(r[1]["users"], 5);

    // Sessions (30 minutes of silence ends one): 8 sessions, 6 of one event, 1380 s in all.
    let (_, s) = app
        .get(
            &me,
            &format!("{p}/sessions?from={}&to={next}", day - 86_400_000),
        )
        .await;
    assert_eq!(s["sessions"], 8);
    assert_eq!(s["bounce_rate"], 0.75);
    assert_eq!(s["avg_length_secs"], 172.5);

    // Web Vitals: p75 (interpolated) of 1000, 2000, 3000, 5000 ms is 3500; 2 good, 1 poor.
    let (_, v) = app
        .get(&me, &format!("{p}/vitals?from={day}&to={next}"))
        .await;
    let lcp = &v["metrics"][0];
    assert_eq!(lcp["vital"]["metric"], "LCP");
    assert_eq!(lcp["overall"]["p75"], 3500.0);
    assert_eq!(
        (
            lcp["overall"]["good"].as_f64(),
            lcp["overall"]["poor"].as_f64()
        ),
        (Some(0.5), Some(0.25))
    );
    assert_eq!(lcp["pages"][0][0], "/");
    assert_eq!(v["metrics"][1]["overall"]["samples"], 0);

    // Usage against the plan's quota.
    let (_, u) = app.get(&me, &format!("{p}/usage")).await;
    assert_eq!(
        (u["events_this_month"].as_i64(), u["over_quota"].as_bool()),
        (Some(13), Some(false))
    );
}

/// Text sent with the write key cannot run as a spreadsheet formula in any CSV download, and
/// an event whose id the collector assigned is exported with that id.
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

#[tokio::test]
async fn csv_downloads_neutralise_formulas_and_export_stored_ids() {
    let clock = Arc::new(FakeClock::new(at(12, 0)));
    let app = spawn(|_| {}, clock).await;
    let mut formula = ev(
        "+cmd|' /C calc'!A0",
        "=HYPERLINK(\"https://evil.example\",\"Open\")",
        at(10, 0),
        json!({"plan": "@SUM(1+1)"}),
    );
    formula["messageId"] = json!("-2+3");
    let mut tabbed = ev(
        "\t=1+1",
        "=HYPERLINK(\"https://evil.example\",\"Open\")",
        at(10, 5),
        json!({"plan": "\r=2"}),
    );
    tabbed["messageId"] = json!("tabbed");
    let mut no_id = ev(
        "u1",
        "=HYPERLINK(\"https://evil.example\",\"Open\")",
        at(10, 10),
        json!({"plan": "=1+2"}),
    );
    no_id.as_object_mut().unwrap().remove("messageId");
    app.ingest(vec![formula, tabbed, no_id]).await;
    let me = app.admin().await;
    let day = at(0, 0).timestamp_millis();
    let query = format!(
        "/api/dash/projects/{}/{{}}?event=%3DHYPERLINK(%22https://evil.example%22,%22Open%22)&from={day}&to={}&bucket=86400000&format=csv",
        app.project,
        day + 86_400_000
    );
    let download = |what: &str, extra: &str| {
        let url = app.url(&format!("{}{extra}", query.replace("{}", what)));
        let (http, cookie) = (app.http.clone(), me.cookie.clone());
        async move {
            let resp = http.get(url).header("cookie", cookie).send().await.unwrap();
            assert_eq!(resp.status(), 200);
            resp.text().await.unwrap()
        }
    };
    let cells = |csv: &str| -> Vec<Vec<String>> {
        csv::Reader::from_reader(csv.as_bytes())
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect()
    };
    let events = cells(&download("events", "").await);
    assert_eq!(events.len(), 3, "{events:?}");
    let stored_id: Vec<String> = common::query_column(
        &app.database_url,
        "SELECT message_id FROM events WHERE user_id = 'u1'",
    )
    .await;
    // Newest first: no_id, tabbed, formula.
    assert_eq!(
        events[0][1],
        "'=HYPERLINK(\"https://evil.example\",\"Open\")"
    );
    assert_eq!(events[0][2], "u1");
    assert_eq!(events[0][3], stored_id[0], "the id the collector assigned");
    assert_eq!(events[1][2], "'\t=1+1");
    assert_eq!(events[2][2], "'+cmd|' /C calc'!A0");
    assert_eq!(events[2][3], "'-2+3");
    for row in &events {
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a formula cell: {row:?}"
            );
        }
    }
    let series = download("series", "&group_by=plan").await;
    let header = &csv::Reader::from_reader(series.as_bytes())
        .headers()
        .unwrap()
        .clone();
    let mut names: Vec<&str> = header.iter().skip(1).collect();
    names.sort();
    assert_eq!(names, ["'\r=2", "'=1+2", "'@SUM(1+1)"], "{series}");
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

/// Numbers keep the digits they were sent with in every dashboard view: the live tail, the
/// events table and CSV, and group names and filters of the explore chart.
#[tokio::test]
async fn dashboard_views_show_numbers_as_sent() {
    let app = spawn(|_| {}, Arc::new(SystemClock)).await;
    let me = app.admin().await;
    let p = format!("/api/dash/projects/{}", app.project);
    let get_text = |path: String| {
        let (app, me) = (&app, me.clone());
        async move {
            let resp = app
                .http
                .get(app.url(&path))
                .header("cookie", &me.cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            resp
        }
    };
    let mut tail = get_text(format!("{p}/tail")).await;
    let props = r#"{"price":1.10,"big":340282366920938463463374607431768211455,"d":12345678901234567890.123456789}"#;
    let body = format!(r#"{{"userId":"u","event":"Exact","properties":{props}}}"#);
    let resp = app
        .http
        .post(app.url("/v1/track"))
        .basic_auth(&app.write_key, Some(""))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());

    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !seen.contains("Exact") {
        let chunk = tokio::time::timeout_at(deadline, tail.chunk())
            .await
            .expect("within 10 s");
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap()));
    }
    assert!(seen.contains(&format!(r#""properties":{props}"#)), "{seen}");

    let table = get_text(format!("{p}/events?event=Exact"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        table.contains(&format!(r#""properties":{props}"#)),
        "{table}"
    );
    let csv = get_text(format!("{p}/events?event=Exact&format=csv"))
        .await
        .text()
        .await
        .unwrap();
    let quoted = props.replace('"', "\"\"");
    assert!(csv.contains(",Exact,u,"), "{csv}");
    assert!(csv.trim_end().ends_with(&format!(r#""{quoted}""#)), "{csv}");

    let (status, grouped) = app
        .get(&me, &format!("{p}/series?event=Exact&group_by=big"))
        .await;
    assert_eq!(status, 200, "{grouped}");
    assert_eq!(
        grouped["series"][0]["name"],
        "340282366920938463463374607431768211455"
    );
    let (_, filtered) = app
        .get(
            &me,
            &format!("{p}/series?event=Exact&filter_property=price&filter_value=1.10"),
        )
        .await;
    let counts = filtered["series"][0]["values"].as_array().unwrap();
    assert_eq!(counts.iter().filter_map(Value::as_f64).sum::<f64>(), 1.0);
}

/// The dashboard's alerting routes (issue 8): the secret-key handlers under
/// `/api/dash/projects/{project}`, with roles, tenancy, CSRF and the audit log; a rule made in
/// the dashboard fires, and its alert and delivery show in the history and the log.
#[tokio::test]
async fn alerting_through_the_dashboard_respects_roles_tenancy_csrf_and_is_audited() {
    let clock = Arc::new(FakeClock::new(at(10, 0)));
    let app = spawn(|c| c.rules_interval_secs = 1, clock.clone()).await;
    // Slack's stand-in: the webhook one checks signature timestamps against the real clock.
    let receiver = standins::slack().await;
    let admin = app.admin().await;
    let a = app.project;
    let (_, b) = app
        .post(&admin, "/api/dash/projects", json!({"name": "Project B"}))
        .await;
    let b = b["id"].as_i64().unwrap();
    app.make_user("viewer@example.com", "viewer-password").await;
    app.make_user("dev@example.com", "developer-password").await;
    app.add_member(&admin, a, "viewer@example.com", "viewer-password", "viewer")
        .await;
    app.add_member(
        &admin,
        a,
        "dev@example.com",
        "developer-password",
        "developer",
    )
    .await;
    let viewer = app
        .login("viewer@example.com", "viewer-password")
        .await
        .unwrap();
    let dev = app
        .login("dev@example.com", "developer-password")
        .await
        .unwrap();
    let pa = |p: &str| format!("/api/dash/projects/{a}{p}");
    let pb = |p: &str| format!("/api/dash/projects/{b}{p}");
    let channel = json!({"name": "Ops hook", "kind": "slack", "url": receiver.url});
    let rule = |channel: i64| {
        json!({"name": "Any signup", "series": {"event": "signup", "bucket": "minute"},
            "condition": {"type": "threshold", "op": ">", "value": 0}, "channel_ids": [channel]})
    };

    // Not logged in: 401, and no Basic prompt for the browser.
    let resp = app.http.get(app.url(&pa("/rules"))).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("www-authenticate").is_none());

    // Viewers cannot change anything: 403 saying which role it takes.
    let (status, body) = app.post(&viewer, &pa("/channels"), channel.clone()).await;
    assert_eq!(status, 403, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("creating a channel") && message.contains("developer"),
        "{message}"
    );
    let (status, body) = app.post(&viewer, &pa("/rules"), rule(1)).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("creating a rule")
    );

    // Developers can; CSRF is required as for every dashboard change.
    let no_csrf = app
        .http
        .post(app.url(&pa("/channels")))
        .header("cookie", &dev.cookie)
        .json(&channel)
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status(), 403);
    let body: Value = no_csrf.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("X-CSRF-Token"),
        "{body}"
    );
    let cross_site = app
        .http
        .post(app.url(&pa("/channels")))
        .header("cookie", &dev.cookie)
        .header("x-csrf-token", &dev.csrf)
        .header("origin", "http://evil.example")
        .json(&channel)
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    let (_, listed) = app.get(&dev, &pa("/channels")).await;
    assert_eq!(
        listed["channels"].as_array().unwrap().len(),
        0,
        "refused requests created nothing"
    );

    let (status, created) = app.post(&dev, &pa("/channels"), channel.clone()).await;
    assert_eq!(status, 201, "{created}");
    let channel_id = created["id"].as_i64().unwrap();
    let (status, tested) = app
        .post(
            &dev,
            &pa(&format!("/channels/{channel_id}/test")),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{tested}");
    assert_eq!(tested["delivered"], true, "{tested}");
    let got = receiver
        .receiver
        .wait_for(1, std::time::Duration::from_secs(10))
        .await;
    assert!(got[0].to_string().contains("test notification"), "{got:?}");
    assert_eq!(
        app.post(
            &viewer,
            &pa(&format!("/channels/{channel_id}/test")),
            json!({})
        )
        .await
        .0,
        403,
        "viewers send no tests"
    );
    let (status, renamed) = app
        .send(
            reqwest::Method::PATCH,
            &dev,
            &pa(&format!("/channels/{channel_id}")),
            json!({"name": "Ops webhook"}),
        )
        .await;
    assert_eq!(status, 200, "{renamed}");

    let category = json!({"name": "Payments", "pattern": "payment.*", "emoji": "💰",
        "colour": "#2ECC71", "channel_id": channel_id});
    let (status, cat) = app.post(&dev, &pa("/categories"), category.clone()).await;
    assert_eq!(status, 201, "{cat}");
    let cat_id = cat["id"].as_i64().unwrap();
    let (status, _) = app
        .send(
            reqwest::Method::PUT,
            &dev,
            &pa(&format!("/categories/{cat_id}")),
            json!({"name": "Payments (all)", "pattern": "payment.*", "colour": 0x2ECC71,
                "channel_id": channel_id}),
        )
        .await;
    assert_eq!(status, 200);

    let (status, made) = app.post(&dev, &pa("/rules"), rule(channel_id)).await;
    assert_eq!(status, 201, "{made}");
    let rule_id = made["id"].as_i64().unwrap();
    // Not even a member of both projects can point project B's rule or category at A's channel.
    for (path, body) in [
        ("/rules", rule(channel_id)),
        ("/categories", category.clone()),
    ] {
        let (status, err) = app.post(&admin, &pb(path), body).await;
        assert_eq!(status, 400, "{path}: {err}");
        let message = err["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("{channel_id} is not a channel of this project")),
            "{message}"
        );
    }
    let mut edited = rule(channel_id);
    edited["name"] = json!("Signups");
    let (status, body) = app
        .send(
            reqwest::Method::PUT,
            &dev,
            &pa(&format!("/rules/{rule_id}")),
            edited,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .send(
            reqwest::Method::PUT,
            &viewer,
            &pa(&format!("/rules/{rule_id}")),
            rule(channel_id),
        )
        .await;
    assert_eq!(status, 403, "{body}");

    // Viewers read everything, including previews of saved and draft rules.
    for p in [
        "/channels",
        "/categories",
        "/rules",
        "/alerts",
        "/deliveries",
    ] {
        let (status, body) = app.get(&viewer, &pa(p)).await;
        assert_eq!(status, 200, "{p}: {body}");
    }
    let (status, saved) = app
        .get(
            &viewer,
            &pa(&format!("/rules/{rule_id}/preview?buckets=10")),
        )
        .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["points"].as_array().unwrap().len(), 10);
    assert_eq!(saved["points"][0]["threshold"], 0.0);
    let (status, draft) = app
        .post(&viewer, &pa("/rules/preview?buckets=5"), rule(channel_id))
        .await;
    assert_eq!(status, 200, "{draft}");
    assert_eq!(draft["rule_id"], Value::Null);
    assert_eq!(draft["series"], "count of signup per minute");
    let (status, bad) = app
        .post(
            &viewer,
            &pa("/rules/preview"),
            json!({"name": "x", "series": {}}),
        )
        .await;
    assert_eq!(status, 400, "a bad draft says what to fix: {bad}");

    // The rule fires: the alert is in the history and its notification in the delivery log.
    let batch: Vec<Value> = (0..3)
        .map(|i| ev("u1", "signup", at(10, i), json!({})))
        .collect();
    app.ingest(batch).await;
    // 10:03:30: the latest closed minute (after the 15 s grace) is 10:02, which has a signup.
    clock.set(at(10, 3) + chrono::Duration::seconds(30));
    let mut alerts = Value::Null;
    for _ in 0..100 {
        alerts = app.get(&viewer, &pa("/alerts")).await.1;
        if !alerts["alerts"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(alerts["alerts"][0]["rule_name"], "Signups", "{alerts}");
    assert_eq!(alerts["alerts"][0]["status"], "firing");
    receiver
        .receiver
        .wait_for(2, std::time::Duration::from_secs(10))
        .await;
    let mut deliveries = Value::Null;
    for _ in 0..100 {
        deliveries = app
            .get(&viewer, &pa("/deliveries?status=delivered"))
            .await
            .1;
        if !deliveries["deliveries"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let d = &deliveries["deliveries"][0];
    assert!(d["source"].as_str().unwrap().starts_with("alert:"), "{d}");
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["attempt_log"][0]["status_code"], 200, "{d}");

    // Tenancy: B's alerting does not exist for A's members, and B's ids through A's URL
    // are not found either.
    let (status, b_channel) = app
        .post(
            &admin,
            &pb("/channels"),
            json!({"name": "B hook", "kind": "slack", "url": receiver.url}),
        )
        .await;
    assert_eq!(status, 201);
    let b_channel = b_channel["id"].as_i64().unwrap();
    let (status, b_rule) = app.post(&admin, &pb("/rules"), rule(b_channel)).await;
    assert_eq!(status, 201, "{b_rule}");
    let b_rule = b_rule["id"].as_i64().unwrap();
    for who in [&viewer, &dev] {
        for p in [
            "/channels".to_owned(),
            "/categories".to_owned(),
            "/rules".to_owned(),
            "/alerts".to_owned(),
            "/deliveries".to_owned(),
            format!("/rules/{b_rule}"),
            format!("/rules/{b_rule}/preview"),
            format!("/channels/{b_channel}"),
        ] {
            let (status, body) = app.get(who, &pb(&p)).await;
            assert_eq!(status, 404, "{p}: {body}");
        }
        assert_eq!(app.post(who, &pb("/rules"), rule(b_channel)).await.0, 404);
        assert_eq!(
            app.post(who, &pb(&format!("/channels/{b_channel}/test")), json!({}))
                .await
                .0,
            404
        );
        assert_eq!(app.get(who, &pa(&format!("/rules/{b_rule}"))).await.0, 404);
    }
    let (status, _) = app
        .send(
            reqwest::Method::DELETE,
            &dev,
            &pa(&format!("/rules/{b_rule}")),
            json!({}),
        )
        .await;
    assert_eq!(status, 404, "B's rule through A's URL");
    assert_eq!(
        app.get(&admin, &pb(&format!("/rules/{b_rule}"))).await.0,
        200
    );

    // The secret-key routes are the same handlers, and audited too.
    let resp = app
        .http
        .post(app.url("/api/v1/rules"))
        .bearer_auth(&app.secret_key)
        .json(&rule(channel_id))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let by_key: Value = resp.json().await.unwrap();
    let (status, _) = app
        .send(
            reqwest::Method::DELETE,
            &dev,
            &pa(&format!("/rules/{}", by_key["id"])),
            json!({}),
        )
        .await;
    assert_eq!(status, 204);

    // The audit log: who changed which rule, channel or category, when and from where.
    let (_, log) = app.get(&admin, &pa("/audit")).await;
    let entries = log.as_array().unwrap();
    let find = |action: &str, actor: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action && e["actor"].as_str().unwrap().starts_with(actor))
            .unwrap_or_else(|| panic!("{action} by {actor} in {log}"))
    };
    for action in [
        "channel.created",
        "channel.tested",
        "channel.updated",
        "category.created",
        "category.updated",
        "rule.created",
        "rule.updated",
        "rule.deleted",
    ] {
        let e = find(action, "dev@example.com");
        assert_eq!(e["ip"], "127.0.0.1", "{e}");
        assert!(
            e["at"].as_str().unwrap().starts_with("2026-11-22T10:"),
            "{e}"
        );
    }
    assert!(
        find("rule.updated", "dev@")["target"]
            .as_str()
            .unwrap()
            .contains("\"Signups\" (count of signup per minute > 0)")
    );
    assert!(
        find("channel.tested", "dev@")["target"]
            .as_str()
            .unwrap()
            .contains("HTTP 200")
    );
    find("rule.created", "secret key ");
    let refused = entries
        .iter()
        .filter(|e| e["actor"] == "viewer@example.com" && e["action"] != "member.joined")
        .count();
    assert_eq!(refused, 0, "refused changes leave no entry: {log}");
    let (_, b_log) = app.get(&admin, &pb("/audit")).await;
    assert!(
        b_log
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == "admin@localhost" || e["actor"] == "cli"),
        "A's changes are not in B's log: {b_log}"
    );
}

/// The paths the router registers under `/api/dash`, read from the code that registers them:
/// `dashboard::router` (every `.route("…", …)`) and the alerting twins (every
/// `.route(&at("…"), …)`, mounted under [`DASHBOARD_PREFIX`]). A route whose path is not such
/// a literal fails here, so a new route cannot escape the check below.
fn registered_dashboard_paths() -> BTreeSet<String> {
    let src = |file: &str| {
        std::fs::read_to_string(format!("{}/src/routes/{file}", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
    };
    let dashboard = src("dashboard/mod.rs");
    let routes = src("mod.rs");
    let alerting = &routes[routes
        .find("mod alerting_routes")
        .expect("alerting_routes module")..];
    let mut paths = BTreeSet::new();
    for (text, prefix) in [(dashboard.as_str(), ""), (alerting, DASHBOARD_PREFIX)] {
        for (at, _) in text.match_indices(".route(") {
            let arg = text[at + ".route(".len()..].trim_start();
            let literal = arg
                .strip_prefix('"')
                .or_else(|| arg.strip_prefix("&at(\""))
                .unwrap_or_else(|| panic!("a route with a computed path: {}", &arg[..40]));
            let path = &literal[..literal.find('"').unwrap()];
            let path = format!("{prefix}{path}");
            if path.starts_with("/api/dash") {
                paths.insert(path);
            }
        }
    }
    paths
}

/// The methods the router serves at `path`, from the `Allow` header of its 405 to TRACE (which
/// no route takes); a path it does not serve gets the API's 404 instead.
async fn served_methods(app: &Dash, path: &str) -> BTreeSet<String> {
    let concrete = path
        .split('/')
        .map(|seg| if seg.starts_with('{') { "1" } else { seg })
        .collect::<Vec<_>>()
        .join("/");
    let resp = app
        .http
        .request(reqwest::Method::TRACE, app.url(&concrete))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405, "{path} is not served by the router");
    let allow = resp.headers()["allow"].to_str().unwrap().to_owned();
    allow
        .split(',')
        .map(|m| m.trim().to_lowercase())
        .filter(|m| m != "head")
        .collect()
}

#[tokio::test]
async fn every_dashboard_route_is_in_the_openapi_description() {
    let app = spawn(|_| {}, Arc::new(SystemClock)).await;
    let doc: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let registered = registered_dashboard_paths();
    for known in [
        "/api/dash/session",
        "/api/dash/projects/{project}/tail",
        "/api/dash/projects/{project}/rules/{id}/preview",
    ] {
        assert!(
            registered.contains(known),
            "{known} not found in {registered:?}"
        );
    }
    let documented: BTreeSet<String> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|p| p.starts_with("/api/dash"))
        .cloned()
        .collect();
    let undocumented: Vec<_> = registered.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from /openapi.json: {undocumented:?}"
    );
    let unrouted: Vec<_> = documented.difference(&registered).collect();
    assert!(
        unrouted.is_empty(),
        "documented but not routed: {unrouted:?}"
    );

    for path in &registered {
        let item = doc["paths"][path].as_object().unwrap();
        let documented_methods: BTreeSet<String> = item
            .keys()
            .filter(|k| ["get", "post", "put", "patch", "delete"].contains(&k.as_str()))
            .cloned()
            .collect();
        assert_eq!(
            served_methods(&app, path).await,
            documented_methods,
            "methods of {path}: served (left) vs documented (right)"
        );
        for (method, op) in item.iter().filter(|(k, _)| documented_methods.contains(*k)) {
            let what = format!("{method} {path}");
            assert_eq!(op["tags"], json!(["dashboard"]), "{what}");
            let params: Vec<(&str, &str)> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| (p["name"].as_str().unwrap(), p["in"].as_str().unwrap()))
                        .collect()
                })
                .unwrap_or_default();
            for seg in path.split('/').filter(|s| s.starts_with('{')) {
                let name = seg.trim_matches(|c| c == '{' || c == '}');
                assert!(
                    params.contains(&(name, "path")),
                    "{what}: no path parameter {name}"
                );
            }
            let login = path == "/api/dash/session" && method == "post";
            if login {
                assert!(op.get("security").is_none(), "{what} needs no session");
            } else {
                assert_eq!(op["security"], json!([{"session": []}]), "{what}");
            }
            let csrf = params.contains(&("x-csrf-token", "header"));
            assert_eq!(
                csrf,
                method != "get" && !login,
                "{what}: X-CSRF-Token documented"
            );
            let statuses = op["responses"].as_object().unwrap();
            assert!(
                statuses.keys().any(|k| k.starts_with('2')),
                "{what}: no success"
            );
            if !login {
                assert!(statuses.contains_key("401"), "{what} documents 401");
            }
            if path.contains("{project}") {
                assert!(statuses.contains_key("404"), "{what} documents 404");
            }
        }
    }

    // OpenAPI wants operation ids unique in the document (code generators name methods by them).
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_default();
            assert!(
                ids.insert(id.to_owned()),
                "{method} {path}: operationId {id} is taken"
            );
        }
    }

    let create = &doc["paths"]["/api/dash/projects/{project}/rules"]["post"];
    let params: Vec<&str> = create["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(params, ["project", "x-csrf-token"]);
    assert_eq!(
        doc["components"]["securitySchemes"]["session"]["in"],
        "cookie"
    );
    let csv = &doc["paths"]["/api/dash/projects/{project}/events"]["get"]["responses"]["200"];
    assert!(csv["content"].get("text/csv").is_some(), "{csv}");
}

#[tokio::test]
async fn bad_dashboard_input_gets_a_400_that_says_what_to_fix() {
    let app = spawn(|_| {}, Arc::new(SystemClock)).await;
    let me = app.admin().await;
    let p = |rest: &str| format!("/api/dash/projects/{}{rest}", app.project);
    // Limits of a range: unix milliseconds from 0 to the end of year 9999; a bucket of at
    // least a minute; a funnel window of 1 s to a year. Extremes answer 400, never overflow.
    for (path, says) in [
        (
            p("/series?from=-1"),
            "from (-1) must be unix milliseconds from 0",
        ),
        (
            p("/series?to=9223372036854775807"),
            "to (9223372036854775807) must be",
        ),
        (
            p("/series?to=-9223372036854775808"),
            "to (-9223372036854775808) must be",
        ),
        (
            p("/events?from=253402300800000"),
            "from (253402300800000) must be",
        ),
        (p("/vitals?from=5&to=5"), "must be before to"),
        (p("/sessions?bucket=0"), "at least one minute"),
        (
            p("/retention?bucket=59999&period=week"),
            "at least one minute",
        ),
        (
            p("/funnel?steps=a,b&window_secs=0"),
            "window_secs (0) must be 1 to 31622400",
        ),
        (
            p("/funnel?steps=a,b&window_secs=9223372036854775807"),
            "window_secs",
        ),
        (p("/funnel"), "invalid query"),
        (p("/series?top=-1"), "invalid query"),
        (p("/audit?limit=many"), "invalid query"),
        (
            "/api/dash/projects/abc/usage".to_owned(),
            "ids in the path are integers",
        ),
        (p("/keys/xyz/rotate"), "ids in the path are integers"),
    ] {
        let resp = app
            .http
            .request(
                if path.ends_with("/rotate") {
                    reqwest::Method::POST
                } else {
                    reqwest::Method::GET
                },
                app.url(&path),
            )
            .header("cookie", &me.cookie)
            .header("x-csrf-token", &me.csrf)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.expect("an error body in JSON");
        assert_eq!(status, 400, "{path}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{path}: {body}");
    }
    for (path, body) in [
        ("/api/dash/projects".to_owned(), json!({"title": "no name"})),
        (p("/keys"), json!({"kind": 7})),
        (p("/members"), json!([])),
        (p("/invitations"), json!({"email": "x@example.com"})),
        (
            "/api/dash/password".to_owned(),
            json!({"new_password": "x"}),
        ),
    ] {
        let (status, answer) = app.post(&me, &path, body).await;
        assert_eq!(status, 400, "{path}: {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.starts_with("invalid JSON body"), "{path}: {answer}");
    }
}

#[tokio::test]
async fn projects_created_in_the_dashboard_get_the_default_plan() {
    let app = spawn(|c| c.default_plan = "free".into(), Arc::new(SystemClock)).await;
    let me = app.admin().await;
    let (status, created) = app
        .post(
            &me,
            "/api/dash/projects",
            json!({"name": "On the free plan"}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let (_, usage) = app
        .get(&me, &format!("/api/dash/projects/{}/usage", created["id"]))
        .await;
    assert_eq!(usage["plan"], "free", "{usage}");
    assert!(usage["quota"].as_i64().is_some(), "{usage}");
}

/// Runs one statement on the app's database, as an operator (or an older version) would.
async fn exec_sql(database_url: &str, sql: &str) {
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    if database_url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(database_url).await.unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
    } else {
        let mut c = sqlx::PgConnection::connect(database_url).await.unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
    }
}

impl Dash {
    async fn track_with(&self, key: &str) -> StatusCode {
        self.http
            .post(self.url("/v1/track"))
            .basic_auth(key, Some(""))
            .json(&json!({"type": "track", "userId": "u", "event": "e"}))
            .send()
            .await
            .unwrap()
            .status()
    }
}

/// Write keys are public, so the Keys page can always show them (and their snippets); a
/// rotation can leave the old key working for a grace period so no page breaks meanwhile.
#[tokio::test]
async fn write_keys_stay_visible_and_rotate_with_a_grace_period() {
    let clock = Arc::new(FakeClock::new(Utc::now()));
    let app = spawn(|_| {}, clock.clone()).await;
    let admin = app.admin().await;
    let keys_path = format!("/api/dash/projects/{}/keys", app.project);
    let (status, keys) = app.get(&admin, &keys_path).await;
    assert_eq!(status, 200, "{keys}");
    let write = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "write")
        .unwrap()
        .clone();
    assert_eq!(write["key"], app.write_key.as_str(), "shown at any time");
    assert_eq!(write["active"], true);
    let secret = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "secret")
        .unwrap();
    assert!(
        secret.get("key").is_none(),
        "secret keys are hashed: {secret}"
    );

    // Keys from before write keys were kept show no key; rotating one with a grace period
    // gives a key the page shows, while pages with the old key keep working.
    exec_sql(&app.database_url, "UPDATE api_keys SET plain = NULL").await;
    let (_, keys) = app.get(&admin, &keys_path).await;
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("key").is_none()),
        "{keys}"
    );
    let old_id = write["id"].as_i64().unwrap();
    let rotate = format!("{keys_path}/{old_id}/rotate");
    let (status, body) = app.post(&admin, &rotate, json!({"grace_hours": 721})).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("MAX_KEY_ROTATION_GRACE"),
        "{body}"
    );
    let (status, body) = app.post(&admin, &rotate, json!({"grace": 1})).await;
    assert_eq!(status, 400, "unknown fields are refused: {body}");
    let (status, rotated) = app.post(&admin, &rotate, json!({"grace_hours": 24})).await;
    assert_eq!(status, 200, "{rotated}");
    let new_key = rotated["key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, app.write_key);
    assert_eq!(
        app.track_with(&app.write_key).await,
        200,
        "old key within its grace"
    );
    assert_eq!(app.track_with(&new_key).await, 200);
    let (_, keys) = app.get(&admin, &keys_path).await;
    let old = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == old_id)
        .unwrap();
    assert_eq!(old["active"], true, "{old}");
    let until: DateTime<Utc> = old["revoked_at"].as_str().unwrap().parse().unwrap();
    // Stored in milliseconds.
    assert!(
        ((until - clock.now()).num_seconds() - 24 * 3600).abs() <= 1,
        "{until}"
    );
    let new = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == new_key.as_str());
    assert!(new.is_some_and(|k| k["active"] == true), "{keys}");

    clock.advance(chrono::Duration::hours(24) + chrono::Duration::seconds(1));
    let status = app.track_with(&app.write_key).await;
    assert_eq!(status, 401, "the grace period is over");
    assert_eq!(app.track_with(&new_key).await, 200);
    let (_, keys) = app.get(&admin, &keys_path).await;
    let old = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == old_id)
        .unwrap();
    assert_eq!(old["active"], false, "{old}");

    // Revoking a key within its grace period stops it at once.
    let new_id = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == new_key.as_str())
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (status, third) = app
        .post(
            &admin,
            &format!("{keys_path}/{new_id}/rotate"),
            json!({"grace_hours": 720}),
        )
        .await;
    assert_eq!(status, 200, "{third}");
    assert_eq!(app.track_with(&new_key).await, 200);
    let (status, _) = app
        .post(&admin, &format!("{keys_path}/{new_id}/revoke"), json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        app.track_with(&new_key).await,
        401,
        "revoked within its grace"
    );
    let (status, body) = app
        .post(&admin, &format!("{keys_path}/{new_id}/rotate"), json!({}))
        .await;
    assert_eq!(status, 400, "a revoked key is not rotated again: {body}");
}
