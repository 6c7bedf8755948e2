//! Checkpoint execution and its result type.
//!
//! # The checkpoint policy
//!
//! walguard keeps SQLite in WAL mode. A commit lands in the `-wal` file; a
//! checkpoint copies WAL frames back into the database file and, when it
//! copied at least one frame, fsyncs the WAL first (`walCheckpoint` in
//! `wal.c`). What that buys depends on the failure:
//!
//! - **Process crash** (SIGKILL, OOM kill, Windows `CTRL_CLOSE_EVENT`): no
//!   committed transaction is lost in WAL mode, whatever `synchronous` says.
//!   Checkpoints change nothing here.
//! - **Power loss or OS crash** under `synchronous=NORMAL`: the WAL is fsynced
//!   only at checkpoints, so commits made after the last checkpoint that fully
//!   caught up may roll back. The database stays consistent. The periodic
//!   checkpoint therefore bounds this loss window to about one interval (plus
//!   SQLite's own auto-checkpoints). Under `synchronous=FULL` every commit is
//!   fsynced and nothing acknowledged is lost.
//!
//! The tiers:
//!
//! - **Interval**: a [`CheckpointMode::Passive`] checkpoint every
//!   `checkpoint.interval` (default
//!   [`DEFAULT_CHECKPOINT_INTERVAL`](crate::settings::DEFAULT_CHECKPOINT_INTERVAL),
//!   60 s). PASSIVE never waits and never blocks the writer or readers, so a
//!   reader that pins the WAL makes it return [`CheckpointOutcome::Partial`]:
//!   that is expected, logged without alarm, and retried next interval. Such
//!   a checkpoint may not have fsynced anything, so it does not move the
//!   "durable through" point; only [`CheckpointOutcome::Completed`] does.
//! - **Shutdown**: one [`CheckpointMode::Truncate`] checkpoint under a hard
//!   deadline (`checkpoint.shutdown_timeout`, default
//!   [`DEFAULT_SHUTDOWN_TIMEOUT`](crate::settings::DEFAULT_SHUTDOWN_TIMEOUT),
//!   2 s): the busy timeout is lowered to the deadline and
//!   `sqlite3_interrupt` stops it if it still runs. A busy or failed TRUNCATE
//!   is logged and shutdown goes on.
//! - **Manual**: any mode, on request.
//!
//! RESTART is never scheduled: like Litestream found, it blocks all writers
//! behind long readers.
//!
//! # Failed fsync
//!
//! On Linux a failed `fsync` marks the dirty pages clean: the data it was
//! meant to save may never reach the disk, though every read still shows
//! it. A checkpoint whose database `fsync` fails may so lose pages that an
//! earlier partial checkpoint copied, while SQLite's WAL index still counts
//! those frames as copied: a retry copies only the rest, the WAL is then
//! reset, and a later power loss leaves the database corrupt or short
//! (Postgres' "fsyncgate"). A normal close is no better: it checkpoints
//! from the same stale count, then deletes the WAL.
//!
//! So when a checkpoint fails on an I/O error
//! ([`CheckpointReport::io_error`]: `SQLITE_IOERR_*` or `SQLITE_FULL`), the
//! [`Store`](crate::Store) closes its connection with
//! `SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE` (no checkpoint, and the WAL stays) and
//! opens it again. With no other connection open, SQLite rebuilds the WAL
//! index from the WAL, and the next checkpoint copies every frame again. The
//! checkpoint is still reported as failed and does not move the "durable
//! through" point.
//!
//! The rebuild needs every connection to the database closed at that
//! moment, and the store can close only its own: a reader connection left
//! open keeps the stale index alive. So after reopening, the store asks
//! SQLite (`PRAGMA wal_checkpoint(NOOP)`) how many frames it counts as
//! copied: none in a rebuilt index. Until that holds, no checkpoint runs,
//! not even SQLite's auto-checkpoint on the writer: each checkpoint call
//! tries the reopen again instead and fails with
//! [`Error::StaleWalIndex`](crate::Error::StaleWalIndex). Writes go on
//! meanwhile; the WAL grows and the "durable through" point stands still
//! until the other connection closes. Frames in the WAL were fsynced before
//! any of them was copied, so a power loss meanwhile loses nothing the
//! durable point covers: recovery reads them from the WAL. Should the reopen
//! itself fail, the store refuses every statement (`SQLITE_AUTH`) until a
//! later checkpoint call reopens it.
//!
//! `tests/power_loss.rs` and `actors/tests/crash_lab.rs` show the loss
//! without the reopen, and none with it, a reader left open included;
//! `docs/reliability.md` has the figures.
//!
//! Checkpoints run on the single write connection, between transactions
//! (inside a transaction SQLite answers `SQLITE_LOCKED`), with one
//! exception: phase 1 of the two-phase size checkpoint
//! ([`SizeCheckpoint::TwoPhase`](crate::SizeCheckpoint::TwoPhase)) runs on a
//! second connection while the writer commits. A second connection alone
//! never lets the WAL reset against a writer that never pauses, so phase 2
//! always finishes on the writer, and only phase 2 moves the durable
//! point. Phase 1's connection is closed before the writer learns its
//! result, so the reopen above still finds no other connection of ours.

use std::fmt;
use std::str::FromStr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode};

/// A `PRAGMA wal_checkpoint` mode.
///
/// SQLite silently runs PASSIVE for a mode string it does not know, so modes
/// are an enum and parsing rejects anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CheckpointMode {
    /// Copy what can be copied without waiting for anyone.
    Passive,
    /// Wait (busy handler) for writers, then copy everything readers allow.
    Full,
    /// Like `Full`, then wait for readers so the next writer restarts the WAL.
    Restart,
    /// Like `Restart`, then truncate the WAL file to zero bytes.
    Truncate,
}

impl CheckpointMode {
    /// The mode as SQLite spells it, e.g. `PASSIVE`.
    #[must_use]
    pub fn as_sql(self) -> &'static str {
        match self {
            Self::Passive => "PASSIVE",
            Self::Full => "FULL",
            Self::Restart => "RESTART",
            Self::Truncate => "TRUNCATE",
        }
    }

    /// The mode in lowercase, as logged: `passive`, `full`, ...
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passive => "passive",
            Self::Full => "full",
            Self::Restart => "restart",
            Self::Truncate => "truncate",
        }
    }
}

impl fmt::Display for CheckpointMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for an unknown checkpoint mode string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown checkpoint mode {0:?}, expected passive, full, restart or truncate")]
pub struct UnknownMode(pub String);

impl FromStr for CheckpointMode {
    type Err = UnknownMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "passive" => Ok(Self::Passive),
            "full" => Ok(Self::Full),
            "restart" => Ok(Self::Restart),
            "truncate" => Ok(Self::Truncate),
            _ => Err(UnknownMode(s.to_owned())),
        }
    }
}

/// Why a checkpoint ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CheckpointReason {
    /// The periodic loop.
    Interval,
    /// The clean-shutdown TRUNCATE.
    Shutdown,
    /// Requested explicitly (API or command line).
    Manual,
    /// The WAL grew past a frame threshold: the checkpoint on the writer
    /// (with the two-phase size checkpoint, its phase 2).
    Size,
    /// Phase 1 of a two-phase size checkpoint: a PASSIVE on a second
    /// connection, on its own thread, while the writer keeps committing
    /// (see `docs/design.md`, "Two-phase size checkpoint"). It moves no
    /// durable point; the phase 2 that follows does.
    Backfill,
    /// The TRUNCATE after the schema migrations applied at start
    /// ([`Store::migrate`](crate::Store::migrate)).
    Migration,
}

impl CheckpointReason {
    /// The reason as logged: `interval`, `shutdown`, `manual`, `size`,
    /// `backfill`, `migration`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Interval => "interval",
            Self::Shutdown => "shutdown",
            Self::Manual => "manual",
            Self::Size => "size",
            Self::Backfill => "backfill",
            Self::Migration => "migration",
        }
    }
}

impl fmt::Display for CheckpointReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a checkpoint ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckpointOutcome {
    /// Not busy and every WAL frame is in the database file
    /// (`checkpointed == log`). Every commit before it is durable.
    Completed,
    /// Not busy, but readers kept some frames from being copied
    /// (`checkpointed < log`). Normal under load; retried next time.
    Partial,
    /// SQLite answered `SQLITE_BUSY` (only the waiting modes can): it gave up
    /// waiting for a lock. Normal when readers are active.
    Busy,
    /// The checkpoint failed (I/O error, interrupted, connection closed...).
    Failed {
        /// The error, rendered with its causes.
        error: String,
    },
}

impl CheckpointOutcome {
    /// The outcome as logged: `completed`, `partial`, `busy`, `failed`.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Partial => "partial",
            Self::Busy => "busy",
            Self::Failed { .. } => "failed",
        }
    }

    /// Whether this outcome is an error (only [`CheckpointOutcome::Failed`]).
    #[must_use]
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Failed { .. })
    }

    /// Classifies a `(busy, log, checkpointed)` row of `PRAGMA
    /// wal_checkpoint`, for every row SQLite can return (`OP_Checkpoint`
    /// and `sqlite3Checkpoint` in the amalgamation), `busy` first:
    ///
    /// | row | when | outcome |
    /// |---|---|---|
    /// | `(1, -1, -1)` | another connection holds the checkpointer lock (someone else's checkpoint is running): SQLite gave up before reading the WAL | [`Busy`](Self::Busy) |
    /// | `(1, log, ckpt)` | a waiting mode gave up on its busy handler and fell back to a partial copy | [`Busy`](Self::Busy) |
    /// | `(0, -1, -1)` | the database is not in WAL mode | [`Failed`](Self::Failed) |
    /// | `(0, log, log)` | every frame is in the database file (`log` may be 0) | [`Completed`](Self::Completed) |
    /// | `(0, log, ckpt)`, `ckpt < log` | readers kept frames from being copied | [`Partial`](Self::Partial) |
    /// | anything else | not a row SQLite produces | [`Failed`](Self::Failed) |
    ///
    /// An SQLite error (`SQLITE_LOCKED` inside a transaction, an I/O error,
    /// an interrupt) is not a row: [`run`] reports it as failed.
    #[must_use]
    pub fn classify(busy: bool, log_frames: i64, checkpointed_frames: i64) -> Self {
        match (busy, log_frames, checkpointed_frames) {
            (true, -1, -1) => Self::Busy,
            (true, log, ckpt) if log >= 0 && (0..=log).contains(&ckpt) => Self::Busy,
            (false, -1, -1) => Self::Failed {
                error: "database is not in WAL mode (wal_checkpoint returned -1)".to_owned(),
            },
            (false, log, ckpt) if log >= 0 && ckpt == log => Self::Completed,
            (false, log, ckpt) if log >= 0 && (0..log).contains(&ckpt) => Self::Partial,
            (busy, log, ckpt) => Self::Failed {
                error: format!(
                    "wal_checkpoint returned a row sqlite does not produce: ({}, {log}, {ckpt})",
                    i32::from(busy)
                ),
            },
        }
    }
}

impl fmt::Display for CheckpointOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed { error } => write!(f, "failed: {error}"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// The result of one checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointReport {
    mode: CheckpointMode,
    reason: CheckpointReason,
    busy: bool,
    log_frames: i64,
    checkpointed_frames: i64,
    elapsed: Duration,
    outcome: CheckpointOutcome,
    io_error: bool,
    /// Phase 1 of a two-phase size checkpoint, when this report is its
    /// phase 2.
    backfill: Option<Box<CheckpointReport>>,
}

impl CheckpointReport {
    /// Builds a report from its parts; the outcome is derived from the row.
    #[must_use]
    pub fn from_row(
        mode: CheckpointMode,
        reason: CheckpointReason,
        (busy, log_frames, checkpointed_frames): (bool, i64, i64),
        elapsed: Duration,
    ) -> Self {
        Self {
            mode,
            reason,
            busy,
            log_frames,
            checkpointed_frames,
            elapsed,
            outcome: CheckpointOutcome::classify(busy, log_frames, checkpointed_frames),
            io_error: false,
            backfill: None,
        }
    }

    /// A report for a checkpoint that failed with `error`.
    #[must_use]
    pub fn failed(
        mode: CheckpointMode,
        reason: CheckpointReason,
        elapsed: Duration,
        error: &dyn std::error::Error,
    ) -> Self {
        Self {
            mode,
            reason,
            busy: false,
            log_frames: -1,
            checkpointed_frames: -1,
            elapsed,
            outcome: CheckpointOutcome::Failed {
                error: error_chain(error),
            },
            io_error: false,
            backfill: None,
        }
    }

    /// The mode that ran.
    #[must_use]
    pub fn mode(&self) -> CheckpointMode {
        self.mode
    }
    /// Why it ran.
    #[must_use]
    pub fn reason(&self) -> CheckpointReason {
        self.reason
    }
    /// Whether SQLite reported `SQLITE_BUSY`.
    #[must_use]
    pub fn busy(&self) -> bool {
        self.busy
    }
    /// Frames in the WAL (`-1` when unknown: failed, or not in WAL mode).
    #[must_use]
    pub fn log_frames(&self) -> i64 {
        self.log_frames
    }
    /// Frames of this WAL copied back to the database, cumulative.
    #[must_use]
    pub fn checkpointed_frames(&self) -> i64 {
        self.checkpointed_frames
    }
    /// Wall time spent in the `PRAGMA`. For the phase 2 of a two-phase size
    /// checkpoint, the writer's whole stall: any wait for phase 1 at the
    /// backstop (see [`CheckpointReport::backfill`]) plus its own `PRAGMA`.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }
    /// [`CheckpointReport::elapsed`] in milliseconds, as logged.
    #[must_use]
    pub fn elapsed_ms(&self) -> f64 {
        crate::settings::duration_ms(self.elapsed)
    }
    /// How it ended.
    #[must_use]
    pub fn outcome(&self) -> &CheckpointOutcome {
        &self.outcome
    }
    /// Whether the checkpoint failed on an I/O error (`SQLITE_IOERR_*`,
    /// e.g. a failed `fsync`, or `SQLITE_FULL`). The store then reopens its
    /// connection: see "Failed fsync" in the
    /// [checkpoint policy](crate::checkpoint).
    #[must_use]
    pub fn io_error(&self) -> bool {
        self.io_error
    }

    /// Phase 1 of a two-phase size checkpoint (reason
    /// [`CheckpointReason::Backfill`], run on a second connection), when
    /// this report is its phase 2 (reason [`CheckpointReason::Size`]).
    /// Each phase is one checkpoint with its own measurements; only phase
    /// 2 can move the durable point.
    #[must_use]
    pub fn backfill(&self) -> Option<&CheckpointReport> {
        self.backfill.as_deref()
    }

    /// This report as the phase 2 of `backfill`, the writer having waited
    /// `waited` for phase 1 before its own `PRAGMA`.
    pub(crate) fn with_backfill(mut self, backfill: CheckpointReport, waited: Duration) -> Self {
        self.elapsed += waited;
        self.backfill = Some(Box::new(backfill));
        self
    }

    /// Marks a failed report as an I/O error (`SQLITE_IOERR_*`,
    /// `SQLITE_FULL`) when `error` is one.
    pub(crate) fn mark_io_error(&mut self, error: &rusqlite::Error) {
        self.io_error = matches!(
            error.sqlite_error_code(),
            Some(ErrorCode::SystemIoFailure | ErrorCode::DiskFull)
        );
    }

    /// Emits the per-checkpoint `tracing` event (target
    /// `walguard::checkpoint`) with the stable fields of [`LOG_FIELDS`].
    /// Busy and partial are `info` (expected under load), failed is `warn`.
    pub fn log(&self) {
        macro_rules! event {
            ($level:expr, $($extra:tt)*) => {
                tracing::event!(
                    target: "walguard::checkpoint",
                    $level,
                    mode = self.mode.as_str(),
                    busy = self.busy,
                    log_frames = self.log_frames,
                    checkpointed = self.checkpointed_frames,
                    elapsed_ms = self.elapsed_ms(),
                    reason = self.reason.as_str(),
                    outcome = self.outcome.as_str(),
                    $($extra)*
                )
            };
        }
        if let CheckpointOutcome::Failed { error } = &self.outcome {
            event!(
                tracing::Level::WARN,
                error = error.as_str(),
                "checkpoint failed"
            );
        } else {
            event!(tracing::Level::INFO, "checkpoint");
        }
    }
}

/// The stable fields of the per-checkpoint event ([`CheckpointReport::log`]),
/// in the order they are emitted; a failed checkpoint adds `error`. Log
/// pipelines and dashboards may rely on these names.
pub const LOG_FIELDS: [&str; 7] = [
    "mode",
    "busy",
    "log_frames",
    "checkpointed",
    "elapsed_ms",
    "reason",
    "outcome",
];

/// Renders an error and all its causes on one line: `a: b: c`.
#[must_use]
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Runs `PRAGMA wal_checkpoint(mode)` on `conn` and reports what happened.
///
/// Never fails: an error becomes [`CheckpointOutcome::Failed`]. Must not be
/// called inside an open transaction on `conn` (SQLite answers
/// `SQLITE_LOCKED`, reported as failed).
pub fn run(conn: &Connection, mode: CheckpointMode, reason: CheckpointReason) -> CheckpointReport {
    // The mode comes from our enum, never from user text.
    let sql = format!("PRAGMA wal_checkpoint({})", mode.as_sql());
    let start = Instant::now();
    let row = conn.query_row(&sql, [], |r| {
        Ok((
            r.get::<_, i64>(0)? != 0,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    });
    let elapsed = start.elapsed();
    match row {
        Ok(row) => CheckpointReport::from_row(mode, reason, row, elapsed),
        Err(e) => {
            let mut report = CheckpointReport::failed(mode, reason, elapsed, &e);
            report.mark_io_error(&e);
            report
        }
    }
}

/// Least time between the busy timeout running out and the hard stop of
/// [`run_with_deadline`]: 250 ms.
pub const MIN_DEADLINE_GRACE: Duration = Duration::from_millis(250);

/// Runs a checkpoint under a hard deadline.
///
/// The connection's busy timeout is lowered to `deadline` for the call (and
/// restored afterwards to `restore_busy_timeout`), and a watchdog thread
/// calls `sqlite3_interrupt` if the checkpoint still runs a grace period
/// after the deadline (a quarter of it, at least 250 ms, so that a busy
/// handler giving up on time is reported as busy, not interrupted). The call
/// therefore returns within about `deadline`, whatever other connections
/// hold. An interrupted checkpoint is reported as failed.
pub fn run_with_deadline(
    conn: &Connection,
    mode: CheckpointMode,
    reason: CheckpointReason,
    deadline: Duration,
    restore_busy_timeout: Duration,
) -> CheckpointReport {
    if let Err(e) = conn.busy_timeout(deadline) {
        return CheckpointReport::failed(mode, reason, Duration::ZERO, &e);
    }
    let interrupt = conn.get_interrupt_handle();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    // A little after the busy timeout, so a busy handler that gives up on its
    // own (a clean SQLITE_BUSY row) wins over the interrupt. The busy handler
    // counts its sleeps, not wall time, so under CPU load it overshoots by
    // tens of milliseconds: a margin of only `deadline / 4` (50 ms for a
    // 200 ms deadline) let the interrupt turn a clean busy into a failure.
    let hard_stop = deadline + (deadline / 4).max(MIN_DEADLINE_GRACE);
    let watchdog = std::thread::Builder::new()
        .name("walguard-checkpoint-deadline".to_owned())
        .spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(hard_stop) {
                interrupt.interrupt();
            }
        });
    let report = run(conn, mode, reason);
    // Tell the watchdog we are done, then wait for it so that a late
    // interrupt cannot hit the next statement.
    let _ = done_tx.send(());
    if let Ok(handle) = watchdog {
        let _ = handle.join();
    }
    if let Err(e) = conn.busy_timeout(restore_busy_timeout) {
        tracing::warn!(
            target: "walguard::checkpoint",
            error = %e,
            "cannot restore busy_timeout after checkpoint"
        );
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row shape SQLite's `OP_Checkpoint` can produce, and a few it
    /// cannot, with the outcome walguard gives it.
    #[test]
    fn classify_covers_every_row_sqlite_can_return() {
        use CheckpointOutcome::{Busy, Completed, Partial};
        let failed = |o: &CheckpointOutcome| o.is_failure();
        let table: [((bool, i64, i64), Option<CheckpointOutcome>); 12] = [
            // Someone else's checkpoint holds the checkpointer lock.
            ((true, -1, -1), Some(Busy)),
            // A waiting mode gave up: partial copy, or nothing copied.
            ((true, 10, 4), Some(Busy)),
            ((true, 10, 0), Some(Busy)),
            ((true, 10, 10), Some(Busy)),
            ((true, 0, 0), Some(Busy)),
            ((false, 10, 10), Some(Completed)),
            ((false, 0, 0), Some(Completed)),
            ((false, 10, 4), Some(Partial)),
            ((false, 10, 0), Some(Partial)),
            // Not in WAL mode.
            ((false, -1, -1), None),
            // Rows SQLite never produces.
            ((false, 4, 10), None),
            ((true, -1, 3), None),
        ];
        for ((busy, log, ckpt), expected) in table {
            let got = CheckpointOutcome::classify(busy, log, ckpt);
            match expected {
                Some(outcome) => assert_eq!(got, outcome, "row ({busy}, {log}, {ckpt})"),
                None => assert!(failed(&got), "row ({busy}, {log}, {ckpt}): {got:?}"),
            }
        }
        assert!(
            CheckpointOutcome::classify(false, -1, -1)
                .to_string()
                .contains("not in WAL mode")
        );
    }

    #[test]
    fn modes_parse_strictly() {
        assert_eq!("TRUNCATE".parse(), Ok(CheckpointMode::Truncate));
        assert_eq!("passive".parse(), Ok(CheckpointMode::Passive));
        assert!("fast".parse::<CheckpointMode>().is_err());
    }
}
