//! The command line: `serve` (the default), and project and key administration.

use std::io::Write;

use anyhow::{Context, bail};
use chrono::{SecondsFormat, Utc};
use clap::{Args, FromArgMatches, Parser, Subcommand};

use crate::config::{Config, DEFAULT_DATABASE_URL, SqliteSynchronous};
use crate::domain::KeyKind;
use crate::projects;
use crate::startup::Application;
use crate::store::{KeyRecord, Store, raw_retention};

/// `println!` for the administration commands, returning the error instead of panicking:
/// `pulseline-collector key list | head -1` closes the pipe early, and `run` then ends quietly.
macro_rules! say {
    ($($arg:tt)*) => { write_stdout(format_args!($($arg)*))? };
}

/// `println!` for `serve`'s start-up lines: a server started with stdout closed keeps serving,
/// and says on stderr what it could not print.
macro_rules! notice {
    ($($arg:tt)*) => {
        if let Err(error) = write_stdout(format_args!($($arg)*)) {
            tracing::warn!(%error, "could not print the start-up message to stdout");
        }
    };
}

fn write_stdout(args: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Whether an error is stdout's reader having gone away.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[derive(Debug, Parser)]
#[command(
    name = "pulseline-collector",
    version,
    about = "Pulseline collector: ingest, storage and the read API"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the collector (what runs with no subcommand).
    Serve(Box<Config>),
    /// Manage projects.
    Project {
        #[command(subcommand)]
        action: ProjectAction,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Manage plans: monthly event quotas and retention.
    Plan {
        #[command(subcommand)]
        action: PlanAction,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Manage dashboard users.
    User {
        #[command(subcommand)]
        action: UserAction,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Manage write and secret keys.
    Key {
        #[command(subcommand)]
        action: KeyAction,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Copy the SQLite database to a new file while the collector keeps running (for
    /// PostgreSQL, use pg_dump). Restore: stop the collector, put the copy in the database's
    /// place, start it.
    Backup {
        /// The file to write; it must not exist.
        #[arg(long, value_name = "FILE")]
        to: std::path::PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Args)]
struct DbArgs {
    /// The collector's database (the same value the server uses).
    #[arg(long, env = "PULSELINE_DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    database_url: String,
}

#[derive(Debug, Subcommand)]
enum ProjectAction {
    /// Create a project with one write key and one secret key (the secret key is shown once).
    Create {
        #[arg(long)]
        name: String,
        /// The project's plan (see `plan list`).
        #[arg(long, env = "PULSELINE_DEFAULT_PLAN", default_value = "unlimited")]
        plan: String,
        /// Print one JSON object: project_id, name, write_key, secret_key.
        #[arg(long)]
        json: bool,
    },
    /// List projects.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Move a project to another plan; its quota and retention change at once.
    SetPlan { project_id: i64, plan: String },
    /// Keep the project's raw events DAYS days (at most its plan's retention), or `plan` to
    /// keep them as long as the plan. Rollups keep the plan's retention.
    SetRawRetention { project_id: i64, days: String },
}

#[derive(Debug, Subcommand)]
enum UserAction {
    /// Create a dashboard user. Without --password a random one is generated and printed.
    Create {
        #[arg(long)]
        email: String,
        /// At least 10 characters. Prefer PULSELINE_NEW_USER_PASSWORD to keep it out of `ps`.
        #[arg(long, env = "PULSELINE_NEW_USER_PASSWORD")]
        password: Option<String>,
        /// An instance admin: owns every project nobody else owns.
        #[arg(long)]
        admin: bool,
    },
}

#[derive(Debug, Subcommand)]
enum PlanAction {
    /// List plans.
    List,
    /// Create or change a plan.
    Set {
        name: String,
        /// Events per calendar month (UTC), or `unlimited`.
        #[arg(long, value_parser = parse_limit)]
        events_per_month: Limit,
        /// Days of data kept, or `forever`.
        #[arg(long, value_parser = parse_limit)]
        retention_days: Limit,
    },
}

/// A plan limit: a positive number, or no limit (`unlimited` / `forever`).
#[derive(Debug, Clone, Copy)]
struct Limit(Option<i64>);

fn parse_limit(s: &str) -> Result<Limit, String> {
    match s {
        "unlimited" | "forever" | "none" => Ok(Limit(None)),
        n => match n.parse::<i64>() {
            Ok(v) if v > 0 => Ok(Limit(Some(v))),
            _ => Err(format!(
                "expected a positive number or 'unlimited', got '{n}'"
            )),
        },
    }
}

#[derive(Debug, Subcommand)]
enum KeyAction {
    /// List keys: write keys in full with --json (they are public), secret keys only by their
    /// prefix (they are stored hashed).
    List {
        #[arg(long)]
        project: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Issue a new key for a project (a secret key is shown once; write keys stay listed).
    Create {
        #[arg(long)]
        project: i64,
        /// `write` (public, ingest only) or `secret` (server-side, reads).
        #[arg(long, value_parser = ["write", "secret"])]
        kind: String,
        #[arg(long)]
        json: bool,
    },
    /// Replace a key with a new one of the same kind; the old one stops working at once, or
    /// after --grace-hours (at most 720), time to update the pages that carry it.
    Rotate {
        key_id: i64,
        #[arg(long, default_value_t = 0)]
        grace_hours: u32,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key; it stops working at once.
    Revoke { key_id: i64 },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match dispatch(cli).await {
        // The reader of our output left (`| head`): like other command-line tools, stop quietly.
        Err(error) if is_broken_pipe(&error) => Ok(()),
        result => result,
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => serve(default_serve_config()?).await,
        Some(Command::Serve(config)) => serve(*config).await,
        Some(Command::Project { action, db }) => project(action, &open(&db).await?).await,
        Some(Command::Key { action, db }) => key(action, &open(&db).await?).await,
        Some(Command::User { action, db }) => user(action, &open(&db).await?).await,
        Some(Command::Plan { action, db }) => plan(action, &open(&db).await?).await,
        Some(Command::Backup { to, db }) => {
            crate::backup::backup(&db.database_url, &to).await?;
            say!("Backed up {} to {}", db.database_url, to.display());
            Ok(())
        }
    }
}

/// `serve` with its flags at their defaults (and environment variables applied).
fn default_serve_config() -> anyhow::Result<Config> {
    let matches =
        Config::augment_args(clap::Command::new("serve")).try_get_matches_from(["serve"])?;
    Ok(Config::from_arg_matches(&matches)?)
}

/// How long a command's SQLite write waits for the write lock. Longer than the server's: a
/// command runs beside a server whose background writers (rule passes, the Web page's fold,
/// maintenance) take the lock often, and waiting a few seconds beats failing.
const CLI_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

async fn open(db: &DbArgs) -> anyhow::Result<Store> {
    Store::open_waiting(&db.database_url, SqliteSynchronous::Full, CLI_BUSY_TIMEOUT)
        .await
        .with_context(|| format!("opening the database at {}", db.database_url))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    let ops_listen = config.ops.ops_listen;
    let database = config.database_url.clone();
    let app = Application::build(config).await?;
    if let Some(keys) = app.bootstrap_keys() {
        notice!(
            "\nCreated project {} ({}). Its keys are shown once; keep them now.\n\n  \
             write key:  {}   (public: SDKs and browsers send events with it)\n  \
             secret key: {}   (server-side: reads data; never ship it)\n\n\
             Send an event:\n  curl -u {}: -H 'Content-Type: application/json' \\\n    \
             -d '{{\"type\":\"track\",\"userId\":\"user-1\",\"event\":\"Signed Up\"}}' \\\n    \
             http://127.0.0.1:{}/v1/track\n",
            keys.project_id,
            keys.name,
            keys.write_key,
            keys.secret_key,
            keys.write_key,
            app.port()
        );
    }
    if let Some(admin) = app.first_admin() {
        notice!(
            "\nCreated the first dashboard admin. The password is shown once; change it after \
             logging in.\n\n  dashboard: http://{}:{}/\n  e-mail:    {}\n  password:  {}\n",
            listen.ip(),
            app.port(),
            admin.email,
            admin.password
        );
    }
    notice!("Listening on http://{}:{}", listen.ip(), app.port());
    if let (Some(ops), Some(port)) = (ops_listen, app.ops_port()) {
        notice!(
            "Operations (/metrics, /healthz, /readyz) on http://{}:{port}",
            ops.ip()
        );
    }
    tracing::info!(listen = %listen, port = app.port(), database = %database, "pulseline collector listening");
    app.run_until_stopped().await
}

async fn user(action: UserAction, store: &Store) -> anyhow::Result<()> {
    match action {
        UserAction::Create {
            email,
            password,
            admin,
        } => {
            let generated = password.is_none();
            let password = password.unwrap_or_else(|| crate::domain::account::random_token(20));
            let email =
                crate::accounts::create_user(store, &email, &password, admin, Utc::now()).await?;
            say!(
                "Created user {email}{}",
                if admin { " (instance admin)" } else { "" }
            );
            if generated {
                say!("password: {password}   (shown once)");
            }
            Ok(())
        }
    }
}

async fn project(action: ProjectAction, store: &Store) -> anyhow::Result<()> {
    match action {
        ProjectAction::Create { name, plan, json } => {
            let name = name.trim();
            if name.is_empty() {
                bail!("--name must not be empty");
            }
            let keys = projects::create_project(store, name, &plan, Utc::now()).await?;
            if json {
                say!("{}", serde_json::to_string(&keys)?);
            } else {
                say!(
                    "Created project {} ({}). Keys are shown once:\n  write key:  {}\n  secret key: {}",
                    keys.project_id,
                    keys.name,
                    keys.write_key,
                    keys.secret_key
                );
            }
        }
        ProjectAction::List { json } => {
            let projects = store.list_projects().await?;
            if json {
                let rows: Vec<_> = projects
                    .iter()
                    .map(|p| serde_json::json!({"project_id": p.id, "name": p.name, "plan": p.plan, "created_at": p.created_at}))
                    .collect();
                say!("{}", serde_json::to_string(&rows)?);
            } else {
                say!("{:<6} {:<24} CREATED", "ID", "NAME");
                for p in projects {
                    say!(
                        "{:<6} {:<24} {}",
                        p.id,
                        p.name,
                        p.created_at.to_rfc3339_opts(SecondsFormat::Secs, true)
                    );
                }
            }
        }
        ProjectAction::SetPlan { project_id, plan } => {
            if !store.set_project_plan(project_id, &plan).await? {
                bail!("there is no project {project_id}: see `pulseline-collector project list`");
            }
            say!("Project {project_id} is now on plan {plan}.");
        }
        ProjectAction::SetRawRetention { project_id, days } => {
            let days = match days.as_str() {
                "plan" => None,
                n => Some(n.parse::<i64>().map_err(|_| {
                    anyhow::anyhow!("DAYS must be a number of days or 'plan', not '{n}'")
                })?),
            };
            let Some(current) = store.raw_retention(project_id).await? else {
                bail!("there is no project {project_id}: see `pulseline-collector project list`");
            };
            if let Some(days) = days {
                raw_retention::validate(days, current.plan_retention_days)
                    .map_err(|e| anyhow::anyhow!(e))?;
            }
            store.set_raw_retention(project_id, days).await?;
            match days {
                Some(d) => say!("Project {project_id} keeps raw events {d} days."),
                None => say!("Project {project_id} keeps raw events as long as its plan."),
            }
        }
    }
    Ok(())
}

async fn plan(action: PlanAction, store: &Store) -> anyhow::Result<()> {
    let show = |n: Option<i64>, none: &str| n.map_or_else(|| none.to_owned(), |v| v.to_string());
    match action {
        PlanAction::List => {
            say!(
                "{:<12} {:>16} {:>15}",
                "PLAN",
                "EVENTS/MONTH",
                "RETENTION DAYS"
            );
            for p in store.list_plans().await? {
                say!(
                    "{:<12} {:>16} {:>15}",
                    p.name,
                    show(p.events_per_month, "unlimited"),
                    show(p.retention_days, "forever")
                );
            }
        }
        PlanAction::Set {
            name,
            events_per_month,
            retention_days,
        } => {
            let plan = crate::store::Plan {
                name: name.clone(),
                events_per_month: events_per_month.0,
                retention_days: retention_days.0,
            };
            store.upsert_plan(&plan).await?;
            let kept = plan
                .retention_days
                .map_or_else(|| "forever".to_owned(), |d| format!("{d} days"));
            say!(
                "Plan {name}: {} events/month, data kept {kept}.",
                show(plan.events_per_month, "unlimited"),
            );
        }
    }
    Ok(())
}

async fn key(action: KeyAction, store: &Store) -> anyhow::Result<()> {
    let now = Utc::now();
    match action {
        KeyAction::List { project, json } => {
            let keys = store.list_keys(project).await?;
            if json {
                let rows: Vec<_> = keys.iter().map(key_json).collect();
                say!("{}", serde_json::to_string(&rows)?);
            } else {
                say!(
                    "{:<6} {:<8} {:<7} {:<14} {:<21} STATUS",
                    "ID",
                    "PROJECT",
                    "KIND",
                    "PREFIX",
                    "CREATED"
                );
                for k in keys {
                    let status = match k.revoked_at {
                        Some(at) if at > now => {
                            format!(
                                "active until {}",
                                at.to_rfc3339_opts(SecondsFormat::Secs, true)
                            )
                        }
                        Some(at) => {
                            format!("revoked {}", at.to_rfc3339_opts(SecondsFormat::Secs, true))
                        }
                        None => "active".to_owned(),
                    };
                    say!(
                        "{:<6} {:<8} {:<7} {:<14} {:<21} {status}",
                        k.id,
                        k.project_id,
                        k.kind,
                        format!("{}…", k.prefix),
                        k.created_at.to_rfc3339_opts(SecondsFormat::Secs, true)
                    );
                }
            }
        }
        KeyAction::Create {
            project,
            kind,
            json,
        } => {
            let kind = KeyKind::parse(&kind).context("--kind must be write or secret")?;
            let Some(issued) = projects::create_key(store, project, kind, now).await? else {
                bail!("there is no project {project}: see `pulseline-collector project list`");
            };
            print_issued(&issued, json, "Created")?;
        }
        KeyAction::Rotate {
            key_id,
            grace_hours,
            json,
        } => {
            let grace = chrono::Duration::hours(i64::from(grace_hours));
            if grace > projects::MAX_KEY_ROTATION_GRACE {
                bail!(
                    "--grace-hours {grace_hours} is longer than {} hours (30 days)",
                    projects::MAX_KEY_ROTATION_GRACE.num_hours()
                );
            }
            let Some(issued) = projects::rotate_key(store, key_id, grace, now).await? else {
                bail!("there is no key {key_id}: see `pulseline-collector key list`");
            };
            let verb = if grace_hours == 0 {
                format!("Revoked key {key_id} and created")
            } else {
                format!("Key {key_id} keeps working for {grace_hours} more hours. Created")
            };
            print_issued(&issued, json, &verb)?;
        }
        KeyAction::Revoke { key_id } => {
            let Some(k) = store.revoke_key(key_id, now).await? else {
                bail!("there is no key {key_id}: see `pulseline-collector key list`");
            };
            say!(
                "Revoked {} key {} ({}…) of project {}.",
                k.kind,
                k.id,
                k.prefix,
                k.project_id
            );
        }
    }
    Ok(())
}

fn print_issued(issued: &projects::IssuedKey, json: bool, verb: &str) -> anyhow::Result<()> {
    let r = &issued.record;
    if json {
        let mut v = key_json(r);
        v["key"] = issued.key.as_str().into();
        say!("{}", serde_json::to_string(&v)?);
    } else {
        let shown = match r.kind {
            KeyKind::Secret => "It is shown once",
            KeyKind::Write => "`key list` and the dashboard show it again",
        };
        say!(
            "{verb} {} key {} for project {}. {shown}:\n  {}",
            r.kind,
            r.id,
            r.project_id,
            issued.key.as_str()
        );
    }
    Ok(())
}

fn key_json(k: &KeyRecord) -> serde_json::Value {
    serde_json::json!({
        "key_id": k.id,
        "project_id": k.project_id,
        "kind": k.kind.as_str(),
        "prefix": k.prefix,
        "created_at": k.created_at,
        "revoked_at": k.revoked_at,
        // Write keys are public; secret keys are stored as hashes only.
        "key": k.plain,
    })
}
