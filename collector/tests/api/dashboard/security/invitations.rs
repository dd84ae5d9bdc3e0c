//! Members join only by accepting an invitation, and invitations reveal no accounts.

use super::*;

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

/// A user who owns project "Shop": the inviter of these stories.
async fn shop(app: &Dash) -> (Login, i64) {
    let owner = app.user("owner@example.com").await;
    let p = app.new_project(&owner, "Shop").await;
    (owner, p)
}

fn members_path(p: i64) -> String {
    format!("/api/dash/projects/{p}/members")
}

async fn login(app: &Dash, email: &str) -> Login {
    app.login(email, &password(email)).await
}

async fn answer(app: &Dash, who: &Login, invitation: &Value, answer: &str) -> (StatusCode, Value) {
    let path = format!("/api/dash/invitations/{}/{answer}", invitation["id"]);
    app.post(who, &path, json!({})).await
}

/// An address with an account and one without get the same answers, and nobody becomes a
/// member without consent.
#[tokio::test]
async fn an_invitation_reveals_no_account_and_makes_nobody_a_member() {
    let app = spawn(Arc::new(SystemClock)).await;
    let (owner, p) = shop(&app).await;
    app.make_user("bob@example.com").await;
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
    let members = members_path(p);
    let as_admin = |email: &str| json!({"email": email, "role": "admin"});
    let (s1, m1) = app
        .post(&owner, &members, as_admin("bob@example.com"))
        .await;
    let (s2, m2) = app
        .post(&owner, &members, as_admin("ghost@example.com"))
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

    // The owner sees both invitations pending.
    let (_, list) = app.get(&owner, &members).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let (status, pending) = app
        .get(&owner, &format!("/api/dash/projects/{p}/invitations"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(pending.as_array().unwrap().len(), 2, "{pending}");
}

/// The invitee sees the invitation; nobody else can answer it; it is answered once.
#[tokio::test]
async fn only_the_invitee_answers_an_invitation_and_only_once() {
    let app = spawn(Arc::new(SystemClock)).await;
    let (owner, p) = shop(&app).await;
    app.make_user("bob@example.com").await;
    let (_, invitation) = app.invite(&owner, p, "bob@example.com", "developer").await;
    let bob = login(&app, "bob@example.com").await;
    assert!(!app.project_ids(&bob).await.contains(&p));
    let (_, mine) = app.get(&bob, "/api/dash/invitations").await;
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine[0]["project_name"], "Shop");
    assert_eq!(mine[0]["invited_by"], "owner@example.com");
    let carol = app.user("carol@example.com").await;
    for reply in ["accept", "decline"] {
        let (status, _) = answer(&app, &carol, &invitation, reply).await;
        assert_eq!(status, 404, "{reply} someone else's invitation");
    }
    let (status, joined) = answer(&app, &bob, &invitation, "accept").await;
    assert_eq!(status, 200, "{joined}");
    assert_eq!(
        (joined["id"].as_i64(), joined["role"].as_str()),
        (Some(p), Some("developer"))
    );
    assert!(app.project_ids(&bob).await.contains(&p));
    let (status, _) = answer(&app, &bob, &invitation, "accept").await;
    assert_eq!(status, 404, "answered once");

    // Below admin, members neither see nor send invitations.
    let (status, _) = app
        .get(&bob, &format!("/api/dash/projects/{p}/invitations"))
        .await;
    assert_eq!(status, 403);
    let (status, body) = app.invite(&bob, p, "someone@example.com", "viewer").await;
    assert_eq!(status, 403, "{body}");
}

#[tokio::test]
async fn an_address_without_an_account_joins_once_the_account_exists() {
    let app = spawn(Arc::new(SystemClock)).await;
    let (owner, p) = shop(&app).await;
    let (status, _) = app.invite(&owner, p, "ghost@example.com", "viewer").await;
    assert_eq!(status, 200);
    app.make_user("ghost@example.com").await;
    app.add_member(&owner, p, "ghost@example.com", "viewer")
        .await;
    let (_, list) = app.get(&owner, &members_path(p)).await;
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
}

#[tokio::test]
async fn declining_and_cancelling_leave_no_membership() {
    let app = spawn(Arc::new(SystemClock)).await;
    let (owner, p) = shop(&app).await;
    let carol = app.user("carol@example.com").await;
    let (_, inv) = app.invite(&owner, p, "carol@example.com", "viewer").await;
    let (status, _) = answer(&app, &carol, &inv, "decline").await;
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
    let dave = login(&app, "dave@example.com").await;
    let (_, mine) = app.get(&dave, "/api/dash/invitations").await;
    assert_eq!(mine, json!([]));
    assert!(!app.project_ids(&carol).await.contains(&p));
    assert!(!app.project_ids(&dave).await.contains(&p));
}

/// Members are not invited; admins do not invite owners; ids are the project's.
#[tokio::test]
async fn invitations_follow_the_membership_rules() {
    let app = spawn(Arc::new(SystemClock)).await;
    let (owner, p) = shop(&app).await;
    app.make_user("bob@example.com").await;
    let bob = app
        .add_member(&owner, p, "bob@example.com", "developer")
        .await;
    let (status, body) = app.invite(&owner, p, "bob@example.com", "viewer").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("already a member")
    );
    let promote = json!({"email": "bob@example.com", "role": "admin"});
    let (status, _) = app.post(&owner, &members_path(p), promote).await;
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
}

/// After INVITATION_TTL_DAYS an invitation can no longer be accepted, and maintenance
/// removes it.
#[tokio::test]
async fn an_invitation_expires_and_maintenance_removes_it() {
    let clock = Arc::new(FakeClock::new(
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap(),
    ));
    let app = spawn(clock.clone()).await;
    let (owner, p) = shop(&app).await;
    app.make_user("frank@example.com").await;
    let (_, inv) = app.invite(&owner, p, "frank@example.com", "viewer").await;
    let expires: chrono::DateTime<Utc> = inv["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        expires - clock.now(),
        chrono::Duration::days(INVITATION_TTL_DAYS)
    );
    clock.advance(chrono::Duration::days(INVITATION_TTL_DAYS) + chrono::Duration::seconds(1));
    let frank = login(&app, "frank@example.com").await;
    let (_, mine) = app.get(&frank, "/api/dash/invitations").await;
    assert_eq!(mine, json!([]));
    let (status, _) = answer(&app, &frank, &inv, "accept").await;
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
}

/// At most MAX_PENDING_INVITATIONS pending per project; renewing one still works.
#[tokio::test]
async fn pending_invitations_are_bounded_per_project_and_renewable() {
    let app = spawn(Arc::new(SystemClock)).await;
    let (owner, p) = shop(&app).await;
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
