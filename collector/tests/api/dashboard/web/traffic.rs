//! The traffic of the Web page's test: random page views sent in, and read back as stored.

use super::*;

/// Random traffic over three weeks before `now()`: visits of one to five page views with gaps
/// around the 30-minute cut, context fields varying within a visit, bots and other events.
pub(super) fn traffic(rng: &mut StdRng) -> Vec<Value> {
    let paths = ["/", "/pricing", "/docs", "/blog/rust", "/signup", "/about"];
    let referrers = [
        "",
        "https://www.google.com/search?q=pulseline",
        "https://news.ycombinator.com/item?id=1",
        "https://shop.example/pricing",
        "https://GitHub.com/pulseline",
    ];
    let sources = [
        ("Google", "search"),
        ("Direct / None", "none"),
        ("Hacker News", "social"),
    ];
    let countries = ["DE", "FR", "US"];
    let agents = [
        ("Chrome", "Windows", "desktop"),
        ("Firefox", "Linux", "desktop"),
        ("Safari", "iOS", "mobile"),
        ("Safari", "iPadOS", "tablet"),
    ];
    let gaps = [
        10_000,
        5 * MIN,
        20 * MIN,
        GAP,
        GAP + 1,
        2 * GAP,
        6 * 60 * MIN,
    ];
    let start = (now() - Duration::days(21)).timestamp_millis();
    let end = (now() - Duration::minutes(10)).timestamp_millis();
    let mut used = HashSet::new();
    let mut out = Vec::new();
    for v in 0..40 {
        let visitor = format!("v{v}");
        let mut ts = rng.random_range(start..end);
        for _ in 0..rng.random_range(1..12) {
            ts += gaps[rng.random_range(0..gaps.len())];
            while !used.insert(ts) {
                ts += 1;
            }
            if ts >= end {
                break;
            }
            let path = paths[rng.random_range(0..paths.len())];
            let (source, medium) = sources[rng.random_range(0..sources.len())];
            let (browser, os, device) = agents[rng.random_range(0..agents.len())];
            let mut context = json!({
                // A browser's agent, so ingest that derives context from it sees a person.
                "userAgent": CHROME,
                "page": {"path": path, "url": format!("https://shop.example{path}"),
                         "referrer": referrers[rng.random_range(0..referrers.len())]},
                "source": {"name": source, "medium": medium},
                "browser": {"name": browser, "version": "1"},
                "os": {"name": os},
                "device": {"type": device},
            });
            if rng.random_bool(0.7) {
                context["location"] = json!({"country": countries[rng.random_range(0..3)]});
            }
            if rng.random_bool(0.3) {
                let name = ["spring", "launch"][rng.random_range(0..2)];
                context["campaign"] =
                    json!({"source": "newsletter", "medium": "email", "name": name});
            }
            let when = Utc.timestamp_millis_opt(ts).unwrap().to_rfc3339();
            // Some people are known only by user id (no anonymous id).
            let who = if v % 10 == 9 {
                json!({"userId": visitor})
            } else {
                json!({"anonymousId": visitor, "userId": format!("user-{}", v % 3)})
            };
            let mut page =
                json!({"type": "page", "name": path, "timestamp": when, "context": context});
            page.as_object_mut()
                .unwrap()
                .extend(who.as_object().unwrap().clone());
            out.push(page);
            if rng.random_bool(0.2) {
                out.push(
                    json!({"type": "track", "event": "Clicked", "anonymousId": visitor,
                                "timestamp": when, "context": {"page": {"path": "/elsewhere"}}}),
                );
            }
            if rng.random_bool(0.1) {
                out.push(
                    json!({"type": "page", "anonymousId": "crawler", "timestamp": when,
                                "context": {"bot": true, "page": {"path": "/robots-only"}}}),
                );
            }
        }
    }
    out
}

pub(super) async fn stored_page_views(app: &Dash) -> Vec<Pv> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = app.url("/api/v1/events?limit=1000");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let body: Value = app
            .http
            .get(url)
            .bearer_auth(&app.secret_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        out.extend(
            body["events"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(page_view),
        );
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}
