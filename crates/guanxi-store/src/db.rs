//! Connections. SQLite is the embedded default: WAL, foreign keys on, one writer connection
//! (SQLite allows one writer at a time; queuing in the pool beats `SQLITE_BUSY` retries) and a
//! pool of readers. PostgreSQL uses one pool for both. Nothing outside this crate sees a backend
//! type: callers get a [`Db`] and SQL built by [`crate::sql::Sql`].

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor, Row};

use crate::direct_read::{DirectReads, Read};
use crate::error::StoreResult;
use crate::sql::Sql;

/// Which SQL dialect the database speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How hard SQLite works to keep a commit on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// `synchronous=FULL`: a commit survives a power cut. The default.
    #[default]
    Full,
    /// `synchronous=NORMAL`: a commit survives a process crash (`kill -9`) but the last
    /// transactions may be lost on a power cut. Faster.
    Normal,
}

/// Settings for opening a database.
#[derive(Debug, Clone)]
pub struct DbOptions {
    pub url: String,
    pub max_connections: u32,
    pub durability: Durability,
}

/// A handle to the database: a pool for writes and a pool for reads (the same pool on
/// PostgreSQL).
#[derive(Debug, Clone)]
pub struct Db {
    backend: Backend,
    write: AnyPool,
    read: AnyPool,
    url: String,
    /// SQLite: the task that copies the WAL into the database file beside the writer.
    checkpointer: Option<Arc<Checkpointer>>,
    /// SQLite on a file: short reads on the calling thread (decision 0011).
    direct: Option<Arc<DirectReads>>,
    /// SQLite: the configured `synchronous` level, and whether a load has switched the
    /// writer's off until [`Db::close`] (`Db::sync_at_close`).
    synchronous: &'static str,
    sync_deferred: Arc<std::sync::atomic::AtomicBool>,
}

/// WAL pages after which the SQLite writer checkpoints by itself, in the middle of a commit.
/// Normally the checkpointer has done it long before; this bounds the WAL (~64 MB) if it cannot.
const WRITER_CHECKPOINT_PAGES: u32 = 16_000;

/// How often the checkpointer copies what the WAL holds into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Copies committed pages from SQLite's WAL into the database file on a connection of its own
/// (`PRAGMA wal_checkpoint(PASSIVE)`, which waits for no reader or writer). Left to SQLite, the
/// checkpoint runs inside whichever commit crosses the WAL threshold: that request then waits
/// for a thousand random page writes and an fsync (p99 of creates 3–10× their median), and the
/// writer, which everything that changes data queues for, stands still meanwhile. Beside the
/// writer the same work uses the otherwise idle core and disk.
#[derive(Debug)]
struct Checkpointer {
    stop: tokio::sync::watch::Sender<bool>,
}

impl Checkpointer {
    async fn start(
        connect: AnyConnectOptions,
        pragmas: &str,
        writer: AnyPool,
    ) -> Result<Arc<Checkpointer>, sqlx::Error> {
        use sqlx::ConnectOptions;
        let mut conn = connect.connect().await?;
        conn.execute(pragmas).await?;
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    // Db::close, or the last handle dropped.
                    _ = stopped.changed() => break,
                    () = tokio::time::sleep(CHECKPOINT_EVERY) => {}
                }
                if let Err(e) = checkpoint(&mut conn, &writer).await {
                    tracing::warn!(error = %e, "background checkpoint failed");
                }
            }
            let _ = sqlx::Connection::close(conn).await;
        });
        Ok(Arc::new(Checkpointer { stop }))
    }
}

/// WAL frames (pages) after which the checkpointer also restarts the WAL.
const RESTART_AFTER_FRAMES: i64 = 4_000;

/// How long the checkpointer queues for the writer before leaving a restart to its next round.
const RESTART_WAIT: Duration = Duration::from_secs(2);

/// One round of the checkpointer. A passive checkpoint copies what it can without waiting; but
/// SQLite starts writing the WAL from its beginning again only when a new write transaction
/// finds every frame already copied, which a steady stream of commits never allows, so the WAL
/// would grow until the writer's own threshold. Once it is long, a `RESTART` checkpoint waits
/// for the writer (a commit's time), copies the few frames added since the passive pass, and
/// lets the next write start the WAL over.
async fn checkpoint(conn: &mut sqlx::AnyConnection, writer: &AnyPool) -> Result<(), sqlx::Error> {
    use sqlx::Row;
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(&mut *conn)
        .await?;
    let frames: i64 = row.try_get(1)?;
    if frames >= RESTART_AFTER_FRAMES {
        // On the writer connection, queued like any write: a restart from another connection
        // would invalidate the snapshot of a write transaction that has read but not yet
        // written, which SQLite then refuses with SQLITE_BUSY at once. A write that holds the
        // writer for long (a bulk index rebuild) is not waited for: the next round tries again.
        if let Ok(acquired) = tokio::time::timeout(RESTART_WAIT, writer.acquire()).await {
            sqlx::query("PRAGMA wal_checkpoint(RESTART)")
                .execute(&mut *acquired?)
                .await?;
        }
    }
    Ok(())
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Db {
    /// Opens the database named by `url` (`sqlite://…` or `postgres://…`).
    pub async fn connect(options: &DbOptions) -> Result<Db, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let backend = backend_of(&options.url)?;
        let connect = AnyConnectOptions::from_str(&options.url)?;
        match backend {
            Backend::Sqlite => {
                let synchronous = match options.durability {
                    Durability::Full => "FULL",
                    Durability::Normal => "NORMAL",
                };
                let pragmas = format!(
                    "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA synchronous={synchronous}; \
                     PRAGMA busy_timeout=10000; PRAGMA temp_store=MEMORY;"
                );
                // Page caches: 32 MB for the one writer (index inserts touch many pages), 8 MB
                // for each reader — with a dozen readers the larger figure alone would exceed the
                // server's memory budget, and the operating system caches the file anyway.
                // Checkpoints run beside the writer (`checkpointer`); the writer's own automatic
                // checkpoint is the safety net for a checkpointer that falls behind.
                let write_pragmas =
                    format!("{pragmas} PRAGMA cache_size=-32000; PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES};");
                let checkpoint_pragmas = format!("{pragmas} PRAGMA cache_size=-1000;");
                let pragmas = format!("{pragmas} PRAGMA cache_size=-8000;");
                // No health check before each acquire: an embedded database's connection cannot
                // drop, and the ping is a round trip to the connection's worker thread that
                // doubled the database cost of a cheap request (decision 0010).
                let write = AnyPoolOptions::new()
                    .max_connections(1)
                    .test_before_acquire(false)
                    .acquire_timeout(Duration::from_secs(60))
                    .after_connect(move |conn, _| {
                        let p = write_pragmas.clone();
                        Box::pin(async move {
                            conn.execute(p.as_str()).await?;
                            Ok(())
                        })
                    })
                    .connect_with(connect.clone())
                    .await?;
                let checkpointer = Checkpointer::start(connect.clone(), &checkpoint_pragmas, write.clone()).await?;
                let read = AnyPoolOptions::new()
                    .max_connections(options.max_connections.max(2))
                    .test_before_acquire(false)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(move |conn, _| {
                        let p = pragmas.clone();
                        Box::pin(async move {
                            conn.execute(p.as_str()).await?;
                            conn.execute("PRAGMA query_only=ON;").await?;
                            Ok(())
                        })
                    })
                    .connect_with(connect)
                    .await?;
                Ok(Db {
                    backend,
                    write,
                    read,
                    url: options.url.clone(),
                    checkpointer: Some(checkpointer),
                    direct: sqlite_path(&options.url).map(|path| Arc::new(DirectReads::new(&path))),
                    synchronous,
                    sync_deferred: Arc::default(),
                })
            }
            Backend::Postgres => {
                // Every statement is planned for its values. sqlx prepares statements, and after
                // five runs PostgreSQL may switch to a generic plan that cannot see them: for the
                // filtered list's capped count (province + type + a created_at range) it walked
                // the created_at index over every customer — 51 ms instead of 2.4 ms at M (EXPLAIN
                // ANALYZE of the prepared statement; decision 0012). Filters and search terms differ so much in selectivity
                // that no one plan fits; planning these statements takes well under a millisecond.
                let pool = AnyPoolOptions::new()
                    .max_connections(options.max_connections.max(2))
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("SET plan_cache_mode = force_custom_plan").await?;
                            Ok(())
                        })
                    })
                    .connect_with(connect)
                    .await?;
                Ok(Db {
                    backend,
                    write: pool.clone(),
                    read: pool,
                    url: options.url.clone(),
                    checkpointer: None,
                    direct: None,
                    synchronous: "",
                    sync_deferred: Arc::default(),
                })
            }
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool that takes writes (the single SQLite writer).
    pub fn writer(&self) -> &AnyPool {
        &self.write
    }

    /// The pool for reads.
    pub fn reader(&self) -> &AnyPool {
        &self.read
    }

    /// Runs a read whose result is one text value (a record or a page as JSON) and returns the
    /// first column of its first row, or `None` for no row or NULL. On SQLite it runs on the
    /// calling thread when it is short (decision 0011), on the read pool otherwise.
    pub async fn read_value(&self, sql: &Sql) -> StoreResult<Option<String>> {
        if let Some(direct) = &self.direct {
            match direct.first_value(sql) {
                Ok(Read::Value(value)) => return Ok(value),
                Ok(Read::TooLong) => {}
                // Any failure is left to the pool to meet again, so that a read's errors are
                // sqlx's whichever path it took (one mapping, `StoreError::from`).
                Err(e) => tracing::debug!(error = %e, "direct SQLite read failed; running it on the pool"),
            }
        }
        match sql.query().fetch_optional(&self.read).await? {
            Some(row) => Ok(row.try_get::<Option<String>, _>(0)?),
            None => Ok(None),
        }
    }

    /// The URL the database was opened with, for backup and diagnostics. May hold a password:
    /// never log it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Checks that the database answers, for `/readyz`.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.read).await.map(|_| ())
    }

    /// For a command that loads a large dataset alone (`demo-data --size`, `reindex`): on
    /// SQLite the writer gets a 256 MB page cache (index pages stay in memory instead of being
    /// read back from the file) and checkpoints the WAL every ~80 MB instead of every 4 MB (a
    /// page changed by many transactions is copied into the database once per checkpoint, not
    /// once per transaction or two). Not for the server, whose memory budget is 300 MB.
    pub async fn tune_for_bulk_load(&self) -> Result<(), sqlx::Error> {
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA cache_size=-262144").execute(&self.write).await?;
            sqlx::query("PRAGMA wal_autocheckpoint=20000")
                .execute(&self.write)
                .await?;
        }
        Ok(())
    }

    /// For a load whose result counts only once it is complete (`demo-data --size`): the SQLite
    /// writer stops waiting for the disk (`synchronous=OFF`) until [`Db::close`], which restores
    /// the configured level and copies the WAL into the database file with one sync at the
    /// end. A process that dies keeps every commit (they are in the operating system's cache);
    /// an operating-system crash or power cut during the load can damage the file, and the
    /// load is then run again. Generating L waited for the disk a third of the time at
    /// `synchronous=NORMAL`: the checkpoints that restart the WAL sync the database file
    /// while the writer holds it (docs/BENCHMARKS.md, "seventh session").
    pub async fn sync_at_close(&self) -> Result<(), sqlx::Error> {
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA synchronous=OFF").execute(&self.write).await?;
            self.sync_deferred.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    }

    /// Refreshes PostgreSQL's planner statistics (`ANALYZE`). A table that grows from empty
    /// during a bulk load has none until autovacuum gets to it, and without them PostgreSQL
    /// checks a thousand-id `IN` list by scanning the table (a second per chunk at 50,000
    /// customers). SQLite plans from its indexes alone here: nothing to do.
    pub async fn refresh_statistics(&self) -> Result<(), sqlx::Error> {
        if self.backend == Backend::Postgres {
            sqlx::query("ANALYZE").execute(&self.write).await?;
        }
        Ok(())
    }

    /// After a bulk load on PostgreSQL: `VACUUM (ANALYZE)` marks the new pages all-visible and
    /// refreshes the statistics. Until the visibility map is set, a count or other index-only
    /// read visits the table for every row it counts: the capped total of the benchmark's
    /// filtered list took 18.5 ms instead of 2.4 ms on a freshly generated M, and the scenario
    /// ran at 40–64 req/s. Autovacuum gets there eventually; a freshly loaded dataset should
    /// not wait for it. Returns whether anything ran (SQLite needs nothing).
    pub async fn vacuum_after_bulk_load(&self) -> Result<bool, sqlx::Error> {
        if self.backend != Backend::Postgres {
            return Ok(false);
        }
        // Plain text (simple protocol): VACUUM may not run inside a transaction block.
        self.write.execute("VACUUM (ANALYZE)").await?;
        Ok(true)
    }

    /// Closes both pools. On SQLite the WAL is first copied into the database and emptied: a
    /// WAL left behind is read by the next process to open the file and copied again by its
    /// checkpointer while it serves (`demo-data --size L` left 9.6 GB, M 963 MB; the first
    /// export after generating L went from 24.6 s to 5.8 s with this and decision 0013,
    /// docs/BENCHMARKS.md). SQLite checkpoints on the last close by itself, but the direct-read
    /// connections (decision 0011) live as long as the last handle to this `Db`.
    pub async fn close(&self) {
        if let Some(c) = &self.checkpointer {
            let _ = c.stop.send(true);
        }
        self.read.close().await;
        if self.backend == Backend::Sqlite {
            // After `sync_at_close`: the checkpoint below syncs the database file again.
            if self.sync_deferred.swap(false, std::sync::atomic::Ordering::SeqCst)
                && let Err(e) = sqlx::query(&format!("PRAGMA synchronous={}", self.synchronous))
                    .execute(&self.write)
                    .await
            {
                tracing::warn!(error = %e, "restoring SQLite's synchronous level on close failed");
            }
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.write)
                .await
            {
                // The WAL stays as it is; the next open reads it, nothing is lost.
                tracing::warn!(error = %e, "emptying the SQLite WAL on close failed");
            }
        }
        self.write.close().await;
    }
}

/// Tells the backend from a database URL.
pub fn backend_of(url: &str) -> Result<Backend, sqlx::Error> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else {
        Err(sqlx::Error::Configuration(
            "DATABASE_URL must start with sqlite:// or postgres://".into(),
        ))
    }
}

/// The file behind an SQLite URL (`sqlite://data/guanxi.db?mode=rwc` → `data/guanxi.db`).
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path == ":memory:" {
        None
    } else {
        Some(std::path::PathBuf::from(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::StoreError;

    #[test]
    fn urls_name_their_backend_and_file() {
        assert_eq!(backend_of("sqlite://x.db").ok(), Some(Backend::Sqlite));
        assert_eq!(backend_of("postgres://u@h/db").ok(), Some(Backend::Postgres));
        assert!(backend_of("mysql://x").is_err());
        assert_eq!(
            sqlite_path("sqlite:///var/lib/guanxi/guanxi.db?mode=rwc"),
            Some("/var/lib/guanxi/guanxi.db".into())
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }

    async fn sqlite_db(dir: &tempfile::TempDir) -> Db {
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        Db::connect(&DbOptions {
            url,
            max_connections: 4,
            durability: Durability::Normal,
        })
        .await
        .expect("open a SQLite database")
    }

    #[tokio::test]
    async fn a_read_past_the_direct_budget_is_answered_by_the_pool() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sqlite_db(&dir).await;
        // Far more SQLite steps than a direct read may take: interrupted there, run on the pool.
        let long = Sql::of(
            Backend::Sqlite,
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) SELECT CAST(count(*) AS TEXT) FROM c",
        );
        assert_eq!(db.read_value(&long).await.ok(), Some(Some("200000".into())));
        // Again, now that its shape goes to the pool directly.
        assert_eq!(db.read_value(&long).await.ok(), Some(Some("200000".into())));
        let short = Sql::of(Backend::Sqlite, "SELECT 'ok'");
        assert_eq!(db.read_value(&short).await.ok(), Some(Some("ok".into())));
    }

    #[tokio::test]
    async fn closing_leaves_no_wal_for_the_next_open_to_read() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sqlite_db(&dir).await;
        sqlx::query("CREATE TABLE t (x BLOB)")
            .execute(db.writer())
            .await
            .expect("table");
        for _ in 0..20 {
            sqlx::query("INSERT INTO t SELECT randomblob(4000) FROM (SELECT 1 UNION ALL SELECT 2)")
                .execute(db.writer())
                .await
                .expect("rows");
        }
        let wal = dir.path().join("t.db-wal");
        let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        assert!(size(&wal) > 100_000, "the writes went to the WAL first");
        // A read on the request's thread keeps a direct connection open past the pools' close,
        // as a server's reads do.
        let count = Sql::of(Backend::Sqlite, "SELECT CAST(count(*) AS TEXT) FROM t");
        assert_eq!(db.read_value(&count).await.ok(), Some(Some("40".into())));
        db.close().await;
        assert_eq!(size(&wal), 0, "the WAL was copied into the database and emptied");
        let reopened = sqlite_db(&dir).await;
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(reopened.reader())
            .await
            .expect("count");
        assert_eq!(n, 40, "nothing acknowledged is lost");
    }

    #[tokio::test]
    async fn a_failing_direct_read_reports_the_database_error_of_the_pool() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sqlite_db(&dir).await;
        let bad = Sql::of(Backend::Sqlite, "SELECT nope FROM no_such_table");
        assert!(matches!(db.read_value(&bad).await, Err(StoreError::Db(_))));
    }
}
