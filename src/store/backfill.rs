//! Phase 1 of the two-phase size checkpoint: a PASSIVE checkpoint on a
//! second connection, on its own thread, while the writer keeps committing.
//!
//! PASSIVE never takes the writer lock, and the writer never needs the
//! checkpointer lock, so the copy runs beside the commits (FACTS.md,
//! "Modes"). It can rarely catch up with a writer that never pauses, so
//! phase 2 ([`Store::checkpoint_if_due`](super::Store::checkpoint_if_due))
//! finishes on the writer, between two groups, with a short PASSIVE that
//! copies only what was committed meanwhile.
//!
//! The second connection:
//!
//! - opens through the store's VFS (so a shim such as the power-loss VFS
//!   sees its I/O) with the store's `synchronous` (its checkpoint fsyncs as
//!   the writer's would), and without `SQLITE_OPEN_CREATE`: a deleted
//!   database is not created again;
//! - checks, before and after opening, that the file at the path is still
//!   the one the store opened ([`FileIdentity`]);
//! - never checkpoints on close (`SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`) and is
//!   closed **before** the writer learns the result, so the reopen after an
//!   I/O error finds no other connection of ours open and the WAL index is
//!   rebuilt (see `reopen.rs`);
//! - can be interrupted (`sqlite3_interrupt`) at shutdown and before a
//!   reopen; the writer joins the thread before it closes or reopens its own
//!   connection (the last close deletes the WAL).
//!
//! A panic on the thread becomes a failed report when the writer joins it;
//! it never reaches the writer.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, InterruptHandle, OpenFlags};

use crate::checkpoint::{self, CheckpointMode, CheckpointReason, CheckpointReport};
use crate::error::Error;
use crate::settings::Synchronous;

use super::identity::FileIdentity;
use super::open_side_connection;

/// The busy timeout of the phase-1 connection, for the read of the schema
/// and the WAL index when it opens: 100 ms. The PASSIVE itself never waits.
pub(crate) const BACKFILL_BUSY_TIMEOUT: Duration = Duration::from_millis(100);

/// The name of phase 1's thread: `walguard-backfill`. The power-loss VFS
/// shim (feature `testing`) tells phase 1's I/O from the writer's by it.
// Public only with the `testing` feature: the power-loss shim tells the
// phases apart by it.
#[cfg_attr(not(feature = "testing"), allow(unreachable_pub))]
pub const BACKFILL_THREAD_NAME: &str = "walguard-backfill";

/// What phase 1 needs to open its connection.
#[derive(Debug, Clone)]
pub(super) struct BackfillTarget {
    pub(super) path: PathBuf,
    pub(super) vfs: Option<String>,
    pub(super) synchronous: Synchronous,
    /// The database file as the store opened it.
    pub(super) identity: FileIdentity,
}

/// Shared between the writer and the phase-1 thread.
#[derive(Default)]
struct Control {
    /// The writer asked phase 1 to stop.
    stop: bool,
    /// The running connection's interrupt handle.
    interrupt: Option<InterruptHandle>,
    /// Phase 1 returned and its connection is closed (set before the
    /// waker runs, so that the writer it wakes finds phase 1 finished).
    returned: bool,
}

/// A phase 1 in flight.
pub(super) struct Backfill {
    handle: Option<JoinHandle<CheckpointReport>>,
    control: Arc<Mutex<Control>>,
}

impl std::fmt::Debug for Backfill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backfill")
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}

fn lock(control: &Mutex<Control>) -> std::sync::MutexGuard<'_, Control> {
    control.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Backfill {
    /// Starts phase 1 on its own thread; `done` runs on that thread once
    /// its connection is closed and the result is ready.
    ///
    /// # Errors
    ///
    /// The I/O error when the thread cannot be spawned.
    pub(super) fn start(
        target: BackfillTarget,
        done: Option<Arc<dyn Fn() + Send + Sync>>,
    ) -> std::io::Result<Self> {
        let control = Arc::new(Mutex::new(Control::default()));
        let shared = Arc::clone(&control);
        let handle = std::thread::Builder::new()
            .name(BACKFILL_THREAD_NAME.to_owned())
            .spawn(move || {
                let report = run(&target, &shared);
                lock(&shared).returned = true;
                if let Some(done) = done {
                    done();
                }
                report
            })?;
        Ok(Self {
            handle: Some(handle),
            control,
        })
    }

    /// Whether phase 1 has returned (its connection is closed).
    pub(super) fn is_finished(&self) -> bool {
        lock(&self.control).returned || self.handle.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits for phase 1 (interrupting it first when `interrupt`) and
    /// returns its report; a panic on its thread is a failed report.
    pub(super) fn join(mut self, interrupt: bool) -> CheckpointReport {
        let start = Instant::now();
        self.finish(interrupt)
            .unwrap_or_else(|message| failed(start, &Error::BackfillPanicked { message }))
    }

    /// Joins the thread; `Err` with the panic's message.
    fn finish(&mut self, interrupt: bool) -> Result<CheckpointReport, String> {
        if interrupt {
            let mut control = lock(&self.control);
            control.stop = true;
            if let Some(handle) = &control.interrupt {
                handle.interrupt();
            }
        }
        match self.handle.take().map(JoinHandle::join) {
            Some(Ok(report)) => Ok(report),
            Some(Err(payload)) => Err(crate::error::panic_message(payload.as_ref())),
            None => Err("phase 1 joined twice".to_owned()),
        }
    }
}

impl Drop for Backfill {
    /// A store dropped without closing still joins its phase 1 before its
    /// own connection goes.
    fn drop(&mut self) {
        if self.handle.is_some() {
            let _ = self.finish(true);
        }
    }
}

fn failed(start: Instant, error: &dyn std::error::Error) -> CheckpointReport {
    CheckpointReport::failed(
        CheckpointMode::Passive,
        CheckpointReason::Backfill,
        start.elapsed(),
        error,
    )
}

/// The thread's work: open, check the file, PASSIVE, close.
fn run(target: &BackfillTarget, control: &Mutex<Control>) -> CheckpointReport {
    let start = Instant::now();
    let conn = match open(target) {
        Ok(conn) => conn,
        Err(e) => return failed(start, &e),
    };
    {
        let mut control = lock(control);
        if control.stop {
            drop(conn);
            return failed(
                start,
                &Error::BackfillStopped {
                    path: target.path.clone(),
                },
            );
        }
        control.interrupt = Some(conn.get_interrupt_handle());
    }
    let mut report = checkpoint::run(&conn, CheckpointMode::Passive, CheckpointReason::Backfill);
    lock(control).interrupt = None;
    if let Err((_, e)) = conn.close() {
        tracing::warn!(target: "walguard::db", error = %e, "closing the phase-1 checkpoint connection failed");
        // Dropped instead (rusqlite closes it with sqlite3_close_v2).
        if !report.outcome().is_failure() {
            report = failed(start, &e);
        }
    }
    report
}

fn gone(target: &BackfillTarget) -> Option<Error> {
    match FileIdentity::of(&target.path) {
        Ok(now) if now == target.identity => None,
        _ => Some(Error::DatabaseGone {
            path: target.path.clone(),
            how: "replaced, moved or deleted (seen by the phase-1 checkpoint)",
        }),
    }
}

fn open(target: &BackfillTarget) -> Result<Connection, Error> {
    if let Some(e) = gone(target) {
        return Err(e);
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let path = &target.path;
    let conn = open_side_connection(path, target.vfs.as_deref(), flags, BACKFILL_BUSY_TIMEOUT)?;
    let pragma = |pragma: &'static str| {
        move |source| Error::Pragma {
            path: path.clone(),
            pragma,
            source,
        }
    };
    conn.pragma_update(None, "synchronous", target.synchronous.as_str())
        .map_err(pragma("synchronous"))?;
    // The file is the one the store opened, after the open too: a file
    // swapped in between is not checkpointed as ours.
    if let Some(e) = gone(target) {
        return Err(e);
    }
    Ok(conn)
}
