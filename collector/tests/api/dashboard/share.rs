//! Shared, read-only pages (issue 24, docs/sharing.md) over HTTP, logged out: the link shows the
//! members' numbers for its page and nothing else, asks for its password, limits attempts,
//! sets frame-ancestors from its origins, and stops at once when revoked.

use std::sync::Arc;

use chrono::Duration;
use pulseline_collector::clock::FakeClock;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Dash, Login, at, ev, spawn};

impl Dash {
    /// Publishes `body` as `who` in `project`: the status and the answer.
    async fn publish(&self, who: &Login, project: i64, body: Value) -> (StatusCode, Value) {
        self.post(who, &format!("/api/dash/projects/{project}/shares"), body)
            .await
    }

    /// The link's path of a share `who` publishes in `project` (which must succeed).
    async fn share(&self, who: &Login, project: i64, body: Value) -> String {
        let (status, share) = self.publish(who, project, body).await;
        assert_eq!(status, 200, "{share}");
        share["path"].as_str().unwrap().to_owned()
    }

    /// GET without any cookie, optionally with an unlock token: the status and the body.
    async fn anonymous(&self, path: &str, unlock: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.http.get(self.url(path));
        if let Some(u) = unlock {
            req = req.header("x-share-unlock", u);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn unlock(&self, link: &str, password: &str) -> reqwest::Response {
        self.http
            .post(self.url(&format!("{link}/api/unlock")))
            .json(&json!({ "password": password }))
            .send()
            .await
            .unwrap()
    }

    /// Project B (created by the admin), with its write key.
    async fn second_project(&self, admin: &Login) -> (i64, String) {
        let (status, b) = self
            .post(admin, "/api/dash/projects", json!({"name": "Project B"}))
            .await;
        assert_eq!(status, 200, "{b}");
        (
            b["id"].as_i64().unwrap(),
            b["write_key"].as_str().unwrap().to_owned(),
        )
    }

    async fn ingest_with(&self, key: &str, batch: Vec<Value>) {
        let resp = self
            .http
            .post(self.url("/v1/batch"))
            .basic_auth(key, Some(""))
            .json(&json!({ "batch": batch }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    }
}

fn page_view(visitor: &str, path: &str, t: chrono::DateTime<chrono::Utc>) -> Value {
    json!({
        "type": "page", "anonymousId": visitor, "name": path,
        "properties": {"path": path, "url": format!("https://shop.example{path}")},
        "timestamp": t.to_rfc3339(), "messageId": uuid::Uuid::now_v7().to_string(),
    })
}

/// The overview link answers logged out with exactly what a member sees, and the page itself is
/// the dashboard, not framable by anyone.
#[tokio::test]
async fn a_shared_overview_shows_the_members_numbers_logged_out() {
    let clock = Arc::new(FakeClock::new(at(12, 0)));
    let app = spawn(|_| {}, clock).await;
    app.ingest(vec![
        ev("a", "signup", at(9, 0), json!({})),
        ev("b", "signup", at(10, 0), json!({})),
        ev("a", "purchase", at(11, 0), json!({"amount": 10})),
    ])
    .await;
    let admin = app.admin().await;
    let link = app
        .share(&admin, app.project, json!({"page": "overview"}))
        .await;
    assert!(
        link.starts_with("/s/plsh_") && link.len() >= 3 + 5 + 32,
        "{link}"
    );

    let (status, shared) = app.anonymous(&format!("{link}/api/overview"), None).await;
    assert_eq!(status, 200, "{shared}");
    assert_eq!(shared["events_today"], 3, "{shared}");
    assert_eq!(shared["dau"], 2, "{shared}");
    assert_eq!(
        shared["top_events"],
        json!([["signup", 2], ["purchase", 1]])
    );
    let (_, member) = app
        .get(
            &admin,
            &format!("/api/dash/projects/{}/overview", app.project),
        )
        .await;
    assert_eq!(shared, member);

    let (status, about) = app.anonymous(&format!("{link}/api/share"), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        about,
        json!({"page": "overview", "password": false, "unlocked": true,
               "project_name": "Default project"})
    );

    let page = app.http.get(app.url(&link)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.ends_with("frame-ancestors 'none'"), "{csp}");
    assert_eq!(csp.matches("frame-ancestors").count(), 1, "{csp}");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert!(page.text().await.unwrap().contains("/assets/app.js"));

    // The link's API is described with the rest.
    let spec: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "share",
        "unlock",
        "overview",
        "vitals",
        "web",
        "web/realtime",
    ] {
        let path = format!("/s/{{token}}/api/{path}");
        assert!(
            spec["paths"].get(&path).is_some(),
            "{path} in /openapi.json"
        );
    }

    // The list shows the link's prefix, never the link.
    let (_, list) = app
        .get(
            &admin,
            &format!("/api/dash/projects/{}/shares", app.project),
        )
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert!(list[0].get("path").is_none(), "{list}");
    assert!(link.contains(list[0]["prefix"].as_str().unwrap()));
}

/// A link reaches its page of its project and nothing else: not other pages, not other
/// projects named in the query, not raw events, persons, keys or the live tail.
#[tokio::test]
async fn a_link_shows_nothing_but_its_page() {
    let clock = Arc::new(FakeClock::new(at(12, 0)));
    let app = spawn(|_| {}, clock).await;
    let admin = app.admin().await;
    let (b, b_key) = app.second_project(&admin).await;
    app.ingest(vec![ev("a", "signup", at(9, 0), json!({}))])
        .await;
    app.ingest_with(
        &b_key,
        vec![
            ev("secret-user", "b-only", at(9, 0), json!({})),
            ev("secret-user", "b-only", at(10, 0), json!({})),
        ],
    )
    .await;
    let link = app
        .share(&admin, app.project, json!({"page": "overview"}))
        .await;
    let p = app.project;

    for query in [
        format!("?project={b}"),
        format!("?project_id={b}&include_bots=false"),
    ] {
        let (status, o) = app
            .anonymous(&format!("{link}/api/overview{query}"), None)
            .await;
        assert_eq!(status, 200, "{o}");
        assert_eq!(o["top_events"], json!([["signup", 1]]), "{query}: {o}");
    }
    for path in [
        format!("{link}/api/vitals"),
        format!("{link}/api/web"),
        format!("{link}/api/web/realtime"),
        format!("{link}/api/events"),
        format!("{link}/api/tail"),
        format!("{link}/api/series"),
        format!("{link}/api/persons?user_id=a"),
        format!("{link}/api/keys"),
        format!("{link}/api/projects/{p}/keys"),
        format!("{link}/api/dash/projects/{p}/events"),
        format!("{link}/api/overview/../../../api/dash/projects/{p}/members"),
    ] {
        let (status, body) = app.anonymous(&path, None).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    // The dashboard's own routes still want a session: the link is no cookie.
    for path in [
        format!("/api/dash/projects/{p}/overview"),
        format!("/api/dash/projects/{p}/events"),
        format!("/api/dash/projects/{p}/keys"),
        format!("/api/v1/events?project={p}"),
    ] {
        let (status, body) = app.anonymous(&path, None).await;
        assert_eq!(status, 401, "{path}: {body}");
    }
    // A mangled or foreign token is nobody's link.
    // Its last character changed (to one it is not: a token may end in 'x').
    let last = if link.ends_with('x') { 'y' } else { 'x' };
    let mangled = format!("{}{last}", &link[..link.len() - 1]);
    for path in [
        format!("{mangled}/api/overview"),
        "/s/plsh_short/api/overview".to_owned(),
        format!("/s/pls_{}/api/overview", &link[8..]),
    ] {
        let (status, body) = app.anonymous(&path, None).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    let resp = app.http.get(app.url(&mangled)).send().await.unwrap();
    assert_eq!(resp.status(), 404);

    // B's own link shows B only.
    let b_link = app.share(&admin, b, json!({"page": "overview"})).await;
    let (_, o) = app
        .anonymous(&format!("{b_link}/api/overview?project={p}"), None)
        .await;
    assert_eq!(o["top_events"], json!([["b-only", 2]]), "{o}");
}

/// The Web and Web Vitals links answer their page with the filters and ranges it offers.
#[tokio::test]
async fn web_and_vitals_links_answer_their_pages() {
    let clock = Arc::new(FakeClock::new(at(12, 0)));
    let app = super::web::spawn(|_| {}, clock).await;
    app.ingest(vec![
        page_view("v1", "/", at(9, 0)),
        page_view("v1", "/pricing", at(9, 1)),
        page_view("v2", "/", at(10, 0)),
        ev(
            "v1",
            "Web Vital",
            at(9, 0),
            json!({"metric": "LCP", "value": 1800, "rating": "good", "path": "/"}),
        ),
    ])
    .await;
    let admin = app.admin().await;
    app.web_caught_up(&admin).await;
    let p = app.project;
    let web = app.share(&admin, p, json!({"page": "web"})).await;
    let vitals = app.share(&admin, p, json!({"page": "vitals"})).await;

    for query in ["period=today", "period=7d&page=%2Fpricing"] {
        let (status, shared) = app.anonymous(&format!("{web}/api/web?{query}"), None).await;
        assert_eq!(status, 200, "{shared}");
        let (_, member) = app
            .get(&admin, &format!("/api/dash/projects/{p}/web?{query}"))
            .await;
        assert_eq!(shared, member, "{query}");
    }
    let (_, today) = app
        .anonymous(&format!("{web}/api/web?period=today"), None)
        .await;
    assert_eq!(today["current"]["pageviews"], 3, "{today}");
    assert_eq!(today["current"]["visitors"], 2, "{today}");
    let (status, body) = app
        .anonymous(&format!("{web}/api/web?period=fortnight"), None)
        .await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("unknown period"));
    let (status, rt) = app
        .anonymous(&format!("{web}/api/web/realtime"), None)
        .await;
    assert_eq!(status, 200, "{rt}");

    let range = format!(
        "from={}&to={}",
        at(0, 0).timestamp_millis(),
        at(12, 0).timestamp_millis()
    );
    let (status, shared) = app
        .anonymous(&format!("{vitals}/api/vitals?{range}"), None)
        .await;
    assert_eq!(status, 200, "{shared}");
    let (_, member) = app
        .get(&admin, &format!("/api/dash/projects/{p}/vitals?{range}"))
        .await;
    assert_eq!(shared, member);
    let lcp = shared["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["vital"]["metric"] == "LCP")
        .unwrap();
    assert_eq!(lcp["overall"]["samples"], 1, "{lcp}");
    // Each link is its page only.
    for path in [
        format!("{web}/api/vitals"),
        format!("{vitals}/api/overview"),
        format!("{vitals}/api/web"),
    ] {
        assert_eq!(app.anonymous(&path, None).await.0, 404, "{path}");
    }
}

/// A password keeps the data (and the project's name) back until the right password unlocks
/// it; attempts are limited per share, and the limit is named.
#[tokio::test]
async fn a_password_guards_the_link_and_attempts_are_limited() {
    let clock = Arc::new(FakeClock::new(at(12, 0)));
    let app = spawn(|_| {}, clock.clone()).await;
    app.ingest(vec![ev("a", "signup", at(9, 0), json!({}))])
        .await;
    let admin = app.admin().await;
    let (status, body) = app
        .publish(
            &admin,
            app.project,
            json!({"page": "overview", "password": "short"}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("at least 10"),
        "{body}"
    );
    let link = app
        .share(
            &admin,
            app.project,
            json!({"page": "overview", "password": "open sesame 42"}),
        )
        .await;
    let data = format!("{link}/api/overview");

    let (status, body) = app.anonymous(&data, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("password"),
        "{body}"
    );
    let (_, about) = app.anonymous(&format!("{link}/api/share"), None).await;
    assert_eq!(
        about,
        json!({"page": "overview", "password": true, "unlocked": false, "project_name": null})
    );
    // The page itself loads (it shows the password form).
    assert_eq!(
        app.http.get(app.url(&link)).send().await.unwrap().status(),
        200
    );

    let wrong = app.unlock(&link, "open sesame 43").await;
    assert_eq!(wrong.status(), 401);
    let right = app.unlock(&link, "open sesame 42").await;
    assert_eq!(right.status(), 200);
    let unlock = right.json::<Value>().await.unwrap()["unlock"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, o) = app.anonymous(&data, Some(&unlock)).await;
    assert_eq!(status, 200, "{o}");
    assert_eq!(o["events_today"], 1);
    let (_, about) = app
        .anonymous(&format!("{link}/api/share"), Some(&unlock))
        .await;
    assert_eq!(about["project_name"], "Default project");
    // The last character changed (to another one: a token ending in "A" must not stay whole).
    let last = if unlock.ends_with('A') { 'B' } else { 'A' };
    let forged = format!("{}{last}", &unlock[..unlock.len() - 1]);
    assert_eq!(app.anonymous(&data, Some(&forged)).await.0, 401);

    // An unlock token opens its own link only.
    let other = app
        .share(
            &admin,
            app.project,
            json!({"page": "overview", "password": "open sesame 42"}),
        )
        .await;
    assert_eq!(
        app.anonymous(&format!("{other}/api/overview"), Some(&unlock))
            .await
            .0,
        401
    );

    // Five attempts a minute per share (two used above); the sixth is refused even when right.
    for _ in 0..3 {
        assert_eq!(app.unlock(&link, "guess guess guess").await.status(), 401);
    }
    let refused = app.unlock(&link, "open sesame 42").await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("SHARE_PASSWORD_ATTEMPTS_PER_MINUTE"),
        "{body}"
    );
    clock.advance(Duration::minutes(1));
    assert_eq!(app.unlock(&link, "open sesame 42").await.status(), 200);
    // Unlocks end after SHARE_UNLOCK_HOURS.
    clock.advance(Duration::hours(12));
    assert_eq!(app.anonymous(&data, Some(&unlock)).await.0, 401);
}

/// Without origins no site may frame the page; with origins exactly those may.
#[tokio::test]
async fn frame_ancestors_follow_the_share_origins() {
    let clock = Arc::new(FakeClock::new(at(12, 0)));
    let app = spawn(|_| {}, clock).await;
    let admin = app.admin().await;
    let link = app
        .share(
            &admin,
            app.project,
            json!({"page": "web", "origins": [
                "https://Status.Example.com", "http://localhost:8080/", "https://status.example.com"
            ]}),
        )
        .await;
    let page = app.http.get(app.url(&link)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.ends_with("; frame-ancestors https://status.example.com http://localhost:8080"),
        "{csp}"
    );
    assert!(!csp.contains("'none'"), "{csp}");
    assert!(page.headers().get("x-frame-options").is_none());

    for (origins, says) in [
        (json!(["https://*.example.com"]), "wildcard"),
        (json!(["https://example.com/status"]), "path"),
        (json!(["javascript:alert(1)"]), "http or https"),
        (json!(["https://a.example; script-src 'self'"]), "not a URL"),
        (
            json!(
                (0..11)
                    .map(|i| format!("https://s{i}.example"))
                    .collect::<Vec<_>>()
            ),
            "MAX_SHARE_ORIGINS",
        ),
    ] {
        let (status, body) = app
            .publish(
                &admin,
                app.project,
                json!({"page": "web", "origins": origins}),
            )
            .await;
        assert_eq!(status, 400, "{origins}: {body}");
        assert!(body["message"].as_str().unwrap().contains(says), "{body}");
    }
    let (status, body) = app
        .publish(&admin, app.project, json!({"page": "keys"}))
        .await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("overview, vitals or web")
    );
}

/// Revoking ends the link at once (also for an unlocked browser), and the audit log has both.
#[tokio::test]
async fn revoking_ends_the_link_at_once_and_is_audited() {
    let clock = Arc::new(FakeClock::new(at(12, 0)));
    let app = spawn(|_| {}, clock).await;
    let admin = app.admin().await;
    let p = app.project;
    let link = app
        .share(
            &admin,
            p,
            json!({"page": "overview", "password": "open sesame 42"}),
        )
        .await;
    let resp = app.unlock(&link, "open sesame 42").await;
    let unlock = resp.json::<Value>().await.unwrap()["unlock"]
        .as_str()
        .unwrap()
        .to_owned();
    let data = format!("{link}/api/overview");
    assert_eq!(app.anonymous(&data, Some(&unlock)).await.0, 200);
    let (_, list) = app
        .get(&admin, &format!("/api/dash/projects/{p}/shares"))
        .await;
    let id = list[0]["id"].as_i64().unwrap();

    let (status, revoked) = app
        .send(
            reqwest::Method::DELETE,
            &admin,
            &format!("/api/dash/projects/{p}/shares/{id}"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(app.anonymous(&data, Some(&unlock)).await.0, 404);
    assert_eq!(
        app.anonymous(&format!("{link}/api/share"), None).await.0,
        404
    );
    assert_eq!(
        app.http.get(app.url(&link)).send().await.unwrap().status(),
        404
    );
    assert_eq!(app.unlock(&link, "open sesame 42").await.status(), 404);
    let (_, list) = app
        .get(&admin, &format!("/api/dash/projects/{p}/shares"))
        .await;
    assert_eq!(list, json!([]));
    let (status, _) = app
        .send(
            reqwest::Method::DELETE,
            &admin,
            &format!("/api/dash/projects/{p}/shares/{id}"),
            json!({}),
        )
        .await;
    assert_eq!(status, 404);

    let (_, log) = app
        .get(&admin, &format!("/api/dash/projects/{p}/audit"))
        .await;
    let actions: Vec<(&str, &str)> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"].as_str().unwrap().starts_with("share."))
        .map(|a| (a["action"].as_str().unwrap(), a["target"].as_str().unwrap()))
        .collect();
    assert_eq!(actions.len(), 2, "{log}");
    let prefix = &link[3..14];
    assert!(
        actions.iter().any(|(a, t)| *a == "share.published"
            && t.contains(prefix)
            && t.contains("with a password")),
        "{actions:?}"
    );
    assert!(
        actions
            .iter()
            .any(|(a, t)| *a == "share.revoked" && t.contains(prefix)),
        "{actions:?}"
    );
}

/// Publishing and revoking need the admin role; another project's share is not reachable
/// through yours; a project has at most MAX_SHARES_PER_PROJECT shares.
#[tokio::test]
async fn only_admins_publish_and_shares_are_bounded() {
    let clock = Arc::new(FakeClock::new(at(12, 0)));
    let app = spawn(|_| {}, clock).await;
    let team = app.team().await;
    for who in [&team.viewer, &team.dev] {
        let (status, body) = app.publish(who, team.a, json!({"page": "overview"})).await;
        assert_eq!(status, 403, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("admin role"),
            "{body}"
        );
        let (status, _) = app
            .get(who, &format!("/api/dash/projects/{}/shares", team.a))
            .await;
        assert_eq!(status, 403);
        // Not a member of B: as if it did not exist.
        let (status, _) = app.publish(who, team.b, json!({"page": "overview"})).await;
        assert_eq!(status, 404);
    }
    app.share(&team.admin, team.b, json!({"page": "overview"}))
        .await;
    let (_, list) = app
        .get(
            &team.admin,
            &format!("/api/dash/projects/{}/shares", team.b),
        )
        .await;
    let b_share = list[0]["id"].as_i64().unwrap();
    let (status, _) = app
        .send(
            reqwest::Method::DELETE,
            &team.admin,
            &format!("/api/dash/projects/{}/shares/{b_share}", team.a),
            json!({}),
        )
        .await;
    assert_eq!(status, 404, "B's share through A's path");
    let (status, _) = app
        .send(
            reqwest::Method::DELETE,
            &team.dev,
            &format!("/api/dash/projects/{}/shares/{b_share}", team.a),
            json!({}),
        )
        .await;
    assert_eq!(status, 403);

    for _ in 0..20 {
        app.share(&team.admin, team.a, json!({"page": "vitals"}))
            .await;
    }
    let (status, body) = app
        .publish(&team.admin, team.a, json!({"page": "vitals"}))
        .await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("MAX_SHARES_PER_PROJECT"),
        "{body}"
    );
}

/// One rule for bots on every shared page: left out, as members see them by default; asking
/// for them (`include_bots=true`) is refused with the reason, on the overview as on the Web
/// Vitals and Web pages.
#[tokio::test]
async fn shared_pages_always_leave_bots_out() {
    let app = spawn(|_| {}, Arc::new(FakeClock::new(at(12, 0)))).await;
    let mut crawler = ev("crawler", "signup", at(9, 30), json!({}));
    crawler["context"] = json!({"bot": true});
    app.ingest(vec![ev("ana", "signup", at(9, 0), json!({})), crawler])
        .await;
    let admin = app.admin().await;
    let p = app.project;
    let (_, member) = app
        .get(
            &admin,
            &format!("/api/dash/projects/{p}/overview?include_bots=true"),
        )
        .await;
    assert_eq!(member["top_events"], json!([["signup", 2]]), "{member}");
    let range = format!(
        "from={}&to={}",
        at(0, 0).timestamp_millis(),
        at(12, 0).timestamp_millis()
    );
    let mut pages = Vec::new();
    for (page, api) in [
        ("overview", "overview?".to_owned()),
        ("vitals", format!("vitals?{range}&")),
        ("web", "web?period=today&".to_owned()),
    ] {
        let link = app.share(&admin, p, json!({"page": page})).await;
        pages.push(format!("{link}/api/{api}"));
    }
    for path in &pages {
        let (status, body) = app
            .anonymous(&format!("{path}include_bots=true"), None)
            .await;
        assert_eq!(status, 400, "{path}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("always leaves bot events out"),
            "{message}"
        );
        let (status, body) = app
            .anonymous(&format!("{path}include_bots=false"), None)
            .await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (_, shared) = app.anonymous(&pages[0], None).await;
    assert_eq!(shared["top_events"], json!([["signup", 1]]), "{shared}");
    assert_eq!(shared["bot_events"], 1, "{shared}");
}
