//! Audit logs scoped to their project, projects made with the CLI owned by the admin at once,
//! and a removed member's secret keys named for rotation.

use super::*;

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

#[tokio::test]
async fn a_project_made_with_the_cli_is_the_admins_at_once() {
    let app = spawn(Arc::new(SystemClock)).await;
    let out = Command::new(env!("CARGO_BIN_EXE_pulseline-collector"))
        .args(["project", "create", "--name", "From the CLI", "--json"])
        .env("PULSELINE_DATABASE_URL", &app.database_url)
        .env("PULSELINE_LOG", "warn")
        .output()
        .await
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
