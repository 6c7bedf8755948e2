//! What the read side reports: counts, read times, the reads running now,
//! and what a close did.

use std::fmt;
use std::time::Duration;

use crate::settings::duration_ms as ms;
use crate::stats::Aggregate;

/// Reads counted over the pool's life, by how they ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ReadCounts {
    /// Reads that returned their result.
    pub served: u64,
    /// Reads that ran and returned an error (their own, a refused write,
    /// a panic), the interrupted ones excepted.
    pub failed: u64,
    /// Reads interrupted: past `read.max_snapshot_age`, or still running
    /// when a close's drain budget ran out.
    pub interrupted: u64,
    /// Reads that never ran: the pool was closing.
    pub refused: u64,
    /// Of the failed reads, closures that panicked.
    pub panicked: u64,
    /// Connections closed and opened again (after a panic, or a
    /// transaction that could not be ended).
    pub replaced: u64,
}

/// One read running now: which connection, what, and since when. What a
/// starvation warning names when a reader of walguard's pins the WAL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningRead {
    pub(super) connection: usize,
    pub(super) what: String,
    pub(super) age: Duration,
    pub(super) overdue: bool,
    pub(super) stopped: bool,
}

impl RunningRead {
    /// The read connection, from 0.
    #[must_use]
    pub fn connection(&self) -> usize {
        self.connection
    }
    /// The SQL text (shortened when long), or `closure`.
    #[must_use]
    pub fn what(&self) -> &str {
        &self.what
    }
    /// How long its transaction (its snapshot) has been open.
    #[must_use]
    pub fn age(&self) -> Duration {
        self.age
    }
    /// Past `read.max_snapshot_age`: interrupted, ends at its next SQLite
    /// step.
    #[must_use]
    pub fn overdue(&self) -> bool {
        self.overdue
    }
    /// Interrupted by a close whose drain budget ran out.
    #[must_use]
    pub fn stopped(&self) -> bool {
        self.stopped
    }
}

impl fmt::Display for RunningRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "read connection {}: {} running {:.3}ms",
            self.connection,
            self.what,
            ms(self.age)
        )?;
        if self.stopped {
            f.write_str(" (interrupted: the pool is closing)")
        } else if self.overdue {
            f.write_str(" (past read.max_snapshot_age, interrupted)")
        } else {
            Ok(())
        }
    }
}

/// The pool's statistics: counts, read times over the window, and the
/// reads running now, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadStats {
    pub(super) connections: usize,
    pub(super) counts: ReadCounts,
    pub(super) time: Aggregate,
    pub(super) running: Vec<RunningRead>,
}

impl ReadStats {
    /// Read connections in the pool.
    #[must_use]
    pub fn connections(&self) -> usize {
        self.connections
    }
    /// Reads by how they ended.
    #[must_use]
    pub fn counts(&self) -> ReadCounts {
        self.counts
    }
    /// n, p50, p95 and max of the time each read held its transaction,
    /// over the last [`READ_WINDOW_SAMPLES`](super::READ_WINDOW_SAMPLES)
    /// reads that ran, whatever their end (the nearest-rank rule of
    /// [`stats`](crate::stats)).
    #[must_use]
    pub fn time(&self) -> Aggregate {
        self.time
    }
    /// The reads running now, oldest first.
    #[must_use]
    pub fn running(&self) -> &[RunningRead] {
        &self.running
    }
}

impl fmt::Display for ReadStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        write!(
            f,
            "reads on {} connections: {} served, {} failed ({} panicked), {} interrupted, {} refused; read time: {}",
            self.connections, c.served, c.failed, c.panicked, c.interrupted, c.refused, self.time
        )
    }
}

/// What [`ReadPool::close`](super::ReadPool::close) did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ReadPoolClose {
    /// Reads running when the close began that ended within the budget.
    pub drained: usize,
    /// Reads still running when the budget ran out: interrupted.
    pub interrupted: usize,
    /// Reads queued when the close began: refused, never ran.
    pub refused: usize,
    /// Connections still in use by a read after the interrupt and
    /// [`READ_CLOSE_GRACE`](super::READ_CLOSE_GRACE): a closure busy
    /// outside SQLite. Each closes when its closure returns; until then its
    /// snapshot may still pin the WAL.
    pub left_running: Vec<RunningRead>,
    /// How long the close took.
    pub elapsed: Duration,
}
