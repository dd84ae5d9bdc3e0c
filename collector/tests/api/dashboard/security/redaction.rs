//! What viewers see of secrets: webhook URLs without their tokens, inbound sources listed
//! but made by developers.

use super::*;

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
