//! What the pool, its lanes and the watchdog share: one mutex over the
//! queue, the running reads and the counts, and three condition variables.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::InterruptHandle;

use super::lane::Lane;
use super::report::{ReadCounts, RunningRead};
use crate::error::Error;
use crate::stats::Window;

/// A read waiting for a connection, type-erased: run on a lane, or refused
/// with an error (the pool is closing).
pub(super) type Task = Box<dyn FnOnce(Turn<'_, '_>) + Send>;

/// What a [`Task`] is handed.
pub(super) enum Turn<'a, 'c> {
    /// Run on this lane's connection.
    Run(&'a mut Lane<'c>),
    /// Not run: this error goes to the caller.
    Refuse(Error),
}

/// A queued read and what it is, for the list of running reads.
pub(super) struct Queued {
    pub(super) what: Arc<str>,
    pub(super) task: Task,
}

/// The flags of one read connection, shared with its authorizer and its
/// progress handler.
#[derive(Debug, Default)]
pub(super) struct Flags {
    /// walguard's own `BEGIN`/`COMMIT`/`ROLLBACK` runs: nothing is denied
    /// or interrupted.
    pub(super) own: AtomicBool,
    /// The running read is past its bound (or the pool is closing): the
    /// progress handler stops its next step.
    pub(super) expired: AtomicBool,
    /// What the authorizer denied during the running read, if anything.
    pub(super) denied: Mutex<Option<&'static str>>,
}

impl Flags {
    /// Runs `f` (walguard's own transaction control) with nothing denied
    /// or interrupted.
    pub(super) fn own<R>(&self, f: impl FnOnce() -> R) -> R {
        self.own.store(true, Ordering::SeqCst);
        let result = f();
        self.own.store(false, Ordering::SeqCst);
        result
    }

    pub(super) fn denied(&self) -> std::sync::MutexGuard<'_, Option<&'static str>> {
        self.denied.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A read on its connection now.
pub(super) struct Running {
    pub(super) what: Arc<str>,
    /// When its transaction began.
    pub(super) started: Instant,
    /// The watchdog found it past `read.max_snapshot_age` and interrupted it.
    pub(super) overdue: bool,
    /// The pool closed and its drain budget ran out: interrupted.
    pub(super) stopped: bool,
    /// The pool paused for the writer's reopen: interrupted.
    pub(super) paused: bool,
    pub(super) flags: Arc<Flags>,
    pub(super) interrupt: InterruptHandle,
}

impl Running {
    /// Stops the read at its next SQLite step: `sqlite3_interrupt` for a
    /// statement running now or held open, the progress handler for the
    /// next statement the closure starts.
    pub(super) fn interrupt(&self) {
        self.flags.expired.store(true, Ordering::SeqCst);
        self.interrupt.interrupt();
    }

    pub(super) fn listed(&self, connection: usize, now: Instant) -> RunningRead {
        RunningRead {
            connection,
            what: self.what.to_string(),
            age: now.saturating_duration_since(self.started),
            overdue: self.overdue,
            stopped: self.stopped,
        }
    }
}

/// One connection's place in the pool.
#[derive(Default)]
pub(super) struct LaneState {
    pub(super) running: Option<Running>,
    /// Its thread has closed its connection and returned.
    pub(super) exited: bool,
    /// Its thread has closed its connection for a pause, and waits for
    /// the resume.
    pub(super) paused: bool,
    /// Its thread is opening its connection again after a pause.
    pub(super) reopening: bool,
}

pub(super) struct State {
    pub(super) queue: VecDeque<Queued>,
    pub(super) closing: bool,
    /// Paused for the writer's reopen: the lanes close their connections
    /// and take no read until the resume.
    pub(super) paused: bool,
    pub(super) watchdog_stop: bool,
    pub(super) lanes: Vec<LaneState>,
    pub(super) counts: ReadCounts,
    pub(super) window: Window,
}

pub(super) struct Shared {
    pub(super) path: PathBuf,
    pub(super) max_age: Duration,
    state: Mutex<State>,
    /// Lanes wait here for a read, the close or the resume.
    pub(super) work: Condvar,
    /// The watchdog waits here for a read to start or the close.
    pub(super) watch: Condvar,
    /// `close` and `pause` wait here for reads to end, lanes to exit or
    /// to close their connections.
    pub(super) ended: Condvar,
}

impl Shared {
    pub(super) fn new(path: PathBuf, max_age: Duration, lanes: usize, window: usize) -> Self {
        Self {
            path,
            max_age,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                closing: false,
                paused: false,
                watchdog_stop: false,
                lanes: (0..lanes).map(|_| LaneState::default()).collect(),
                counts: ReadCounts::default(),
                window: Window::new(window),
            }),
            work: Condvar::new(),
            watch: Condvar::new(),
            ended: Condvar::new(),
        }
    }

    /// The state; a panic elsewhere while it was held does not stop the
    /// pool (every update is a plain assignment).
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn closed_error(&self) -> Error {
        Error::ReadPoolClosed {
            path: self.path.clone(),
        }
    }
}
