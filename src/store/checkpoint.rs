//! Checkpoints on the write connection ([`Store::checkpoint`]), the
//! bookkeeping around each (the file check, the reopen, the durable
//! point), and the replica hold's part in them.

use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::{ReplicaHold, ReplicaHoldState, Store};
use crate::checkpoint::{CheckpointMode, CheckpointOutcome, CheckpointReason, CheckpointReport};
use crate::error::{Error, Result};

impl Store {
    /// Runs a checkpoint now, on this connection, between transactions.
    /// Never fails: a failure is [`CheckpointOutcome::Failed`] in the report.
    ///
    /// PASSIVE never waits. FULL, RESTART and TRUNCATE wait on readers and
    /// other writers at most `database.checkpoint_busy_timeout` (default
    /// [`DEFAULT_CHECKPOINT_BUSY_TIMEOUT`](crate::settings::DEFAULT_CHECKPOINT_BUSY_TIMEOUT),
    /// 250 ms), then end `busy` ([`Store::checkpoint_with_deadline`]):
    /// while they wait, every write waits behind them.
    pub fn checkpoint(
        &mut self,
        mode: CheckpointMode,
        reason: CheckpointReason,
    ) -> CheckpointReport {
        if mode == CheckpointMode::Passive {
            return self.checkpoint_by(mode, reason, |conn| {
                crate::checkpoint::run(conn, mode, reason)
            });
        }
        // A blocking mode holds the write lock while it waits on readers:
        // bounded by its own busy timeout, with the interrupt as the stop.
        let wait = self.settings.checkpoint_busy_timeout;
        self.checkpoint_with_deadline(mode, reason, wait)
    }

    /// The bookkeeping around every checkpoint: the file must still be the
    /// one opened ([`Store::check_file`]), a reopen still pending after an
    /// I/O error comes next, the durable point moves on a completed one,
    /// and an I/O failure leads to a reopen.
    pub(super) fn checkpoint_by(
        &mut self,
        mode: CheckpointMode,
        reason: CheckpointReason,
        run: impl FnOnce(&Connection) -> CheckpointReport,
    ) -> CheckpointReport {
        // A phase 1 in flight finishes first (interrupted at shutdown): it
        // holds the checkpointer lock, and its report rides on this one.
        let phase1 = self.join_backfill(reason == CheckpointReason::Shutdown);
        let report = self.checkpoint_on_writer(mode, reason, run);
        match phase1 {
            Some((phase1, waited)) => report.with_backfill(phase1, waited),
            None => report,
        }
    }

    pub(super) fn checkpoint_on_writer(
        &mut self,
        mode: CheckpointMode,
        reason: CheckpointReason,
        run: impl FnOnce(&Connection) -> CheckpointReport,
    ) -> CheckpointReport {
        if let Err(e) = self.check_file() {
            return CheckpointReport::failed(mode, reason, Duration::ZERO, &e);
        }
        if let Err(e) = self.reopen_if_pending() {
            return CheckpointReport::failed(mode, reason, Duration::ZERO, &e);
        }
        if let Some(report) = self.hold_before_checkpoint(mode, reason) {
            return report;
        }
        let before = self.durability;
        let report = run(&self.conn);
        if *report.outcome() == CheckpointOutcome::Completed && self.weakened.is_none() {
            self.durability.durable_through(before);
        }
        self.reopen_after_io_error(&report);
        report
    }

    /// With the replica hold on ([`Store::hold_for_replica`]): pins the
    /// WAL before a checkpoint that restarts nothing, and answers a
    /// RESTART or TRUNCATE `busy` at once, without running it, while the
    /// replica lacks commits (it would restart the WAL under them, or
    /// wait out its busy timeout on the pin). `None`: run it.
    pub(super) fn hold_before_checkpoint(
        &mut self,
        mode: CheckpointMode,
        reason: CheckpointReason,
    ) -> Option<CheckpointReport> {
        let commits = self.durability.commits();
        let hold = self.replica.as_mut()?;
        if matches!(mode, CheckpointMode::Restart | CheckpointMode::Truncate) {
            if hold.release_if_caught_up(commits) {
                return None;
            }
            tracing::info!(
                target: "walguard::replication",
                mode = mode.as_str(),
                reason = reason.as_str(),
                not_replicated = commits.saturating_sub(hold.state().replicated_commits),
                "checkpoint held back: the replica lacks commits it would take out of the wal"
            );
            return Some(CheckpointReport::from_row(
                mode,
                reason,
                (true, -1, -1),
                Duration::ZERO,
            ));
        }
        match hold.pin(commits) {
            Ok(()) => None,
            Err(source) => Some(CheckpointReport::failed(
                mode,
                reason,
                Duration::ZERO,
                &Error::ReplicaHold {
                    path: self.settings.path.clone(),
                    source,
                },
            )),
        }
    }

    /// Turns the replica hold on (replication through Litestream): from
    /// now on every checkpoint this store runs first pins the WAL, and the
    /// pin lasts until [`Store::replicated_through`] says the replica holds
    /// every commit made before it; RESTART, TRUNCATE and the close-time
    /// checkpoint wait until the replica holds every commit. See
    /// `src/store/replica_hold.rs` for why and what it costs.
    ///
    /// # Errors
    ///
    /// [`Error::Open`] when the hold's read-only connection cannot be
    /// opened.
    pub fn hold_for_replica(&mut self) -> Result<()> {
        if self.replica.is_none() {
            self.replica = Some(ReplicaHold::open(&self.settings.path, self.vfs.as_deref())?);
        }
        Ok(())
    }

    /// The replica holds every commit up to `commits` (this session's
    /// count, [`Durability::commits`](super::Durability::commits)): a pin it covers is released.
    pub fn replicated_through(&mut self, commits: u64) {
        if let Some(hold) = self.replica.as_mut() {
            hold.replicated_through(commits);
        }
    }

    /// Whether the replica holds every commit of this session; `true`
    /// without the replica hold.
    #[must_use]
    pub fn replica_caught_up(&self) -> bool {
        self.replica
            .as_ref()
            .is_none_or(|h| h.caught_up(self.durability.commits()))
    }

    /// What the replica hold holds; `None` without it.
    #[must_use]
    pub fn replica_hold(&self) -> Option<ReplicaHoldState> {
        self.replica.as_ref().map(ReplicaHold::state)
    }

    /// Waits for a phase 1 in flight (interrupting it first when
    /// `interrupt`): its report and how long the writer waited. Its
    /// connection is closed by then; an I/O error in it makes the reopen
    /// pending, as one on the writer would (see "Failed fsync" in the
    /// [checkpoint policy](crate::checkpoint)).
    pub(super) fn join_backfill(
        &mut self,
        interrupt: bool,
    ) -> Option<(CheckpointReport, Duration)> {
        let backfill = self.backfill.take()?;
        let start = Instant::now();
        let report = backfill.join(interrupt);
        if report.io_error() {
            self.reopen_pending = true;
        }
        Some((report, start.elapsed()))
    }

    /// Runs a checkpoint that returns within about `deadline` whatever other
    /// connections hold: the busy timeout is lowered to `deadline` and
    /// `sqlite3_interrupt` is the hard stop. Used for the shutdown TRUNCATE.
    pub fn checkpoint_with_deadline(
        &mut self,
        mode: CheckpointMode,
        reason: CheckpointReason,
        deadline: Duration,
    ) -> CheckpointReport {
        let busy_timeout = deadline.min(self.settings.busy_timeout);
        let restore = self.settings.busy_timeout;
        self.checkpoint_by(mode, reason, |conn| {
            crate::checkpoint::run_with_deadline(conn, mode, reason, busy_timeout, restore)
        })
    }

    /// A handle that can interrupt whatever the connection runs, from any
    /// thread.
    #[must_use]
    pub fn interrupt_handle(&self) -> rusqlite::InterruptHandle {
        self.conn.get_interrupt_handle()
    }
}
