//! `Client::reinitialize_after_fork` with a real `fork()`: the child gets a working client, sends
//! nothing the parent captured, generates its own message ids, and does not keep the parent's
//! disk-buffer files locked.
#![cfg(target_os = "linux")]
#![allow(unsafe_code)] // fork, waitpid, _exit: the point of this test

use std::{
    collections::HashMap,
    fs::OpenOptions,
    io::{Read, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use pulseline::{
    BatchRequest, BoxFuture, Client, Error, FlushOutcome, Track, Transport, TransportResponse,
};

/// Appends `<pid> <messageId> <event>` per delivered message to a file shared by parent and
/// child (O_APPEND, one write per batch). Answers 503 while `failing_pid` is this process.
struct FileTransport {
    log: PathBuf,
    failing_pid: AtomicU32,
}

impl Transport for FileTransport {
    fn send(&self, request: BatchRequest) -> BoxFuture<Result<TransportResponse, Error>> {
        let pid = std::process::id();
        if self.failing_pid.load(Ordering::SeqCst) == pid {
            return Box::pin(async { Ok(TransportResponse::new(503, b"down".to_vec())) });
        }
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        let mut lines = String::new();
        for m in body["batch"].as_array().unwrap() {
            let (id, event) = (
                m["messageId"].as_str().unwrap(),
                m["event"].as_str().unwrap(),
            );
            lines.push_str(&format!("{pid} {id} {event}\n"));
        }
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.log)
            .unwrap();
        file.write_all(lines.as_bytes()).unwrap();
        Box::pin(async { Ok(TransportResponse::new(200, br#"{"success":true}"#.to_vec())) })
    }
}

fn client(transport: &std::sync::Arc<FileTransport>, dir: &Path) -> Client {
    Client::builder("wk_test")
        .transport(std::sync::Arc::clone(transport))
        .gzip(false)
        .disk_buffer_directory(dir)
        .max_batch_messages(1)
        .flush_interval(Duration::from_millis(20))
        .retry_delays(Duration::from_millis(5), Duration::from_millis(20))
        .max_retry_elapsed(Duration::from_millis(100))
        .build()
        .unwrap()
}

fn track(client: &Client, event: &str) -> String {
    client
        .track(Track::new("user-1", event))
        .unwrap()
        .to_string()
}

/// (messageId → how many times delivered, event → how many times delivered).
fn delivered(log: &Path) -> (HashMap<String, usize>, HashMap<String, usize>) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let (mut ids, mut events) = (HashMap::new(), HashMap::new());
    for line in text.lines() {
        let mut parts = line.split(' ').skip(1);
        *ids.entry(parts.next().unwrap().to_owned()).or_default() += 1;
        *events.entry(parts.next().unwrap().to_owned()).or_default() += 1;
    }
    (ids, events)
}

/// Runs `child` in a forked process; returns its exit status once it ends.
fn fork(child: impl FnOnce() -> i32) -> libc::pid_t {
    // SAFETY: the child only runs `child` (which builds a fresh client) and `_exit`s without
    // unwinding into the test harness.
    match unsafe { libc::fork() } {
        -1 => panic!("fork failed"),
        0 => {
            let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)) {
                Ok(code) => code,
                Err(panic) => {
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    // Not `eprintln!`: the harness captures that, and this process never reports.
                    let _ = std::io::stderr()
                        .write_all(format!("child panicked: {message}\n").as_bytes());
                    101
                }
            };
            unsafe { libc::_exit(code) }
        }
        pid => pid,
    }
}

fn wait(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is a valid out-pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "child died: status {status}");
    libc::WEXITSTATUS(status)
}

#[test]
fn child_sends_only_its_own_events_and_frees_the_parents_disk_buffer() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, log) = (tmp.path().join("buffer"), tmp.path().join("delivered.log"));
    let transport = std::sync::Arc::new(FileTransport {
        log: log.clone(),
        failing_pid: AtomicU32::new(std::process::id()),
    });
    let parent = client(&transport, &dir);
    // Sealed at once (batches of one), written to the parent's segment file, and failing: they
    // sit in the parent's memory and in a file the parent holds locked.
    let before: Vec<String> = (0..3)
        .map(|i| track(&parent, &format!("before-{i}")))
        .collect();
    assert!(matches!(
        parent.flush(Duration::from_secs(5)),
        FlushOutcome::Persisted { .. } | FlushOutcome::TimedOut { .. }
    ));

    let (mut to_child, mut in_child) = UnixStream::pair().unwrap();
    let parent_for_child = parent.clone();
    let parent_end = std::os::fd::AsRawFd::as_raw_fd(&to_child);
    let child = fork(move || {
        // Without the parent's end, the child's read ends if the parent dies.
        // SAFETY: the child never uses `to_child`, whose descriptor this is.
        unsafe { libc::close(parent_end) };
        let client = parent_for_child.reinitialize_after_fork().unwrap();
        // Ids generated right after the fork, in the same milliseconds as the parent's.
        let ids: Vec<String> = (0..200)
            .map(|i| track(&client, &format!("child-{i}")))
            .collect();
        assert_eq!(client.flush(Duration::from_secs(10)), FlushOutcome::Flushed);
        in_child.write_all(ids.join("\n").as_bytes()).unwrap();
        in_child.write_all(b"\n.\n").unwrap();
        // Stay alive (holding whatever descriptors were inherited) until the parent is done.
        let mut done = [0u8; 1];
        in_child.read_exact(&mut done).unwrap();
        i32::from(!client.shutdown(Duration::from_secs(5)).is_complete())
    });
    let parent_ids: Vec<String> = (0..200)
        .map(|i| track(&parent, &format!("parent-{i}")))
        .collect();

    let mut reply = String::new();
    while !reply.ends_with("\n.\n") {
        let mut buf = [0u8; 4096];
        let n = to_child.read(&mut buf).unwrap();
        assert!(n > 0, "child exited early");
        reply.push_str(std::str::from_utf8(&buf[..n]).unwrap());
    }
    let child_ids: Vec<&str> = reply.lines().filter(|l| *l != ".").collect();
    assert_eq!(child_ids.len(), 200);
    assert!(
        child_ids
            .iter()
            .all(|id| !parent_ids.iter().any(|p| p == id)),
        "parent and child generated the same messageId"
    );

    // The parent gives up on its files (still failing), releasing their locks. A new client
    // must be able to replay them while the child is still alive.
    let outcome = parent.shutdown(Duration::from_millis(500));
    assert_eq!(outcome.lost, 0, "{outcome:?}");
    transport.failing_pid.store(0, Ordering::SeqCst);
    let next = client(&transport, &dir);
    assert_eq!(next.flush(Duration::from_secs(10)), FlushOutcome::Flushed);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    // Replays are not part of `flush`: wait until the parent's 203 messages are all in.
    let parents = |e: &&String| e.starts_with("before-") || e.starts_with("parent-");
    while delivered(&log).1.keys().filter(parents).count() < 203
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }

    to_child.write_all(b"x").unwrap();
    assert_eq!(wait(child), 0, "child's own delivery failed");
    let outcome = next.shutdown(Duration::from_secs(5));
    assert!(outcome.is_complete(), "{outcome:?} {:?}", next.stats());

    let (ids, events) = delivered(&log);
    for id in &before {
        assert_eq!(
            ids.get(id),
            Some(&1),
            "pre-fork message {id} delivered once"
        );
    }
    for i in 0..200 {
        assert_eq!(events.get(&format!("child-{i}")), Some(&1), "child-{i}");
        assert_eq!(events.get(&format!("parent-{i}")), Some(&1), "parent-{i}");
    }
    assert!(
        ids.values().all(|&n| n == 1),
        "a message was delivered twice"
    );
}
