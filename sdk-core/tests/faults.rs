//! The real client (worker thread, HTTP transport) against a local fault-injecting server:
//! nothing is lost, and duplicates appear only where a response was lost.

mod support;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use pulseline::{Client, Error, FlushOutcome, Track, TransportErrorKind};
use serde_json::json;
use support::fault_server::{Fault, FaultServer};

fn client(url: &str) -> pulseline::ClientBuilder {
    support::init_tracing();
    Client::builder("wk_test")
        .host(url)
        .disk_buffer(None)
        .max_batch_messages(50)
        .retry_delays(Duration::from_millis(10), Duration::from_millis(200))
        .request_timeout(Duration::from_secs(5))
}

fn capture(client: &Client, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            client
                .track(
                    Track::new(format!("user-{}", i % 17), "fault_test")
                        .properties(json!({ "seq": i })),
                )
                .unwrap()
                .to_string()
        })
        .collect()
}

fn duplicates(server: &FaultServer) -> usize {
    server.stored_counts().values().map(|n| n - 1).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_without_loss_or_duplicates() {
    let server = FaultServer::start(|i| {
        if i % 3 == 0 {
            Fault::Status(500, None)
        } else {
            Fault::None
        }
    })
    .await;
    let client = client(&server.url()).build().unwrap();
    let captured = capture(&client, 500);
    assert_eq!(
        client.flush_async(Duration::from_secs(30)).await,
        FlushOutcome::Flushed
    );
    server.assert_nothing_lost_and_duplicates_explained(&captured, &[]);
    assert_eq!(duplicates(&server), 0);
    let stats = client.stats();
    assert!(stats.retried >= 4, "{stats:?}");
    assert_eq!((stats.sent, stats.dropped.total()), (500, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_wait_for_retry_after() {
    let server = FaultServer::start(|i| {
        if i == 0 {
            Fault::Status(429, Some("1"))
        } else {
            Fault::None
        }
    })
    .await;
    let client = client(&server.url()).build().unwrap();
    let captured = capture(&client, 120);
    assert_eq!(
        client.flush_async(Duration::from_secs(30)).await,
        FlushOutcome::Flushed
    );
    server.assert_nothing_lost_and_duplicates_explained(&captured, &[]);
    let received = server.received();
    let limited = &received[0];
    let retry = received
        .iter()
        .skip(1)
        .find(|r| r.message_ids == limited.message_ids)
        .expect("the 429'd batch was resent");
    let waited = retry.arrived - limited.arrived;
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?}, before Retry-After: 1"
    );
    assert!(
        received.iter().any(|r| r.index > 0
            && r.arrived < retry.arrived
            && r.message_ids != limited.message_ids),
        "other batches went out during the wait"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_responses_cause_resends_of_those_messages_only() {
    let server = FaultServer::start(|i| {
        if i % 4 == 1 {
            Fault::CloseAfterRead
        } else {
            Fault::None
        }
    })
    .await;
    let client = client(&server.url()).build().unwrap();
    let captured = capture(&client, 400);
    assert_eq!(
        client.flush_async(Duration::from_secs(30)).await,
        FlushOutcome::Flushed
    );
    server.assert_nothing_lost_and_duplicates_explained(&captured, &[Fault::CloseAfterRead]);
    let lost_response_messages: usize = server
        .received()
        .iter()
        .filter(|r| r.fault == Fault::CloseAfterRead)
        .map(|r| r.message_ids.len())
        .sum();
    assert!(lost_response_messages > 0);
    assert_eq!(
        duplicates(&server),
        lost_response_messages,
        "each lost response causes exactly one resend"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_then_starts_receives_everything() {
    // Reserve a port, then leave it closed: connections are refused until the server binds.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let connect_errors = Arc::new(Mutex::new(0));
    let seen = Arc::clone(&connect_errors);
    let client = client(&format!("http://{addr}"))
        .on_error(move |e| {
            if matches!(
                e,
                Error::Transport {
                    kind: TransportErrorKind::Connect,
                    ..
                }
            ) {
                *seen.lock().unwrap() += 1;
            }
        })
        .build()
        .unwrap();
    let captured = capture(&client, 200);
    let flush = client.flush_async(Duration::from_secs(30));
    // The outage itself: the collector is unreachable for 1.5 s.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let server = FaultServer::serve(
        tokio::net::TcpListener::bind(addr).await.unwrap(),
        |_| Fault::None,
        None,
    );
    assert_eq!(flush.await, FlushOutcome::Flushed);
    server.assert_nothing_lost_and_duplicates_explained(&captured, &[]);
    assert_eq!(duplicates(&server), 0);
    assert!(
        *connect_errors.lock().unwrap() > 0,
        "connection refusals were reported as connect errors"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_response_does_not_stall_other_batches() {
    let server = FaultServer::start(|i| {
        if i == 0 {
            Fault::Delay(Duration::from_secs(2))
        } else {
            Fault::None
        }
    })
    .await;
    let client = client(&server.url()).build().unwrap();
    let captured = capture(&client, 300);
    let started = Instant::now();
    assert_eq!(
        client.flush_async(Duration::from_secs(30)).await,
        FlushOutcome::Flushed
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    server.assert_nothing_lost_and_duplicates_explained(&captured, &[]);
    assert_eq!(duplicates(&server), 0);
    let received = server.received();
    let slow_answered = received[0].answered.unwrap();
    let overtaken = received
        .iter()
        .filter(|r| r.index > 0 && r.answered.unwrap() < slow_answered)
        .count();
    assert!(
        overtaken >= 3,
        "only {overtaken} batches completed while the slow one was pending"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_slower_than_the_timeout_is_retried() {
    let server = FaultServer::start(|i| {
        if i == 0 {
            Fault::Delay(Duration::from_secs(3))
        } else {
            Fault::None
        }
    })
    .await;
    let timeouts = Arc::new(Mutex::new(0));
    let seen = Arc::clone(&timeouts);
    let client = client(&server.url())
        .request_timeout(Duration::from_millis(500))
        .on_error(move |e| {
            if matches!(
                e,
                Error::Transport {
                    kind: TransportErrorKind::Timeout,
                    ..
                }
            ) {
                *seen.lock().unwrap() += 1;
            }
        })
        .build()
        .unwrap();
    let captured = capture(&client, 100);
    assert_eq!(
        client.flush_async(Duration::from_secs(30)).await,
        FlushOutcome::Flushed
    );
    assert_eq!(*timeouts.lock().unwrap(), 1);
    // The slow request still completed on the server after the client gave up on it: a lost
    // response, so its messages may be stored twice (the collector dedupes them).
    server.assert_nothing_lost_and_duplicates_explained(
        &captured,
        &[Fault::Delay(Duration::from_secs(3))],
    );
}

/// Delays are the caller's options, and `Duration::MAX` means "never": a failing send must
/// not overflow the worker's deadline arithmetic (a panic there stops delivery for good).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_delays_of_duration_max_do_not_stop_the_worker() {
    let server = FaultServer::start(|_| Fault::Status(500, None)).await;
    let client = client(&server.url())
        .retry_delays(Duration::MAX, Duration::MAX)
        .max_retry_elapsed(Duration::MAX)
        .build()
        .unwrap();
    capture(&client, 1);
    // The 500 schedules a retry, which the flush's deadline makes the worker fit before it.
    let answer = Duration::from_secs(30);
    let flush = client.flush_async(Duration::from_millis(500));
    let flushed = tokio::time::timeout(answer, flush)
        .await
        .expect("no answer");
    assert_eq!(flushed, FlushOutcome::TimedOut { pending: 1 });
    let shutdown = client.shutdown_async(Duration::from_millis(500));
    let outcome = tokio::time::timeout(answer, shutdown)
        .await
        .expect("no answer");
    assert_eq!((outcome.timed_out, outcome.lost), (true, 1), "{outcome:?}");
}

/// A worker that dies (here: a custom transport whose send panics) must not leave `flush`,
/// `shutdown` or the client's drop waiting forever for its answer: at exit that is a hang of
/// the host process.
#[test]
fn a_panicking_worker_does_not_hang_flush_shutdown_or_drop() {
    struct Panicking;
    impl pulseline::Transport for Panicking {
        fn send(
            &self,
            _: pulseline::BatchRequest,
        ) -> pulseline::BoxFuture<Result<pulseline::TransportResponse, Error>> {
            Box::pin(async { panic!("a transport bug") })
        }
    }
    let (done, answer) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let client = Client::builder("wk_test")
            .transport(Panicking)
            .disk_buffer(None)
            .flush_interval(Duration::from_millis(10))
            .build()
            .unwrap();
        client.track(Track::new("user-1", "e")).unwrap();
        let flushed = client.flush(Duration::from_secs(5));
        let flushed_again = client.flush(Duration::from_secs(5));
        client.shutdown(Duration::from_secs(5));
        drop(client);
        let _ = done.send((flushed, flushed_again));
    });
    let (flushed, flushed_again) = answer
        .recv_timeout(Duration::from_secs(60))
        .expect("flush, shutdown or drop waited for a dead worker");
    assert_eq!(flushed, FlushOutcome::Closed);
    assert_eq!(flushed_again, FlushOutcome::Closed);
}
