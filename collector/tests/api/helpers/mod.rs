//! Test helpers: the collector on port 0 with a fresh SQLite file, and a client for it.
#![allow(dead_code, unreachable_pub)]

mod api;
pub mod process;
pub mod standins;

pub use api::WAIT;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pulseline_collector::clock::{Clock, SystemClock};
use pulseline_collector::config::Config;
use pulseline_collector::projects::ProjectKeys;
use pulseline_collector::startup::{Application, ShutdownHandle};
use serde_json::Value;
use tempfile::TempDir;

pub struct TestApp {
    pub base: String,
    pub keys: ProjectKeys,
    pub http: reqwest::Client,
    pub dir: TempDir,
    pub database_url: String,
    pub shutdown: ShutdownHandle,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_with_clock(configure, Arc::new(SystemClock)).await
}

/// The backend under test: a fresh PostgreSQL database on the server named by
/// `PULSELINE_TEST_POSTGRES_URL` when it is set (the test command sets it for the second run of
/// the suite), else a fresh SQLite file in `dir`.
pub async fn fresh_database_url(dir: &Path) -> String {
    match std::env::var("PULSELINE_TEST_POSTGRES_URL") {
        Ok(admin) if !admin.is_empty() => {
            use sqlx::Connection;
            let name = format!("pl_test_{}", uuid::Uuid::now_v7().simple());
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("PostgreSQL reachable");
            drop_finished_databases(&mut conn).await;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create test database");
            THIS_TESTS_DATABASES.with(|d| d.0.borrow_mut().push(name.clone()));
            let (server, _) = admin.rsplit_once('/').expect("URL with a database path");
            format!("{server}/{name}")
        }
        _ => format!("sqlite://{}", dir.join("pulseline.db").display()),
    }
}

/// The databases of this test's thread, handed to [`FINISHED_DATABASES`] when the thread ends:
/// the whole suite runs in one process, and keeping every test's database until the end would
/// hold gigabytes. Tests that build their own app still get theirs dropped this way.
struct ThreadDatabases(std::cell::RefCell<Vec<String>>);

impl Drop for ThreadDatabases {
    fn drop(&mut self) {
        // Only a lock here: a thread-local destructor must not start runtimes or threads.
        let mut finished = FINISHED_DATABASES.lock().unwrap_or_else(|e| e.into_inner());
        finished.append(self.0.get_mut());
    }
}

thread_local! {
    static THIS_TESTS_DATABASES: ThreadDatabases = const {
        ThreadDatabases(std::cell::RefCell::new(Vec::new()))
    };
}

/// Databases of tests whose thread has ended; the next test to create one drops them. The
/// last few of a run are left to the caller (scripts/test.sh drops `pl_test_%` afterwards).
static FINISHED_DATABASES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

async fn drop_finished_databases(conn: &mut sqlx::PgConnection) {
    let finished =
        std::mem::take(&mut *FINISHED_DATABASES.lock().unwrap_or_else(|e| e.into_inner()));
    for name in finished {
        // FORCE: a child process of the test may still hold a connection.
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut *conn)
            .await
        {
            eprintln!("could not drop the finished test database {name}: {e}");
        }
    }
}

pub fn on_postgres() -> bool {
    std::env::var("PULSELINE_TEST_POSTGRES_URL").is_ok_and(|u| !u.is_empty())
}

pub async fn spawn_app_with_clock(
    configure: impl FnOnce(&mut Config),
    clock: Arc<dyn Clock>,
) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::for_tests_with_database(fresh_database_url(dir.path()).await);
    configure(&mut config);
    let database_url = config.database_url.clone();
    let app = Application::build_with_clock(config, clock)
        .await
        .expect("app builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let keys = app
        .bootstrap_keys()
        .expect("a fresh database creates a default project");
    let shutdown = app.shutdown_handle();
    let task = tokio::spawn(app.run_until_stopped());
    TestApp {
        base,
        keys,
        http: reqwest::Client::new(),
        dir,
        database_url,
        shutdown,
        task,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POST a JSON body to `path` with the write key as Basic user.
    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .basic_auth(&self.keys.write_key, Some(""))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.keys.secret_key)
            .send()
            .await
            .expect("request sent");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn events_total(&self) -> i64 {
        let (status, body) = self.get_json("/api/v1/stats").await;
        assert_eq!(status, 200, "{body}");
        body["events_total"].as_i64().expect("events_total")
    }

    /// Every stored event, following the cursor to the end.
    pub async fn all_events(&self, query: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let limit = if query.contains("limit=") {
                ""
            } else {
                "&limit=1000"
            };
            let mut path = format!("/api/v1/events?x=1{limit}{query}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let (status, body) = self.get_json(&path).await;
            assert_eq!(status, 200, "{body}");
            out.extend(body["events"].as_array().expect("events").iter().cloned());
            match body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("pulseline.db")
    }

    /// Runs one statement on the app's database, whichever backend it is.
    pub async fn exec_sql(&self, sql: &str) {
        exec_sql(&self.database_url, sql).await;
    }

    /// One integer from the app's database.
    pub async fn query_i64(&self, sql: &str) -> i64 {
        query_i64(&self.database_url, sql).await
    }

    /// A store on the app's database, as another process (the CLI, a replica) would open it.
    pub async fn store(&self) -> pulseline_collector::store::Store {
        pulseline_collector::store::Store::open(&self.database_url, Default::default())
            .await
            .expect("store opens")
    }
}

pub fn track(user: &str, event: &str, id: &str) -> Value {
    serde_json::json!({
        "type": "track", "userId": user, "event": event, "messageId": id,
        "timestamp": "2026-11-22T10:00:00.000Z",
        "properties": {"plan": "pro", "amount": 42.5, "flag": true}
    })
}

/// The first column of every row, from a database, whichever backend it is.
pub async fn query_column<T>(database_url: &str, sql: &str) -> Vec<T>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    T: Send + Unpin,
{
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    if database_url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(database_url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(database_url).await.unwrap();
        sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap()
    }
}

/// Stores Segment messages (track or page, with `messageId`, ids and an RFC 3339 `timestamp`)
/// as raw `events` rows of `project`, 50 per statement, bypassing ingest: how an older
/// collector's database holds them before an upgrade's backfill reads them.
pub async fn insert_raw_events(database_url: &str, project: i64, messages: &[Value]) {
    let text = |v: &Value| {
        v.as_str().map_or("NULL".to_owned(), |s| {
            format!("'{}'", s.replace('\'', "''"))
        })
    };
    for chunk in messages.chunks(50) {
        let rows: Vec<String> = chunk
            .iter()
            .map(|m| {
                let ts = chrono::DateTime::parse_from_rfc3339(m["timestamp"].as_str().unwrap())
                    .unwrap()
                    .timestamp_millis();
                let (kind, event) = match m["type"].as_str().unwrap() {
                    "page" => ("page", &m["name"]),
                    kind => (kind, &m["event"]),
                };
                format!(
                    "({project}, {}, '{kind}', {}, {}, {}, {ts}, 0, {})",
                    text(&m["messageId"]),
                    text(event),
                    text(&m["userId"]),
                    text(&m["anonymousId"]),
                    text(&Value::String(m.to_string())),
                )
            })
            .collect();
        exec_sql(
            database_url,
            &format!(
                "INSERT INTO events (project_id, message_id, type, event, user_id, anonymous_id,
                                     timestamp, received_at, body) VALUES {}",
                rows.join(", ")
            ),
        )
        .await;
    }
}

/// Runs one statement on a database, whichever backend it is.
pub async fn exec_sql(database_url: &str, sql: &str) {
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    if database_url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(database_url).await.unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
    } else {
        let mut c = sqlx::PgConnection::connect(database_url).await.unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
    }
}

/// Brings the empty database at `database_url` to migration `version` (and no further), as an
/// older collector left it.
pub async fn migrate_to(database_url: &str, version: i64) {
    use sqlx::Connection;
    let sqlite = database_url.starts_with("sqlite:");
    let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../migrations")
        .join(if sqlite { "sqlite" } else { "postgres" });
    let migrator = sqlx::migrate::Migrator::new(folder).await.unwrap();
    if sqlite {
        use std::str::FromStr;
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(database_url)
            .unwrap()
            .create_if_missing(true);
        let mut c = sqlx::SqliteConnection::connect_with(&options)
            .await
            .unwrap();
        migrator.run_to(version, &mut c).await.unwrap();
    } else {
        let mut c = sqlx::PgConnection::connect(database_url).await.unwrap();
        migrator.run_to(version, &mut c).await.unwrap();
    }
}

/// One integer from a database, whichever backend it is.
pub async fn query_i64(database_url: &str, sql: &str) -> i64 {
    let values = query_column(database_url, sql).await;
    *values
        .first()
        .unwrap_or_else(|| panic!("no row from {sql}"))
}
