//! The core running in WebAssembly (Node, and headless Chromium with
//! `WASM_BINDGEN_USE_BROWSER=1`): ids, timestamps, batching, and retry timing through the
//! browser clock. With std's `Instant` these would panic on wasm32-unknown-unknown.
#![cfg(target_arch = "wasm32")]

use std::time::Duration;

use pulseline::{Client, FlushOutcome, Track, TransportResponse, testing::RecordingTransport};
use pulseline_browser::BrowserClock;
use serde_json::json;
use wasm_bindgen_test::wasm_bindgen_test;

fn client(transport: &RecordingTransport) -> Client {
    let (client, worker) = Client::builder("wk_test")
        .transport(transport.clone())
        .clock(BrowserClock)
        .gzip(false)
        .flush_interval(Duration::from_millis(20))
        .retry_delays(Duration::from_millis(10), Duration::from_millis(40))
        .build_with_worker()
        .expect("client");
    wasm_bindgen_futures::spawn_local(worker);
    client
}

#[wasm_bindgen_test]
async fn a_captured_event_is_batched_stamped_and_delivered() {
    let transport = RecordingTransport::new();
    let client = client(&transport);
    let before = js_sys::Date::now();
    let id = client
        .track(Track::new("user-1", "signup").properties(json!({ "plan": "pro" })))
        .expect("valid");
    let uuid = pulseline::Uuid::parse_str(id.as_str()).expect("a generated id is a UUID");
    assert_eq!(uuid.get_version_num(), 7);
    assert_eq!(
        client.flush_async(Duration::from_secs(5)).await,
        FlushOutcome::Flushed
    );
    let delivered = transport.delivered();
    assert_eq!(delivered.len(), 1);
    let message = &delivered[0];
    assert_eq!(message["messageId"], id.to_string());
    assert_eq!(message["event"], "signup");
    assert_eq!(message["properties"]["plan"], "pro");
    let at = js_sys::Date::parse(message["timestamp"].as_str().expect("timestamp"));
    assert!(
        (before - 1.0..=js_sys::Date::now() + 1.0).contains(&at),
        "timestamp {at} is the capture time ({before})"
    );
    let request = &transport.requests()[0];
    assert!(!request.gzip, "the browser build sends plain JSON");
}

#[wasm_bindgen_test]
async fn a_503_is_retried_after_a_real_timer_and_keeps_its_message_id() {
    let transport = RecordingTransport::new();
    transport.push_response(Ok(TransportResponse::new(503, Vec::new())));
    let client = client(&transport);
    let id = client.track(Track::new("user-1", "retry")).expect("valid");
    let started = web_time::Instant::now();
    assert_eq!(
        client.flush_async(Duration::from_secs(5)).await,
        FlushOutcome::Flushed
    );
    let requests = transport.requests();
    assert_eq!(requests.len(), 2, "one failure, one success");
    for request in &requests {
        assert_eq!(request.messages()[0]["messageId"], id.to_string());
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(client.stats().retried, 1);
}
