//! `pulseline-collector backup --to FILE`: a consistent copy of a SQLite database, taken while
//! the collector keeps serving (docs/deploy.md, "Backups").

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

/// How long the backup waits for SQLite's locks (a checkpoint, a migration) before giving up.
pub const BACKUP_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Copies the database at `database_url` to `to`, which must not exist yet.
///
/// SQLite: `VACUUM INTO` reads the database in one read transaction, so the copy is the
/// database as of one instant: every batch acknowledged before the backup started is in it,
/// and writers go on meanwhile (WAL). It is written as `<to>.partial` and renamed when
/// complete, so `to` is never a half-written file. PostgreSQL: refused, saying to use pg_dump.
pub async fn backup(database_url: &str, to: &Path) -> anyhow::Result<()> {
    if database_url.starts_with("postgres:") || database_url.starts_with("postgresql:") {
        bail!(
            "backup copies SQLite databases; this collector uses PostgreSQL, which has its own \
             consistent online backup: pg_dump --format=custom --file=pulseline.dump \
             \"$PULSELINE_DATABASE_URL\" (restore into an empty database with pg_restore \
             --dbname=...; see docs/deploy.md, \"Backups\")"
        );
    }
    if !database_url.starts_with("sqlite:") {
        bail!("PULSELINE_DATABASE_URL must start with sqlite: or postgres:, not '{database_url}'");
    }
    if to.exists() {
        bail!(
            "{} already exists: backup never overwrites; choose a new file name",
            to.display()
        );
    }
    let partial = PathBuf::from(format!("{}.partial", to.display()));
    // A leftover of an interrupted backup is ours to replace.
    let _ = std::fs::remove_file(&partial);
    let options = SqliteConnectOptions::from_str(database_url)
        .with_context(|| format!("reading the database URL {database_url}"))?
        .create_if_missing(false)
        .read_only(true)
        .busy_timeout(BACKUP_BUSY_TIMEOUT);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("opening the database {database_url} (is the path right?)"))?;
    let target = partial
        .to_str()
        .context("the backup file's path must be valid UTF-8")?
        .to_owned();
    sqlx::query("VACUUM INTO ?")
        .bind(&target)
        .execute(&mut conn)
        .await
        .with_context(|| format!("copying {database_url} into {target}"))?;
    conn.close().await.ok();
    std::fs::rename(&partial, to)
        .with_context(|| format!("renaming {} to {}", partial.display(), to.display()))?;
    Ok(())
}
