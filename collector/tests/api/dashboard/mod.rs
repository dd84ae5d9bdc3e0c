//! The dashboard over a real socket, on both backends: sessions and CSRF, roles and tenancy,
//! the insight pages against hand-computed values, alerting, keys, the Web page, the OpenAPI
//! description, and (in `security`) audit logs, invitations and bounds.

mod alerting;
mod bot_rollups;
mod churn;
/// The weekly digest (issue 24).
mod digest;
/// Explore without a scan cap (issue 20).
mod explore;
mod exports;
/// Funnels from the per-user-event-day rollup (issue 20).
mod funnels;
mod insights;
mod keys;
/// The overview in the project's time zone (issue 21).
mod local_days;
mod openapi;
/// Time budget and concurrency bound of heavy queries (issue 20).
mod query_budget;
/// Retention from the per-user-day rollup (issue 20).
mod retention;
mod roles;
mod security;
mod sessions;
/// Shared, read-only pages (issue 24).
mod share;
/// Explore from tracked-property rollups (issue 20).
mod tracked_props;
/// Sessions kept at ingest (issue 20).
mod user_sessions;
/// Web Vitals from the rollup (issue 20).
mod vitals;
/// The Web page (issue 21).
mod web;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use pulseline_collector::clock::Clock;
use pulseline_collector::config::Config;
use pulseline_collector::startup::Application;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{self, exec_sql};

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
    let mut config = Config::for_tests_with_database(helpers::fresh_database_url(dir.path()).await);
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

/// See [`Dash::team`].
struct Team {
    admin: Login,
    viewer: Login,
    dev: Login,
    /// The default project, where the viewer and the developer are members.
    a: i64,
    /// The admin's second project; nobody else's.
    b: i64,
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

    /// Project A (the default) with a viewer and a developer besides its owner, the admin, who
    /// also owns an empty project B: the cast of the role and tenancy stories.
    async fn team(&self) -> Team {
        let admin = self.admin().await;
        let (status, b) = self
            .post(&admin, "/api/dash/projects", json!({"name": "Project B"}))
            .await;
        assert_eq!(status, 200, "{b}");
        let b = b["id"].as_i64().unwrap();
        let a = self.project;
        self.make_user("viewer@example.com", "viewer-password")
            .await;
        self.make_user("dev@example.com", "developer-password")
            .await;
        self.add_member(&admin, a, "viewer@example.com", "viewer-password", "viewer")
            .await;
        self.add_member(
            &admin,
            a,
            "dev@example.com",
            "developer-password",
            "developer",
        )
        .await;
        let viewer = self
            .login("viewer@example.com", "viewer-password")
            .await
            .unwrap();
        let dev = self
            .login("dev@example.com", "developer-password")
            .await
            .unwrap();
        Team {
            admin,
            viewer,
            dev,
            a,
            b,
        }
    }

    /// A change with the session cookie but without the CSRF token.
    async fn post_without_csrf(&self, who: &Login, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header("cookie", &who.cookie)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// A change with the session cookie and the CSRF token, from another site.
    async fn post_cross_site(
        &self,
        who: &Login,
        path: &str,
        origin: &str,
        body: &Value,
    ) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header("cookie", &who.cookie)
            .header("x-csrf-token", &who.csrf)
            .header("origin", origin)
            .json(body)
            .send()
            .await
            .unwrap()
    }
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
