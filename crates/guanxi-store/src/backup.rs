//! Online backup and restore of the embedded SQLite database. `VACUUM INTO` writes a consistent
//! snapshot while the server keeps serving; restore checks the file is a healthy Guanxi database
//! and refuses to replace a database that a running server holds (the server keeps an exclusive
//! lock on `<database>.lock` while it runs).

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use sqlx::{Connection, Row};

use crate::db::{Backend, Db, sqlite_path};
use crate::sql::Sql;

/// The lock file that marks a database as in use.
pub fn lock_path(db_file: &Path) -> PathBuf {
    let mut name = db_file.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Holds the in-use lock for as long as it lives.
#[derive(Debug)]
pub struct InUseLock {
    _file: File,
}

/// Marks the SQLite database behind `url` as in use. Fails when another process holds it.
/// Does nothing for PostgreSQL, where several servers share one database.
pub fn lock_database(url: &str) -> anyhow::Result<Option<InUseLock>> {
    let Some(path) = sqlite_path(url) else {
        return Ok(None);
    };
    let lock = lock_path(&path);
    // A command run before the first `serve` (`demo-data --size` into a new data directory)
    // creates the database's folder, as opening the database would.
    if let Some(dir) = lock.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .with_context(|| format!("cannot open {}", lock.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(InUseLock { _file: file })),
        Err(_) => bail!("the database {} is in use by a running Guanxi server", path.display()),
    }
}

/// Writes a consistent copy of the live database to `target` (which must not exist).
pub async fn backup(db: &Db, target: &Path) -> anyhow::Result<()> {
    if db.backend() != Backend::Sqlite {
        bail!("guanxi backup copies the embedded SQLite database; for PostgreSQL use pg_dump");
    }
    if target.exists() {
        bail!("{} already exists; choose a new file name", target.display());
    }
    let target_text = target.to_str().context("the backup path must be valid UTF-8")?;
    // A connection of its own: the snapshot is read without holding the writer, so the server
    // keeps taking writes while the copy is made.
    let mut conn = sqlx::AnyConnection::connect(db.url())
        .await
        .context("cannot open the database")?;
    let mut sql = Sql::of(Backend::Sqlite, "VACUUM INTO ");
    sql.bind(target_text);
    sql.query().execute(&mut conn).await.context("backup failed")?;
    conn.close().await.ok();
    Ok(())
}

/// Checks that `file` is an intact SQLite database with Guanxi's schema.
pub async fn verify(file: &Path) -> anyhow::Result<()> {
    let url = format!("sqlite://{}?mode=ro", file.display());
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&url)
        .await
        .with_context(|| format!("{} is not a readable SQLite database", file.display()))?;
    let check: String = sqlx::query("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .with_context(|| format!("{} is not a readable SQLite database", file.display()))?
        .try_get(0)?;
    if check != "ok" {
        bail!("{} failed the integrity check: {check}", file.display());
    }
    sqlx::query("SELECT count(*) FROM schema_migrations")
        .fetch_one(&mut conn)
        .await
        .with_context(|| format!("{} is not a Guanxi database", file.display()))?;
    conn.close().await.ok();
    Ok(())
}

/// Replaces the database behind `url` with the backup `file`, unless a server is using it.
pub async fn restore(url: &str, file: &Path) -> anyhow::Result<()> {
    let target = sqlite_path(url).context("guanxi restore works on the embedded SQLite database only")?;
    let _lock = lock_database(url)?;
    verify(file).await?;
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    // Copy next to the target, then rename: a crash leaves either the old or the new database.
    let mut tmp = target.as_os_str().to_owned();
    tmp.push(".restoring");
    let tmp = PathBuf::from(tmp);
    std::fs::copy(file, &tmp).with_context(|| format!("cannot copy {}", file.display()))?;
    File::open(&tmp)?.sync_all()?;
    for suffix in ["-wal", "-shm"] {
        let mut side = target.as_os_str().to_owned();
        side.push(suffix);
        let side = PathBuf::from(side);
        if side.exists() {
            std::fs::remove_file(&side)?;
        }
    }
    std::fs::rename(&tmp, &target)?;
    Ok(())
}
