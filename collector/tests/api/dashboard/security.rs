//! Issue 16, over a real socket on both backends: audit logs scoped to their project, members
//! joining by invitation without revealing who has an account, the live tail ending with the
//! session or the membership, webhook URLs redacted for viewers, CLI-made projects owned at
//! once, and the secret keys of a removed member named for rotation.

mod audit;
/// Bounded cost: password checks, live tails, per-project and per-user limits, sessions.
mod bounds;
mod invitations;
mod redaction;
mod tail;

use std::sync::Arc;
use std::time::Duration;
use tokio::process::Command;

use chrono::{TimeZone, Utc};
use pulseline_collector::clock::{Clock, FakeClock, SystemClock};
use pulseline_collector::config::Config;
use pulseline_collector::routes::dashboard::invitations::{
    INVITATION_TTL_DAYS, MAX_INVITATIONS_LISTED, MAX_PENDING_INVITATIONS,
};
use pulseline_collector::routes::dashboard::projects::MAX_OWNED_PROJECTS_PER_USER;
use pulseline_collector::startup::Application;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers;

struct Dash {
    base: String,
    http: reqwest::Client,
    admin: Login,
    project: i64,
    database_url: String,
    _dir: tempfile::TempDir,
}

/// A logged-in browser: its cookie and CSRF token.
#[derive(Clone)]
struct Login {
    cookie: String,
    csrf: String,
}

async fn spawn(clock: Arc<dyn Clock>) -> Dash {
    spawn_with(clock, |_| {}).await
}

async fn spawn_with(clock: Arc<dyn Clock>, configure: impl FnOnce(&mut Config)) -> Dash {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::for_tests_with_database(helpers::fresh_database_url(dir.path()).await);
    // These tests log many users in from one address.
    config.dashboard.login_attempts_per_minute = 1000;
    configure(&mut config);
    let database_url = config.database_url.clone();
    let app = Application::build_with_clock(config, clock).await.unwrap();
    let first = app.first_admin().unwrap();
    let project = app.bootstrap_keys().unwrap().project_id;
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let mut dash = Dash {
        base,
        http: reqwest::Client::new(),
        admin: Login {
            cookie: String::new(),
            csrf: String::new(),
        },
        project,
        database_url,
        _dir: dir,
    };
    dash.admin = dash.login(&first.email, &first.password).await;
    dash
}

impl Dash {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn login(&self, email: &str, password: &str) -> Login {
        let resp = self
            .http
            .post(self.url("/api/dash/session"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "login of {email}");
        let cookie = resp.headers()["set-cookie"].to_str().unwrap();
        let cookie = cookie.split(';').next().unwrap().to_owned();
        let body: Value = resp.json().await.unwrap();
        Login {
            cookie,
            csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        }
    }

    async fn get(&self, who: &Login, path: &str) -> (StatusCode, Value) {
        self.send(Method::GET, who, path, Value::Null).await
    }

    async fn post(&self, who: &Login, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, who, path, body).await
    }

    async fn send(
        &self,
        method: Method,
        who: &Login,
        path: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method.clone(), self.url(path))
            .header("cookie", &who.cookie);
        if method != Method::GET {
            req = req
                .header("x-csrf-token", &who.csrf)
                .header("origin", &self.base)
                .json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// A user made as `pulseline-collector user create` makes them; logged in.
    async fn user(&self, email: &str) -> Login {
        self.make_user(email).await;
        self.login(email, &password(email)).await
    }

    async fn make_user(&self, email: &str) {
        let store = pulseline_collector::store::Store::open(&self.database_url, Default::default())
            .await
            .unwrap();
        pulseline_collector::accounts::create_user(
            &store,
            email,
            &password(email),
            false,
            Utc::now(),
        )
        .await
        .unwrap();
        store.close().await;
    }

    async fn invite(
        &self,
        by: &Login,
        project: i64,
        email: &str,
        role: &str,
    ) -> (StatusCode, Value) {
        self.post(
            by,
            &format!("/api/dash/projects/{project}/invitations"),
            json!({"email": email, "role": role}),
        )
        .await
    }

    /// Invites `email` and accepts as that user.
    async fn add_member(&self, by: &Login, project: i64, email: &str, role: &str) -> Login {
        let (status, invitation) = self.invite(by, project, email, role).await;
        assert_eq!(status, 200, "{invitation}");
        let who = self.login(email, &password(email)).await;
        let path = format!("/api/dash/invitations/{}/accept", invitation["id"]);
        let (status, body) = self.post(&who, &path, json!({})).await;
        assert_eq!(status, 200, "{body}");
        who
    }

    async fn project_ids(&self, who: &Login) -> Vec<i64> {
        let (status, list) = self.get(who, "/api/dash/projects").await;
        assert_eq!(status, 200, "{list}");
        list.as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_i64().unwrap())
            .collect()
    }

    async fn new_project(&self, by: &Login, name: &str) -> i64 {
        let (status, body) = self
            .post(by, "/api/dash/projects", json!({"name": name}))
            .await;
        assert_eq!(status, 200, "{body}");
        body["id"].as_i64().unwrap()
    }
}

fn password(email: &str) -> String {
    format!("pw-of-{email}")
}
