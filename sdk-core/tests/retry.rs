//! Retry classification and backoff through the public API, with an injected clock and a
//! scripted transport: no network, and minutes of backoff pass in milliseconds.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use pulseline::{
    Client, Clock, DropReason, Error, FlushOutcome, Track, TransportErrorKind, TransportResponse,
    testing::{ManualClock, RecordedRequest, RecordingTransport},
};
use serde_json::json;

const LONG: Duration = Duration::from_secs(3600);

fn client(transport: &RecordingTransport, clock: &ManualClock) -> pulseline::ClientBuilder {
    Client::builder("wk_test")
        .transport(transport.clone())
        .clock(clock.clone())
        .disk_buffer(None)
        .retry_delays(Duration::from_secs(1), Duration::from_secs(16))
        .max_retry_elapsed(Duration::from_secs(120))
}

fn capture(client: &Client, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            client
                .track(Track::new(format!("user-{i}"), "signup").properties(json!({ "i": i })))
                .unwrap()
                .to_string()
        })
        .collect()
}

fn sent_at(request: &RecordedRequest) -> SystemTime {
    // RFC 3339 with milliseconds, e.g. 2026-11-22T03:04:05.678Z.
    let text = request.body["sentAt"].as_str().unwrap();
    let millis: u64 = {
        let (date, time) = text.split_once('T').unwrap();
        let d: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
        let t: Vec<f64> = time
            .trim_end_matches('Z')
            .split(':')
            .map(|p| p.parse().unwrap())
            .collect();
        let days = days_from_civil(d[0], d[1], d[2]);
        (days * 86_400) as u64 * 1000
            + ((t[0] * 3600.0 + t[1] * 60.0 + t[2]) * 1000.0).round() as u64
    };
    SystemTime::UNIX_EPOCH + Duration::from_millis(millis)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn gap(a: &RecordedRequest, b: &RecordedRequest) -> Duration {
    sent_at(b).duration_since(sent_at(a)).unwrap()
}

fn ids(requests: &[RecordedRequest]) -> Vec<String> {
    requests
        .iter()
        .flat_map(|r| {
            r.messages()
                .iter()
                .map(|m| m["messageId"].as_str().unwrap().to_owned())
        })
        .collect()
}

#[test]
fn retry_after_seconds_is_honoured_exactly() {
    let (transport, clock) = (RecordingTransport::new(), ManualClock::new());
    transport.push_response(Ok(
        TransportResponse::new(429, b"slow down".to_vec()).with_retry_after("30")
    ));
    let client = client(&transport, &clock).build().unwrap();
    let captured = capture(&client, 3);
    assert_eq!(client.flush(LONG), FlushOutcome::Flushed);
    let requests = transport.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].status, Some(429));
    let waited = gap(&requests[0], &requests[1]);
    assert!(
        waited >= Duration::from_secs(30) && waited < Duration::from_secs(31),
        "{waited:?}"
    );
    assert_eq!(
        ids(&requests[1..]),
        captured,
        "the retry resends the same messageIds"
    );
    let stats = client.stats();
    assert_eq!(
        (stats.sent, stats.retried, stats.dropped.total()),
        (3, 1, 0)
    );
}

#[test]
fn retry_after_http_date_is_honoured() {
    let (transport, clock) = (RecordingTransport::new(), ManualClock::new());
    let at = httpdate::fmt_http_date(clock.system_time() + Duration::from_secs(45));
    transport.push_response(Ok(TransportResponse::new(503, vec![]).with_retry_after(at)));
    let client = client(&transport, &clock).build().unwrap();
    capture(&client, 1);
    assert_eq!(client.flush(LONG), FlushOutcome::Flushed);
    let requests = transport.requests();
    let waited = gap(&requests[0], &requests[1]);
    // HTTP dates have one-second resolution.
    assert!(
        waited >= Duration::from_secs(43) && waited <= Duration::from_secs(46),
        "{waited:?}"
    );
}

#[test]
fn huge_retry_after_is_clamped() {
    let (transport, clock) = (RecordingTransport::new(), ManualClock::new());
    transport.push_response(Ok(
        TransportResponse::new(429, vec![]).with_retry_after("86400")
    ));
    let client = client(&transport, &clock).build().unwrap();
    capture(&client, 1);
    assert_eq!(client.flush(LONG), FlushOutcome::Flushed);
    let requests = transport.requests();
    let waited = gap(&requests[0], &requests[1]);
    assert!(
        waited >= Duration::from_secs(60) && waited < Duration::from_secs(61),
        "clamped to max_retry_after: {waited:?}"
    );
}

#[test]
fn backoff_delays_stay_under_the_doubling_cap() {
    let (transport, clock) = (RecordingTransport::new(), ManualClock::new());
    for _ in 0..5 {
        transport.push_response(Ok(TransportResponse::new(503, vec![])));
    }
    let client = client(&transport, &clock).build().unwrap();
    capture(&client, 1);
    assert_eq!(client.flush(LONG), FlushOutcome::Flushed);
    let requests = transport.requests();
    assert_eq!(requests.len(), 6);
    for (retry, pair) in requests.windows(2).enumerate() {
        let cap = Duration::from_secs(1 << retry).min(Duration::from_secs(16));
        let waited = gap(&pair[0], &pair[1]);
        assert!(
            waited <= cap + Duration::from_millis(1),
            "retry {}: waited {waited:?}, cap {cap:?}",
            retry + 1
        );
    }
    assert_eq!(client.stats().retried, 5);
}

#[test]
fn transport_errors_are_retried() {
    let (transport, clock) = (RecordingTransport::new(), ManualClock::new());
    for kind in [
        TransportErrorKind::Connect,
        TransportErrorKind::Timeout,
        TransportErrorKind::Other,
    ] {
        transport.push_response(Err(Error::Transport {
            kind,
            message: "simulated".into(),
        }));
    }
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&errors);
    let client = client(&transport, &clock)
        .on_error(move |e| seen.lock().unwrap().push(e.to_string()))
        .build()
        .unwrap();
    let captured = capture(&client, 2);
    assert_eq!(client.flush(LONG), FlushOutcome::Flushed);
    assert_eq!(ids(&transport.requests()[3..]), captured);
    assert_eq!(client.stats().retried, 3);
    let errors = errors.lock().unwrap();
    assert_eq!(errors.len(), 3);
    assert!(errors[0].starts_with("connect error"), "{}", errors[0]);
}

#[test]
fn budget_exhausted_without_disk_drops_with_reason_and_hook() {
    let (transport, clock) = (RecordingTransport::new(), ManualClock::new());
    for _ in 0..100 {
        transport.push_response(Ok(TransportResponse::new(500, vec![])));
    }
    let drops = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&drops);
    let client = client(&transport, &clock)
        .max_retry_elapsed(Duration::from_secs(60))
        .on_drop(move |reason, n| seen.lock().unwrap().push((reason, n)))
        .build()
        .unwrap();
    capture(&client, 4);
    assert_eq!(client.flush(LONG), FlushOutcome::Dropped { messages: 4 });
    let requests = transport.requests();
    assert!(gap(&requests[0], requests.last().unwrap()) <= Duration::from_secs(60));
    assert_eq!(client.stats().dropped.retries_exhausted, 4);
    assert_eq!(
        *drops.lock().unwrap(),
        vec![(DropReason::RetriesExhausted, 4)]
    );
}

#[test]
fn budget_exhausted_with_disk_persists_and_the_next_client_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let (transport, clock) = (RecordingTransport::new(), ManualClock::new());
    for _ in 0..100 {
        transport.push_response(Ok(TransportResponse::new(503, vec![])));
    }
    let client = client(&transport, &clock)
        .max_retry_elapsed(Duration::from_secs(60))
        .disk_buffer_directory(dir.path())
        .build()
        .unwrap();
    let captured = capture(&client, 5);
    assert_eq!(client.flush(LONG), FlushOutcome::Persisted { messages: 5 });
    assert_eq!(client.stats().buffered_on_disk, 5);
    let outcome = client.shutdown(Duration::from_millis(100));
    assert_eq!(
        (outcome.persisted, outcome.lost),
        (0, 0),
        "already on disk before shutdown: {outcome:?}"
    );
    drop(client);

    let healthy = RecordingTransport::new();
    let next = Client::builder("wk_test")
        .transport(healthy.clone())
        .disk_buffer_directory(dir.path())
        .build()
        .unwrap();
    assert!(healthy.wait_for_requests(1, Duration::from_secs(10)));
    assert!(next.shutdown(Duration::from_secs(10)).is_complete());
    assert_eq!(ids(&healthy.requests()), captured);
    assert_eq!(next.stats().replayed_from_disk, 5);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "delivered segments are deleted"
    );
}

#[test]
fn too_large_batches_are_split_and_a_single_message_is_dropped() {
    let (transport, clock) = (RecordingTransport::new(), ManualClock::new());
    transport.push_response(Ok(TransportResponse::new(413, vec![]))); // 10 → 5 + 5
    transport.push_response(Ok(TransportResponse::new(413, vec![]))); // first half: 5 → 2 + 3
    let client = client(&transport, &clock).build().unwrap();
    let captured = capture(&client, 10);
    assert_eq!(client.flush(LONG), FlushOutcome::Flushed);
    let sizes: Vec<_> = transport
        .requests()
        .iter()
        .map(|r| r.messages().len())
        .collect();
    // Both halves go out at once (several requests in flight); the first is split again.
    assert_eq!(sizes, vec![10, 5, 5, 2, 3]);
    let mut delivered: Vec<_> = transport
        .delivered()
        .iter()
        .map(|m| m["messageId"].as_str().unwrap().to_owned())
        .collect();
    delivered.sort();
    let mut expected = captured;
    expected.sort();
    assert_eq!(delivered, expected, "every message delivered exactly once");
    assert_eq!(client.stats().retried, 0);

    let (transport, clock) = (RecordingTransport::new(), ManualClock::new());
    transport.push_response(Ok(TransportResponse::new(413, vec![])));
    let client = self::client(&transport, &clock).build().unwrap();
    capture(&client, 1);
    assert_eq!(client.flush(LONG), FlushOutcome::Dropped { messages: 1 });
    assert_eq!(transport.requests().len(), 1);
    assert_eq!(client.stats().dropped.too_large, 1);
}

#[test]
fn client_errors_are_dropped_not_retried() {
    let (transport, clock) = (RecordingTransport::new(), ManualClock::new());
    transport.push_response(Ok(TransportResponse::new(
        401,
        br#"{"error":"unknown write key"}"#.to_vec(),
    )));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&errors);
    let client = client(&transport, &clock)
        .on_error(move |e| {
            if let Error::Http { status, body, .. } = e {
                seen.lock().unwrap().push((*status, body.clone()));
            }
        })
        .build()
        .unwrap();
    capture(&client, 3);
    // Never delivered: the flush must not say `Flushed`.
    assert_eq!(client.flush(LONG), FlushOutcome::Dropped { messages: 3 });
    assert_eq!(transport.requests().len(), 1);
    assert_eq!(client.stats().dropped.client_error, 3);
    // Nothing dropped since: the next flush reports nothing.
    assert_eq!(client.flush(LONG), FlushOutcome::Flushed);
    assert_eq!(
        *errors.lock().unwrap(),
        vec![(401, r#"{"error":"unknown write key"}"#.to_owned())]
    );
}

#[test]
fn rejected_messages_are_counted_and_reported_not_retried() {
    let (transport, clock) = (RecordingTransport::new(), ManualClock::new());
    let client = client(&transport, &clock);
    let rejected = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&rejected);
    let client = client
        .on_error(move |e| {
            if let Error::Rejected { message_id, reason } = e {
                seen.lock()
                    .unwrap()
                    .push((message_id.clone(), reason.clone()));
            }
        })
        .build()
        .unwrap();
    transport.push_response(Ok(TransportResponse::new(
        200,
        br#"{"success":true,"accepted":2,"rejected":[{"index":1,"messageId":"m-1","error":"timestamp too far in the future"}]}"#.to_vec(),
    )));
    capture(&client, 3);
    assert_eq!(client.flush(LONG), FlushOutcome::Dropped { messages: 1 });
    assert_eq!(transport.requests().len(), 1);
    let stats = client.stats();
    assert_eq!((stats.sent, stats.dropped.rejected_by_server), (2, 1));
    assert_eq!(
        *rejected.lock().unwrap(),
        vec![(
            "m-1".to_owned(),
            "timestamp too far in the future".to_owned()
        )]
    );
}

#[test]
fn a_failing_batch_does_not_hold_up_the_others() {
    let (transport, clock) = (RecordingTransport::new(), ManualClock::new());
    transport.push_response(Ok(
        TransportResponse::new(503, vec![]).with_retry_after("60")
    ));
    let client = client(&transport, &clock)
        .max_batch_messages(1)
        .max_in_flight(1)
        .build()
        .unwrap();
    let captured = capture(&client, 5);
    assert_eq!(client.flush(LONG), FlushOutcome::Flushed);
    let requests = transport.requests();
    assert_eq!(
        ids(&requests[1..5]),
        captured[1..].to_vec(),
        "later batches went out while the first waited"
    );
    assert_eq!(ids(&requests[5..]), vec![captured[0].clone()]);
    assert!(gap(&requests[0], &requests[5]) >= Duration::from_secs(60));
    assert!(gap(&requests[0], &requests[4]) < Duration::from_secs(60));
}

#[test]
fn batches_respect_count_and_byte_limits() {
    // The real clock and a long interval, so only count and bytes seal batches here.
    let transport = RecordingTransport::new();
    let client = Client::builder("wk_test")
        .transport(transport.clone())
        .disk_buffer(None)
        .flush_interval(Duration::from_secs(600))
        .max_batch_messages(100)
        .build()
        .unwrap();
    capture(&client, 1_000);
    let big = "x".repeat(30_000);
    for i in 0..40 {
        client
            .track(Track::new("user-big", "upload").properties(json!({ "i": i, "blob": big })))
            .unwrap();
    }
    assert_eq!(client.flush(LONG), FlushOutcome::Flushed);
    let requests = transport.requests();
    assert!(requests.iter().all(|r| r.messages().len() <= 100));
    assert!(
        requests
            .iter()
            .all(|r| r.body_bytes <= pulseline::limits::MAX_REQUEST_BYTES)
    );
    assert!(
        requests
            .iter()
            .all(|r| r.gzip && r.wire_bytes < r.body_bytes)
    );
    assert_eq!(
        requests.iter().map(|r| r.messages().len()).sum::<usize>(),
        1_040
    );
    assert!(
        requests.iter().any(|r| r.body_bytes > 400_000),
        "big messages fill batches by bytes"
    );
}

#[test]
fn the_flush_interval_sends_without_an_explicit_flush() {
    let transport = RecordingTransport::new();
    let client = Client::builder("wk_test")
        .transport(transport.clone())
        .disk_buffer(None)
        .flush_interval(Duration::from_millis(200))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    capture(&client, 2);
    assert!(
        transport.wait_for_requests(1, Duration::from_secs(10)),
        "sent once the interval passed"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(transport.requests()[0].messages().len(), 2);
    drop(client);
}

#[test]
fn shutdown_retries_close_in_on_its_deadline_so_a_collector_back_in_time_gets_the_batch() {
    let (transport, clock) = (RecordingTransport::new(), ManualClock::new());
    // Refused at about 0, 1, 3, 7 and 15 s; plain backoff would next try at about 31 s,
    // after the 20 s shutdown deadline. The collector is back from then on.
    for _ in 0..5 {
        transport.push_response(Err(Error::Transport {
            kind: TransportErrorKind::Connect,
            message: "connection refused (simulated)".into(),
        }));
    }
    let client = client(&transport, &clock).build().unwrap();
    let sent = capture(&client, 3);
    let started = clock.now();
    let outcome = client.shutdown(Duration::from_secs(20));
    assert!(outcome.is_complete(), "{outcome:?}");
    let delivered: Vec<String> = (transport.delivered().iter())
        .map(|m| m["messageId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(delivered, sent);
    let took = clock.now() - started;
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert_eq!(transport.requests().len(), 6);
}

#[test]
fn a_retry_after_is_honoured_even_past_the_shutdown_deadline() {
    let (transport, clock) = (RecordingTransport::new(), ManualClock::new());
    transport.push_response(Ok(
        TransportResponse::new(503, vec![]).with_retry_after("30")
    ));
    let client = client(&transport, &clock).build().unwrap();
    capture(&client, 2);
    let outcome = client.shutdown(Duration::from_secs(20));
    assert!(outcome.timed_out);
    assert_eq!(
        transport.requests().len(),
        1,
        "not retried before the collector's 30 s"
    );
}

#[test]
fn shutdown_without_disk_counts_what_it_could_not_send() {
    let (transport, clock) = (RecordingTransport::new(), ManualClock::new());
    for _ in 0..1000 {
        transport.push_response(Ok(TransportResponse::new(503, vec![]).with_retry_after("5")));
    }
    let client = client(&transport, &clock).build().unwrap();
    capture(&client, 7);
    let outcome = client.shutdown(Duration::from_secs(20));
    assert!(outcome.timed_out);
    assert_eq!((outcome.persisted, outcome.lost), (0, 7));
    assert_eq!(client.stats().dropped.shutdown, 7);
    assert!(matches!(
        client.track(Track::new("u", "late")),
        Err(Error::Closed)
    ));
    assert_eq!(client.flush(LONG), FlushOutcome::Closed);
}

#[test]
fn unbounded_timeouts_are_accepted() {
    let transport = RecordingTransport::new();
    let client = pulseline::testing::test_client_with(transport.clone());
    capture(&client, 2);
    assert_eq!(client.flush(Duration::MAX), FlushOutcome::Flushed);
    assert!(client.shutdown(Duration::MAX).is_complete());
    assert_eq!(transport.delivered().len(), 2);
}

#[test]
fn panicking_hooks_do_not_stop_the_worker() {
    // Run on a thread of its own: with a dead worker, flush and the client's drop never
    // return, and the test must fail rather than hang.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(hooks_panic_scenario()));
    let (first, second, dropped) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the worker thread died: a panicking hook killed it");
    assert_eq!(
        (first, second),
        (
            FlushOutcome::Dropped { messages: 2 },
            FlushOutcome::Dropped { messages: 1 }
        )
    );
    assert_eq!(dropped, (3, 3));
}

fn hooks_panic_scenario() -> (FlushOutcome, FlushOutcome, (u64, u64)) {
    let (transport, clock) = (RecordingTransport::new(), ManualClock::new());
    transport.push_response(Err(Error::Transport {
        kind: TransportErrorKind::Connect,
        message: "simulated".into(),
    }));
    for _ in 0..100 {
        transport.push_response(Ok(TransportResponse::new(500, vec![])));
    }
    let client = client(&transport, &clock)
        .max_retry_elapsed(Duration::from_secs(60))
        .on_error(|e| panic!("on_error hook bug: {e}"))
        .on_drop(|reason, n| panic!("on_drop hook bug: {reason} {n}"))
        .build()
        .unwrap();
    // Both hooks panic on the worker thread, which must still resolve flushes and count.
    capture(&client, 2);
    let first = client.flush(LONG);
    capture(&client, 1);
    let second = client.flush(LONG);
    client.record_dropped(DropReason::Unserializable, 3);
    let stats = client.stats();
    (
        first,
        second,
        (
            stats.dropped.retries_exhausted,
            stats.dropped.unserializable,
        ),
    )
}
