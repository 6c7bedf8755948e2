//! The read side: a pool of read-only connections beside the single
//! writer, so that reads never wait for writes and writes never wait for
//! reads.
//!
//! # For the actors layer
//!
//! `walguard-actors` opens one [`ReadPool`] per database **after**
//! [`Store::open`](crate::Store::open) has put the file in WAL mode (the
//! pool checks it and refuses otherwise), and closes it **before** the
//! writer's shutdown TRUNCATE ([`ReadPool::close`] with the shutdown
//! budget), so that no reader of ours holds the WAL then. `DbHandle::read`
//! and `DbHandle::query` call [`ReadPool::submit`] and
//! [`ReadPool::submit_query`] with a `done` callback that sends the result
//! on a oneshot channel the handle awaits: no actor, mailbox or arbiter
//! sits on this path, and the pool needs no async runtime. The session
//! report takes [`ReadPool::stats`]; the starvation warning names
//! [`ReadPool::running`]'s oldest read, or, when no read of ours runs, a
//! connection outside walguard. The pool's connections count as "another
//! connection" for the writer's reopen after a checkpoint I/O error
//! ([`Error::StaleWalIndex`] while they are open, see "Failed fsync" in
//! the [checkpoint policy](crate::checkpoint)): that layer attaches the
//! pool to the store ([`Store::attach_readers`](crate::Store::attach_readers)),
//! and the reopen pauses it around the close and the open of the write
//! connection ([`ReadPool::pause`], [`ReadPool::resume`]).
//!
//! # The pause for the writer's reopen
//!
//! [`ReadPool::pause`] interrupts the reads running, the way the bound
//! below does: their callers get [`Error::ReadPausedForReopen`] (a read is
//! never run twice: its closure may have acted outside SQLite; the caller
//! runs it again). Reads submitted while the pool is paused wait in the
//! queue and run after [`ReadPool::resume`], on connections opened again.
//! The pause waits [`READ_PAUSE_TIMEOUT`] for every connection to close;
//! a closure busy outside SQLite may keep one open past it
//! ([`Error::ReadersBusy`]): the pool resumes, the reopen is not tried,
//! and the next checkpoint call tries again.
//!
//! # A read
//!
//! A read is a closure `FnOnce(&Connection) -> rusqlite::Result<R>` or one
//! [`Statement`]. It runs on the first free connection, each on its own
//! thread (`walguard-read-N`), reads on different connections at once,
//! inside **one read transaction**: `BEGIN` before it, `COMMIT` after (or
//! `ROLLBACK` after an error). So every statement of a read sees the same
//! snapshot, taken at its first statement; and a read that starts after a
//! write's commit returned sees that write (WAL snapshots; SQLite's
//! wal.html).
//!
//! What the read side refuses, before or while the statement runs:
//! writes (the connections are opened `SQLITE_OPEN_READONLY`; SQLite
//! answers `SQLITE_READONLY`), transaction control (`BEGIN`, `COMMIT`,
//! `SAVEPOINT`...: it would end the read's snapshot), `ATTACH`/`DETACH`
//! and temporary objects (the connection serves the next read),
//! checkpoints (the writer's) and changes of the
//! [guarded settings](crate::store::GUARDED_PRAGMAS); and, for one
//! [`Statement`], any program SQLite does not call read-only (`VACUUM`),
//! PRAGMAs aside: all
//! [`Error::ReadRefused`], naming what was refused. A connection's own
//! settings (`PRAGMA cache_size = …`) are not refused: a closure that
//! changes one changes it for the reads after it on that connection.
//!
//! # The bound on a snapshot's age
//!
//! A reader that holds its snapshot pins the WAL: no checkpoint copies
//! past it, and the WAL grows while it lasts (SQLite's wal.html, section
//! "Checkpoint starvation"). A watchdog thread interrupts every read whose
//! transaction is older than `read.max_snapshot_age`
//! ([`DEFAULT_MAX_SNAPSHOT_AGE`](crate::settings::DEFAULT_MAX_SNAPSHOT_AGE),
//! 30 s): `sqlite3_interrupt` stops the statement running (or held open)
//! at its next step, and a progress handler, every
//! [`READ_PROGRESS_OPS`] virtual-machine steps, stops any statement the
//! closure starts after that. The read's transaction then ends, the WAL is
//! free, and the caller gets [`Error::ReadTooOld`], naming the setting and
//! the age (even if the closure swallowed the interrupt and returned).
//!
//! What the bound cannot do: stop Rust code. A closure that sleeps, or
//! computes, between two SQLite calls is stopped only at its next SQLite
//! step; until then its snapshot stays pinned. [`ReadPool::running`] lists
//! it as overdue meanwhile, so a warning can name it.
//!
//! # Panics and close
//!
//! A closure that panics is its caller's error ([`Error::ReadPanicked`]);
//! its transaction is ended and its connection replaced by a new one (the
//! closure may have left anything behind). [`ReadPool::close`] refuses the
//! reads still queued, waits for the running ones within a budget,
//! interrupts what is left, and closes every connection.
//!
//! One concern per file: `lane` (a connection and its thread), `watchdog`
//! (the bound), `shared` (the state they share), `report` (counts, times,
//! the running reads). This file holds [`ReadPool`].

mod close;
mod lane;
mod pause;
mod report;
mod shared;
mod watchdog;

use std::ffi::c_int;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::error::{Error, Result, sql_for_error};
use crate::settings::{DatabaseSettings, ReadSettings};
use crate::store::{ResultSet, Statement};

pub use report::{ReadCounts, ReadPoolClose, ReadStats, RunningRead};

use lane::Target;
use shared::{Queued, Shared, Task, Turn};

/// Virtual-machine steps between two calls of a read connection's
/// progress handler, which stops a read past its bound: 16. A statement of
/// fewer steps may still complete; the next one is stopped. Each call
/// reads one atomic flag: on a scan of a million rows the handler's cost
/// was within the noise of the run (measured 2026-12-08, median of 7).
pub const READ_PROGRESS_OPS: c_int = 16;

/// How long [`ReadPool::close`] waits, after it has interrupted the reads
/// its budget left running, for their connections to close: 250 ms. A
/// statement stops within microseconds of the interrupt; a closure busy
/// outside SQLite may not stop at all, and is left behind.
pub const READ_CLOSE_GRACE: Duration = Duration::from_millis(250);

/// How long [`ReadPool::pause`] waits for every read connection to close,
/// after it has interrupted the reads running: 1 s. A statement stops
/// within microseconds of the interrupt and a connection closes in less
/// than a millisecond; a closure busy outside SQLite may not stop at all,
/// and the writer, which waits meanwhile, gives up on its reopen after
/// this long ([`Error::ReadersBusy`]).
pub const READ_PAUSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Read times kept for [`ReadStats::time`]: the last 1024 reads.
pub const READ_WINDOW_SAMPLES: usize = 1024;

/// The name of each read connection's thread, followed by its number:
/// `walguard-read-0`, `walguard-read-1`…
pub const READ_THREAD_NAME: &str = "walguard-read";

/// What a closure read is called in the list of running reads and in
/// errors.
const CLOSURE: &str = "closure";

/// A pool of read-only connections to one database in WAL mode (see the
/// [module docs](self)).
///
/// ```
/// use walguard::read::ReadPool;
/// use walguard::{Settings, Statement, Store};
///
/// let dir = tempfile::tempdir()?;
/// let settings = Settings::for_database(dir.path().join("state.db"));
/// let mut store = Store::open(&settings.database)?;
/// store.execute(&Statement::new("CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)"))?;
/// store.execute(&Statement::new("INSERT INTO kv VALUES ('a', 1)"))?;
///
/// let reads = ReadPool::open(&settings.database, &settings.read)?;
/// let total: i64 = reads.read(|conn| conn.query_row("SELECT sum(v) FROM kv", [], |r| r.get(0)))?;
/// assert_eq!(total, 1);
/// let rows = reads.query(Statement::new("SELECT k FROM kv"))?;
/// assert_eq!(rows.len(), 1);
/// assert!(reads.query(Statement::new("DELETE FROM kv")).is_err());
///
/// reads.close(settings.checkpoint.shutdown_timeout);
/// store.close().map_err(|(_, e)| e)?;
/// Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ReadPool {
    shared: Arc<Shared>,
    threads: Mutex<Threads>,
}

#[derive(Debug, Default)]
struct Threads {
    lanes: Vec<Option<JoinHandle<()>>>,
    watchdog: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadPool")
            .field("path", &self.path)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl ReadPool {
    /// Opens `read.connections` read-only connections to the database of
    /// `database`, each on its own thread, and the watchdog of
    /// `read.max_snapshot_age`. Call it after
    /// [`Store::open`](crate::Store::open): the file must exist and be in
    /// WAL mode.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for a `read` value out of range;
    /// [`Error::Open`] when a connection cannot be opened (no such file);
    /// [`Error::NotWal`] when the file is not in WAL mode (no writer has
    /// opened it); [`Error::Pragma`] when configuring a connection fails;
    /// [`Error::ReadThread`] when a thread cannot be started. Nothing stays
    /// open after an error.
    pub fn open(database: &DatabaseSettings, read: &ReadSettings) -> Result<Self> {
        Self::open_through(database, read, None)
    }

    /// Like [`ReadPool::open`], through the SQLite VFS registered under
    /// `vfs` (the one the store was opened with,
    /// [`Store::open_with_vfs`](crate::Store::open_with_vfs)).
    ///
    /// # Errors
    ///
    /// As [`ReadPool::open`].
    pub fn open_with_vfs(
        database: &DatabaseSettings,
        read: &ReadSettings,
        vfs: &str,
    ) -> Result<Self> {
        Self::open_through(database, read, Some(vfs))
    }

    fn open_through(
        database: &DatabaseSettings,
        read: &ReadSettings,
        vfs: Option<&str>,
    ) -> Result<Self> {
        read.validate()?;
        let target = Target {
            path: database.path.clone(),
            vfs: vfs.map(str::to_owned),
            busy_timeout: database.busy_timeout,
        };
        // All open before any thread starts, so an error leaves nothing.
        let conns = (0..read.connections)
            .map(|_| lane::open(&target))
            .collect::<Result<Vec<_>>>()?;
        let shared = Arc::new(Shared::new(
            target.path.clone(),
            read.max_snapshot_age,
            read.connections,
            READ_WINDOW_SAMPLES,
        ));
        let pool = Self {
            shared: Arc::clone(&shared),
            threads: Mutex::new(Threads::default()),
        };
        let spawn_error = |source| Error::ReadThread {
            path: target.path.clone(),
            source,
        };
        for (index, conn) in conns.into_iter().enumerate() {
            let shared = Arc::clone(&shared);
            let target = target.clone();
            // On an error the pool drops: the lanes started close.
            let handle = std::thread::Builder::new()
                .name(format!("{READ_THREAD_NAME}-{index}"))
                .spawn(move || lane::serve(&shared, index, &target, conn))
                .map_err(spawn_error)?;
            pool.threads().lanes.push(Some(handle));
        }
        let handle = std::thread::Builder::new()
            .name(format!("{READ_THREAD_NAME}-watchdog"))
            .spawn(move || watchdog::watch(&shared))
            .map_err(spawn_error)?;
        pool.threads().watchdog = Some(handle);
        Ok(pool)
    }

    fn threads(&self) -> std::sync::MutexGuard<'_, Threads> {
        self.threads.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `f` to run on a read connection, inside one read transaction;
    /// `done` gets its result on that connection's thread (or on the
    /// caller's, at once, when the pool is closed). `done` must not block:
    /// send the result on a channel.
    ///
    /// The result is `Ok` with what `f` returned, or: [`Error::Read`] with
    /// the error `f` returned; [`Error::ReadRefused`] when `f` tried to
    /// write, control the transaction, attach a database or create a
    /// temporary object; [`Error::ReadTooOld`] past
    /// `read.max_snapshot_age`; [`Error::ReadPanicked`];
    /// [`Error::ReadStopped`] or [`Error::ReadPoolClosed`] around a close;
    /// [`Error::ReadPausedForReopen`] when the writer's reopen after a
    /// checkpoint I/O error interrupted it ([`ReadPool::pause`]);
    /// [`Error::TransactionControl`] when `BEGIN` failed; [`Error::Open`]
    /// when a replaced connection cannot be opened again.
    pub fn submit<R, F, D>(&self, f: F, done: D)
    where
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
        R: Send + 'static,
        D: FnOnce(Result<R>) + Send + 'static,
    {
        self.enqueue(
            Arc::from(CLOSURE),
            Box::new(move |turn| {
                done(match turn {
                    Turn::Run(lane) => lane.run(f, |source| Error::Read { source }),
                    Turn::Refuse(e) => Err(e),
                });
            }),
        );
    }

    /// Runs `f` on a read connection and waits for its result (see
    /// [`ReadPool::submit`]).
    ///
    /// # Errors
    ///
    /// As [`ReadPool::submit`].
    pub fn read<R, F>(&self, f: F) -> Result<R>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(f, move |result| {
            let _ = tx.send(result);
        });
        rx.recv()
            .unwrap_or_else(|_| Err(self.shared.closed_error()))
    }

    /// Queues one statement to run on a read connection, collecting its
    /// rows; `done` gets them as in [`ReadPool::submit`]. The list of
    /// running reads shows its SQL text.
    ///
    /// Errors as [`ReadPool::submit`], except that an error of the
    /// statement itself is [`Error::Statement`] naming the SQL, and a write
    /// is [`Error::ReadRefused`] naming it (nothing was written).
    pub fn submit_query<D>(&self, stmt: Statement, done: D)
    where
        D: FnOnce(Result<ResultSet>) + Send + 'static,
    {
        let what: Arc<str> = Arc::from(sql_for_error(stmt.sql()));
        let sql = what.to_string();
        self.enqueue(
            what,
            Box::new(move |turn| {
                done(match turn {
                    Turn::Run(lane) => lane.run(
                        |conn| {
                            let mut prepared = conn.prepare_cached(stmt.sql())?;
                            // What a read-only connection would not stop
                            // itself, or stop with an unclear error inside
                            // the read's transaction (`VACUUM`): a program
                            // that is not read-only. A PRAGMA's program
                            // never is; the authorizer and the read-only
                            // connection judge those.
                            if !prepared.readonly() && !is_pragma(stmt.sql()) {
                                return Err(rusqlite::Error::SqliteFailure(
                                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
                                    None,
                                ));
                            }
                            ResultSet::collect(&mut prepared, stmt.params())
                        },
                        |source| Error::Statement { sql, source },
                    ),
                    Turn::Refuse(e) => Err(e),
                });
            }),
        );
    }

    /// Runs one statement on a read connection and waits for its rows
    /// (see [`ReadPool::submit_query`]).
    ///
    /// # Errors
    ///
    /// As [`ReadPool::submit_query`].
    pub fn query(&self, stmt: Statement) -> Result<ResultSet> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit_query(stmt, move |result| {
            let _ = tx.send(result);
        });
        rx.recv()
            .unwrap_or_else(|_| Err(self.shared.closed_error()))
    }

    fn enqueue(&self, what: Arc<str>, task: Task) {
        let mut state = self.shared.lock();
        if state.closing {
            state.counts.refused += 1;
            drop(state);
            task(Turn::Refuse(self.shared.closed_error()));
            return;
        }
        state.queue.push_back(Queued { what, task });
        drop(state);
        self.shared.work.notify_one();
    }

    /// Counts, read times and the reads running now.
    #[must_use]
    pub fn stats(&self) -> ReadStats {
        let state = self.shared.lock();
        ReadStats {
            connections: state.lanes.len(),
            counts: state.counts,
            time: state.window.aggregate(),
            running: running(&state.lanes),
        }
    }

    /// The reads running now, oldest first: which connection, the SQL text
    /// or `closure`, the age of its snapshot, and whether it was
    /// interrupted.
    #[must_use]
    pub fn running(&self) -> Vec<RunningRead> {
        running(&self.shared.lock().lanes)
    }

    /// `read.max_snapshot_age`, as the pool enforces it.
    #[must_use]
    pub fn max_snapshot_age(&self) -> Duration {
        self.shared.max_age
    }
}

impl Drop for ReadPool {
    /// A pool dropped without [`ReadPool::close`] closes with no budget:
    /// running reads are interrupted.
    fn drop(&mut self) {
        self.close(Duration::ZERO);
    }
}

/// Whether `sql`'s first keyword, past blanks and comments, is `PRAGMA`.
fn is_pragma(sql: &str) -> bool {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, next)| next);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, next)| next);
        } else {
            break;
        }
    }
    rest.get(..6)
        .is_some_and(|word| word.eq_ignore_ascii_case("pragma"))
}

fn running(lanes: &[shared::LaneState]) -> Vec<RunningRead> {
    let now = Instant::now();
    let mut list: Vec<RunningRead> = lanes
        .iter()
        .enumerate()
        .filter_map(|(i, l)| l.running.as_ref().map(|r| r.listed(i, now)))
        .collect();
    list.sort_by_key(|r| std::cmp::Reverse(r.age));
    list
}
