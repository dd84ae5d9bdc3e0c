//! Capture cost and burst throughput.
//!
//! * `capture/track_5_properties`: one `track` with five properties on the caller's thread
//!   (target: median ≤ 1 µs).
//! * `burst/200k_to_local_sink`: 200,000 tracks captured as fast as possible with default
//!   options, until a local HTTP sink on 127.0.0.1 has acknowledged all of them (target ≤ 1 s).
//!
//! Before the criterion groups run, a one-shot report prints the figures criterion does not:
//! per-call p50/p99, SDK CPU per event (capture thread + worker thread), and RSS growth.

#[path = "../tests/support/fault_server.rs"]
#[allow(dead_code, unreachable_pub)]
mod fault_server;

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use criterion::{Criterion, criterion_group, criterion_main};
use pulseline::{
    BatchRequest, BoxFuture, Client, Error, FlushOutcome, Track, Transport, TransportResponse,
};
use serde::Serialize;

#[derive(Serialize)]
struct Props {
    bench_seq: u64,
    plan: &'static str,
    amount: f64,
    flag: bool,
    tag: &'static str,
}

fn props(i: u64) -> Props {
    Props {
        bench_seq: i,
        plan: "pro",
        amount: 12.5,
        flag: i.is_multiple_of(2),
        tag: "bench",
    }
}

/// Acknowledges everything at once: isolates capture cost from the network.
struct NullSink;

impl Transport for NullSink {
    fn send(&self, _request: BatchRequest) -> BoxFuture<Result<TransportResponse, Error>> {
        Box::pin(async { Ok(TransportResponse::new(200, b"{}".to_vec())) })
    }
}

fn null_client() -> Client {
    Client::builder("wk_bench")
        .transport(NullSink)
        .disk_buffer(None)
        .build()
        .unwrap()
}

fn capture(c: &mut Criterion) {
    let client = null_client();
    let users: Vec<String> = (0..1000).map(|i| format!("user-{i}")).collect();
    let mut i = 0u64;
    c.bench_function("capture/track_5_properties", |b| {
        b.iter(|| {
            i += 1;
            let user = users[(i % 1000) as usize].as_str();
            black_box(
                client
                    .track(Track::new(user, "bench_event").properties(props(i)))
                    .ok(),
            )
        })
    });
    client.shutdown(Duration::from_secs(10));
}

/// A lean local sink: decompresses each body and counts its messages, as a collector's ingest
/// must at least do, so the burst measures the SDK rather than a test server.
struct Sink {
    url: String,
    _runtime: tokio::runtime::Runtime,
}

fn sink() -> Sink {
    use std::io::Read;
    use tokio::io::AsyncWriteExt;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    runtime.spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { return };
            stream.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut plain = Vec::new();
                while let Some((_, body)) = fault_server::read_request(&mut stream, &mut buf).await {
                    plain.clear();
                    flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut plain).unwrap();
                    let accepted = plain.windows(12).filter(|w| w == b"\"messageId\":").count();
                    let body = format!(r#"{{"success":true,"accepted":{accepted},"rejected":[]}}"#);
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Sink {
        url,
        _runtime: runtime,
    }
}

/// Captures `n` events with default options against the sink and waits for all acks.
fn burst(
    sink: &Sink,
    n: u64,
    call_times: Option<&mut Vec<u32>>,
) -> (Duration, Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let client = Client::builder("wk_bench")
        .host(&sink.url)
        .disk_buffer_directory(dir.path())
        .build()
        .unwrap();
    let users: Vec<String> = (0..1000).map(|i| format!("user-{i}")).collect();
    let start = Instant::now();
    match call_times {
        Some(times) => {
            for i in 0..n {
                let user = users[(i % 1000) as usize].as_str();
                let t = Instant::now();
                let r = client.track(Track::new(user, "bench_event").properties(props(i)));
                times.push(t.elapsed().as_nanos() as u32);
                r.unwrap();
            }
        }
        None => {
            for i in 0..n {
                let user = users[(i % 1000) as usize].as_str();
                client
                    .track(Track::new(user, "bench_event").properties(props(i)))
                    .unwrap();
            }
        }
    }
    assert_eq!(client.flush(Duration::from_secs(60)), FlushOutcome::Flushed);
    (start.elapsed(), client, dir)
}

/// utime + stime of a thread of this process, from /proc (Linux).
fn thread_cpu(name: &str) -> Option<Duration> {
    let ticks_per_sec = 100.0; // USER_HZ on Linux
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path();
        let comm = std::fs::read_to_string(path.join("comm")).ok()?;
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).ok()?;
        let after_comm = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = after_comm.split(' ').collect();
        let ticks: f64 = fields[11].parse::<f64>().ok()? + fields[12].parse::<f64>().ok()?;
        return Some(Duration::from_secs_f64(ticks / ticks_per_sec));
    }
    None
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        })
        .unwrap_or(0)
}

fn report() {
    const N: u64 = 200_000;
    let sink = sink();
    // Warm up connections, allocator and page cache.
    drop(burst(&sink, 20_000, None));
    let rss_before = rss_kib();
    let cpu_main_before = thread_cpu_self();
    let mut times = Vec::with_capacity(N as usize);
    let (elapsed, client, _dir) = burst(&sink, N, Some(&mut times));
    let cpu_main = thread_cpu_self() - cpu_main_before;
    // Thread names in /proc are cut to 15 bytes: "pulseline-worker" reads "pulseline-worke".
    let cpu_worker = thread_cpu("pulseline-worke").unwrap_or_default();
    let rss_after = rss_kib();
    let stats = client.stats();
    times.sort_unstable();
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p) as usize];
    eprintln!("--- burst of {N} events, default options, local sink on 127.0.0.1 ---");
    eprintln!(
        "capture per call: p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns",
        pct(0.5),
        pct(0.99),
        pct(0.999),
        times[times.len() - 1]
    );
    eprintln!("end to end (first capture → all acknowledged): {elapsed:?}");
    eprintln!(
        "SDK CPU: capture thread {cpu_main:?} + worker {cpu_worker:?} = {:.2} µs/event",
        (cpu_main + cpu_worker).as_secs_f64() * 1e6 / N as f64
    );
    eprintln!(
        "RSS growth (process, includes the sink): {} MiB",
        rss_after.saturating_sub(rss_before) / 1024
    );
    eprintln!(
        "sent {} · dropped {} · batches {} · spilled to disk {} · replayed {} · bytes on wire {}",
        stats.sent,
        stats.dropped.total(),
        stats.batches_sent,
        stats.buffered_on_disk,
        stats.replayed_from_disk,
        stats.bytes_sent
    );
    client.shutdown(Duration::from_secs(10));
}

/// CPU of the calling thread.
fn thread_cpu_self() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let Some(close) = stat.rfind(')') else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
    let ticks: f64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0);
    Duration::from_secs_f64(ticks / 100.0)
}

fn burst_bench(c: &mut Criterion) {
    report();
    let sink = sink();
    let mut group = c.benchmark_group("burst");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("200k_to_local_sink", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| burst(&sink, 200_000, None).0).sum())
    });
    group.finish();
}

criterion_group!(benches, capture, burst_bench);
criterion_main!(benches);
