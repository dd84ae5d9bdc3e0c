//! Who may act on persons: bad requests say what to fix, and the dashboard lets owners and
//! admins only, within their project.

use super::*;

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

impl App {
    fn admin(&self) -> (&str, &str) {
        (self.cookie.as_str(), self.csrf.as_str())
    }

    /// A second project with an "alice" of its own, which no deletion here may touch: the
    /// project as created (with its keys).
    async fn other_project_with_an_alice(&self) -> Value {
        let (status, other) = self
            .dash_send(
                reqwest::Method::POST,
                self.admin(),
                "/api/dash/projects",
                json!({"name": "b"}),
            )
            .await;
        assert_eq!(status, 200, "{other}");
        let resp = self
            .http
            .post(self.url("/v1/batch"))
            .basic_auth(other["write_key"].as_str().unwrap(), Some(""))
            .json(&json!({"batch": [track(Some("alice"), None, "signup", "b-1", 1)]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        other
    }

    /// A developer of the project, joined by invitation: their cookie and CSRF token.
    async fn developer(&self) -> (String, String) {
        let store = pulseline_collector::store::Store::open(&self.database_url, Default::default())
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
        let invite = json!({"email": "dev@example.com", "role": "developer"});
        let path = format!("/api/dash/projects/{}/invitations", self.project);
        let (status, invitation) = self
            .dash_send(reqwest::Method::POST, self.admin(), &path, invite)
            .await;
        assert_eq!(status, 200, "{invitation}");
        let resp = self
            .http
            .post(self.url("/api/dash/session"))
            .json(&json!({"email": "dev@example.com", "password": "developer-pw"}))
            .send()
            .await
            .unwrap();
        let cookie = resp.headers()["set-cookie"].to_str().unwrap();
        let cookie = cookie.split(';').next().unwrap().to_owned();
        let body: Value = resp.json().await.unwrap();
        let csrf = body["csrf_token"].as_str().unwrap().to_owned();
        let accept = format!("/api/dash/invitations/{}/accept", invitation["id"]);
        let (status, body) = self
            .dash_send(reqwest::Method::POST, (&cookie, &csrf), &accept, json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
        (cookie, csrf)
    }
}

#[tokio::test]
async fn developers_neither_delete_nor_export_persons() {
    let app = spawn().await;
    app.ingest(alice()).await;
    let (cookie, csrf) = app.developer().await;
    let dev = (cookie.as_str(), csrf.as_str());
    let p = format!("/api/dash/projects/{}", app.project);
    let delete = format!("{p}/persons?user_id=alice");
    let (status, body) = app
        .dash_send(reqwest::Method::DELETE, dev, &delete, Value::Null)
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.to_string().contains("admin"), "{body}");
    let export = format!("{p}/persons/export?user_id=alice");
    let (status, _) = app
        .dash_send(reqwest::Method::GET, dev, &export, Value::Null)
        .await;
    assert_eq!(status, 403);
}

/// An admin's deletion is audited, and another project's person of the same id stays.
#[tokio::test]
async fn an_admin_deletes_a_person_of_this_project_only() {
    let app = spawn().await;
    let other = app.other_project_with_an_alice().await;
    app.ingest(alice()).await;
    let delete = format!("/api/dash/projects/{}/persons?user_id=alice", app.project);
    let (status, body) = app
        .dash_send(reqwest::Method::DELETE, app.admin(), &delete, Value::Null)
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
