//! `pulseline-loadgen`: drives a collector's `POST /v1/batch` from N keep-alive HTTP/1.1
//! connections, each sending batches back to back, and reports acknowledged events/s, request
//! latency percentiles, errors by status and, given `--pid`, the collector's RSS and CPU.
//!
//! Only 2xx answers count as acknowledged (the collector answers 2xx only after the commit).
//! The first `--warmup` seconds are sent but not measured; requests still in flight when the
//! measured window ends are awaited and counted in the totals, not in the rates.

mod body;
mod procfs;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HOST, RETRY_AFTER};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpStream;

use crate::body::{BatchBuilder, Shape};

/// Load generator for the Pulseline collector's `/v1/batch` ingest.
#[derive(Debug, Parser)]
#[command(name = "pulseline-loadgen", version)]
struct Args {
    /// Collector base URL (plain http).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The project's write key.
    #[arg(long, env = "PULSELINE_WRITE_KEY")]
    write_key: String,
    /// Concurrent keep-alive connections, each sending one request at a time.
    #[arg(long, default_value_t = 8)]
    conns: usize,
    /// Events per request.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Send bodies gzip-compressed (`Content-Encoding: gzip`).
    #[arg(long)]
    gzip: bool,
    /// How the write key is sent.
    #[arg(long, value_enum, default_value_t = AuthScheme::Basic)]
    auth: AuthScheme,
    /// Collector process id: report its peak RSS (sampled VmRSS and VmHWM) and CPU use.
    #[arg(long)]
    pid: Option<u32>,
    /// The project's secret key: read `events_total` from /api/v1/stats before and after the
    /// run and check that it grew by exactly the number of acknowledged events.
    #[arg(long, env = "PULSELINE_SECRET_KEY")]
    secret_key: Option<String>,
    /// Runtime threads for the generator (1 keeps its CPU use lowest).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Distinct user ids the events cycle through.
    #[arg(long, default_value_t = 5_000)]
    users: u64,
    /// Spread event timestamps uniformly over this many days before now (default: all now),
    /// e.g. to fill a store with history for the dashboard benchmark.
    #[arg(long, default_value_t = 0.0)]
    spread_days: f64,
    /// Make every Nth event a crawler's (`context.bot = true`, user `bot-N`), e.g. 10 for 10%
    /// bot traffic; 0 (default): none.
    #[arg(long, default_value_t = 0)]
    bot_every: u64,
    /// Make every Nth event a browser's page view (page, referrer, campaign, location,
    /// browser, OS, device), e.g. 2 for half; 0 (default): none.
    #[arg(long, default_value_t = 0)]
    page_every: u64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Allow a target that is not a loopback address.
    #[arg(long)]
    allow_remote: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AuthScheme {
    /// HTTP Basic with the key as user name (Segment's convention).
    Basic,
    /// `Authorization: Bearer KEY`.
    Bearer,
}

/// Where and how to send; shared by every connection.
#[derive(Debug)]
struct Target {
    addr: SocketAddr,
    host: String,
    base_path: String,
    authorization: String,
}

impl Target {
    async fn parse(args: &Args) -> anyhow::Result<Self> {
        let rest = args
            .url
            .strip_prefix("http://")
            .context("--url must start with http:// (TLS is not supported)")?;
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let addr = tokio::net::lookup_host(host)
            .await
            .with_context(|| format!("resolving {host}"))?
            .next()
            .with_context(|| format!("{host} resolves to no address"))?;
        if !addr.ip().is_loopback() && !args.allow_remote {
            bail!("{addr} is not a loopback address; pass --allow-remote to load it anyway");
        }
        let authorization = match args.auth {
            AuthScheme::Basic => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{}:", args.write_key))
            ),
            AuthScheme::Bearer => format!("Bearer {}", args.write_key),
        };
        Ok(Self {
            addr,
            host: host.to_owned(),
            base_path: path.trim_end_matches('/').to_owned(),
            authorization,
        })
    }

    async fn connect<B>(&self) -> anyhow::Result<SendRequest<B>>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let stream = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }
}

/// The measurement clock, shared by every connection.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

/// What one connection saw.
#[derive(Debug)]
struct Tally {
    /// Latency in microseconds of every request that completed inside the window.
    latency_us: Histogram<u64>,
    requests: u64,
    acked_events: u64,
    /// Non-2xx answers inside the window, by status.
    errors: BTreeMap<u16, u64>,
    /// Connection failures (connect, reset, malformed response) inside the window.
    io_errors: u64,
    /// Over the whole run, warm-up and tail included: what the collector must have stored.
    acked_events_total: u64,
    requests_total: u64,
    errors_total: u64,
    /// Messages answered 2xx but listed in `rejected` (should never happen here).
    rejected_total: u64,
    /// The first transport error, for the report.
    first_io_error: Option<String>,
}

impl Tally {
    fn new() -> Self {
        Self {
            // 1 µs .. 60 s at 3 significant digits.
            latency_us: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
            requests: 0,
            acked_events: 0,
            errors: BTreeMap::new(),
            io_errors: 0,
            acked_events_total: 0,
            requests_total: 0,
            errors_total: 0,
            rejected_total: 0,
            first_io_error: None,
        }
    }

    fn merge(&mut self, other: Self) {
        self.latency_us.add(&other.latency_us).expect("same bounds");
        self.requests += other.requests;
        self.acked_events += other.acked_events;
        for (status, n) in other.errors {
            *self.errors.entry(status).or_default() += n;
        }
        self.io_errors += other.io_errors;
        self.acked_events_total += other.acked_events_total;
        self.requests_total += other.requests_total;
        self.errors_total += other.errors_total;
        self.rejected_total += other.rejected_total;
        if self.first_io_error.is_none() {
            self.first_io_error = other.first_io_error;
        }
    }
}

/// One keep-alive connection sending batches back to back until the window ends;
/// reconnects after a transport error.
async fn connection(
    index: usize,
    target: Arc<Target>,
    window: Window,
    batch: usize,
    gzip: bool,
    shape: Shape,
) -> Tally {
    let mut tally = Tally::new();
    let mut bodies = BatchBuilder::new(index, batch, gzip, shape);
    let path = format!("{}/v1/batch", target.base_path);
    'connect: while Instant::now() < window.end {
        let mut sender = match target.connect::<Full<Bytes>>().await {
            Ok(s) => s,
            Err(e) => {
                io_error(&mut tally, window, &e.to_string());
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        while Instant::now() < window.end {
            let body = bodies.next_body();
            let mut req = Request::post(path.as_str())
                .header(HOST, target.host.as_str())
                .header(CONTENT_TYPE, "application/json")
                .header(AUTHORIZATION, target.authorization.as_str());
            if gzip {
                req = req.header(CONTENT_ENCODING, "gzip");
            }
            let req = req.body(Full::new(body)).expect("valid request");
            if let Err(e) = sender.ready().await {
                io_error(&mut tally, window, &e.to_string());
                continue 'connect;
            }
            let sent = Instant::now();
            let answer = match sender.send_request(req).await {
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok()?.trim().parse::<f64>().ok());
                    match resp.into_body().collect().await {
                        Ok(b) => Ok((status, retry_after, b.to_bytes())),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            let done = Instant::now();
            let (status, retry_after, body) = match answer {
                Ok(a) => a,
                Err(e) => {
                    io_error(&mut tally, window, &e.to_string());
                    continue 'connect;
                }
            };
            let measured = done >= window.start && done <= window.end;
            tally.requests_total += 1;
            if measured {
                tally.requests += 1;
                let us = u64::try_from(done.duration_since(sent).as_micros()).unwrap_or(u64::MAX);
                tally.latency_us.saturating_record(us.max(1));
            }
            if status.is_success() {
                let accepted = accepted_count(&body).unwrap_or(batch as u64);
                tally.rejected_total += (batch as u64).saturating_sub(accepted);
                tally.acked_events_total += accepted;
                if measured {
                    tally.acked_events += accepted;
                }
            } else {
                tally.errors_total += 1;
                if measured {
                    *tally.errors.entry(status.as_u16()).or_default() += 1;
                }
                // Back off as the collector asks (as an SDK would), at most a second.
                if status == StatusCode::SERVICE_UNAVAILABLE
                    || status == StatusCode::TOO_MANY_REQUESTS
                {
                    let wait = retry_after.unwrap_or(0.1).clamp(0.0, 1.0);
                    tokio::time::sleep(Duration::from_secs_f64(wait)).await;
                }
            }
        }
    }
    tally
}

fn io_error(tally: &mut Tally, window: Window, error: &str) {
    let now = Instant::now();
    if now >= window.start && now <= window.end {
        tally.io_errors += 1;
    }
    tally.errors_total += 1;
    if tally.first_io_error.is_none() {
        tally.first_io_error = Some(error.to_owned());
    }
}

/// `accepted` from the collector's `{"success":true,"accepted":N,...}` answer, without parsing
/// the whole body.
fn accepted_count(body: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"accepted\":";
    let at = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits: Vec<u8> = body[at..]
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take_while(|b| b.is_ascii_digit())
        .copied()
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// `events_total` from `GET /api/v1/stats`.
async fn events_total(target: &Target, secret_key: &str) -> anyhow::Result<u64> {
    let mut sender = target.connect::<Empty<Bytes>>().await?;
    let req = Request::get(format!("{}/api/v1/stats", target.base_path))
        .header(HOST, target.host.as_str())
        .header(AUTHORIZATION, format!("Bearer {secret_key}"))
        .body(Empty::new())?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        bail!(
            "GET /api/v1/stats answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    v["events_total"]
        .as_u64()
        .context("/api/v1/stats has no events_total")
}

/// Collector memory and CPU, sampled while the load runs.
#[derive(Debug, Default, Clone, Copy)]
struct ProcessReport {
    peak_rss_kib: u64,
    hwm_kib: u64,
    cpu_at_start: Option<f64>,
    cpu_at_end: Option<f64>,
}

async fn sample_process(pid: String, window: Window, stop: Arc<AtomicBool>) -> ProcessReport {
    let mut report = ProcessReport::default();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        let now = Instant::now();
        if let Some(m) = procfs::memory(&pid) {
            report.peak_rss_kib = report.peak_rss_kib.max(m.rss_kib);
            report.hwm_kib = report.hwm_kib.max(m.hwm_kib);
        }
        if now >= window.start && report.cpu_at_start.is_none() {
            report.cpu_at_start = procfs::cpu_seconds(&pid);
        }
        if now <= window.end {
            report.cpu_at_end = procfs::cpu_seconds(&pid);
        }
        if stop.load(Ordering::Relaxed) {
            return report;
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.conns == 0 || args.batch == 0 || args.seconds <= 0.0 || args.warmup < 0.0 {
        bail!("--conns, --batch and --seconds must be positive, --warmup not negative");
    }
    if args.users == 0 || !args.spread_days.is_finite() || args.spread_days < 0.0 {
        bail!("--users must be positive and --spread-days not negative");
    }
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()?
    };
    let ok = runtime.block_on(run(args))?;
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let target = Arc::new(Target::parse(&args).await?);
    let stored_before = match &args.secret_key {
        Some(k) => Some(events_total(&target, k).await?),
        None => None,
    };

    let t0 = Instant::now();
    let start = t0 + Duration::from_secs_f64(args.warmup);
    let window = Window {
        start,
        end: start + Duration::from_secs_f64(args.seconds),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = args
        .pid
        .map(|pid| tokio::spawn(sample_process(pid.to_string(), window, Arc::clone(&stop))));
    let self_cpu_start = Arc::new(std::sync::Mutex::new(None::<f64>));
    {
        // This process's CPU at the window start, to report the generator's own cost.
        let slot = Arc::clone(&self_cpu_start);
        tokio::spawn(async move {
            tokio::time::sleep_until(start.into()).await;
            *slot.lock().expect("not poisoned") = procfs::cpu_seconds("self");
        });
    }
    let shape = Shape {
        users: args.users,
        spread_ms: (args.spread_days * 86_400_000.0) as i64,
        bot_every: args.bot_every,
        page_every: args.page_every,
    };
    let workers: Vec<_> = (0..args.conns)
        .map(|i| {
            tokio::spawn(connection(
                i,
                Arc::clone(&target),
                window,
                args.batch,
                args.gzip,
                shape,
            ))
        })
        .collect();
    let mut tally = Tally::new();
    for w in workers {
        tally.merge(w.await?);
    }
    let self_cpu_end = procfs::cpu_seconds("self");
    let finished = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let process = match sampler {
        Some(s) => Some(s.await?),
        None => None,
    };
    let stored_after = match &args.secret_key {
        Some(k) => Some(events_total(&target, k).await?),
        None => None,
    };

    let window_s = args.seconds;
    let h = &tally.latency_us;
    let ms = |us: u64| us as f64 / 1000.0;
    let pct = |q: f64| ms(h.value_at_quantile(q));
    let events_per_s = tally.acked_events as f64 / window_s;
    let requests_per_s = tally.requests as f64 / window_s;
    let self_cpu = match (*self_cpu_start.lock().expect("not poisoned"), self_cpu_end) {
        (Some(a), Some(b)) => {
            // The generator keeps running into the tail; scale by the time actually spent.
            let spent = finished.duration_since(window.start).as_secs_f64();
            Some((b - a) / spent.max(window_s))
        }
        _ => None,
    };
    let collector_cpu = process.and_then(|p| Some((p.cpu_at_end? - p.cpu_at_start?) / window_s));
    let stored_delta = stored_before
        .zip(stored_after)
        .map(|(a, b)| b.saturating_sub(a));
    let verified = stored_delta.map(|d| d == tally.acked_events_total);

    if args.json {
        let errors: serde_json::Map<String, serde_json::Value> = tally
            .errors
            .iter()
            .map(|(s, n)| (s.to_string(), json!(n)))
            .collect();
        let report = json!({
            "url": args.url,
            "conns": args.conns,
            "batch": args.batch,
            "gzip": args.gzip,
            "warmup_s": args.warmup,
            "seconds": window_s,
            "events_per_s": events_per_s.round(),
            "requests_per_s": (requests_per_s * 10.0).round() / 10.0,
            "acked_events": tally.acked_events,
            "requests": tally.requests,
            "latency_ms": {
                "p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "p999": pct(0.999),
                "max": ms(h.max()), "mean": h.mean() / 1000.0,
            },
            "errors": errors,
            "io_errors": tally.io_errors,
            "first_io_error": tally.first_io_error,
            "acked_events_total": tally.acked_events_total,
            "requests_total": tally.requests_total,
            "errors_total": tally.errors_total,
            "rejected_total": tally.rejected_total,
            "collector": process.map(|p| json!({
                "peak_rss_mb": p.peak_rss_kib as f64 / 1024.0,
                "vmhwm_mb": p.hwm_kib as f64 / 1024.0,
                "cpu_cores": collector_cpu,
            })),
            "loadgen_cpu_cores": self_cpu,
            "stored_delta": stored_delta,
            "verified": verified,
        });
        println!("{report}");
    } else {
        println!(
            "pulseline-loadgen: {} conns × {} events/request{}, {:.0} s measured after {:.0} s warm-up",
            args.conns,
            args.batch,
            if args.gzip { " (gzip)" } else { "" },
            window_s,
            args.warmup
        );
        println!("  acknowledged events/s  {events_per_s:>12.0}");
        println!("  requests/s             {requests_per_s:>12.1}");
        println!(
            "  latency ms             p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
            pct(0.5),
            pct(0.9),
            pct(0.99),
            pct(0.999),
            ms(h.max())
        );
        let errors = if tally.errors.is_empty() && tally.io_errors == 0 {
            "none".to_owned()
        } else {
            let mut parts: Vec<String> = tally
                .errors
                .iter()
                .map(|(s, n)| format!("{s}: {n}"))
                .collect();
            if tally.io_errors > 0 {
                parts.push(format!("io: {}", tally.io_errors));
            }
            parts.join(", ")
        };
        println!("  errors (in window)     {errors}");
        if let Some(e) = &tally.first_io_error {
            println!("  first transport error  {e}");
        }
        println!(
            "  acknowledged in total  {} events in {} requests (warm-up and tail included)",
            tally.acked_events_total, tally.requests_total
        );
        if let Some(p) = process {
            println!(
                "  collector RSS          peak sampled {:.1} MB, VmHWM {:.1} MB; CPU {}",
                p.peak_rss_kib as f64 / 1024.0,
                p.hwm_kib as f64 / 1024.0,
                collector_cpu.map_or("?".to_owned(), |c| format!("{c:.2} cores"))
            );
        }
        if let Some(c) = self_cpu {
            println!("  generator CPU          {c:.2} cores");
        }
        if let Some(d) = stored_delta {
            println!(
                "  stored (events_total)  +{d}: {}",
                if verified == Some(true) {
                    "equals the acknowledged total"
                } else {
                    "DIFFERS from the acknowledged total"
                }
            );
        }
    }
    Ok(verified != Some(false) && tally.acked_events_total > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_is_read_from_the_answer() {
        assert_eq!(
            accepted_count(br#"{"success":true,"accepted":97,"rejected":[]}"#),
            Some(97)
        );
        assert_eq!(accepted_count(br#"{"success":true}"#), None);
    }
}
