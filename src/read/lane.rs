//! One read connection and its thread: opening it read-only, running each
//! read inside one read transaction, and what a read's end says.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::{Connection, OpenFlags};

use super::READ_PROGRESS_OPS;
use super::shared::{Flags, Queued, Running, Shared, Turn};
use crate::error::{Error, Result};
use crate::store::open_side_connection;

/// What a read connection opens.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub(super) path: PathBuf,
    pub(super) vfs: Option<String>,
    pub(super) busy_timeout: Duration,
}

/// An open read connection with its flags.
pub(super) struct ReadConn {
    conn: Connection,
    flags: Arc<Flags>,
}

/// Opens a read connection: read-only (SQLite refuses every write on it),
/// never checkpointing on close (the writer's close is the last, FACTS.md),
/// with the store's busy timeout, checked to be in WAL mode (the writer
/// set it), with the authorizer and the progress handler of the module
/// docs.
pub(super) fn open(target: &Target) -> Result<ReadConn> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let path = &target.path;
    let mut conn = open_side_connection(path, target.vfs.as_deref(), flags, target.busy_timeout)?;
    let pragma = |pragma: &'static str| {
        move |source| Error::Pragma {
            path: path.clone(),
            pragma,
            source,
        }
    };
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .map_err(pragma("journal_mode"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::NotWal {
            path: path.clone(),
            mode,
        });
    }
    let flags = Arc::new(Flags::default());
    let shared = Arc::clone(&flags);
    conn.authorizer(Some(move |ctx: AuthContext<'_>| refuse(&shared, &ctx)))
        .map_err(pragma("authorizer"))?;
    let shared = Arc::clone(&flags);
    conn.progress_handler(
        READ_PROGRESS_OPS,
        Some(move || shared.expired.load(Ordering::Relaxed) && !shared.own.load(Ordering::Relaxed)),
    )
    .map_err(pragma("progress_handler"))?;
    Ok(ReadConn { conn, flags })
}

/// The authorizer of a read connection: what a read may not compile,
/// besides writes (SQLite refuses those on a read-only connection).
fn refuse(flags: &Flags, ctx: &AuthContext<'_>) -> Authorization {
    if flags.own.load(Ordering::Relaxed) {
        return Authorization::Allow;
    }
    let would = match ctx.action {
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => {
            "would end or split the read's transaction"
        }
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => "attaches or detaches a database",
        AuthAction::CreateTempIndex { .. }
        | AuthAction::CreateTempTable { .. }
        | AuthAction::CreateTempTrigger { .. }
        | AuthAction::CreateTempView { .. }
        | AuthAction::DropTempIndex { .. }
        | AuthAction::DropTempTable { .. }
        | AuthAction::DropTempTrigger { .. }
        | AuthAction::DropTempView { .. } => "creates or drops a temporary object",
        // A checkpoint is the writer's (and a read-only connection's
        // attempt fails on its open transaction with an unclear error).
        AuthAction::Pragma { pragma_name, .. }
            if pragma_name.eq_ignore_ascii_case("wal_checkpoint") =>
        {
            "checkpoints (the writer's job)"
        }
        // The guarded settings are refused on every entry point; on a read
        // connection a change would also outlive the read.
        AuthAction::Pragma {
            pragma_name,
            pragma_value: Some(_),
        } if crate::store::GUARDED_PRAGMAS
            .iter()
            .any(|g| g.name.eq_ignore_ascii_case(pragma_name)) =>
        {
            "changes a guarded setting"
        }
        _ => return Authorization::Allow,
    };
    *flags.denied() = Some(would);
    Authorization::Deny
}

/// A lane running one read.
pub(super) struct Lane<'c> {
    shared: &'c Shared,
    index: usize,
    target: &'c Target,
    /// `None` when opening it again failed: the next read tries again.
    conn: &'c mut Option<ReadConn>,
    what: Arc<str>,
}

/// How the closure ended, before the bound and the close have their say.
enum Ran<R> {
    Returned(rusqlite::Result<R>),
    Panicked(String),
    /// `BEGIN` failed.
    NotBegun(rusqlite::Error),
}

impl Lane<'_> {
    /// Runs `f` inside one read transaction (`BEGIN` … `COMMIT`, or
    /// `ROLLBACK` after an error), counts and times it, and says how it
    /// ended. `failed` turns an error the read returned into ours.
    pub(super) fn run<R>(
        &mut self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R>,
        failed: impl FnOnce(rusqlite::Error) -> Error,
    ) -> Result<R> {
        if self.conn.is_none() {
            match open(self.target) {
                Ok(opened) => *self.conn = Some(opened),
                Err(e) => {
                    self.shared.lock().counts.failed += 1;
                    return Err(e);
                }
            }
        }
        let Some(read) = self.conn.as_ref() else {
            return Err(self.shared.closed_error());
        };
        let (conn, flags) = (&read.conn, &read.flags);
        let mut replace = false;
        flags.expired.store(false, Ordering::SeqCst);
        *flags.denied() = None;
        let started = {
            let mut state = self.shared.lock();
            let started = Instant::now();
            state.lanes[self.index].running = Some(Running {
                what: Arc::clone(&self.what),
                started,
                overdue: false,
                stopped: false,
                flags: Arc::clone(flags),
                interrupt: conn.get_interrupt_handle(),
            });
            started
        };
        self.shared.watch.notify_all();
        let ran = if let Err(e) = flags.own(|| conn.execute_batch("BEGIN")) {
            Ran::NotBegun(e)
        } else {
            // The closure is the caller's code: a panic in it is its
            // caller's error, never the lane's end.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)));
            replace = !end_transaction(read, self.index, &self.what, matches!(result, Ok(Ok(_))));
            match result {
                Ok(returned) => Ran::Returned(returned),
                Err(payload) => {
                    // Whatever the closure left behind (a temporary
                    // setting, a half-used statement) goes with the
                    // connection.
                    replace = true;
                    Ran::Panicked(crate::error::panic_message(payload.as_ref()))
                }
            }
        };
        let denied = flags.denied().take();
        let mut state = self.shared.lock();
        let running = state.lanes[self.index].running.take();
        let age = started.elapsed();
        state.window.push(age);
        let what = self.what.to_string();
        let (overdue, stopped) = running.map_or((false, false), |r| (r.overdue, r.stopped));
        let counts = &mut state.counts;
        let result = match ran {
            Ran::Panicked(message) => {
                counts.failed += 1;
                counts.panicked += 1;
                Err(Error::ReadPanicked { message })
            }
            _ if stopped => {
                counts.interrupted += 1;
                Err(Error::ReadStopped { what, age })
            }
            // Even a read that returned: a closure may have swallowed the
            // interrupt and returned part of what it meant to read.
            _ if overdue => {
                counts.interrupted += 1;
                Err(Error::ReadTooOld {
                    what,
                    age,
                    limit: self.shared.max_age,
                })
            }
            Ran::NotBegun(source) => {
                counts.failed += 1;
                Err(Error::TransactionControl {
                    step: "begin",
                    source,
                })
            }
            Ran::Returned(Ok(value)) => {
                counts.served += 1;
                Ok(value)
            }
            Ran::Returned(Err(e)) => {
                counts.failed += 1;
                Err(match denied {
                    Some(would) => Error::ReadRefused { what, would },
                    None if is_write_refused(&e) => Error::ReadRefused {
                        what,
                        would: "writes",
                    },
                    None => failed(e),
                })
            }
        };
        drop(state);
        self.shared.ended.notify_all();
        // Before the caller hears of it: when it does, no connection of
        // the pool is left from before (nor reads, for its open).
        if replace {
            self.replace_connection();
        }
        result
    }

    /// Closes the connection and opens a new one in its place.
    fn replace_connection(&mut self) {
        if let Some(old) = self.conn.take() {
            close(self.index, old);
        }
        let closing = {
            let mut state = self.shared.lock();
            state.counts.replaced += 1;
            state.closing
        };
        // A closing pool serves no more reads.
        if closing {
            return;
        }
        match open(self.target) {
            Ok(opened) => *self.conn = Some(opened),
            // The next read opens it, or gets the error.
            Err(e) => {
                tracing::warn!(target: "walguard::read", connection = self.index, error = %e, "cannot open a read connection again");
            }
        }
    }
}

/// Ends the read's transaction: whether the connection can be trusted
/// with the next read (it is out of any transaction, and no transaction
/// ended before the read did).
fn end_transaction(read: &ReadConn, index: usize, what: &str, returned_ok: bool) -> bool {
    let conn = &read.conn;
    if conn.is_autocommit() {
        // Ended before the read did: an error rolled it back, or the
        // closure got past the authorizer, and may have done anything to
        // the connection.
        tracing::warn!(target: "walguard::read", connection = index, what, "a read's transaction ended before the read did; its connection is replaced");
        return false;
    }
    let end = if returned_ok { "COMMIT" } else { "ROLLBACK" };
    let ended = read.flags.own(|| {
        conn.execute_batch(end)
            .or_else(|_| conn.execute_batch("ROLLBACK"))
    });
    match ended {
        Err(e) if !conn.is_autocommit() => {
            tracing::warn!(target: "walguard::read", connection = index, error = %e, "cannot end a read transaction; its connection is replaced");
            false
        }
        _ => true,
    }
}

/// SQLite refused a write on the read-only connection (`SQLITE_READONLY`
/// itself, not one of its extended codes, which are about the files).
fn is_write_refused(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_READONLY)
}

/// A lane's thread: takes reads from the queue until the pool closes, then
/// closes its connection.
pub(super) fn serve(shared: &Shared, index: usize, target: &Target, conn: ReadConn) {
    let mut conn = Some(conn);
    loop {
        let next = {
            let mut state = shared.lock();
            loop {
                if let Some(queued) = state.queue.pop_front() {
                    break Some(queued);
                }
                if state.closing {
                    break None;
                }
                state = shared
                    .work
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        };
        let Some(Queued { what, task }) = next else {
            break;
        };
        let mut lane = Lane {
            shared,
            index,
            target,
            conn: &mut conn,
            what,
        };
        run_task(index, || task(Turn::Run(&mut lane)));
        // A read that ended without its bookkeeping (a bug) is not listed
        // as running for ever.
        shared.lock().lanes[index].running = None;
    }
    if let Some(old) = conn.take() {
        close(index, old);
    }
    shared.lock().lanes[index].exited = true;
    shared.ended.notify_all();
}

/// Runs a task; a panic outside the closure (in the caller's reply) is
/// logged, and the lane goes on.
fn run_task(index: usize, task: impl FnOnce()) {
    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(task)) {
        let message = crate::error::panic_message(payload.as_ref());
        tracing::error!(target: "walguard::read", connection = index, panic = %message, "the reply of a read panicked");
    }
}

fn close(index: usize, read: ReadConn) {
    if let Err((_, e)) = read.conn.close() {
        // Dropped instead (rusqlite closes it with sqlite3_close_v2).
        tracing::warn!(target: "walguard::read", connection = index, error = %e, "closing a read connection failed");
    }
}
