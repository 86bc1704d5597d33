//! Short SQLite reads on the calling thread (decision 0011). sqlx runs every SQLite connection
//! on a thread of its own, so each statement is a message to that thread and a message back:
//! two thread wake-ups, which under load cost more than a primary-key read itself (a third of
//! the server's time for get by id at L). Here a statement runs on the request's own thread, on
//! a connection of a small pool of plain SQLite connections, with a budget: a statement still
//! running after [`STEP_BUDGET`] steps of SQLite's virtual machine (about a millisecond of work)
//! or [`WALL_BUDGET`] of wall time is interrupted and reported as [`Read::TooLong`], and the
//! caller runs it on sqlx's pool instead, so a slow read never holds a runtime thread for long.
//! Statement shapes that took too many steps are remembered for a while and go to the pool
//! directly. A read that only ran out of wall time (its thread was preempted, or it waited for
//! the disk) is not held against its shape: on 2 cores shared by 16 connections a thread is
//! often descheduled for milliseconds, and when a wall-clock budget alone decided, one such
//! pause sent every get by id to the pool for a minute (decision 0011, amended 2026-12-05).
//!
//! Only statements whose result is one value are read here (the JSON rows of
//! `records::codec`), which keeps this path to binding parameters and reading one column.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rusqlite::types::{Null, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::sql::{Bind, Sql};

/// Virtual-machine steps a read may take on the calling thread before it is handed to the pool:
/// about a millisecond of SQLite's work on this machine (~25-40 million steps a second), where a
/// get by id takes a few hundred and a list page of 20 a few thousand.
pub const STEP_BUDGET: u64 = 40_000;
/// Wall time after which a read gives up on the calling thread, whatever its steps: it was
/// descheduled or waited for the disk. Only this read goes to the pool.
pub const WALL_BUDGET: Duration = Duration::from_millis(10);
/// How long a statement shape that ran too long goes to the pool directly.
const TOO_LONG_FOR: Duration = Duration::from_secs(60);
/// Idle connections kept (one per runtime thread is the working set).
const MAX_IDLE: usize = 4;
/// SQLite virtual-machine steps between two looks at the clock.
const STEPS_PER_CHECK: u16 = 1_000;

/// What a direct read gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// The first column of the first row (`None`: no row, or NULL).
    Value(Option<String>),
    /// The statement ran past the budget (or is known to): run it on the pool.
    TooLong,
}

/// A pool of read-only connections to one SQLite file, used on the caller's thread.
pub struct DirectReads {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Hashes of statement texts that took too many steps, and when.
    too_long: Mutex<HashMap<u64, Instant>>,
    steps: u64,
    wall: Duration,
}

impl std::fmt::Debug for DirectReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectReads")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl DirectReads {
    /// Direct reads of the database file at `path`; connections open on first use.
    pub fn new(path: &Path) -> DirectReads {
        DirectReads {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
            too_long: Mutex::new(HashMap::new()),
            steps: STEP_BUDGET,
            wall: WALL_BUDGET,
        }
    }

    /// The same with other budgets (tests).
    #[cfg(test)]
    fn with_budgets(mut self, steps: u64, wall: Duration) -> DirectReads {
        self.steps = steps;
        self.wall = wall;
        self
    }

    /// Runs `sql` (a statement returning one value) on this thread within the budgets.
    pub fn first_value(&self, sql: &Sql) -> Result<Read, rusqlite::Error> {
        let shape = shape_of(sql);
        if self.known_too_long(shape) {
            return Ok(Read::TooLong);
        }
        let conn = match self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            Some(conn) => conn,
            None => self.open()?,
        };
        let (outcome, before_deadline) = run(&conn, sql, self.steps, self.wall);
        // A connection is returned after an error too: the statement is reset when its handle
        // drops, and the connection itself stays usable.
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(conn);
        }
        match outcome {
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::OperationInterrupted => {
                // Interrupted before the deadline: by its step count, so its shape is remembered.
                if before_deadline && let Ok(mut too_long) = self.too_long.lock() {
                    too_long.insert(shape, Instant::now());
                }
                Ok(Read::TooLong)
            }
            // The file is locked for a moment (a WAL restart): the pool's connections wait for
            // it, this thread must not.
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) =>
            {
                Ok(Read::TooLong)
            }
            other => other.map(Read::Value),
        }
    }

    fn known_too_long(&self, shape: u64) -> bool {
        let Ok(mut too_long) = self.too_long.lock() else {
            return false;
        };
        match too_long.get(&shape) {
            Some(at) if at.elapsed() < TOO_LONG_FOR => true,
            Some(_) => {
                too_long.remove(&shape);
                false
            }
            None => false,
        }
    }

    fn open(&self) -> Result<Connection, rusqlite::Error> {
        // Read-write flags without CREATE, then `query_only`, as sqlx's readers: a read-only
        // open of a WAL database needs the -shm file writable anyway.
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // No busy timeout: a read that finds the file locked goes to the pool, which waits.
        // A 2 MB page cache holds the upper levels of the indexes these reads descend; the leaves
        // come from the operating system's cache of the file. Memory is counted against the
        // server's 300 MB budget: three load runs at L peaked ~19 MiB higher with these
        // connections than without, so caches and statements are kept small.
        conn.execute_batch(
            "PRAGMA busy_timeout=0; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-2000; PRAGMA query_only=ON;",
        )?;
        conn.set_prepared_statement_cache_capacity(16);
        Ok(conn)
    }
}

/// A statement's shape: a hash of its text (its values are bound, not part of it).
fn shape_of(sql: &Sql) -> u64 {
    let mut h = DefaultHasher::new();
    sql.text().hash(&mut h);
    h.finish()
}

/// Runs one statement within the budgets and reads the first column of its first row, and
/// whether it ended before the wall-clock deadline: an interruption then was for its steps (a
/// property of the statement), not for its wall time (a property of the moment).
fn run(conn: &Connection, sql: &Sql, steps: u64, wall: Duration) -> (Result<Option<String>, rusqlite::Error>, bool) {
    let deadline = Instant::now() + wall;
    let mut checks: u64 = 0;
    conn.progress_handler(
        i32::from(STEPS_PER_CHECK),
        Some(move || {
            checks += 1;
            checks * u64::from(STEPS_PER_CHECK) > steps || Instant::now() > deadline
        }),
    );
    let result = (|| {
        let mut stmt = conn.prepare_cached(sql.text())?;
        for (i, bind) in sql.binds().iter().enumerate() {
            let at = i + 1;
            match bind {
                Bind::NullText | Bind::NullInt | Bind::NullFloat | Bind::NullBool => {
                    stmt.raw_bind_parameter(at, Null)?;
                }
                Bind::Text(s) => stmt.raw_bind_parameter(at, s.as_str())?,
                Bind::Int(n) => stmt.raw_bind_parameter(at, n)?,
                Bind::Float(x) => stmt.raw_bind_parameter(at, x)?,
                // Stored as 0/1, as sqlx binds booleans for SQLite.
                Bind::Bool(b) => stmt.raw_bind_parameter(at, i64::from(*b))?,
            }
        }
        let mut rows = stmt.raw_query();
        let Some(row) = rows.next()? else {
            return Ok(None);
        };
        Ok(match row.get_ref(0)? {
            ValueRef::Null => None,
            ValueRef::Text(bytes) => {
                Some(String::from_utf8(bytes.to_vec()).map_err(|e| rusqlite::Error::Utf8Error(e.utf8_error()))?)
            }
            ValueRef::Integer(n) => Some(n.to_string()),
            ValueRef::Real(x) => Some(x.to_string()),
            ValueRef::Blob(_) => {
                return Err(rusqlite::Error::InvalidColumnType(
                    0,
                    "blob".into(),
                    rusqlite::types::Type::Blob,
                ));
            }
        })
    })();
    let before_deadline = Instant::now() <= deadline;
    conn.progress_handler(0, None::<fn() -> bool>);
    (result, before_deadline)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Backend;

    fn database() -> (tempfile::TempDir, DirectReads) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.db");
        let setup = Connection::open(&path).expect("open");
        setup
            .execute_batch(
                "PRAGMA journal_mode=WAL; CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER, flag INTEGER);
                 INSERT INTO t VALUES ('a', 1, 1), ('b', 2, 0);",
            )
            .expect("setup");
        let reads = DirectReads::new(&path);
        (dir, reads)
    }

    #[test]
    fn a_short_read_binds_its_parameters_and_returns_the_first_value() {
        let (_dir, reads) = database();
        let mut sql = Sql::of(Backend::Sqlite, "SELECT json_array(id, n) FROM t WHERE n = ");
        sql.bind(2).push(" AND flag = ").bind(Bind::Bool(false));
        assert_eq!(
            reads.first_value(&sql).ok(),
            Some(Read::Value(Some(r#"["b",2]"#.into())))
        );
        let mut none = Sql::of(Backend::Sqlite, "SELECT id FROM t WHERE id = ");
        none.bind("zzz");
        assert_eq!(reads.first_value(&none).ok(), Some(Read::Value(None)), "no row");
        let bad = Sql::of(Backend::Sqlite, "SELECT nope FROM t");
        assert!(reads.first_value(&bad).is_err(), "an error is an error, not a fallback");
    }

    #[test]
    fn a_read_past_the_budget_is_interrupted_and_its_shape_remembered() {
        let (_dir, reads) = database();
        // The default step budget, and a deadline no busy test machine reaches first.
        let reads = reads.with_budgets(STEP_BUDGET, Duration::from_secs(60));
        // Counting to ten million takes far longer than the budget.
        let slow = Sql::of(
            Backend::Sqlite,
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000000) SELECT count(*) FROM c",
        );
        let started = Instant::now();
        assert_eq!(reads.first_value(&slow).ok(), Some(Read::TooLong));
        assert!(started.elapsed() < Duration::from_millis(500), "interrupted early");
        assert!(reads.known_too_long(shape_of(&slow)), "remembered");
        assert_eq!(
            reads.first_value(&slow).ok(),
            Some(Read::TooLong),
            "sent to the pool at once"
        );
        // The connection it ran on still serves short reads.
        let quick = Sql::of(Backend::Sqlite, "SELECT count(*) FROM t");
        assert_eq!(reads.first_value(&quick).ok(), Some(Read::Value(Some("2".into()))));
    }

    #[test]
    fn a_read_that_only_ran_out_of_wall_time_goes_to_the_pool_once() {
        let (_dir, reads) = database();
        // Steps are no limit here; the wall-clock budget is already spent when it starts, as for
        // a thread descheduled in the middle of a read.
        let reads = reads.with_budgets(u64::MAX, Duration::ZERO);
        let slow = Sql::of(
            Backend::Sqlite,
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000000) SELECT count(*) FROM c",
        );
        assert_eq!(reads.first_value(&slow).ok(), Some(Read::TooLong), "interrupted");
        assert!(
            !reads.known_too_long(shape_of(&slow)),
            "a pause is not held against the statement"
        );
    }
}
