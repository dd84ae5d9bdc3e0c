//! The collector as its own process, as an operator runs it: replicas on one database, a
//! process to kill, and projects made with the CLI.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;
use tempfile::TempDir;

/// A collector process; killed when dropped, so a failing test leaves none behind.
#[derive(Debug)]
pub struct Replica {
    pub child: Child,
    /// `http://127.0.0.1:<port>`, as the process printed it.
    pub base: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the collector binary on `database_url` (port 0, warnings only, plus `env`) and
/// returns once it listens.
pub fn start_replica(database_url: &str, env: &[(&str, &str)]) -> Replica {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pulseline-collector"))
        .env("PULSELINE_LISTEN", "127.0.0.1:0")
        .env("PULSELINE_DATABASE_URL", database_url)
        .env("PULSELINE_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .expect("collector starts");
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines {
        let line = line.unwrap();
        if let Some(url) = line.strip_prefix("Listening on ") {
            return Replica {
                child,
                base: url.to_owned(),
            };
        }
    }
    let status = child.wait();
    panic!("the collector exited before listening: {status:?}");
}

/// A fresh database holding one project made with `pulseline-collector project create`.
#[derive(Debug)]
pub struct CliProject {
    pub url: String,
    pub write: String,
    pub secret: String,
    _dir: TempDir,
}

pub async fn cli_project() -> CliProject {
    let dir = tempfile::tempdir().unwrap();
    let url = super::fresh_database_url(dir.path()).await;
    let created = Command::new(env!("CARGO_BIN_EXE_pulseline-collector"))
        .args(["project", "create", "--name", "Replicated", "--json"])
        .env("PULSELINE_DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let keys: Value = serde_json::from_slice(&created.stdout).unwrap();
    CliProject {
        url,
        write: keys["write_key"].as_str().unwrap().to_owned(),
        secret: keys["secret_key"].as_str().unwrap().to_owned(),
        _dir: dir,
    }
}
