//! Issue 16, over a real socket on both backends: audit logs scoped to their project, members
//! joining by invitation without revealing who has an account, the live tail ending with the
//! session or the membership, webhook URLs redacted for viewers, CLI-made projects owned at
//! once, and the secret keys of a removed member named for rotation.

/// Bounded cost: password checks, live tails, per-project and per-user limits, sessions.
mod bounds;
use crate::helpers;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

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

fn actions(log: &Value) -> Vec<(String, String)> {
    log.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_projects_audit_log_shows_only_its_actions_and_account_events_stay_private() {
    let app = spawn(Arc::new(SystemClock)).await;
    let mallory = app.user("mallory@example.com").await;
    let victim = app.user("victim@example.com").await;
    let p = app.new_project(&mallory, "Snoop").await;
    app.add_member(&mallory, p, "victim@example.com", "viewer")
        .await;
    // Account events after joining, too: a password change and a logout.
    let (status, _) = app
        .post(
            &victim,
            "/api/dash/password",
            json!({"current_password": password("victim@example.com"),
                   "new_password": "victim-new-password"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .send(Method::DELETE, &victim, "/api/dash/session", json!({}))
        .await;
    assert_eq!(status, 200);

    let (status, log) = app
        .get(&mallory, &format!("/api/dash/projects/{p}/audit"))
        .await;
    assert_eq!(status, 200, "{log}");
    let seen = actions(&log);
    assert!(
        seen.contains(&("member.joined".into(), "victim@example.com".into())),
        "{seen:?}"
    );
    assert!(
        log.as_array().unwrap().iter().all(|e| e["project_id"] == p),
        "only this project's actions: {log}"
    );
    assert!(!log.to_string().contains("user.login"), "{log}");

    // The victim sees their own account events with addresses; Mallory neither theirs nor
    // anyone's but her own.
    let victim = app.login("victim@example.com", "victim-new-password").await;
    let (status, own) = app.get(&victim, "/api/dash/audit").await;
    assert_eq!(status, 200, "{own}");
    let own_actions = actions(&own);
    for a in ["user.login", "user.password_changed", "user.logout"] {
        assert!(own_actions.iter().any(|(x, _)| x == a), "{a} in {own}");
    }
    let victim_id = own[0]["user_id"].as_i64().unwrap();
    for e in own.as_array().unwrap() {
        let whose = (e["user_id"].as_i64(), &e["project_id"]);
        assert_eq!(whose, (Some(victim_id), &Value::Null), "{e}");
        if e["action"] != "user.created" {
            assert_eq!(e["ip"], "127.0.0.1", "{e}");
        }
    }
    let (_, hers) = app.get(&mallory, "/api/dash/audit").await;
    assert!(!hers.to_string().contains("victim@"), "{hers}");
    let (status, body) = app
        .get(&mallory, &format!("/api/dash/audit?user={victim_id}"))
        .await;
    assert_eq!(status, 403, "{body}");

    // Instance admins see everyone's, or one user's.
    let (status, all) = app.get(&app.admin, "/api/dash/audit").await;
    assert_eq!(status, 200);
    let all = all.to_string();
    assert!(all.contains("victim@example.com") && all.contains("mallory@example.com"));
    let (_, one) = app
        .get(&app.admin, &format!("/api/dash/audit?user={victim_id}"))
        .await;
    assert_eq!(one.as_array().unwrap().len(), own.as_array().unwrap().len());
}

/// The inviter's view of an invitation, with what necessarily differs (id, address, times)
/// taken out.
fn shape(v: &Value) -> Value {
    let mut v = v.clone();
    for k in ["id", "email", "created_at", "expires_at"] {
        if let Some(o) = v.as_object_mut() {
            o.remove(k);
        }
    }
    v
}

#[tokio::test]
async fn members_join_only_by_accepting_and_invitations_reveal_no_accounts() {
    let clock = Arc::new(FakeClock::new(
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(),
    ));
    let app = spawn(clock.clone()).await;
    let owner = app.user("owner@example.com").await;
    let p = app.new_project(&owner, "Shop").await;
    app.make_user("bob@example.com").await;

    // An address with an account and one without get the same answers.
    let (s1, with_account) = app.invite(&owner, p, "bob@example.com", "developer").await;
    let (s2, without) = app
        .invite(&owner, p, "ghost@example.com", "developer")
        .await;
    assert_eq!(
        (s1, s2),
        (StatusCode::OK, StatusCode::OK),
        "{with_account} {without}"
    );
    assert_eq!(shape(&with_account), shape(&without));
    let members = format!("/api/dash/projects/{p}/members");
    let (s1, m1) = app
        .post(
            &owner,
            &members,
            json!({"email": "bob@example.com", "role": "admin"}),
        )
        .await;
    let (s2, m2) = app
        .post(
            &owner,
            &members,
            json!({"email": "ghost@example.com", "role": "admin"}),
        )
        .await;
    assert_eq!((s1, s2), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    assert_eq!(
        m1["message"].as_str().unwrap().replace("bob", "ghost"),
        m2["message"].as_str().unwrap(),
        "the same answer whether or not the address has an account"
    );
    assert!(
        m1["message"].as_str().unwrap().contains("/invitations"),
        "{m1}"
    );

    // Nobody became a member without consent; the owner sees both invitations pending.
    let (_, list) = app.get(&owner, &members).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let (status, pending) = app
        .get(&owner, &format!("/api/dash/projects/{p}/invitations"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(pending.as_array().unwrap().len(), 2, "{pending}");

    // Bob sees his invitation; nobody else can answer it.
    let bob = app
        .login("bob@example.com", &password("bob@example.com"))
        .await;
    assert!(!app.project_ids(&bob).await.contains(&p));
    let (_, mine) = app.get(&bob, "/api/dash/invitations").await;
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine[0]["project_name"], "Shop");
    assert_eq!(mine[0]["invited_by"], "owner@example.com");
    let carol = app.user("carol@example.com").await;
    let bobs = with_account["id"].as_i64().unwrap();
    for answer in ["accept", "decline"] {
        let (status, _) = app
            .post(
                &carol,
                &format!("/api/dash/invitations/{bobs}/{answer}"),
                json!({}),
            )
            .await;
        assert_eq!(status, 404, "{answer} someone else's invitation");
    }
    let (status, joined) = app
        .post(
            &bob,
            &format!("/api/dash/invitations/{bobs}/accept"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{joined}");
    assert_eq!(
        (joined["id"].as_i64(), joined["role"].as_str()),
        (Some(p), Some("developer"))
    );
    assert!(app.project_ids(&bob).await.contains(&p));
    let (status, _) = app
        .post(
            &bob,
            &format!("/api/dash/invitations/{bobs}/accept"),
            json!({}),
        )
        .await;
    assert_eq!(status, 404, "answered once");
    // Below admin, members neither see nor send invitations.
    let (status, _) = app
        .get(&bob, &format!("/api/dash/projects/{p}/invitations"))
        .await;
    assert_eq!(status, 403);
    let (status, body) = app.invite(&bob, p, "someone@example.com", "viewer").await;
    assert_eq!(status, 403, "{body}");

    // The address without an account: usable once the account exists.
    app.make_user("ghost@example.com").await;
    app.add_member(&owner, p, "ghost@example.com", "viewer")
        .await;
    let (_, list) = app.get(&owner, &members).await;
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");

    // Declining and cancelling leave no membership.
    let (_, inv) = app.invite(&owner, p, "carol@example.com", "viewer").await;
    let (status, _) = app
        .post(
            &carol,
            &format!("/api/dash/invitations/{}/decline", inv["id"]),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    app.make_user("dave@example.com").await;
    let (_, inv) = app.invite(&owner, p, "dave@example.com", "viewer").await;
    let (status, left) = app
        .send(
            Method::DELETE,
            &owner,
            &format!("/api/dash/projects/{p}/invitations/{}", inv["id"]),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{left}");
    let dave = app
        .login("dave@example.com", &password("dave@example.com"))
        .await;
    let (_, mine) = app.get(&dave, "/api/dash/invitations").await;
    assert_eq!(mine, json!([]));
    assert!(!app.project_ids(&carol).await.contains(&p));
    assert!(!app.project_ids(&dave).await.contains(&p));

    // Rules: members are not invited; admins do not invite owners; ids are the project's.
    let (status, body) = app.invite(&owner, p, "bob@example.com", "viewer").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("already a member")
    );
    let bob = app
        .login("bob@example.com", &password("bob@example.com"))
        .await;
    let (status, _) = app
        .post(
            &owner,
            &members,
            json!({"email": "bob@example.com", "role": "admin"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = app.invite(&bob, p, "erin@example.com", "owner").await;
    assert_eq!(status, 403, "{body}");
    let (_, erin) = app.invite(&owner, p, "erin@example.com", "owner").await;
    let other = app.new_project(&bob, "Bob's own").await;
    let (status, _) = app
        .send(
            Method::DELETE,
            &bob,
            &format!("/api/dash/projects/{other}/invitations/{}", erin["id"]),
            json!({}),
        )
        .await;
    assert_eq!(
        status, 404,
        "another project's invitation through this project's URL"
    );

    // Expiry: after INVITATION_TTL_DAYS it can no longer be accepted, and maintenance
    // removes it.
    app.make_user("frank@example.com").await;
    let (_, inv) = app.invite(&owner, p, "frank@example.com", "viewer").await;
    let expires: chrono::DateTime<Utc> = inv["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        expires - clock.now(),
        chrono::Duration::days(INVITATION_TTL_DAYS)
    );
    clock.advance(chrono::Duration::days(INVITATION_TTL_DAYS) + chrono::Duration::seconds(1));
    let frank = app
        .login("frank@example.com", &password("frank@example.com"))
        .await;
    let (_, mine) = app.get(&frank, "/api/dash/invitations").await;
    assert_eq!(mine, json!([]));
    let (status, _) = app
        .post(
            &frank,
            &format!("/api/dash/invitations/{}/accept", inv["id"]),
            json!({}),
        )
        .await;
    assert_eq!(status, 404);
    let store = pulseline_collector::store::Store::open(&app.database_url, Default::default())
        .await
        .unwrap();
    pulseline_collector::maintenance::run_once(&store, clock.now())
        .await
        .unwrap();
    store.close().await;
    let left = helpers::query_i64(&app.database_url, "SELECT COUNT(*) FROM invitations").await;
    assert_eq!(left, 0, "expired invitations are removed");

    // At most MAX_PENDING_INVITATIONS pending per project; renewing one still works.
    let owner = app
        .login("owner@example.com", &password("owner@example.com"))
        .await;
    for i in 0..MAX_PENDING_INVITATIONS {
        let (status, body) = app
            .invite(&owner, p, &format!("n{i}@example.com"), "viewer")
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = app
        .invite(&owner, p, "one-more@example.com", "viewer")
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("MAX_PENDING_INVITATIONS"),
        "{body}"
    );
    let (status, _) = app.invite(&owner, p, "n0@example.com", "developer").await;
    assert_eq!(status, 200, "renewing a pending invitation");
}

#[tokio::test]
async fn an_invitees_list_is_bounded_newest_first() {
    let app = spawn(Arc::new(SystemClock)).await;
    let target = app.user("target@example.com").await;
    // One invitation per project and address: spammers make a project for each, as many as
    // one user may own (MAX_OWNED_PROJECTS_PER_USER).
    let mut last = 0;
    let mut spammer = None;
    for i in 0..=MAX_INVITATIONS_LISTED {
        let per_user = MAX_OWNED_PROJECTS_PER_USER as i64;
        if i % per_user == 0 {
            let email = format!("spammer{}@example.com", i / per_user);
            spammer = Some(app.user(&email).await);
        }
        let spammer = spammer.as_ref().unwrap();
        last = app.new_project(spammer, &format!("Spam {i}")).await;
        let (status, body) = app
            .invite(spammer, last, "target@example.com", "viewer")
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (_, mine) = app.get(&target, "/api/dash/invitations").await;
    let mine = mine.as_array().unwrap();
    assert_eq!(mine.len(), MAX_INVITATIONS_LISTED as usize);
    assert_eq!(mine[0]["project_id"], last, "newest first");
}

/// Reads the stream until the server ends it; returns what it sent.
async fn read_to_end(mut resp: reqwest::Response, what: &str) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Ok(None)) => return seen,
            Ok(Err(e)) => panic!("{what}: {e}"),
            Err(_) => panic!("{what}: the tail did not end within 30 s; it sent {seen}"),
        }
    }
}

#[tokio::test]
async fn the_live_tail_ends_with_the_session_or_the_membership() {
    let app = spawn(Arc::new(SystemClock)).await;
    let p = app.project;
    let tail = |who: &Login| {
        app.http
            .get(app.url(&format!("/api/dash/projects/{p}/tail")))
            .header("cookie", &who.cookie)
            .send()
    };
    let opened = |resp: reqwest::Response| {
        assert_eq!(resp.status(), 200);
        resp
    };

    // Logout.
    app.make_user("leaver@example.com").await;
    let leaver = app
        .add_member(&app.admin, p, "leaver@example.com", "viewer")
        .await;
    let stream = opened(tail(&leaver).await.unwrap());
    app.send(Method::DELETE, &leaver, "/api/dash/session", json!({}))
        .await;
    let seen = read_to_end(stream, "after logout").await;
    assert!(seen.contains("event: end"), "{seen}");

    // Removal from the project.
    app.make_user("removed@example.com").await;
    let removed = app
        .add_member(&app.admin, p, "removed@example.com", "viewer")
        .await;
    let stream = opened(tail(&removed).await.unwrap());
    let (_, members) = app
        .get(&app.admin, &format!("/api/dash/projects/{p}/members"))
        .await;
    let id = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "removed@example.com")
        .unwrap()["user_id"]
        .clone();
    let (status, _) = app
        .send(
            Method::DELETE,
            &app.admin,
            &format!("/api/dash/projects/{p}/members/{id}"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let seen = read_to_end(stream, "after removal").await;
    assert!(seen.contains("event: end"), "{seen}");

    // A password change in another session.
    app.make_user("changer@example.com").await;
    let laptop = app
        .add_member(&app.admin, p, "changer@example.com", "viewer")
        .await;
    let phone = app
        .login("changer@example.com", &password("changer@example.com"))
        .await;
    let stream = opened(tail(&phone).await.unwrap());
    let (status, _) = app
        .post(
            &laptop,
            "/api/dash/password",
            json!({"current_password": password("changer@example.com"),
                   "new_password": "a-brand-new-password"}),
        )
        .await;
    assert_eq!(status, 200);
    let seen = read_to_end(stream, "after a password change").await;
    assert!(seen.contains("event: end"), "{seen}");
    // The session that changed it keeps its tail.
    let mut kept = opened(tail(&laptop).await.unwrap());
    let first = tokio::time::timeout(Duration::from_secs(30), kept.chunk()).await;
    assert!(String::from_utf8_lossy(&first.unwrap().unwrap().unwrap()).contains("event: events"));
}

#[tokio::test]
async fn viewers_see_webhook_urls_without_their_tokens() {
    let app = spawn(Arc::new(SystemClock)).await;
    let p = app.project;
    app.make_user("viewer@example.com").await;
    let viewer = app
        .add_member(&app.admin, p, "viewer@example.com", "viewer")
        .await;
    app.make_user("dev@example.com").await;
    let dev = app
        .add_member(&app.admin, p, "dev@example.com", "developer")
        .await;
    let token = "Zq8sTOKEN-nobody-below-developer-sees";
    let url = format!("http://127.0.0.1:9/api/webhooks/123/{token}");
    let (status, made) = app
        .post(
            &dev,
            &format!("/api/dash/projects/{p}/channels"),
            json!({"name": "Ops", "kind": "discord", "url": url}),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let one = format!("/api/dash/projects/{p}/channels/{}", made["id"]);
    let list = format!("/api/dash/projects/{p}/channels");
    let (_, seen) = app.get(&viewer, &list).await;
    assert_eq!(
        seen["channels"][0]["target"], "http://127.0.0.1:9/…",
        "{seen}"
    );
    let (_, seen_one) = app.get(&viewer, &one).await;
    assert!(!seen_one.to_string().contains(token), "{seen_one}");
    let (_, full) = app.get(&dev, &list).await;
    assert_eq!(full["channels"][0]["target"], url.as_str());
}

/// Inbound sources in the dashboard (issue 24): developers and above create them, viewers only
/// list them (never a secret), and a non-member gets 404.
#[tokio::test]
async fn inbound_sources_are_made_by_developers_and_listed_to_viewers() {
    let app = spawn(Arc::new(SystemClock)).await;
    let p = app.project;
    app.make_user("viewer@example.com").await;
    let viewer = app
        .add_member(&app.admin, p, "viewer@example.com", "viewer")
        .await;
    app.make_user("dev@example.com").await;
    let dev = app
        .add_member(&app.admin, p, "dev@example.com", "developer")
        .await;
    app.make_user("outsider@example.com").await;
    let outsider = app
        .login("outsider@example.com", &password("outsider@example.com"))
        .await;
    let path = format!("/api/dash/projects/{p}/inbound-sources");
    let body = json!({"kind": "generic", "name": "Shop", "event_path": "type"});

    let (status, refused) = app.post(&viewer, &path, body.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("developer"),
        "{refused}"
    );
    let (status, made) = app.post(&dev, &path, body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let secret = made["signing_secret"].as_str().unwrap();
    let (status, seen) = app.get(&viewer, &path).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["sources"][0]["path"], made["path"]);
    assert!(!seen.to_string().contains(secret), "{seen}");
    let (status, _) = app.get(&outsider, &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.post(&outsider, &path, body).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_project_made_with_the_cli_is_the_admins_at_once() {
    let app = spawn(Arc::new(SystemClock)).await;
    let out = Command::new(env!("CARGO_BIN_EXE_pulseline-collector"))
        .args(["project", "create", "--name", "From the CLI", "--json"])
        .env("PULSELINE_DATABASE_URL", &app.database_url)
        .env("PULSELINE_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = created["project_id"].as_i64().unwrap();
    let (_, projects) = app.get(&app.admin, "/api/dash/projects").await;
    let it = projects.as_array().unwrap().iter().find(|p| p["id"] == id);
    assert_eq!(it.map(|p| &p["role"]), Some(&json!("owner")), "{projects}");
}

#[tokio::test]
async fn removing_a_member_names_the_secret_keys_they_issued() {
    let app = spawn(Arc::new(SystemClock)).await;
    let p = app.project;
    app.make_user("dev@example.com").await;
    let dev = app
        .add_member(&app.admin, p, "dev@example.com", "developer")
        .await;
    let keys = format!("/api/dash/projects/{p}/keys");
    let mut issued = Vec::new();
    let mut dev_secret = String::new();
    for kind in ["secret", "secret", "write"] {
        let (status, k) = app.post(&dev, &keys, json!({"kind": kind})).await;
        assert_eq!(status, 200, "{k}");
        assert_eq!(k["created_by"], "dev@example.com");
        issued.push(k["id"].as_i64().unwrap());
        if dev_secret.is_empty() {
            dev_secret = k["key"].as_str().unwrap().to_owned();
        }
    }
    let reads_events = |key: String| {
        let req = app.http.get(app.url("/api/v1/events")).bearer_auth(key);
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(reads_events(dev_secret.clone()).await, 200);
    // One of the secret keys is revoked already: nothing to do about it.
    let (status, _) = app
        .post(&dev, &format!("{keys}/{}/revoke", issued[1]), json!({}))
        .await;
    assert_eq!(status, 200);
    let (_, listed) = app.get(&app.admin, &keys).await;
    for k in listed.as_array().unwrap() {
        let expected = if issued.contains(&k["id"].as_i64().unwrap()) {
            json!("dev@example.com")
        } else {
            Value::Null // made on the first start
        };
        assert_eq!(k["created_by"], expected, "{k}");
    }

    let (_, members) = app
        .get(&app.admin, &format!("/api/dash/projects/{p}/members"))
        .await;
    let dev_id = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "dev@example.com")
        .unwrap()["user_id"]
        .clone();
    let (status, removed) = app
        .send(
            Method::DELETE,
            &app.admin,
            &format!("/api/dash/projects/{p}/members/{dev_id}"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{removed}");
    let named: Vec<i64> = removed["keys_to_rotate"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_i64().unwrap())
        .collect();
    assert_eq!(named, [issued[0]], "{removed}");
    assert_eq!(removed["members"].as_array().unwrap().len(), 1);

    let (status, rotated) = app
        .post(
            &app.admin,
            &format!("{keys}/{}/rotate", issued[0]),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["created_by"], "admin@localhost");
    assert_eq!(
        reads_events(dev_secret).await,
        401,
        "the removed member's copy of the key no longer works"
    );
}
