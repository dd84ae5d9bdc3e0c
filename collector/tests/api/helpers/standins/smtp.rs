//! An SMTP server that accepts every message and keeps it.

use super::*;

/// A minimal SMTP server that accepts every message and keeps it.
#[derive(Debug)]
pub struct SmtpSink {
    pub url: String,
    pub messages: Arc<std::sync::Mutex<Vec<String>>>,
    changed: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let messages = Arc::new(std::sync::Mutex::new(Vec::new()));
        let changed = Arc::new(Notify::new());
        let (m, c) = (Arc::clone(&messages), Arc::clone(&changed));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (m, c) = (Arc::clone(&m), Arc::clone(&c));
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    write.write_all(b"220 sink ESMTP ready\r\n").await.ok();
                    let mut data: Option<String> = None;
                    while let Ok(Some(line)) = lines.next_line().await {
                        if let Some(buf) = &mut data {
                            if line == "." {
                                m.lock().unwrap().push(std::mem::take(buf));
                                data = None;
                                c.notify_waiters();
                                write.write_all(b"250 2.0.0 queued\r\n").await.ok();
                            } else {
                                buf.push_str(&line);
                                buf.push('\n');
                            }
                            continue;
                        }
                        let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
                        let reply: &[u8] = match verb.as_str() {
                            "EHLO" | "HELO" => b"250-sink\r\n250 8BITMIME\r\n",
                            "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 2.1.0 ok\r\n",
                            "DATA" => {
                                data = Some(String::new());
                                b"354 end with <CRLF>.<CRLF>\r\n"
                            }
                            "QUIT" => {
                                write.write_all(b"221 bye\r\n").await.ok();
                                return;
                            }
                            _ => b"502 not implemented\r\n",
                        };
                        write.write_all(reply).await.ok();
                    }
                });
            }
        });
        Self {
            url: format!("smtp://127.0.0.1:{port}"),
            messages,
            changed,
            task,
        }
    }

    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let notified = self.changed.notified();
            let got = self.messages.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("expected {n} emails within {within:?}, got {}", got.len());
            }
        }
    }
}
