//! The client against the real collector, in process: N events in, N stored once, ids intact,
//! also when a proxy between them loses responses and the client resends.

mod support;

use std::{collections::HashSet, time::Duration};

use pulseline::{Alias, Client, FlushOutcome, Group, Identify, Page, Screen, Track, User};
use serde_json::json;
use support::{
    Collector,
    fault_server::{Fault, FaultServer},
};

fn client(host: &str, write_key: &str) -> Client {
    support::init_tracing();
    Client::builder(write_key)
        .host(host)
        .disk_buffer(None)
        .max_batch_messages(250)
        .retry_delays(Duration::from_millis(10), Duration::from_millis(200))
        .build()
        .unwrap()
}

fn capture(client: &Client, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let user = User::id(format!("user-{}", i % 100));
        let id = match i % 50 {
            1 => client.identify(Identify::new(user).traits(json!({ "seq": i, "plan": "pro" }))),
            2 => client.page(
                Page::new(user)
                    .name("Pricing")
                    .properties(json!({ "seq": i, "path": "/pricing" })),
            ),
            3 => client.screen(
                Screen::new(user)
                    .name("Home")
                    .properties(json!({ "seq": i })),
            ),
            4 => client.group(Group::new(user, "acme").traits(json!({ "seq": i }))),
            5 => client.alias(Alias::new(format!("user-{}", i % 100), format!("anon-{i}"))),
            _ => client.track(
                Track::new(user, "order_completed")
                    .properties(json!({ "seq": i, "amount": 42.5, "currency": "EUR" })),
            ),
        };
        ids.push(id.unwrap().to_string());
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_stored_once_with_its_id_and_properties() {
    let collector = Collector::start().await;
    let client = client(&collector.url(), &collector.write_key);
    let captured = capture(&client, 3_000);
    assert_eq!(
        client.flush_async(Duration::from_secs(30)).await,
        FlushOutcome::Flushed
    );
    let stats = client.stats();
    assert_eq!((stats.sent, stats.dropped.total()), (3_000, 0), "{stats:?}");

    let events = collector.events().await;
    assert_eq!(events.len(), 3_000);
    let stored: HashSet<&str> = events
        .iter()
        .map(|e| e["messageId"].as_str().unwrap())
        .collect();
    assert_eq!(
        stored,
        captured.iter().map(String::as_str).collect::<HashSet<_>>()
    );
    let order = events
        .iter()
        .find(|e| e["messageId"] == captured[10].as_str())
        .unwrap();
    assert_eq!(order["type"], "track");
    assert_eq!(order["event"], "order_completed");
    assert_eq!(order["userId"], "user-10");
    assert_eq!(order["properties"]["seq"], 10);
    assert_eq!(order["properties"]["amount"], 42.5);
    assert_eq!(collector.events_total().await, 3_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resends_after_lost_responses_are_stored_once() {
    let collector = Collector::start().await;
    let proxy = FaultServer::proxy(collector.url(), |i| {
        if i % 3 == 1 {
            Fault::CloseAfterRead
        } else {
            Fault::None
        }
    })
    .await;
    let client = client(&proxy.url(), &collector.write_key);
    let captured = capture(&client, 2_000);
    assert_eq!(
        client.flush_async(Duration::from_secs(30)).await,
        FlushOutcome::Flushed
    );

    let resent: usize = proxy.stored_counts().values().map(|n| n - 1).sum();
    assert!(
        resent > 0,
        "the proxy lost responses, so the client resent batches"
    );
    let events = collector.events().await;
    assert_eq!(
        events.len(),
        2_000,
        "{resent} duplicate deliveries were stored once"
    );
    let stored: HashSet<&str> = events
        .iter()
        .map(|e| e["messageId"].as_str().unwrap())
        .collect();
    assert_eq!(stored.len(), 2_000);
    assert!(captured.iter().all(|id| stored.contains(id.as_str())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_write_key_is_dropped_as_a_client_error_not_retried() {
    let collector = Collector::start().await;
    let client = client(&collector.url(), "wk_not_a_real_key");
    capture(&client, 10);
    // Refused, so never delivered: not `Flushed`.
    assert_eq!(
        client.flush_async(Duration::from_secs(30)).await,
        FlushOutcome::Dropped { messages: 10 }
    );
    let stats = client.stats();
    assert_eq!(
        (stats.sent, stats.dropped.client_error, stats.retried),
        (0, 10, 0)
    );
    assert_eq!(collector.events_total().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_client_sends_nothing_and_writes_no_disk_buffer() {
    let collector = Collector::start().await;
    let dir = tempfile::tempdir().unwrap();
    let buffer = dir.path().join("buffer");
    let client = Client::builder(&collector.write_key)
        .host(collector.url())
        .disk_buffer_directory(&buffer)
        .disabled(true)
        .build()
        .unwrap();
    let ids = capture(&client, 20);
    assert_eq!(ids.len(), 20, "captures still return their messageId");
    // Invalid input is still refused, as it would be by an enabled client.
    assert!(client.track(Track::new("user-1", "")).is_err());
    client.opt_in();
    client.track(Track::new("user-1", "after_opt_in")).unwrap();
    assert_eq!(
        client.flush_async(Duration::from_secs(30)).await,
        FlushOutcome::Flushed
    );
    let stats = client.stats();
    assert_eq!(
        (stats.captured, stats.sent, stats.dropped.opted_out),
        (21, 0, 21),
        "{stats:?}"
    );
    assert!(
        client
            .shutdown_async(Duration::from_secs(10))
            .await
            .is_complete()
    );
    assert_eq!(collector.events_total().await, 0);
    assert!(!buffer.exists(), "a disabled client created {buffer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opt_out_drops_captures_and_opt_in_resumes() {
    let collector = Collector::start().await;
    let client = client(&collector.url(), &collector.write_key);
    let before = capture(&client, 5);
    client.opt_out();
    assert!(client.is_opted_out());
    let dropped: Vec<_> = (0..7)
        .map(|i| client.track(Track::new("user-9", format!("while_opted_out_{i}"))))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(dropped.len(), 7);
    assert_eq!(
        client.flush_async(Duration::from_secs(30)).await,
        FlushOutcome::Flushed
    );
    client.opt_in();
    let after = capture(&client, 3);
    assert_eq!(
        client.flush_async(Duration::from_secs(30)).await,
        FlushOutcome::Flushed
    );
    let stats = client.stats();
    assert_eq!(
        (stats.captured, stats.sent, stats.dropped.opted_out),
        (15, 8, 7),
        "{stats:?}"
    );
    let stored: HashSet<String> = collector
        .events()
        .await
        .iter()
        .map(|e| e["messageId"].as_str().unwrap().to_owned())
        .collect();
    let expected: HashSet<String> = before.into_iter().chain(after).collect();
    assert_eq!(
        stored, expected,
        "exactly the messages captured while opted in"
    );
}
