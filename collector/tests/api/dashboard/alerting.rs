//! The dashboard's alerting routes (issue 8): the secret-key handlers under
//! `/api/dash/projects/{project}`, with roles, tenancy, CSRF and the audit log; a rule made in
//! the dashboard fires, and its alert and delivery show in the history and the log.

mod audit;

use std::sync::Arc;
use std::time::Duration;

use pulseline_collector::clock::FakeClock;
use serde_json::{Value, json};

use super::{Dash, Login, Team, at, ev, spawn};
use crate::helpers::standins::{self, StandIn};

/// The dashboard with a team (see [`Dash::team`]), its clock at 10:00 and rules evaluated
/// every second, and Slack's stand-in (the webhook one checks signature timestamps against the
/// real clock).
struct Rig {
    app: Dash,
    team: Team,
    clock: Arc<FakeClock>,
    slack: StandIn,
}

async fn rig() -> Rig {
    let clock = Arc::new(FakeClock::new(at(10, 0)));
    let app = spawn(|c| c.rules_interval_secs = 1, clock.clone()).await;
    let team = app.team().await;
    let slack = standins::slack().await;
    Rig {
        app,
        team,
        clock,
        slack,
    }
}

impl Rig {
    /// A path under project A.
    fn a(&self, path: &str) -> String {
        format!("/api/dash/projects/{}{path}", self.team.a)
    }

    /// A path under project B.
    fn b(&self, path: &str) -> String {
        format!("/api/dash/projects/{}{path}", self.team.b)
    }

    fn channel(&self) -> Value {
        json!({"name": "Ops hook", "kind": "slack", "url": self.slack.url})
    }

    /// A channel of project A made by its developer.
    async fn make_channel(&self) -> i64 {
        let (status, created) = self
            .app
            .post(&self.team.dev, &self.a("/channels"), self.channel())
            .await;
        assert_eq!(status, 201, "{created}");
        created["id"].as_i64().unwrap()
    }

    /// A rule of project A made by its developer.
    async fn make_rule(&self, channel: i64) -> i64 {
        let (status, made) = self
            .app
            .post(&self.team.dev, &self.a("/rules"), rule(channel))
            .await;
        assert_eq!(status, 201, "{made}");
        made["id"].as_i64().unwrap()
    }

    async fn put(&self, who: &Login, path: &str, body: Value) -> (reqwest::StatusCode, Value) {
        self.app.send(reqwest::Method::PUT, who, path, body).await
    }

    async fn delete(&self, who: &Login, path: &str) -> reqwest::StatusCode {
        self.app
            .send(reqwest::Method::DELETE, who, path, json!({}))
            .await
            .0
    }

    /// Polls `path` until its `list` is not empty (the background loops act on their own time).
    async fn first_listed(&self, path: &str, list: &str) -> Value {
        let mut body = Value::Null;
        for _ in 0..100 {
            body = self.app.get(&self.team.viewer, path).await.1;
            if !body[list].as_array().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        body
    }
}

fn rule(channel: i64) -> Value {
    json!({"name": "Any signup", "series": {"event": "signup", "bucket": "minute"},
        "condition": {"type": "threshold", "op": ">", "value": 0}, "channel_ids": [channel]})
}

fn category(channel: i64) -> Value {
    json!({"name": "Payments", "pattern": "payment.*", "emoji": "💰",
        "colour": "#2ECC71", "channel_id": channel})
}

/// A category's edit: a new name, and the colour as a number.
fn category_edit(channel: i64) -> Value {
    json!({"name": "Payments (all)", "pattern": "payment.*", "colour": 0x2ECC71,
        "channel_id": channel})
}

#[tokio::test]
async fn alerting_needs_a_session_and_never_prompts_for_basic_auth() {
    let rig = rig().await;
    let resp = rig
        .app
        .http
        .get(rig.app.url(&rig.a("/rules")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("www-authenticate").is_none());
}

/// 403 saying which role it takes.
#[tokio::test]
async fn viewers_cannot_change_alerting() {
    let rig = rig().await;
    let viewer = &rig.team.viewer;
    let (status, body) = rig
        .app
        .post(viewer, &rig.a("/channels"), rig.channel())
        .await;
    assert_eq!(status, 403, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("creating a channel") && message.contains("developer"),
        "{message}"
    );
    let (status, body) = rig.app.post(viewer, &rig.a("/rules"), rule(1)).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("creating a rule")
    );

    let channel_id = rig.make_channel().await;
    let test = rig.a(&format!("/channels/{channel_id}/test"));
    assert_eq!(
        rig.app.post(viewer, &test, json!({})).await.0,
        403,
        "viewers send no tests"
    );
    let rule_id = rig.make_rule(channel_id).await;
    let (status, body) = rig
        .put(
            viewer,
            &rig.a(&format!("/rules/{rule_id}")),
            rule(channel_id),
        )
        .await;
    assert_eq!(status, 403, "{body}");
}

#[tokio::test]
async fn alerting_changes_need_the_csrf_token_and_the_same_origin() {
    let rig = rig().await;
    let dev = &rig.team.dev;
    let no_csrf = rig
        .app
        .post_without_csrf(dev, &rig.a("/channels"), &rig.channel())
        .await;
    assert_eq!(no_csrf.status(), 403);
    let body: Value = no_csrf.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("X-CSRF-Token"),
        "{body}"
    );
    let cross_site = rig
        .app
        .post_cross_site(
            dev,
            &rig.a("/channels"),
            "http://evil.example",
            &rig.channel(),
        )
        .await;
    assert_eq!(cross_site.status(), 403);
    let (_, listed) = rig.app.get(dev, &rig.a("/channels")).await;
    assert_eq!(
        listed["channels"].as_array().unwrap().len(),
        0,
        "refused requests created nothing"
    );
}

#[tokio::test]
async fn developers_make_test_and_rename_channels_and_categories() {
    let rig = rig().await;
    let dev = &rig.team.dev;
    let channel_id = rig.make_channel().await;
    let (status, tested) = rig
        .app
        .post(
            dev,
            &rig.a(&format!("/channels/{channel_id}/test")),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{tested}");
    assert_eq!(tested["delivered"], true, "{tested}");
    let got = rig
        .slack
        .receiver
        .wait_for(1, Duration::from_secs(10))
        .await;
    assert!(got[0].to_string().contains("test notification"), "{got:?}");
    let (status, renamed) = rig
        .app
        .send(
            reqwest::Method::PATCH,
            dev,
            &rig.a(&format!("/channels/{channel_id}")),
            json!({"name": "Ops webhook"}),
        )
        .await;
    assert_eq!(status, 200, "{renamed}");

    let (status, cat) = rig
        .app
        .post(dev, &rig.a("/categories"), category(channel_id))
        .await;
    assert_eq!(status, 201, "{cat}");
    let (status, _) = rig
        .put(
            dev,
            &rig.a(&format!("/categories/{}", cat["id"])),
            category_edit(channel_id),
        )
        .await;
    assert_eq!(status, 200);
}

/// Not even a member of both projects can point project B's rule or category at A's channel.
#[tokio::test]
async fn rules_and_categories_cannot_use_another_projects_channel() {
    let rig = rig().await;
    let channel_id = rig.make_channel().await;
    for (path, body) in [
        ("/rules", rule(channel_id)),
        ("/categories", category(channel_id)),
    ] {
        let (status, err) = rig.app.post(&rig.team.admin, &rig.b(path), body).await;
        assert_eq!(status, 400, "{path}: {err}");
        let message = err["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("{channel_id} is not a channel of this project")),
            "{message}"
        );
    }
}

/// Viewers read everything, including previews of saved and draft rules.
#[tokio::test]
async fn viewers_read_alerting_and_preview_saved_and_draft_rules() {
    let rig = rig().await;
    let viewer = &rig.team.viewer;
    let channel_id = rig.make_channel().await;
    let rule_id = rig.make_rule(channel_id).await;
    for p in [
        "/channels",
        "/categories",
        "/rules",
        "/alerts",
        "/deliveries",
    ] {
        let (status, body) = rig.app.get(viewer, &rig.a(p)).await;
        assert_eq!(status, 200, "{p}: {body}");
    }
    let (status, saved) = rig
        .app
        .get(
            viewer,
            &rig.a(&format!("/rules/{rule_id}/preview?buckets=10")),
        )
        .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["points"].as_array().unwrap().len(), 10);
    assert_eq!(saved["points"][0]["threshold"], 0.0);
    let (status, draft) = rig
        .app
        .post(viewer, &rig.a("/rules/preview?buckets=5"), rule(channel_id))
        .await;
    assert_eq!(status, 200, "{draft}");
    assert_eq!(draft["rule_id"], Value::Null);
    assert_eq!(draft["series"], "count of signup per minute");
    let (status, bad) = rig
        .app
        .post(
            viewer,
            &rig.a("/rules/preview"),
            json!({"name": "x", "series": {}}),
        )
        .await;
    assert_eq!(status, 400, "a bad draft says what to fix: {bad}");
}

/// The alert is in the history and its notification in the delivery log.
#[tokio::test]
async fn a_rule_made_in_the_dashboard_fires_into_the_history_and_the_delivery_log() {
    let rig = rig().await;
    let channel_id = rig.make_channel().await;
    let rule_id = rig.make_rule(channel_id).await;
    let mut edited = rule(channel_id);
    edited["name"] = json!("Signups");
    let (status, body) = rig
        .put(&rig.team.dev, &rig.a(&format!("/rules/{rule_id}")), edited)
        .await;
    assert_eq!(status, 200, "{body}");

    let batch: Vec<Value> = (0..3)
        .map(|i| ev("u1", "signup", at(10, i), json!({})))
        .collect();
    rig.app.ingest(batch).await;
    // 10:03:30: the latest closed minute (after the 15 s grace) is 10:02, which has a signup.
    rig.clock.set(at(10, 3) + chrono::Duration::seconds(30));
    let alerts = rig.first_listed(&rig.a("/alerts"), "alerts").await;
    assert_eq!(alerts["alerts"][0]["rule_name"], "Signups", "{alerts}");
    assert_eq!(alerts["alerts"][0]["status"], "firing");
    rig.slack
        .receiver
        .wait_for(1, Duration::from_secs(10))
        .await;
    let deliveries = rig
        .first_listed(&rig.a("/deliveries?status=delivered"), "deliveries")
        .await;
    let d = &deliveries["deliveries"][0];
    assert!(d["source"].as_str().unwrap().starts_with("alert:"), "{d}");
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["attempt_log"][0]["status_code"], 200, "{d}");
}

/// B's alerting does not exist for A's members, and B's ids through A's URL are not found
/// either.
#[tokio::test]
async fn another_projects_alerting_does_not_exist_for_a_projects_members() {
    let rig = rig().await;
    let Team {
        admin, viewer, dev, ..
    } = &rig.team;
    let (status, b_channel) = rig
        .app
        .post(
            admin,
            &rig.b("/channels"),
            json!({"name": "B hook", "kind": "slack", "url": rig.slack.url}),
        )
        .await;
    assert_eq!(status, 201);
    let b_channel = b_channel["id"].as_i64().unwrap();
    let (status, b_rule) = rig.app.post(admin, &rig.b("/rules"), rule(b_channel)).await;
    assert_eq!(status, 201, "{b_rule}");
    let b_rule = b_rule["id"].as_i64().unwrap();
    for who in [viewer, dev] {
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
            let (status, body) = rig.app.get(who, &rig.b(&p)).await;
            assert_eq!(status, 404, "{p}: {body}");
        }
        assert_eq!(
            rig.app.post(who, &rig.b("/rules"), rule(b_channel)).await.0,
            404
        );
        let test = rig.b(&format!("/channels/{b_channel}/test"));
        assert_eq!(rig.app.post(who, &test, json!({})).await.0, 404);
        let through_a = rig.a(&format!("/rules/{b_rule}"));
        assert_eq!(rig.app.get(who, &through_a).await.0, 404);
    }
    let status = rig.delete(dev, &rig.a(&format!("/rules/{b_rule}"))).await;
    assert_eq!(status, 404, "B's rule through A's URL");
    let b_rule_path = rig.b(&format!("/rules/{b_rule}"));
    assert_eq!(rig.app.get(admin, &b_rule_path).await.0, 200);
}
