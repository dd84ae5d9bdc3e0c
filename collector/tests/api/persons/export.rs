//! Exporting a person streams every event of theirs as NDJSON.

use super::*;

#[tokio::test]
async fn export_streams_every_event_of_the_person_as_ndjson() {
    let app = spawn().await;
    app.ingest(others()).await;
    app.ingest(alice()).await;
    // More than one page of the export (500 events), interleaved with someone else's.
    for chunk in 0..3 {
        let batch: Vec<Value> = (0..400)
            .map(|i| {
                let n = chunk * 400 + i;
                if n % 2 == 0 {
                    track(Some("alice"), None, "view", &format!("av-{n:04}"), 4)
                } else {
                    track(Some("dave"), None, "view", &format!("dv-{n:04}"), 4)
                }
            })
            .collect();
        app.ingest(batch).await;
    }
    let resp = app
        .http
        .get(app.url("/api/v1/persons/export?user_id=alice"))
        .bearer_auth(&app.secret_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let text = resp.text().await.unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 7 + 600);
    let mut ids: Vec<&str> = events
        .iter()
        .map(|e| e["messageId"].as_str().unwrap())
        .collect();
    // Oldest first, each once, nobody else's.
    assert_eq!(&ids[..7], ["a-1", "a-2", "a-3", "a-4", "a-5", "a-6", "a-7"]);
    assert!(ids.iter().all(|id| id.starts_with("a")), "{ids:?}");
    ids.dedup();
    assert_eq!(ids.len(), 607);
    // Rendered as the read API renders events.
    assert_eq!(events[0]["type"], "track");
    assert_eq!(events[0]["properties"]["plan"], "pro");
    assert!(events[0]["receivedAt"].is_string());
}
