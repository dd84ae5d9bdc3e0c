//! The weekly digest (issue 24), on both backends: a seeded fortnight e-mailed to the members
//! who opted in (HTML and plain text, the numbers and arrows checked), posted to the project's
//! Discord or Slack channel with attacker text escaped, previews to the requester only, and
//! the channel checked against the project.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use pulseline_collector::clock::FakeClock;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Dash, Login, spawn};
use crate::helpers::{self, WAIT, standins};

mod mail;
mod schedule;

use mail::{Mail, parse_mail};

const FROM: &str = "Pulseline <digest@pulseline.test>";

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn ms(s: &str) -> i64 {
    at(s).timestamp_millis()
}

/// A collector on `clock` that sends e-mail to `smtp`.
async fn spawn_digest(smtp: &standins::SmtpSink, clock: Arc<FakeClock>) -> Dash {
    let url = smtp.url.clone();
    spawn(
        move |c| {
            c.delivery.smtp_url = Some(url);
            c.delivery.smtp_from = Some(FROM.to_owned());
            c.delivery.poll_ms = 50;
        },
        clock,
    )
    .await
}

fn track(user: &str, event: &str, ts: &str, id: &str) -> Value {
    json!({"type": "track", "userId": user, "event": event, "timestamp": ts, "messageId": id})
}

fn page(visitor: &str, path: &str, ts: &str, id: &str) -> Value {
    json!({"type": "page", "anonymousId": visitor, "timestamp": ts, "messageId": id,
           "context": {"page": {"path": path, "url": format!("https://shop.example{path}")}}})
}

fn lcp(visitor: &str, value: f64, ts: &str, id: &str) -> Value {
    json!({"type": "track", "anonymousId": visitor, "event": "Web Vital", "timestamp": ts,
           "messageId": id, "properties": {"metric": "LCP", "value": value, "path": "/"}})
}

impl Dash {
    async fn subscribe(&self, who: &Login, project: i64, on: bool) {
        let (status, body) = self
            .post(
                who,
                &format!("/api/dash/projects/{project}/digest"),
                json!({ "subscribed": on }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["subscribed"], on);
    }

    async fn channel(&self, kind: &str, url: &str) -> i64 {
        let resp = self
            .http
            .post(self.url("/api/v1/channels"))
            .bearer_auth(&self.secret_key)
            .json(&json!({"name": format!("{kind} digest"), "kind": kind, "url": url}))
            .send()
            .await
            .unwrap();
        let body: Value = resp.json().await.unwrap();
        body["id"].as_i64().unwrap_or_else(|| panic!("{body}"))
    }

    /// Waits for the scheduler's first pass, which records the week before the start (nobody
    /// had opted in yet): opt-ins made after it wait for the next Monday.
    async fn first_pass(&self, project: i64) {
        let deadline = std::time::Instant::now() + WAIT;
        let sql = format!("SELECT COUNT(*) FROM digest_weeks WHERE project_id = {project}");
        while helpers::query_i64(&self.database_url, &sql).await < 1 {
            assert!(std::time::Instant::now() < deadline, "no digest pass ran");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Waits until the database says `n` digest e-mails of the project went out.
    async fn sent_emails(&self, project: i64, n: i64) {
        let deadline = std::time::Instant::now() + WAIT;
        let sql = format!(
            "SELECT COUNT(*) FROM digest_emails WHERE project_id = {project} AND status = 'sent'"
        );
        while helpers::query_i64(&self.database_url, &sql).await < n {
            assert!(std::time::Instant::now() < deadline, "{n} e-mails not sent");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// The fortnight, in Europe/Berlin: the week before (16–22 Nov) and the reported week (23–29
/// Nov). The first events sit on the local Monday-midnight boundary (22:30 and 23:30 UTC on
/// Sunday 22 Nov).
async fn seed_fortnight(dash: &Dash, project: i64) {
    let mut before = vec![
        track("u4", "signup", "2026-11-22T22:30:00Z", "w1-s4"),
        track("u1", "purchase", "2026-11-17T10:00:00Z", "w1-p1"),
        track("u1", "purchase", "2026-11-18T10:00:00Z", "w1-p2"),
        page("v1", "/pricing", "2026-11-17T09:00:00Z", "w1-v1"),
        page("v1", "/pricing", "2026-11-17T09:01:00Z", "w1-v2"),
        page("v1", "/", "2026-11-17T09:02:00Z", "w1-v3"),
        lcp("v1", 4_500.0, "2026-11-17T09:03:00Z", "w1-l1"),
    ];
    for u in 1..=3 {
        before.push(track(
            &format!("u{u}"),
            "signup",
            "2026-11-19T12:00:00Z",
            &format!("w1-s{u}"),
        ));
    }
    let mut week = vec![
        track("u1", "signup", "2026-11-22T23:30:00Z", "w2-s1"),
        track("u1", "purchase", "2026-11-25T10:00:00Z", "w2-p1"),
        track(
            "attacker",
            "<script>x</script>",
            "2026-11-24T10:00:00Z",
            "w2-h1",
        ),
        track("attacker", "<!channel>", "2026-11-24T10:00:00Z", "w2-h2"),
        track(
            "attacker",
            "[x](https://evil)",
            "2026-11-24T10:00:00Z",
            "w2-h3",
        ),
        page("v1", "/pricing", "2026-11-24T09:00:00Z", "w2-v1"),
        page("v2", "/pricing", "2026-11-24T09:00:00Z", "w2-v2"),
        page("v2", "/pricing", "2026-11-24T09:01:00Z", "w2-v3"),
        page("v2", "/docs", "2026-11-24T09:02:00Z", "w2-v4"),
        lcp("v2", 2_000.0, "2026-11-24T09:03:00Z", "w2-l1"),
        // A crawler's event: never in the digest's numbers.
        json!({"type": "track", "userId": "crawler", "event": "signup",
               "timestamp": "2026-11-24T10:00:00Z", "messageId": "w2-bot",
               "context": {"bot": true}}),
    ];
    for u in 2..=6 {
        week.push(track(
            &format!("u{u}"),
            "signup",
            "2026-11-24T12:00:00Z",
            &format!("w2-s{u}"),
        ));
    }
    dash.ingest(before).await;
    dash.ingest(week).await;
    // Alert history: one alert fired the week before; two fired and one resolved this week.
    let alert = |started: &str, resolved: Option<&str>| {
        format!(
            "INSERT INTO alert_history (project_id, rule_id, rule_name, reason, bucket_start, \
             started_at, resolved_at, value, expected, explanation) VALUES ({project}, 1, 'r', \
             'threshold', {s}, {s}, {r}, 1.0, 0.0, 'x')",
            s = ms(started),
            r = resolved.map_or("NULL".to_owned(), |r| ms(r).to_string()),
        )
    };
    for sql in [
        alert("2026-11-18T10:00:00Z", None),
        alert("2026-11-24T10:00:00Z", Some("2026-11-24T11:00:00Z")),
        alert("2026-11-25T08:00:00Z", None),
    ] {
        helpers::exec_sql(&dash.database_url, &sql).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_who_opted_in_get_the_weeks_numbers_and_the_channel_its_embed() {
    let smtp = standins::SmtpSink::start().await;
    let discord = standins::discord().await;
    let clock = Arc::new(FakeClock::new(at("2026-11-25T12:00:00Z")));
    let dash = spawn_digest(&smtp, Arc::clone(&clock)).await;
    let team = dash.team().await;
    let a = team.a;
    let (status, body) = dash
        .post(
            &team.admin,
            &format!("/api/dash/projects/{a}/settings"),
            json!({"timezone": "Europe/Berlin"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    helpers::exec_sql(
        &dash.database_url,
        &format!("UPDATE projects SET plan = 'free' WHERE id = {a}"),
    )
    .await;
    seed_fortnight(&dash, a).await;
    dash.first_pass(a).await;
    dash.subscribe(&team.admin, a, true).await;
    dash.subscribe(&team.dev, a, true).await;
    let (_, viewer) = dash
        .get(&team.viewer, &format!("/api/dash/projects/{a}/digest"))
        .await;
    assert_eq!(viewer["subscribed"], false, "{viewer}");
    let channel = dash.channel("discord", &discord.url).await;
    let (status, body) = dash
        .post(
            &team.dev,
            &format!("/api/dash/projects/{a}/digest/channel"),
            json!({ "channel_id": channel }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["channel_id"], channel);

    // Monday 30 Nov, 02:00 in Berlin: the week of 23 Nov is due.
    clock.set(at("2026-11-30T01:00:00Z"));
    let mails: Vec<Mail> = smtp
        .wait_for(2, WAIT)
        .await
        .iter()
        .map(|m| parse_mail(m))
        .collect();
    dash.sent_emails(a, 2).await;
    let mut to: Vec<&str> = mails.iter().map(|m| m.to.as_str()).collect();
    to.sort();
    assert_eq!(to, [dash.admin_email.as_str(), "dev@example.com"]);
    assert_eq!(
        smtp.messages.lock().unwrap().len(),
        2,
        "the viewer did not opt in"
    );

    let used = helpers::query_i64(
        &dash.database_url,
        &format!("SELECT events FROM usage_monthly WHERE project_id = {a} AND month = '2026-11'"),
    )
    .await;
    let quota = format!(
        "{used} of 1,000,000 events in 2026-11 ({:.1}%)",
        used as f64 / 10_000.0
    );
    let mail = &mails[0];
    assert_eq!(
        mail.subject,
        "Weekly digest: Default project · Mon 23 Nov 2026 – Sun 29 Nov 2026"
    );
    for line in [
        "Mon 23 Nov 2026 – Sun 29 Nov 2026 (Europe/Berlin), against the week before.",
        "Events\n  15 ↑ 50% (last week 10)\n",
        "Active users\n  9 ↑ 80% (last week 5)\n",
        "Top events\n  signup: 6 ↑ 50%\n  <!channel>: 1 ↑ new\n  <script>x</script>: 1 ↑ new\n  \
         [x](https://evil): 1 ↑ new\n  purchase: 1 ↓ 50%\n",
        "Top pages\n  /pricing: 3 ↑ 50%\n  /docs: 1 ↑ new\n",
        "Web Vitals\n  LCP p75 2,000 ms (good), last week 4,500 ms ↓ 56%, poor → good\n",
        "Alerts\n  fired: 2 ↑ 100% (last week 1)\n  resolved: 1 ↑ new (last week 0)\n",
        &format!("Quota\n  {quota}\n"),
    ] {
        assert!(mail.text.contains(line), "{line:?} not in\n{}", mail.text);
    }
    for fragment in [
        "<li>15 ↑ 50% (last week 10)</li>",
        "<li>9 ↑ 80% (last week 5)</li>",
        "<li>&lt;script&gt;x&lt;/script&gt;: 1 ↑ new</li>",
        "<li>&lt;!channel&gt;: 1 ↑ new</li>",
        "<li>/pricing: 3 ↑ 50%</li>",
        "<li>LCP p75 2,000 ms (good), last week 4,500 ms ↓ 56%, poor → good</li>",
        "<li>fired: 2 ↑ 100% (last week 1)</li>",
        &format!("<li>{quota}</li>"),
    ] {
        assert!(
            mail.html.contains(fragment),
            "{fragment:?} not in\n{}",
            mail.html
        );
    }
    assert!(!mail.html.contains("<script>"), "{}", mail.html);

    let embeds = discord.receiver.wait_for_embeds(1, WAIT).await;
    assert!(discord.receiver.rejected().is_empty());
    let embed = &embeds[0];
    assert_eq!(embed["title"], "📊 Weekly digest: Default project");
    let field = |name: &str| {
        embed["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {embed}"))["value"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(field("Events"), "15 ↑ 50% (last week 10)");
    assert!(
        field("Top events").contains("\\[x](https://evil): 1 ↑ new"),
        "{embed}"
    );
    assert_eq!(
        discord.receiver.accepted()[0]["allowed_mentions"],
        json!({"parse": []})
    );
    // One week, recorded once: the empty one the first pass saw, and this one.
    let weeks = helpers::query_i64(
        &dash.database_url,
        &format!("SELECT COUNT(*) FROM digest_weeks WHERE project_id = {a}"),
    )
    .await;
    assert_eq!(weeks, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacker_event_names_reach_slack_and_html_as_text() {
    let smtp = standins::SmtpSink::start().await;
    let slack = standins::slack().await;
    let clock = Arc::new(FakeClock::new(at("2026-11-25T12:00:00Z")));
    let dash = spawn_digest(&smtp, Arc::clone(&clock)).await;
    let admin = dash.admin().await;
    let a = dash.project;
    dash.ingest(vec![
        track(
            "x",
            "<!channel> <https://evil|Payment failed>",
            "2026-11-24T10:00:00Z",
            "h1",
        ),
        track(
            "x",
            "<script>alert(1)</script>",
            "2026-11-24T10:00:00Z",
            "h2",
        ),
    ])
    .await;
    dash.first_pass(a).await;
    dash.subscribe(&admin, a, true).await;
    let channel = dash.channel("slack", &slack.url).await;
    let (status, body) = dash
        .post(
            &admin,
            &format!("/api/dash/projects/{a}/digest/channel"),
            json!({ "channel_id": channel }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    clock.set(at("2026-11-30T00:30:00Z"));

    let message = slack.receiver.wait_for(1, WAIT).await.remove(0);
    assert!(
        slack.receiver.rejected().is_empty(),
        "within Slack's limits"
    );
    let raw = message.to_string();
    assert!(!raw.contains("<!channel>"), "{raw}");
    assert!(!raw.contains("<https://evil"), "{raw}");
    assert!(
        raw.contains("&lt;!channel&gt; &lt;https://evil|Payment failed&gt;: 1 ↑ new"),
        "{raw}"
    );
    let mail = parse_mail(&smtp.wait_for(1, WAIT).await[0]);
    assert!(!mail.html.contains("<script>alert"), "{}", mail.html);
    assert!(
        mail.html
            .contains("&lt;script&gt;alert(1)&lt;/script&gt;: 1 ↑ new"),
        "{}",
        mail.html
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_goes_to_the_requester_only_and_the_week_still_goes_out() {
    let smtp = standins::SmtpSink::start().await;
    let clock = Arc::new(FakeClock::new(at("2026-11-25T12:00:00Z")));
    let dash = spawn_digest(&smtp, Arc::clone(&clock)).await;
    let team = dash.team().await;
    let a = team.a;
    dash.ingest(vec![track("u1", "signup", "2026-11-18T10:00:00Z", "p1")])
        .await;
    dash.first_pass(a).await;
    dash.subscribe(&team.admin, a, true).await;

    let preview = format!("/api/dash/projects/{a}/digest/preview");
    let (status, body) = dash.post(&team.viewer, &preview, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sent_to"], "viewer@example.com");
    assert_eq!(body["week_start"], ms("2026-11-16T00:00:00Z"));
    let mail = parse_mail(&smtp.wait_for(1, WAIT).await[0]);
    assert_eq!(mail.to, "viewer@example.com");
    assert!(
        mail.subject
            .starts_with("[Preview] Weekly digest: Default project · Mon 16 Nov 2026"),
        "{}",
        mail.subject
    );
    assert!(mail.text.contains("signup: 1 ↑ new"), "{}", mail.text);

    // DIGEST_PREVIEWS_PER_HOUR: three an hour, then 429 with Retry-After.
    for _ in 0..2 {
        let (status, body) = dash.post(&team.viewer, &preview, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = dash.post(&team.viewer, &preview, json!({})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("DIGEST_PREVIEWS_PER_HOUR"),
        "{body}"
    );
    // Another member has their own allowance.
    let (status, body) = dash.post(&team.dev, &preview, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sent_to"], "dev@example.com");
    let all = smtp.wait_for(4, WAIT).await;
    let to: Vec<String> = all.iter().map(|m| parse_mail(m).to).collect();
    assert_eq!(
        to,
        [
            "viewer@example.com",
            "viewer@example.com",
            "viewer@example.com",
            "dev@example.com"
        ]
    );

    // Previews recorded nothing: the week of 23 Nov still goes to the member who opted in.
    clock.set(at("2026-11-30T00:30:00Z"));
    let mail = parse_mail(&smtp.wait_for(5, WAIT).await[4]);
    assert_eq!(mail.to, dash.admin_email);
    assert!(
        mail.subject.starts_with("Weekly digest: "),
        "{}",
        mail.subject
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_digest_channel_must_be_a_discord_or_slack_channel_of_the_project() {
    let smtp = standins::SmtpSink::start().await;
    let clock = Arc::new(FakeClock::new(at("2026-11-25T12:00:00Z")));
    let dash = spawn_digest(&smtp, clock).await;
    let team = dash.team().await;
    let (a, b) = (team.a, team.b);
    let hook = standins::webhook().await;
    let webhook = dash.channel("webhook", &hook.url).await;
    // A Discord channel of project B, made by its owner in the dashboard.
    let discord = standins::discord().await;
    let (status, other) = dash
        .post(
            &team.admin,
            &format!("/api/dash/projects/{b}/channels"),
            json!({"name": "b", "kind": "discord", "url": discord.url}),
        )
        .await;
    assert!(status.is_success(), "{other}");
    let other = other["id"].as_i64().unwrap();
    let path = format!("/api/dash/projects/{a}/digest/channel");
    for id in [webhook, other, 999_999] {
        let (status, body) = dash
            .post(&team.dev, &path, json!({ "channel_id": id }))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let error = body["message"].as_str().unwrap();
        assert!(
            error.contains(&format!(
                "channel_id {id} is not a Discord or Slack channel"
            )),
            "{body}"
        );
    }
    let (status, _) = dash
        .post(&team.viewer, &path, json!({ "channel_id": null }))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The viewer sees no channels to pick; a developer sees none of project B's.
    let (_, seen) = dash
        .get(&team.viewer, &format!("/api/dash/projects/{a}/digest"))
        .await;
    assert_eq!(seen["channels"], json!([]));
    let (_, seen) = dash
        .get(&team.dev, &format!("/api/dash/projects/{a}/digest"))
        .await;
    assert_eq!(
        seen["channels"],
        json!([]),
        "webhook channels cannot take the digest"
    );
    // Project B is not the developer's: 404, as for any project they are not in.
    let (status, _) = dash
        .post(
            &team.dev,
            &format!("/api/dash/projects/{b}/digest"),
            json!({"subscribed": true}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// DIGEST_MAX_VITAL_SAMPLES: a week with more Web Vital samples than the digest reads gets a
/// p75 of the first ones, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_week_with_more_vitals_than_the_digest_reads_says_it_sampled() {
    let smtp = standins::SmtpSink::start().await;
    let clock = Arc::new(FakeClock::new(at("2026-11-25T12:00:00Z")));
    let dash = spawn_digest(&smtp, clock).await;
    let admin = dash.admin().await;
    let start = ms("2026-11-17T00:00:00Z");
    let samples: Vec<Value> = (0
        ..=pulseline_collector::reports::digest::content::DIGEST_MAX_VITAL_SAMPLES)
        .map(|i| {
            let ts = DateTime::from_timestamp_millis(start + i * 1_000).unwrap();
            lcp("v", 1_000.0, &ts.to_rfc3339(), &format!("l{i}"))
        })
        .collect();
    for chunk in samples.chunks(2_000) {
        dash.ingest(chunk.to_vec()).await;
    }
    let (status, body) = dash
        .post(
            &admin,
            &format!("/api/dash/projects/{}/digest/preview", dash.project),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mail = parse_mail(&smtp.wait_for(1, WAIT).await[0]);
    assert!(
        mail.text
            .contains("LCP p75 1,000 ms (good) (from a sample of the week)"),
        "{}",
        mail.text
    );
}
