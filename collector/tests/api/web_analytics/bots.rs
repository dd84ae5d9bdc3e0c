//! Bots out of every analytics answer: funnels, retention, sessions, Web Vitals and explore
//! (series and the events table) equal the same traffic without the bots, and with
//! `include_bots=true` the same traffic with the bots counted as people.

use super::*;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// One message of the traffic: who (a bot or not), when, what.
struct Sent {
    bot: bool,
    user: &'static str,
    at: i64,
    event: &'static str,
    properties: Value,
}

/// Two people and two crawlers over three days, each doing what would change every answer.
fn traffic(day0: i64) -> Vec<Sent> {
    let t = |d: i64, h: i64, m: i64| day0 + d * DAY + h * HOUR + m * 60_000;
    let sent = |bot, user, at, event, properties| Sent {
        bot,
        user,
        at,
        event,
        properties,
    };
    let lcp = |ms: i64| json!({"metric": "LCP", "value": ms, "path": "/"});
    vec![
        sent(
            false,
            "ann",
            t(0, 10, 0),
            "Signed Up",
            json!({"plan": "pro"}),
        ),
        sent(false, "ann", t(0, 10, 5), "Paid", json!({"plan": "pro"})),
        sent(false, "ann", t(0, 10, 6), "Web Vital", lcp(1_000)),
        sent(
            false,
            "ann",
            t(1, 9, 0),
            "Signed Up",
            json!({"plan": "pro"}),
        ),
        sent(
            false,
            "bob",
            t(0, 11, 0),
            "Signed Up",
            json!({"plan": "free"}),
        ),
        sent(false, "bob", t(0, 11, 1), "Web Vital", lcp(2_000)),
        sent(
            true,
            "crawler-1",
            t(0, 10, 0),
            "Signed Up",
            json!({"plan": "free"}),
        ),
        sent(
            true,
            "crawler-1",
            t(0, 10, 1),
            "Paid",
            json!({"plan": "free"}),
        ),
        sent(true, "crawler-1", t(0, 10, 2), "Web Vital", lcp(9_000)),
        sent(
            true,
            "crawler-1",
            t(1, 10, 0),
            "Signed Up",
            json!({"plan": "free"}),
        ),
        sent(
            true,
            "crawler-1",
            t(2, 10, 0),
            "Signed Up",
            json!({"plan": "free"}),
        ),
        sent(
            true,
            "crawler-2",
            t(0, 12, 0),
            "Signed Up",
            json!({"plan": "ent"}),
        ),
        sent(
            true,
            "crawler-2",
            t(0, 12, 1),
            "Paid",
            json!({"plan": "ent"}),
        ),
    ]
}

/// Which of the traffic an app receives, and as whom.
#[derive(Clone, Copy, PartialEq)]
enum Feed {
    /// Everything, the crawlers with their own User-Agent (flagged as bots at ingest).
    Mixed,
    /// The people only.
    People,
    /// Everything, the crawlers disguised as a browser (nothing flagged).
    AllAsPeople,
}

async fn app_with(feed: Feed, day0: i64) -> App {
    let app = spawn(|_| {}).await;
    let batch: Vec<Value> = traffic(day0)
        .into_iter()
        .enumerate()
        .filter(|(_, s)| feed != Feed::People || !s.bot)
        .map(|(i, s)| {
            let ua = if s.bot && feed == Feed::Mixed {
                GOOGLEBOT
            } else {
                SAFARI_MAC
            };
            json!({"type": "track", "messageId": format!("m{i}"), "anonymousId": s.user,
                   "event": s.event, "properties": s.properties,
                   "timestamp": chrono::DateTime::from_timestamp_millis(s.at).unwrap().to_rfc3339(),
                   "context": {"userAgent": ua}})
        })
        .collect();
    let status = app
        .http
        .post(format!("{}/v1/batch", app.base))
        .basic_auth(&app.write_key, Some(""))
        .json(&json!({ "batch": batch }))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
    app
}

impl App {
    /// A dashboard answer and its `pulseline-bot-events` header.
    async fn dash_with_bots(&self, path: &str) -> (Value, i64) {
        let url = format!("{}/api/dash/projects/{}{path}", self.base, self.project);
        let resp = self
            .http
            .get(url)
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let bots = resp
            .headers()
            .get("pulseline-bot-events")
            .unwrap_or_else(|| panic!("{path}: no pulseline-bot-events header"))
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let mut body: Value = resp.json().await.unwrap();
        if let Some(o) = body.as_object_mut() {
            let field = o.remove("bot_events");
            assert_eq!(field, Some(json!(bots)), "{path}: bot_events field");
        }
        // The events table's sequence numbers differ between databases fed differently.
        if let Some(rows) = body.as_array_mut() {
            for row in rows.iter_mut().filter_map(Value::as_object_mut) {
                row.remove("seq");
            }
        }
        (body, bots)
    }
}

#[tokio::test]
async fn every_insight_leaves_bots_out_unless_asked() {
    let now = chrono::Utc::now().timestamp_millis();
    let day0 = now - now.rem_euclid(DAY) - 3 * DAY;
    let mixed = app_with(Feed::Mixed, day0).await;
    let people = app_with(Feed::People, day0).await;
    let all = app_with(Feed::AllAsPeople, day0).await;

    let (from, to) = (day0, day0 + 3 * DAY);
    let range = format!("from={from}&to={to}");
    // (query, bot events of the range that the query reads)
    let cases = [
        (format!("/funnel?steps=Signed Up,Paid&{range}"), 7),
        (format!("/retention?period=day&{range}"), 7),
        (format!("/sessions?{range}"), 7),
        (format!("/vitals?{range}&bucket={DAY}"), 1),
        (
            format!("/series?event=Signed%20Up&{range}&bucket={HOUR}"),
            4,
        ),
        (format!("/series?{range}&bucket={DAY}"), 7),
        (
            format!("/series?event=Paid&group_by=plan&{range}&bucket={DAY}"),
            2,
        ),
        (format!("/events?event=Paid&{range}"), 2),
        // Ranges that cut hours: the bot count reads the cut parts from the events. Bots at
        // 10:01, 10:02 and 12:00 are inside; 10:00 and 12:01 are not.
        (
            format!(
                "/sessions?from={}&to={}",
                day0 + 10 * HOUR + 60_000,
                day0 + 12 * HOUR + 30_000
            ),
            3,
        ),
        // Only the bot at 10:00, whose session starts in the range (sessions count by their
        // start, bots' as people's).
        (
            format!(
                "/sessions?from={}&to={}",
                day0 + 10 * HOUR - 30_000,
                day0 + 10 * HOUR + 30_000
            ),
            1,
        ),
    ];
    for (query, bot_events) in &cases {
        let (left_out, n) = mixed.dash_with_bots(query).await;
        assert_eq!(n, *bot_events, "{query}: bot events counted");
        let (expected, n) = people.dash_with_bots(query).await;
        assert_eq!(n, 0, "{query}");
        assert_eq!(left_out, expected, "{query}: without bots");

        let with = format!("{query}&include_bots=true");
        let (counted, n) = mixed.dash_with_bots(&with).await;
        assert_eq!(n, *bot_events, "{with}");
        let (expected, _) = all.dash_with_bots(&with).await;
        assert_eq!(counted, expected, "{with}: bots counted as people");
        // The traffic is chosen so that the bots change every answer.
        assert_ne!(left_out, counted, "{query}: the bots make no difference");
    }

    // Crawlers are not active users: the rollups filled at ingest leave them out.
    let p = format!("/api/dash/projects/{}", mixed.project);
    let overview = mixed.dash(&format!("{p}/overview")).await;
    let expected = people
        .dash(&format!("/api/dash/projects/{}/overview", people.project))
        .await;
    for key in ["daily_active", "wau", "mau"] {
        assert_eq!(overview[key], expected[key], "{key}");
    }
    assert_eq!(overview["mau"], 2);
}
