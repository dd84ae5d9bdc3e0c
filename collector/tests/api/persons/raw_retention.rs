//! Raw-event retention below the plan's (docs/privacy.md, "Retention"), on both backends: the
//! owner sets it in the dashboard API, the maintenance pass deletes older raw events, and the
//! charts of that period (hourly and active-user rollups) still answer as before.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use pulseline_collector::clock::{Clock, FakeClock};
use pulseline_collector::config::Config;
use pulseline_collector::startup::Application;
use serde_json::{Value, json};

struct Dash {
    base: String,
    http: reqwest::Client,
    write_key: String,
    secret_key: String,
    project: i64,
    cookie: String,
    csrf: String,
    database_url: String,
    clock: Arc<FakeClock>,
    login: Value,
    _dir: tempfile::TempDir,
}

async fn spawn() -> Dash {
    let dir = tempfile::tempdir().unwrap();
    let config =
        Config::for_tests_with_database(crate::helpers::fresh_database_url(dir.path()).await);
    let database_url = config.database_url.clone();
    let clock = Arc::new(FakeClock::new(
        Utc.with_ymd_and_hms(2026, 11, 2, 12, 0, 0).unwrap(),
    ));
    let app = Application::build_with_clock(config, clock.clone())
        .await
        .unwrap();
    let admin = app.first_admin().unwrap();
    let keys = app.bootstrap_keys().unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let mut dash = Dash {
        base,
        http: reqwest::Client::new(),
        write_key: keys.write_key,
        secret_key: keys.secret_key,
        project: keys.project_id,
        cookie: String::new(),
        csrf: String::new(),
        database_url,
        clock,
        login: json!({"email": admin.email, "password": admin.password}),
        _dir: dir,
    };
    dash.log_in().await;
    dash
}

impl Dash {
    /// A new dashboard session (after the clock has moved past the last one's expiry).
    async fn log_in(&mut self) {
        let resp = self
            .http
            .post(format!("{}/api/dash/session", self.base))
            .json(&self.login)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let cookie = resp.headers()["set-cookie"].to_str().unwrap();
        self.cookie = cookie.split(';').next().unwrap().to_owned();
        let body: Value = resp.json().await.unwrap();
        self.csrf = body["csrf_token"].as_str().unwrap().to_owned();
    }

    async fn get(&self, path: &str) -> Value {
        let url = format!("{}/api/dash/projects/{}{path}", self.base, self.project);
        let resp = self
            .http
            .get(url)
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        resp.json().await.unwrap()
    }

    async fn put_retention(&self, body: Value) -> (u16, Value) {
        let url = format!(
            "{}/api/dash/projects/{}/data-retention",
            self.base, self.project
        );
        let resp = self
            .http
            .put(url)
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf)
            .header("origin", &self.base)
            .json(&body)
            .send()
            .await
            .unwrap();
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
        )
    }

    async fn ingest(&self, batch: Vec<Value>) {
        let resp = self
            .http
            .post(format!("{}/v1/batch", self.base))
            .basic_auth(&self.write_key, Some(""))
            .json(&json!({ "batch": batch }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }

    async fn raw_events(&self) -> Vec<Value> {
        let resp = self
            .http
            .get(format!("{}/api/v1/events?limit=1000", self.base))
            .bearer_auth(&self.secret_key)
            .send()
            .await
            .unwrap();
        let body: Value = resp.json().await.unwrap();
        body["events"].as_array().unwrap().clone()
    }

    async fn maintenance(&self) {
        let store = pulseline_collector::store::Store::open(&self.database_url, Default::default())
            .await
            .unwrap();
        pulseline_collector::maintenance::run_once(&store, self.clock.now())
            .await
            .unwrap();
    }
}

fn event(user: &str, name: &str, id: &str, at: chrono::DateTime<Utc>) -> Value {
    json!({"type": "track", "userId": user, "event": name, "messageId": id,
           "timestamp": at.to_rfc3339(), "properties": {"plan": "pro"}})
}

#[tokio::test]
async fn old_raw_events_go_while_the_charts_of_their_days_remain() {
    let mut app = spawn().await;
    assert_eq!(
        app.get("/data-retention").await,
        json!({"plan_retention_days": null, "raw_retention_days": null,
               "effective_raw_retention_days": null})
    );
    let (status, body) = app.put_retention(json!({"raw_retention_days": 7})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["effective_raw_retention_days"], 7);

    let day_one = app.clock.now();
    app.ingest(vec![
        event("ada", "signup", "old-1", day_one - Duration::hours(1)),
        event("bob", "signup", "old-2", day_one - Duration::hours(1)),
        event("ada", "checkout", "old-3", day_one),
    ])
    .await;
    let from = (day_one - Duration::days(1)).timestamp_millis();
    let to = (day_one + Duration::days(1)).timestamp_millis();
    let series_path = format!("/series?from={from}&to={to}&bucket=3600000&event=signup");
    let series_before = app.get(&series_path).await;
    let overview_before = app.get("/overview").await;
    assert_eq!(overview_before["mau"], 2, "{overview_before}");

    // Ten days later, with one recent event: raw events older than 7 days go, rollups stay.
    app.clock.advance(Duration::days(10));
    app.ingest(vec![event("cy", "signup", "new-1", app.clock.now())])
        .await;
    app.maintenance().await;
    app.log_in().await;
    let ids: Vec<String> = app
        .raw_events()
        .await
        .iter()
        .map(|e| e["messageId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids,
        ["new-1"],
        "raw events older than 7 days must be deleted"
    );
    assert_eq!(app.get(&series_path).await, series_before);
    let overview = app.get("/overview").await;
    assert_eq!(overview["mau"], 3, "{overview}");
    let day = |o: &Value, at: chrono::DateTime<Utc>| {
        let start = at.timestamp_millis() - at.timestamp_millis().rem_euclid(86_400_000);
        o["daily"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d[0] == start)
            .map(|d| d[1].clone())
    };
    assert_eq!(day(&overview, day_one), day(&overview_before, day_one));
    assert_eq!(day(&overview, day_one), Some(json!(3)));

    // Cleared, raw events are kept as long as the plan (here: forever) from the next pass on.
    let (status, body) = app.put_retention(json!({"raw_retention_days": null})).await;
    assert_eq!(
        (status, body["effective_raw_retention_days"].clone()),
        (200, Value::Null)
    );
    app.clock.advance(Duration::days(30));
    app.maintenance().await;
    app.log_in().await;
    assert_eq!(app.raw_events().await.len(), 1);
}

#[tokio::test]
async fn a_raw_retention_outside_its_bounds_is_refused_with_the_reason() {
    let app = spawn().await;
    for (body, says) in [
        (json!({"raw_retention_days": 0}), "from 1 to 3650"),
        (
            json!({"raw_retention_days": 3651}),
            "MAX_RAW_RETENTION_DAYS",
        ),
        (json!({"raw_retention_days": "7"}), "raw_retention_days"),
        (json!({"raw_retention": 7}), "raw_retention"),
    ] {
        let (status, answer) = app.put_retention(body.clone()).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert!(answer.to_string().contains(says), "{body} -> {answer}");
    }
    // Below a limited plan's retention only.
    let store = pulseline_collector::store::Store::open(&app.database_url, Default::default())
        .await
        .unwrap();
    store
        .upsert_plan(&pulseline_collector::store::Plan {
            name: "trial".into(),
            events_per_month: None,
            retention_days: Some(30),
        })
        .await
        .unwrap();
    store.set_project_plan(app.project, "trial").await.unwrap();
    let (status, answer) = app.put_retention(json!({"raw_retention_days": 31})).await;
    assert_eq!(status, 400);
    assert!(
        answer.to_string().contains("the plan keeps data 30 days"),
        "{answer}"
    );
    let (status, answer) = app.put_retention(json!({"raw_retention_days": 30})).await;
    assert_eq!(
        (status, answer["effective_raw_retention_days"].clone()),
        (200, json!(30))
    );
    // The plan shortened later wins over a longer project setting.
    store
        .upsert_plan(&pulseline_collector::store::Plan {
            name: "trial".into(),
            events_per_month: None,
            retention_days: Some(14),
        })
        .await
        .unwrap();
    assert_eq!(
        app.get("/data-retention").await["effective_raw_retention_days"],
        14
    );
}
