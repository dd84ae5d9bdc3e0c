//! Every dashboard request has a bounded cost: password checks and live tails are counted,
//! and what a logged-in user can make (projects, keys, members) has a named limit.

use super::*;
use crate::helpers::exec_sql;
use pulseline_collector::routes::dashboard::account::MAX_SESSIONS_PER_USER;
use pulseline_collector::routes::dashboard::invitations::MAX_MEMBERS_PER_PROJECT;
use pulseline_collector::routes::dashboard::projects::{
    MAX_ACTIVE_KEYS_PER_PROJECT, MAX_OWNED_PROJECTS_PER_USER, MAX_REVOKED_KEYS_LISTED,
};

#[tokio::test]
async fn password_checks_beyond_the_bound_get_503_with_retry_after() {
    let app = spawn_with(Arc::new(SystemClock), |c| {
        c.dashboard.password_checks = 1;
        c.dashboard.password_check_wait_ms = 0;
    })
    .await;
    let (_, me) = app.get(&app.admin, "/api/dash/session").await;
    let email = me["email"].as_str().unwrap().to_owned();
    // The admin's password is unknown here: a wrong one costs the same argon2 check.
    let attempts = (0..16).map(|_| {
        app.http
            .post(app.url("/api/dash/session"))
            .json(&json!({"email": email, "password": "not-the-password"}))
            .send()
    });
    let answers = tokio::time::timeout(
        Duration::from_secs(120),
        futures::future::join_all(attempts),
    )
    .await
    .expect("no login hangs");
    let mut refused = 0;
    for answer in answers {
        let resp = answer.unwrap();
        match resp.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                refused += 1;
                assert_eq!(resp.headers()["retry-after"], "1");
                let body: Value = resp.json().await.unwrap();
                assert!(
                    body["message"]
                        .as_str()
                        .unwrap()
                        .contains("PULSELINE_PASSWORD_CHECKS = 1"),
                    "{body}"
                );
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        refused > 0,
        "16 logins at once, one check at a time: some wait"
    );
    assert!(refused < 16, "the first check runs");
    // The slot is free again once the checks are done.
    let resp = app
        .http
        .post(app.url("/api/dash/session"))
        .json(&json!({"email": email, "password": "not-the-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn live_tails_are_limited_per_login_and_in_all() {
    let app = spawn_with(Arc::new(SystemClock), |c| {
        c.dashboard.tails_per_session = 2;
        c.dashboard.max_tails = 3;
    })
    .await;
    let p = app.project;
    app.make_user("second@example.com").await;
    let second = app
        .add_member(&app.admin, p, "second@example.com", "viewer")
        .await;
    let tail = |who: &Login| {
        app.http
            .get(app.url(&format!("/api/dash/projects/{p}/tail")))
            .header("cookie", who.cookie.clone())
            .send()
    };
    let a1 = tail(&app.admin).await.unwrap();
    let a2 = tail(&app.admin).await.unwrap();
    assert_eq!((a1.status(), a2.status()), (StatusCode::OK, StatusCode::OK));
    let a3 = tail(&app.admin).await.unwrap();
    assert_eq!(a3.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(a3.headers().contains_key("retry-after"));
    let body: Value = a3.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("PULSELINE_TAILS_PER_SESSION = 2"),
        "{body}"
    );
    // Another login has its own allowance, within the server's.
    let b1 = tail(&second).await.unwrap();
    assert_eq!(b1.status(), StatusCode::OK);
    let b2 = tail(&second).await.unwrap();
    assert_eq!(b2.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = b2.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("PULSELINE_MAX_TAILS"),
        "{body}"
    );
    // Closing a tail frees its slot (the server notices at its next poll).
    drop(a1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let resp = tail(&second).await.unwrap();
        if resp.status() == StatusCode::OK {
            break;
        }
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(
            tokio::time::Instant::now() < deadline,
            "a closed tail's slot was not freed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop((a2, b1));
}

fn set_cookie(resp: &reqwest::Response) -> String {
    resp.headers()["set-cookie"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn x_forwarded_proto_counts_only_from_a_trusted_proxy() {
    let login = |app: &Dash, email: String| {
        app.http
            .post(app.url("/api/dash/session"))
            .header("x-forwarded-proto", "https")
            .json(&json!({"email": email, "password": password(&email)}))
            .send()
    };
    // The client itself says https: not believed, the cookie is not Secure.
    let direct = spawn(Arc::new(SystemClock)).await;
    direct.make_user("direct@example.com").await;
    let resp = login(&direct, "direct@example.com".into()).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        !set_cookie(&resp).contains("Secure"),
        "{}",
        set_cookie(&resp)
    );
    // The same request from a trusted proxy (the test runs on loopback).
    let proxied = spawn_with(Arc::new(SystemClock), |c| {
        c.proxy.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await;
    proxied.make_user("proxied@example.com").await;
    let resp = login(&proxied, "proxied@example.com".into()).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        set_cookie(&resp).contains("; Secure"),
        "{}",
        set_cookie(&resp)
    );
}

#[tokio::test]
async fn maintenance_removes_expired_sessions() {
    let start = Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap();
    let clock = Arc::new(FakeClock::new(start));
    let app = spawn(clock.clone()).await;
    let sessions = || helpers::query_i64(&app.database_url, "SELECT COUNT(*) FROM sessions");
    assert_eq!(sessions().await, 1);
    let store = pulseline_collector::store::Store::open(&app.database_url, Default::default())
        .await
        .unwrap();
    // Still valid: kept.
    clock.advance(chrono::Duration::hours(167));
    pulseline_collector::maintenance::run_once(&store, clock.now())
        .await
        .unwrap();
    assert_eq!(sessions().await, 1);
    // Past PULSELINE_SESSION_TTL_HOURS (168): refused, and the row is gone.
    clock.advance(chrono::Duration::hours(2));
    let (status, _) = app.get(&app.admin, "/api/dash/session").await;
    assert_eq!(status, 401);
    pulseline_collector::maintenance::run_once(&store, clock.now())
        .await
        .unwrap();
    assert_eq!(sessions().await, 0);
    store.close().await;
}

#[tokio::test]
async fn a_project_holds_a_bounded_number_of_active_keys_and_lists_few_revoked() {
    let app = spawn(Arc::new(SystemClock)).await;
    let p = app.project;
    let keys = format!("/api/dash/projects/{p}/keys");
    // The first start issued a write and a secret key.
    for _ in 2..MAX_ACTIVE_KEYS_PER_PROJECT {
        let (status, body) = app.post(&app.admin, &keys, json!({"kind": "write"})).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = app.post(&app.admin, &keys, json!({"kind": "write"})).await;
    assert_eq!(status, 400, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("MAX_ACTIVE_KEYS_PER_PROJECT") && message.contains("revoke"),
        "{body}"
    );
    // Rotation keeps the count, so it always works; each rotation revokes a key.
    let (_, list) = app.get(&app.admin, &keys).await;
    let mut id = list[MAX_ACTIVE_KEYS_PER_PROJECT - 1]["id"].clone();
    for _ in 0..=MAX_REVOKED_KEYS_LISTED {
        let (status, rotated) = app
            .post(&app.admin, &format!("{keys}/{id}/rotate"), json!({}))
            .await;
        assert_eq!(status, 200, "{rotated}");
        id = rotated["id"].clone();
    }
    let (status, list) = app.get(&app.admin, &keys).await;
    assert_eq!(status, 200);
    let list = list.as_array().unwrap();
    assert_eq!(
        list.len(),
        MAX_ACTIVE_KEYS_PER_PROJECT + MAX_REVOKED_KEYS_LISTED
    );
    assert!(
        list[..MAX_ACTIVE_KEYS_PER_PROJECT]
            .iter()
            .all(|k| k["revoked_at"].is_null())
    );
    // Revoking one makes room for a new key.
    let (status, body) = app
        .post(&app.admin, &format!("{keys}/{id}/revoke"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.post(&app.admin, &keys, json!({"kind": "secret"})).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn members_and_pending_invitations_are_bounded_per_project() {
    let app = spawn(Arc::new(SystemClock)).await;
    let p = app.project;
    // Fill the project up to one below the limit with members made directly in the database
    // (creating that many accounts through argon2 would only slow the test).
    let (_, members) = app
        .get(&app.admin, &format!("/api/dash/projects/{p}/members"))
        .await;
    let fillers = MAX_MEMBERS_PER_PROJECT - members.as_array().unwrap().len() - 1;
    let users: Vec<String> = (0..fillers)
        .map(|i| format!("('filler{i}@example.com', 'x', 0)"))
        .collect();
    exec_sql(
        &app.database_url,
        &format!(
            "INSERT INTO users (email, password_hash, created_at) VALUES {}",
            users.join(", ")
        ),
    )
    .await;
    exec_sql(
        &app.database_url,
        &format!(
            "INSERT INTO memberships (project_id, user_id, role, created_at) \
         SELECT {p}, id, 'viewer', 0 FROM users WHERE email LIKE 'filler%'"
        ),
    )
    .await;
    let (status, body) = app
        .invite(&app.admin, p, "last@example.com", "viewer")
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .invite(&app.admin, p, "over@example.com", "viewer")
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("MAX_MEMBERS_PER_PROJECT"),
        "{body}"
    );
    // Renewing a pending invitation is not a new member.
    let (status, body) = app
        .invite(&app.admin, p, "last@example.com", "developer")
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, members) = app
        .get(&app.admin, &format!("/api/dash/projects/{p}/members"))
        .await;
    assert_eq!(
        members.as_array().unwrap().len(),
        MAX_MEMBERS_PER_PROJECT - 1
    );
}

#[tokio::test]
async fn a_user_owns_a_bounded_number_of_projects() {
    let app = spawn(Arc::new(SystemClock)).await;
    let user = app.user("maker@example.com").await;
    for i in 0..MAX_OWNED_PROJECTS_PER_USER {
        app.new_project(&user, &format!("p{i}")).await;
    }
    let (status, body) = app
        .post(&user, "/api/dash/projects", json!({"name": "one more"}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("MAX_OWNED_PROJECTS_PER_USER"),
        "{body}"
    );
    assert_eq!(
        app.project_ids(&user).await.len(),
        MAX_OWNED_PROJECTS_PER_USER
    );
}

#[tokio::test]
async fn a_user_keeps_a_bounded_number_of_sessions_the_oldest_ends() {
    let app = spawn(Arc::new(SystemClock)).await;
    let email = "roamer@example.com";
    let first = app.user(email).await;
    let mut latest = first.clone();
    for _ in 0..MAX_SESSIONS_PER_USER {
        latest = app.login(email, &password(email)).await;
    }
    let (status, body) = app.get(&first, "/api/dash/session").await;
    assert_eq!(status, 401, "the oldest session ended: {body}");
    let (status, body) = app.get(&latest, "/api/dash/session").await;
    assert_eq!(status, 200, "{body}");
    let kept = helpers::query_i64(
        &app.database_url,
        &format!(
            "SELECT COUNT(*) FROM sessions WHERE user_id = {}",
            body["user_id"]
        ),
    )
    .await;
    assert_eq!(kept, MAX_SESSIONS_PER_USER);
}
