//! A minimal HTTP/1.1 server that accepts `POST /v1/batch` and misbehaves on purpose.
//!
//! It records every request (arrival time, messageIds, the fault applied) so tests can check
//! what was lost and where duplicates came from. With an upstream, it is a proxy: it forwards
//! each request to the real collector and then applies the fault to the response.

use std::{
    collections::HashMap,
    io::Read,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// What to do with one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer 200 (or relay the upstream's answer).
    None,
    /// Answer with this status and optional `Retry-After`, without storing (or forwarding).
    Status(u16, Option<&'static str>),
    /// Read the request, store (or forward) it, then close the connection without a response:
    /// the response is lost.
    CloseAfterRead,
    /// Wait this long, then answer normally.
    Delay(Duration),
}

#[derive(Debug, Clone)]
pub struct Received {
    pub index: usize,
    pub arrived: Instant,
    pub answered: Option<Instant>,
    pub message_ids: Vec<String>,
    pub fault: Fault,
    pub gzip: bool,
}

impl Received {
    /// Whether the messages in it were stored (by the fake or the upstream collector).
    pub fn stored(&self) -> bool {
        !matches!(self.fault, Fault::Status(..))
    }
}

type Plan = Box<dyn FnMut(usize) -> Fault + Send>;

struct State {
    plan: Plan,
    received: Vec<Received>,
}

#[derive(Clone)]
pub struct FaultServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl FaultServer {
    /// Serves on `listener`; `plan` picks the fault for the n-th request (0-based).
    pub fn serve(
        listener: TcpListener,
        plan: impl FnMut(usize) -> Fault + Send + 'static,
        upstream: Option<String>,
    ) -> Self {
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            plan: Box::new(plan),
            received: Vec::new(),
        }));
        let server = FaultServer { addr, state };
        let accept = server.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let server = accept.clone();
                let (http, upstream) = (http.clone(), upstream.clone());
                tokio::spawn(async move { server.connection(stream, http, upstream).await });
            }
        });
        server
    }

    pub async fn start(plan: impl FnMut(usize) -> Fault + Send + 'static) -> Self {
        Self::serve(TcpListener::bind("127.0.0.1:0").await.unwrap(), plan, None)
    }

    pub async fn proxy(
        upstream: String,
        plan: impl FnMut(usize) -> Fault + Send + 'static,
    ) -> Self {
        Self::serve(
            TcpListener::bind("127.0.0.1:0").await.unwrap(),
            plan,
            Some(upstream),
        )
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// How many times each messageId was stored.
    pub fn stored_counts(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for r in self.received().iter().filter(|r| r.stored()) {
            for id in &r.message_ids {
                *counts.entry(id.clone()).or_default() += 1;
            }
        }
        counts
    }

    /// Asserts every id in `captured` was stored, and that every duplicate is explained by a
    /// request whose response was lost (closed, or answered after the client gave up).
    pub fn assert_nothing_lost_and_duplicates_explained(
        &self,
        captured: &[String],
        lost_responses: &[Fault],
    ) {
        let counts = self.stored_counts();
        let missing: Vec<_> = captured
            .iter()
            .filter(|id| !counts.contains_key(*id))
            .collect();
        assert!(
            missing.is_empty(),
            "{} of {} messages lost, e.g. {:?}",
            missing.len(),
            captured.len(),
            missing.first()
        );
        let explained: std::collections::HashSet<&String> = self
            .received()
            .iter()
            .filter(|r| lost_responses.contains(&r.fault))
            .flat_map(|r| r.message_ids.clone())
            .collect::<Vec<_>>()
            .iter()
            .map(|id| counts.get_key_value(id).unwrap().0)
            .collect();
        for (id, n) in &counts {
            if *n > 1 {
                assert!(
                    explained.contains(id),
                    "{id} stored {n} times without a lost response"
                );
            }
        }
    }

    async fn connection(
        &self,
        mut stream: TcpStream,
        http: reqwest::Client,
        upstream: Option<String>,
    ) {
        let mut buf = Vec::new();
        loop {
            let Some((head, body)) = read_request(&mut stream, &mut buf).await else {
                return;
            };
            let gzip = head.to_ascii_lowercase().contains("content-encoding: gzip");
            let message_ids = message_ids(&body, gzip);
            let (index, fault) = {
                let mut state = self.state.lock().unwrap();
                let index = state.received.len();
                let fault = (state.plan)(index);
                state.received.push(Received {
                    index,
                    arrived: Instant::now(),
                    answered: None,
                    message_ids,
                    fault: fault.clone(),
                    gzip,
                });
                (index, fault)
            };
            let response = match &fault {
                Fault::Status(status, retry_after) => {
                    let extra = retry_after
                        .map(|r| format!("Retry-After: {r}\r\n"))
                        .unwrap_or_default();
                    http_response(*status, &extra, r#"{"error":"injected fault"}"#)
                }
                _ => {
                    if let Fault::Delay(d) = fault {
                        tokio::time::sleep(d).await;
                    }
                    match &upstream {
                        Some(up) => forward(&http, up, &head, body).await,
                        None => http_response(200, "", r#"{"success":true}"#),
                    }
                }
            };
            if fault == Fault::CloseAfterRead {
                let _ = stream.shutdown().await;
                return;
            }
            // Stamped before the write: once the response is out, the client may finish and
            // the test read `received` before this task runs again.
            self.state.lock().unwrap().received[index].answered = Some(Instant::now());
            if stream.write_all(response.as_bytes()).await.is_err() {
                self.state.lock().unwrap().received[index].answered = None;
                return;
            }
        }
    }
}

async fn forward(http: &reqwest::Client, upstream: &str, head: &str, body: Vec<u8>) -> String {
    let mut request = http.post(format!("{upstream}/v1/batch"));
    for line in head.lines().skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            if matches!(
                name.as_str(),
                "authorization" | "content-type" | "content-encoding"
            ) {
                request = request.header(name, value.trim());
            }
        }
    }
    let response = request.body(body).send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| format!("Retry-After: {}\r\n", v.to_str().unwrap()))
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    http_response(status, &retry_after, &text)
}

fn http_response(status: u16, extra_headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra_headers}\r\n{body}",
        body.len()
    )
}

/// Reads one request (head and Content-Length body); `None` at EOF.
pub async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let mut chunk = [0u8; 64 * 1024];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[head_end..head_end + length].to_vec();
    buf.drain(..head_end + length);
    Some((head, body))
}

fn message_ids(body: &[u8], gzip: bool) -> Vec<String> {
    let mut plain = Vec::new();
    let json = if gzip {
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut plain)
            .unwrap();
        &plain[..]
    } else {
        body
    };
    let value: serde_json::Value = serde_json::from_slice(json).unwrap();
    value["batch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["messageId"].as_str().unwrap().to_owned())
        .collect()
}
