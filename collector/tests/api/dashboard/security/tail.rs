//! The live tail ends with the session or the membership.

use super::*;

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
