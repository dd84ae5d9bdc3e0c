//! The secret-key routes are the dashboard's handlers, and every alerting change is audited:
//! who, what, when and from where.

use super::*;

/// The secret-key routes are the same handlers: a rule made with the key is the dashboard's.
#[tokio::test]
async fn a_rule_made_with_the_secret_key_is_managed_in_the_dashboard() {
    let rig = rig().await;
    let channel_id = rig.make_channel().await;
    let by_key = create_rule_with_the_secret_key(&rig, channel_id).await;
    let path = rig.a(&format!("/rules/{}", by_key["id"]));
    assert_eq!(rig.delete(&rig.team.dev, &path).await, 204);
}

async fn create_rule_with_the_secret_key(rig: &Rig, channel: i64) -> Value {
    let resp = rig
        .app
        .http
        .post(rig.app.url("/api/v1/rules"))
        .bearer_auth(&rig.app.secret_key)
        .json(&rule(channel))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    resp.json().await.unwrap()
}

/// A viewer's refused change, then the developer makes, tests and renames a channel, makes
/// and edits a category, makes and edits a rule, and deletes a rule made with the secret key.
async fn every_alerting_change(rig: &Rig) {
    let Team { viewer, dev, .. } = &rig.team;
    // Refused: a viewer's change.
    let (status, _) = rig
        .app
        .post(viewer, &rig.a("/channels"), rig.channel())
        .await;
    assert_eq!(status, 403);
    let channel_id = rig.make_channel().await;
    let test = rig.a(&format!("/channels/{channel_id}/test"));
    assert_eq!(rig.app.post(dev, &test, json!({})).await.0, 200);
    let rename = json!({"name": "Ops webhook"});
    let channel_path = rig.a(&format!("/channels/{channel_id}"));
    let patched = rig
        .app
        .send(reqwest::Method::PATCH, dev, &channel_path, rename);
    assert_eq!(patched.await.0, 200);
    let (status, cat) = rig
        .app
        .post(dev, &rig.a("/categories"), category(channel_id))
        .await;
    assert_eq!(status, 201);
    let cat_path = rig.a(&format!("/categories/{}", cat["id"]));
    assert_eq!(
        rig.put(dev, &cat_path, category_edit(channel_id)).await.0,
        200
    );
    let rule_id = rig.make_rule(channel_id).await;
    let mut edited = rule(channel_id);
    edited["name"] = json!("Signups");
    let rule_path = rig.a(&format!("/rules/{rule_id}"));
    assert_eq!(rig.put(dev, &rule_path, edited).await.0, 200);
    let by_key = create_rule_with_the_secret_key(rig, channel_id).await;
    let by_key_path = rig.a(&format!("/rules/{}", by_key["id"]));
    assert_eq!(rig.delete(dev, &by_key_path).await, 204);
}

/// Who changed which rule, channel or category, when and from where; refused changes leave no
/// entry; another project's log holds none of it.
#[tokio::test]
async fn alerting_changes_are_audited() {
    let rig = rig().await;
    every_alerting_change(&rig).await;
    let admin = &rig.team.admin;

    let (_, log) = rig.app.get(admin, &rig.a("/audit")).await;
    let entries = log.as_array().unwrap();
    let find = |action: &str, actor: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action && e["actor"].as_str().unwrap().starts_with(actor))
            .unwrap_or_else(|| panic!("{action} by {actor} in {log}"))
    };
    for action in [
        "channel.created",
        "channel.tested",
        "channel.updated",
        "category.created",
        "category.updated",
        "rule.created",
        "rule.updated",
        "rule.deleted",
    ] {
        let e = find(action, "dev@example.com");
        assert_eq!(e["ip"], "127.0.0.1", "{e}");
        assert!(
            e["at"].as_str().unwrap().starts_with("2026-11-22T10:"),
            "{e}"
        );
    }
    assert!(
        find("rule.updated", "dev@")["target"]
            .as_str()
            .unwrap()
            .contains("\"Signups\" (count of signup per minute > 0)")
    );
    assert!(
        find("channel.tested", "dev@")["target"]
            .as_str()
            .unwrap()
            .contains("HTTP 200")
    );
    find("rule.created", "secret key ");
    let refused = entries
        .iter()
        .filter(|e| e["actor"] == "viewer@example.com" && e["action"] != "member.joined")
        .count();
    assert_eq!(refused, 0, "refused changes leave no entry: {log}");
    let (_, b_log) = rig.app.get(admin, &rig.b("/audit")).await;
    assert!(
        b_log
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == "admin@localhost" || e["actor"] == "cli"),
        "A's changes are not in B's log: {b_log}"
    );
}
