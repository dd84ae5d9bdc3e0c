//! Memory bounds: what happens when captures outrun delivery.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use pulseline::{
    BatchRequest, BoxFuture, Client, DropReason, Error, FlushOutcome, Track, Transport,
    TransportResponse, testing::RecordingTransport,
};
use serde_json::json;
use tokio::sync::watch;

/// Records requests at once but answers only after `open()`.
#[derive(Clone)]
struct Gated {
    inner: RecordingTransport,
    open: Arc<watch::Sender<bool>>,
}

impl Gated {
    fn new() -> Self {
        Gated {
            inner: RecordingTransport::new(),
            open: Arc::new(watch::channel(false).0),
        }
    }

    fn open(&self) {
        self.open.send_replace(true);
    }
}

impl Transport for Gated {
    fn send(&self, request: BatchRequest) -> BoxFuture<Result<TransportResponse, Error>> {
        let answer = self.inner.send(request);
        let mut open = self.open.subscribe();
        Box::pin(async move {
            let _ = open.wait_for(|open| *open).await;
            answer.await
        })
    }
}

fn track(client: &Client, i: usize) -> Result<pulseline::MessageId, Error> {
    client.track(
        Track::new(format!("user-{}", i % 1000), "bench_event").properties(
            json!({ "seq": i, "plan": "pro", "amount": 12.5, "flag": true, "tag": "burst" }),
        ),
    )
}

#[test]
fn without_a_disk_buffer_a_full_memory_refuses_the_newest_and_counts_it() {
    let drops = Arc::new(Mutex::new(0u64));
    let seen = Arc::clone(&drops);
    let gated = Gated::new();
    let client = Client::builder("wk_test")
        .transport(gated.clone())
        .disk_buffer(None)
        .max_buffered(100, 1 << 20)
        .on_drop(move |reason, n| {
            assert_eq!(reason, DropReason::QueueFull);
            *seen.lock().unwrap() += n;
        })
        .build()
        .unwrap();
    let results: Vec<_> = (0..150).map(|i| track(&client, i)).collect();
    assert!(
        results[..100].iter().all(Result::is_ok),
        "the first 100 fit"
    );
    assert!(
        results[100..].iter().all(|r| matches!(
            r,
            Err(Error::QueueFull {
                max_events: 100,
                ..
            })
        )),
        "drop newest: later captures are refused"
    );
    assert_eq!(*drops.lock().unwrap(), 50);
    assert_eq!(client.stats().dropped.queue_full, 50);
    gated.open();
    assert_eq!(client.flush(Duration::from_secs(10)), FlushOutcome::Flushed);
    assert_eq!(gated.inner.delivered().len(), 100);
    track(&client, 1).expect("memory is free again after delivery");
}

#[test]
fn a_burst_beyond_memory_spills_to_disk_and_loses_nothing_it_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let gated = Gated::new();
    let client = Client::builder("wk_test")
        .transport(gated.clone())
        .disk_buffer_directory(dir.path())
        .max_buffered(100_000, 4 << 20)
        .build()
        .unwrap();
    // The worker spills in the background. On a loaded machine it can be starved long enough
    // for the burst to fill memory first; then the newest capture is refused and counted (drop
    // newest), and this caller tries it again a moment later.
    let mut refused = 0;
    let captured: Vec<String> = (0..60_000)
        .map(|i| {
            loop {
                match track(&client, i) {
                    Ok(id) => break id.to_string(),
                    Err(Error::QueueFull { .. }) => {
                        refused += 1;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(e) => panic!("capture {i}: {e}"),
                }
            }
        })
        .collect();
    let spilled = client.stats().buffered_on_disk;
    assert!(
        spilled > 0,
        "nothing could be sent, so the overflow went to disk"
    );
    gated.open();
    assert_eq!(client.flush(Duration::from_secs(60)), FlushOutcome::Flushed);
    let stats = client.stats();
    assert_eq!(stats.dropped.total(), refused, "{stats:?}");
    assert_eq!(stats.dropped.queue_full, refused, "{stats:?}");
    assert_eq!(stats.sent, 60_000);
    assert!(stats.replayed_from_disk >= spilled);
    let delivered: HashSet<String> = gated
        .inner
        .delivered()
        .iter()
        .map(|m| m["messageId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(delivered.len(), 60_000);
    assert!(captured.iter().all(|id| delivered.contains(id)));
    assert!(client.shutdown(Duration::from_secs(5)).is_complete());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
