//! Running `PRAGMA wal_checkpoint` on a connection ([`run`]), and under a
//! hard deadline ([`run_with_deadline`]).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::{CheckpointMode, CheckpointReason, CheckpointReport};

/// Runs `PRAGMA wal_checkpoint(mode)` on `conn` and reports what happened.
///
/// Never fails: an error becomes [`CheckpointOutcome::Failed`](super::CheckpointOutcome::Failed). Must not be
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
