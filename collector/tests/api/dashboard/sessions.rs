//! Logging in and out: one answer for every wrong login, the session cookie's flags, CSRF,
//! password changes, expiry and the login rate limit.

use std::sync::Arc;

use chrono::{Duration, Utc};

use pulseline_collector::clock::{FakeClock, SystemClock};
use serde_json::json;

use super::{Dash, Login, spawn};

async fn app() -> Dash {
    spawn(|_| {}, Arc::new(SystemClock)).await
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_answer() {
    let app = app().await;
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
}

/// HttpOnly, SameSite=Lax, not Secure over plain HTTP; Secure behind TLS.
#[tokio::test]
async fn the_session_cookie_is_http_only_and_not_secure_over_plain_http() {
    let app = app().await;
    let login = json!({"email": app.admin_email, "password": app.admin_password});
    let resp = app
        .http
        .post(app.url("/api/dash/session"))
        .json(&login)
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
    // dashboard::security).
    let resp = app
        .http
        .post(app.url("/api/dash/session"))
        .header("x-forwarded-proto", "https")
        .json(&login)
        .send()
        .await
        .unwrap();
    assert!(
        !resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Secure")
    );
}

#[tokio::test]
async fn the_first_admin_logs_in_and_owns_the_default_project() {
    let app = app().await;
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
    let (_, projects) = app.get(&me, "/api/dash/projects").await;
    assert_eq!(projects[0]["id"], app.project);
    assert_eq!(projects[0]["role"], "owner");
}

#[tokio::test]
async fn a_change_without_the_csrf_token_or_from_another_site_is_refused() {
    let app = app().await;
    let me = app.admin().await;
    let new_project = json!({"name": "x"});
    let no_token = app
        .post_without_csrf(&me, "/api/dash/projects", &new_project)
        .await;
    assert_eq!(no_token.status(), 403);
    let forged = Login {
        cookie: me.cookie.clone(),
        csrf: "guess".into(),
    };
    assert_eq!(
        app.post(&forged, "/api/dash/projects", new_project.clone())
            .await
            .0,
        403
    );
    let cross_site = app
        .post_cross_site(
            &me,
            "/api/dash/projects",
            "https://evil.example",
            &new_project,
        )
        .await;
    assert_eq!(cross_site.status(), 403);
    let (status, _) = app.get(&me, "/api/dash/projects").await;
    assert_eq!(status, 200);
    let (_, projects) = app.get(&me, "/api/dash/projects").await;
    assert_eq!(
        projects.as_array().unwrap().len(),
        1,
        "no refused request created anything"
    );
}

#[tokio::test]
async fn a_password_change_retires_the_old_password_and_the_other_sessions() {
    let app = app().await;
    let me = app.admin().await;
    let other = app.admin().await;
    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    let (status, body) = app
        .post(&me, "/api/dash/password", change("nope", "a-new-password"))
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = app
        .post(
            &me,
            "/api/dash/password",
            change(&app.admin_password, "short"),
        )
        .await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("at least 10"));
    let (status, _) = app
        .post(
            &me,
            "/api/dash/password",
            change(&app.admin_password, "a-new-password"),
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
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let app = app().await;
    let me = app.admin().await;
    let (status, _) = app
        .send(reqwest::Method::DELETE, &me, "/api/dash/session", json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        app.get(&me, "/api/dash/session").await.0,
        401,
        "the same cookie no longer works"
    );
}

#[tokio::test]
async fn expired_sessions_are_refused() {
    let clock = Arc::new(FakeClock::new(Utc::now()));
    let app = spawn(|c| c.dashboard.session_ttl_hours = 2, clock.clone()).await;
    let me = app.admin().await;
    clock.advance(Duration::minutes(119));
    assert_eq!(app.get(&me, "/api/dash/session").await.0, 200);
    clock.advance(Duration::minutes(2));
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
