//! Read-ahead for long walks over one SQLite table (exports; decision 0013). A walk reads a
//! page of rows, then the next: one 4 KB read from the disk at a time when the table is not in
//! the page cache. The table's pages lie scattered through a file that interleaves them with
//! index pages written in the same transactions, so the walk gets no help from the operating
//! system's own read-ahead, and the disk, which does 12,000 random reads a second one at a time
//! here but 22,000–34,000 with two to eight in flight, sits mostly idle. A few threads with
//! connections of their own read the table's rows in rowid ranges ("segments") ahead of the
//! walk, so that its reads find the pages in the operating system's cache. They run at most a
//! window ahead of the rows walked (a table larger than memory does not push out what the walk
//! is about to read) and stop when the [`ReadAhead`] is dropped.
//!
//! It pays only when the walk follows rowid order (records are created with time-ordered ids,
//! so `id` and `created_at` order is rowid order); callers decide that. PostgreSQL prefetches
//! for itself and gets none.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use rusqlite::{Connection, OpenFlags};

/// Reading threads beside the walk: with the walk's own read, four reads in flight (about
/// twice the one-at-a-time rate on this machine's disk).
const WORKERS: usize = 3;
/// Rowids per segment: a few megabytes of a customer table, small enough that a stopped
/// read-ahead ends quickly.
const SEGMENT: u64 = 5_000;
/// Rows the read-ahead may run beyond the walk.
const WINDOW: u64 = 200_000;

/// How far ahead and in what pieces a read-ahead reads (the constants above; tests use
/// smaller ones).
#[derive(Debug, Clone, Copy)]
struct Plan {
    workers: usize,
    segment: u64,
    window: u64,
}

const PLAN: Plan = Plan {
    workers: WORKERS,
    segment: SEGMENT,
    window: WINDOW,
};

/// State shared by the walk and the reading threads.
#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    /// Rows the walk has passed.
    walked: AtomicU64,
    /// The next segment to read (0 = the walk's first).
    next: AtomicU64,
    /// Segments read so far.
    read: AtomicU64,
    /// Held while `walked` or `stop` changes and while a thread checks them before waiting, so
    /// no wake-up falls between its check and its wait.
    progress: Mutex<()>,
    /// Signalled when the walk moves on or the read-ahead stops.
    moved: Condvar,
}

impl Shared {
    /// Changes the walk's state and wakes the threads waiting on it.
    fn update(&self, change: impl FnOnce(&Shared)) {
        let _held = self.progress.lock();
        change(self);
        self.moved.notify_all();
    }
}

/// A running read-ahead; dropping it stops the threads (each ends after its current segment).
#[derive(Debug)]
pub struct ReadAhead {
    shared: Arc<Shared>,
}

impl ReadAhead {
    /// Starts reading `table` of the SQLite file at `path` in rowid order, from the highest
    /// rowid down when `newest_first`. `None` when the table is empty or cannot be read (a
    /// read-ahead is an optimisation: the walk works without it).
    pub fn start(path: &Path, table: &str, newest_first: bool) -> Option<ReadAhead> {
        Self::start_with(path, table, newest_first, PLAN)
    }

    fn start_with(path: &Path, table: &str, newest_first: bool, plan: Plan) -> Option<ReadAhead> {
        let conn = open(path).ok()?;
        let quoted = format!("\"{}\"", table.replace('"', "\"\""));
        let bounds: (Option<i64>, Option<i64>) = conn
            .query_row(&format!("SELECT min(rowid), max(rowid) FROM {quoted}"), [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .ok()?;
        let (Some(low), Some(high)) = bounds else {
            return None;
        };
        let segments = u64::try_from(high - low).ok()? / plan.segment + 1;
        let shared = Arc::new(Shared::default());
        let sql = format!("SELECT count(*) FROM {quoted} WHERE rowid BETWEEN ?1 AND ?2");
        let mut first = Some(conn);
        for n in 0..plan.workers {
            let conn = match first.take() {
                Some(conn) => conn,
                None => match open(path) {
                    Ok(conn) => conn,
                    Err(_) => break,
                },
            };
            let worker = Worker {
                conn,
                sql: sql.clone(),
                shared: Arc::clone(&shared),
                plan,
                low,
                high,
                segments,
                newest_first,
            };
            let spawned = std::thread::Builder::new()
                .name(format!("guanxi-read-ahead-{n}"))
                .spawn(move || worker.run());
            if spawned.is_err() {
                break;
            }
        }
        Some(ReadAhead { shared })
    }

    /// The walk has passed `rows` rows; the threads may read up to a window beyond them.
    pub fn walked(&self, rows: u64) {
        self.shared.update(|s| s.walked.store(rows, Ordering::Relaxed));
    }

    /// Segments read so far.
    pub fn segments_read(&self) -> u64 {
        self.shared.read.load(Ordering::Relaxed)
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.shared.update(|s| s.stop.store(true, Ordering::Relaxed));
    }
}

/// One reading thread.
struct Worker {
    conn: Connection,
    sql: String,
    shared: Arc<Shared>,
    plan: Plan,
    low: i64,
    high: i64,
    segments: u64,
    newest_first: bool,
}

impl Worker {
    fn run(self) {
        let stopped = || self.shared.stop.load(Ordering::Relaxed);
        let Ok(mut statement) = self.conn.prepare(&self.sql) else {
            return;
        };
        loop {
            let n = self.shared.next.fetch_add(1, Ordering::Relaxed);
            if n >= self.segments || stopped() {
                return;
            }
            // Wait while this segment lies more than a window beyond the walk.
            let Ok(mut held) = self.shared.progress.lock() else {
                return;
            };
            while n.saturating_mul(self.plan.segment) > self.shared.walked.load(Ordering::Relaxed) + self.plan.window {
                if stopped() {
                    return;
                }
                held = match self.shared.moved.wait(held) {
                    Ok(held) => held,
                    Err(_) => return,
                };
            }
            drop(held);
            let (from, to) = self.segment(n);
            // Reading the rows pulls the table's pages into the operating system's cache; the
            // count itself is thrown away. A failed read only means the walk reads for itself.
            let _ = statement.query_row([from, to], |row| row.get::<_, i64>(0));
            self.shared.read.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The rowid range of segment `n`, counted from the end the walk starts at.
    fn segment(&self, n: u64) -> (i64, i64) {
        let span = i64::try_from(self.plan.segment).unwrap_or(i64::MAX);
        let offset = i64::try_from(n).unwrap_or(i64::MAX).saturating_mul(span);
        if self.newest_first {
            let to = self.high.saturating_sub(offset);
            (to.saturating_sub(span - 1).max(self.low), to)
        } else {
            let from = self.low.saturating_add(offset);
            (from, from.saturating_add(span - 1).min(self.high))
        }
    }
}

/// A read-only connection with a small page cache (what it reads matters in the operating
/// system's cache, not in its own).
fn open(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open_with_flags(
        PathBuf::from(path),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.execute_batch("PRAGMA busy_timeout=1000; PRAGMA cache_size=-500;")?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn table(rows: i64) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("t.db");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t (id TEXT PRIMARY KEY, name TEXT);")
            .expect("schema");
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
             INSERT INTO t SELECT printf('%08d', i), 'customer ' || i FROM n WHERE i <= ?1",
            [rows],
        )
        .expect("rows");
        (dir, path)
    }

    fn wait_for(read_ahead: &ReadAhead, segments: u64) -> u64 {
        for _ in 0..400 {
            if read_ahead.segments_read() >= segments {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        read_ahead.segments_read()
    }

    const SMALL: Plan = Plan {
        workers: 3,
        segment: 100,
        window: 300,
    };

    #[test]
    fn it_reads_a_window_ahead_of_the_walk_and_then_the_rest() {
        let (_dir, path) = table(2_000);
        let read_ahead = ReadAhead::start_with(&path, "t", true, SMALL).expect("started");
        // Segments 0..=3 lie within the window of a walk that has not started.
        assert_eq!(wait_for(&read_ahead, 4), 4);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(
            read_ahead.segments_read(),
            4,
            "it must not run more than a window ahead"
        );
        read_ahead.walked(2_000);
        assert_eq!(wait_for(&read_ahead, 20), 20, "2,000 rows in segments of 100");
    }

    #[test]
    fn dropping_it_stops_the_threads() {
        let (_dir, path) = table(2_000);
        let read_ahead = ReadAhead::start_with(&path, "t", false, SMALL).expect("started");
        let shared = Arc::clone(&read_ahead.shared);
        assert_eq!(wait_for(&read_ahead, 4), 4);
        drop(read_ahead);
        std::thread::sleep(Duration::from_millis(50));
        shared.walked.store(2_000, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(shared.read.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn segments_cover_the_rowids_from_the_walks_end() {
        let worker = |newest_first| Worker {
            conn: Connection::open_in_memory().expect("open"),
            sql: String::new(),
            shared: Arc::default(),
            plan: SMALL,
            low: 1,
            high: 250,
            segments: 3,
            newest_first,
        };
        let down = worker(true);
        assert_eq!(
            [down.segment(0), down.segment(1), down.segment(2)],
            [(151, 250), (51, 150), (1, 50)]
        );
        let up = worker(false);
        assert_eq!(
            [up.segment(0), up.segment(1), up.segment(2)],
            [(1, 100), (101, 200), (201, 250)]
        );
    }

    #[test]
    fn an_empty_or_missing_table_gets_none() {
        let (_dir, path) = table(0);
        assert!(ReadAhead::start(&path, "t", true).is_none());
        assert!(ReadAhead::start(&path, "no_such_table", true).is_none());
    }
}
