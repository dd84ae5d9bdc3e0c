//! Roles and tenancy: viewers read, developers manage keys, only owners make owners, another
//! project does not exist for a project's members, and the audit log records who did what.

use std::sync::Arc;

use pulseline_collector::clock::SystemClock;
use serde_json::{Value, json};

use super::{Dash, Login, Team, spawn, try_exec};
use crate::helpers;

async fn app() -> (Dash, Team) {
    let app = spawn(|_| {}, Arc::new(SystemClock)).await;
    let team = app.team().await;
    (app, team)
}

fn member(email: &str, role: &str) -> Value {
    json!({"email": email, "role": role})
}

fn members_path(project: i64) -> String {
    format!("/api/dash/projects/{project}/members")
}

fn keys_path(project: i64) -> String {
    format!("/api/dash/projects/{project}/keys")
}

/// The developer makes a write key, rotates it and revokes the rotated one: the key made, then
/// the key after rotation.
async fn make_rotate_and_revoke_a_key(app: &Dash, dev: &Login, project: i64) -> (Value, Value) {
    let (status, created) = app
        .post(dev, &keys_path(project), json!({"kind": "write"}))
        .await;
    assert_eq!(status, 200, "{created}");
    let (status, rotated) = app
        .post(
            dev,
            &format!("{}/{}/rotate", keys_path(project), created["id"]),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, revoked) = app
        .post(
            dev,
            &format!("{}/{}/revoke", keys_path(project), rotated["id"]),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(revoked["revoked_at"].is_string());
    (created, rotated)
}

#[tokio::test]
async fn viewers_read_keys_but_cannot_manage_keys_members_or_the_audit_log() {
    let (app, Team { viewer, a, .. }) = app().await;
    let (status, keys) = app.get(&viewer, &keys_path(a)).await;
    assert_eq!(status, 200);
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .all(|k| match k["kind"].as_str() {
                Some("write") => k["key"].as_str().is_some_and(|key| key.starts_with("plw_")),
                _ => k.get("key").is_none(),
            }),
        "write keys (public) shown, secret keys never: {keys}"
    );
    let (status, body) = app
        .post(&viewer, &keys_path(a), json!({"kind": "write"}))
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body["message"].as_str().unwrap().contains("developer"));
    let rotate = format!("{}/{}/rotate", keys_path(a), keys[0]["id"]);
    assert_eq!(app.post(&viewer, &rotate, json!({})).await.0, 403);
    assert_eq!(
        app.post(
            &viewer,
            &members_path(a),
            member("dev@example.com", "viewer")
        )
        .await
        .0,
        403
    );
    assert_eq!(
        app.get(&viewer, &format!("/api/dash/projects/{a}/audit"))
            .await
            .0,
        403
    );
}

/// Keys are shown once; a rotated key stops ingest at once.
#[tokio::test]
async fn developers_manage_keys_but_not_members() {
    let (app, Team { dev, a, .. }) = app().await;
    let (created, _) = make_rotate_and_revoke_a_key(&app, &dev, a).await;
    let new_key = created["key"].as_str().unwrap();
    assert!(new_key.starts_with("plw_"));
    let refused = app
        .http
        .post(app.url("/v1/track"))
        .basic_auth(new_key, Some(""))
        .json(&json!({"type": "track", "userId": "u", "event": "e"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        401,
        "the rotated-away key no longer ingests"
    );
    assert_eq!(
        app.post(
            &dev,
            &members_path(a),
            member("viewer@example.com", "admin")
        )
        .await
        .0,
        403
    );
}

/// Project B and its keys do not exist for A's members (404, not 403), even through A's URL
/// with B's key id.
#[tokio::test]
async fn another_projects_keys_do_not_exist_for_a_projects_members() {
    let (app, team) = app().await;
    let Team {
        admin,
        viewer,
        dev,
        a,
        b,
    } = &team;
    let (_, b_keys) = app.get(admin, &keys_path(*b)).await;
    let b_key = b_keys[0]["id"].as_i64().unwrap();
    for who in [viewer, dev] {
        for p in [
            "",
            "/keys",
            "/overview",
            "/series",
            "/events",
            "/members",
            "/usage",
            "/tail",
        ] {
            let (status, _) = app.get(who, &format!("/api/dash/projects/{b}{p}")).await;
            assert_eq!(status, 404, "{p}");
        }
        let (status, _) = app
            .post(who, &keys_path(*b), json!({"kind": "write"}))
            .await;
        assert_eq!(status, 404);
        let (_, list) = app.get(who, "/api/dash/projects").await;
        assert_eq!(list.as_array().unwrap().len(), 1);
    }
    let (status, _) = app
        .post(dev, &format!("{}/{b_key}/revoke", keys_path(*a)), json!({}))
        .await;
    assert_eq!(
        status, 404,
        "another project's key through this project's URL"
    );
    assert_eq!(
        app.get(admin, &keys_path(*b)).await.1[0]["revoked_at"],
        Value::Null
    );
}

#[tokio::test]
async fn only_owners_make_owners_and_the_last_owner_cannot_be_demoted() {
    let (app, Team { admin, a, .. }) = app().await;
    let path = members_path(a);
    assert_eq!(
        app.post(&admin, &path, member("viewer@example.com", "admin"))
            .await
            .0,
        200
    );
    let promoted = app
        .login("viewer@example.com", "viewer-password")
        .await
        .unwrap();
    assert_eq!(
        app.post(&promoted, &path, member("dev@example.com", "owner"))
            .await
            .0,
        403
    );
    let (status, body) = app
        .post(&admin, &path, member("admin@localhost", "viewer"))
        .await;
    assert_eq!(status, 400, "{body}");
}

/// Who, what, when, from where; admins read it; it cannot be rewritten.
#[tokio::test]
async fn the_audit_log_records_key_and_member_changes_and_cannot_be_rewritten() {
    let (
        app,
        Team {
            admin, dev, a, b, ..
        },
    ) = app().await;
    make_rotate_and_revoke_a_key(&app, &dev, a).await;
    let promote = member("viewer@example.com", "admin");
    assert_eq!(app.post(&admin, &members_path(a), promote).await.0, 200);

    let (status, log) = app
        .get(&admin, &format!("/api/dash/projects/{a}/audit"))
        .await;
    assert_eq!(status, 200);
    let actions: Vec<(&str, &str)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    for expected in [
        ("key.created", "dev@example.com"),
        ("key.rotated", "dev@example.com"),
        ("key.revoked", "dev@example.com"),
        ("member.invited", "admin@localhost"),
        ("member.joined", "viewer@example.com"),
        ("member.role_changed", "admin@localhost"),
    ] {
        assert!(actions.contains(&expected), "{expected:?} in {actions:?}");
    }
    let from_the_web = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] != "cli");
    assert!(from_the_web.clone().count() >= 6);
    assert!(
        from_the_web.clone().all(|e| e["ip"] == "127.0.0.1"),
        "{log}"
    );
    let (_, b_log) = app
        .get(&admin, &format!("/api/dash/projects/{b}/audit"))
        .await;
    assert!(
        b_log
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["action"] != "key.created"),
        "A's key events are not in B's log"
    );
    let n = helpers::query_i64(&app.database_url, "SELECT COUNT(*) FROM audit_log").await;
    for sql in ["UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"] {
        assert!(
            try_exec(&app.database_url, sql).await.is_err(),
            "{sql} must fail"
        );
    }
    assert_eq!(
        helpers::query_i64(&app.database_url, "SELECT COUNT(*) FROM audit_log").await,
        n
    );
}
