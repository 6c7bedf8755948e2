//! The writer: the one owner of the write connection, without actors.
//!
//! A [`Writer`] wraps an open [`Store`] and is what `walguard-actors`'
//! `DbActor` drains its lane into: the actor turns requests into calls on
//! it and results into replies, nothing more. Everything the writer
//! decides lives here, unit-tested without an actix system.
//!
//! # Group commit
//!
//! With `database.group_commit` on (the default), single writes are not
//! committed one by one: [`Writer::accept`] queues each with its sender's
//! reply, and [`Writer::flush`] commits the queue as one transaction
//! ([`Store::execute_group`]) and only then answers each sender with its
//! own result. The caller flushes when its queue of requests is empty or
//! the group is full ([`Writer::is_full`], `database.max_batch` writes), so
//! a lone writer does not wait for company and the batch grows with the
//! load. Every other request ([`Writer::transaction`], [`Writer::query`],
//! [`Writer::call`], [`Writer::checkpoint`], [`Writer::durability`],
//! [`Writer::stats`], the shutdown) commits the queued writes first, so it
//! sees every earlier write committed. One failing write fails alone (see
//! [`Store::execute_group`]).
//!
//! # Every checkpoint measured
//!
//! With `checkpoint.size_threshold_frames` above zero (the default, 1000),
//! SQLite's own auto-checkpoint is off on the writer
//! ([`Store::set_size_threshold`]) and the writer runs the size checkpoint
//! itself after a commit that leaves that many frames in the WAL, in both
//! phases ([`Store::checkpoint_if_due`]; phase 2 also when phase 1's thread
//! calls back, [`Writer::backfill_returned`]). Each report goes to the
//! checkpoint listener ([`Writer::on_checkpoint`]), like every other
//! checkpoint. A checkpoint inside a COMMIT would have been invisible.
//!
//! # Beside Litestream
//!
//! Who runs the checkpoints has one home: [`WriterState::owner`]. While
//! Litestream does, the size checkpoint waits for `replication.wal_cap_frames`
//! instead of `checkpoint.size_threshold_frames`, and the shutdown TRUNCATE
//! is skipped (Litestream's read lock would only make it wait out its
//! deadline); the interval loop reads the same state and stays quiet. The
//! replica hold ([`Store::hold_for_replica`]) keeps every checkpoint of
//! walguard's from taking frames out of the WAL that the replica lacks.
//! With `replication.ack: replicated` ([`Writer::holding_for_replica`]),
//! the replies of each commit are held until the replica has it
//! ([`Writer::replicated_through`]); a reply held longer than
//! `replication.max_lag` is answered [`Error::NotReplicated`] (the write
//! stays committed locally). The WAL brake ([`Writer::braking`], module
//! `brake`) pauses the writes while Litestream checkpoints a WAL that grew
//! past twice the size threshold.
//!
//! # Counts and faults
//!
//! Every write is counted once, whatever road it took, in the shared
//! [`WriterState`] (the session report's `writes_acknowledged` and
//! `writes_failed`). A panic in the writer's own code is a bug of ours:
//! the writer stops serving, answers every later request
//! [`Error::WriterPanicked`], keeps its counts, and drops the connection
//! (which rolls back whatever transaction the panic left open). A panic in
//! a caller's closure is caught by [`Store::call`] and is that caller's
//! error.

mod brake;
mod hold;
mod replier;
mod state;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::replication::CheckpointOwner;
use crate::stats::DbSummary;
use crate::store::{GroupStats, WalFrames};
use crate::{
    CheckpointMode, CheckpointReason, CheckpointReport, Durability, EngineLock, Error, Result,
    ResultSet, Statement, Store,
};
use hold::{Hold, HeldReply, Released};
use replier::{Answers, Replier};

pub use brake::{BRAKE_MAX_PAUSE, BRAKE_THRESHOLD_FACTOR, Braking};
pub use state::WriterState;

/// Where a single write's result goes: a reply channel of the caller's
/// choice (`walguard-actors` uses tokio's oneshot).
pub trait WriteReply: Send + 'static {
    /// Sends `result`; a sender that gave up waiting is no error.
    fn send(self, result: Result<usize>);
}

/// Hears every checkpoint report (phase 1 of a two-phase checkpoint
/// first, then the report that decided durability).
pub type CheckpointListener = Box<dyn Fn(&CheckpointReport) + Send>;

/// Hears every count of answered writes: `(acknowledged, failed)`, and
/// `(0, 0)` never.
pub type CountListener = Box<dyn Fn(u64, u64) + Send>;

/// The writer's batching and WAL figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriterStats {
    /// Whether group commit is on.
    pub group_commit: bool,
    /// The cap on writes per group commit.
    pub max_batch: usize,
    /// Group commits flushed (each one or more transactions, see
    /// [`GroupStats`]).
    pub flushes: u64,
    /// Writes those flushes held.
    pub flushed_writes: u64,
    /// The most writes one flush held (never above `max_batch`).
    pub largest_flush: usize,
    /// The store's own view of the groups (`None` once closed).
    pub group: Option<GroupStats>,
    /// The WAL as the hook saw it (`None` when the size threshold is off or
    /// the store is closed).
    pub wal: Option<WalFrames>,
}

/// What the shutdown did ([`Writer::shutdown`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ShutdownOutcome {
    /// The TRUNCATE checkpoint (`None` when the store was already closed,
    /// or Litestream owns checkpointing).
    pub truncate: Option<CheckpointReport>,
    /// Writes, durability and any close error.
    pub summary: DbSummary,
}

/// The writer: the store, the group queue, the checkpoint policy beside
/// Litestream, the replica hold and the counts (see the module docs).
/// `R` is where a single write's result goes.
pub struct Writer<R: WriteReply> {
    store: Option<Store>,
    path: PathBuf,
    state: Arc<WriterState>,
    /// The engine lock of the database, held as long as the store is open.
    engine_lock: Option<EngineLock>,
    group_commit: bool,
    max_batch: usize,
    /// Writes waiting for the next group commit, with their replies.
    queue: Answers<R>,
    // The writes flushed are the store's (`GroupStats::writes`). These two
    // are not: a flush is one `execute_group` call, which the store splits
    // into several groups around statements that need their own
    // transaction, and `max_batch` caps flushes, not groups.
    flushes: u64,
    largest_flush: usize,
    /// The owner whose size threshold the store has now.
    applied_owner: CheckpointOwner,
    /// `checkpoint.size_threshold_frames`, while walguard owns checkpoints.
    size_threshold: u32,
    /// `replication.wal_cap_frames`, while Litestream does.
    wal_cap_frames: u32,
    hold: Option<Hold<R>>,
    brake: Option<brake::Brake>,
    replier: Option<Replier<R>>,
    on_checkpoint: Option<CheckpointListener>,
    on_count: Option<CountListener>,
}

impl<R: WriteReply> std::fmt::Debug for Writer<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("path", &self.path)
            .field("open", &self.store.is_some())
            .field("group_commit", &self.group_commit)
            .field("max_batch", &self.max_batch)
            .field("queued", &self.queue.stmts.len())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<R: WriteReply> Writer<R> {
    /// Wraps an open store. Group commit and its cap come from the store's
    /// settings (`database.group_commit`, `database.max_batch`); the size
    /// threshold the store has now is walguard's
    /// (`checkpoint.size_threshold_frames`).
    #[must_use]
    pub fn new(store: Store) -> Self {
        let settings = store.settings();
        let state = Arc::<WriterState>::default();
        state.set_interrupt(Some(store.interrupt_handle()));
        Self {
            path: store.path().to_path_buf(),
            group_commit: settings.group_commit,
            max_batch: settings.max_batch.max(1),
            size_threshold: store.wal_frames().map_or(0, |w| w.threshold),
            store: Some(store),
            state,
            engine_lock: None,
            queue: Answers::default(),
            flushes: 0,
            largest_flush: 0,
            applied_owner: CheckpointOwner::Walguard,
            wal_cap_frames: 0,
            hold: None,
            brake: None,
            replier: None,
            on_checkpoint: None,
            on_count: None,
        }
    }

    /// Shares `state` (counts, shutdown, panic, checkpoint owner) with the
    /// handles, the shutdown and the interval loop.
    #[must_use]
    pub fn with_state(mut self, state: Arc<WriterState>) -> Self {
        state.set_interrupt(self.store.as_ref().map(Store::interrupt_handle));
        self.state = state;
        self
    }

    /// The state this writer shares.
    #[must_use]
    pub fn state(&self) -> &Arc<WriterState> {
        &self.state
    }

    /// Holds `lock` as long as the store is open; released once
    /// [`Writer::shutdown`] has closed the store.
    #[must_use]
    pub fn with_engine_lock(mut self, lock: EngineLock) -> Self {
        self.engine_lock = Some(lock);
        self
    }

    /// The size threshold while Litestream owns checkpointing
    /// (`replication.wal_cap_frames`).
    #[must_use]
    pub fn with_wal_cap(mut self, frames: u32) -> Self {
        self.wal_cap_frames = frames;
        self
    }

    /// Holds the replies of writes until the replica has them
    /// (`replication.ack: replicated`), at most `max_lag`.
    #[must_use]
    pub fn holding_for_replica(mut self, max_lag: Duration) -> Self {
        self.hold = Some(Hold::new(max_lag));
        self
    }

    /// Engages the WAL brake past `frames` while Litestream owns
    /// checkpointing (0: no brake).
    pub fn set_brake(&mut self, frames: u32) {
        self.brake = brake::Brake::new(frames);
    }

    /// Answers group commits of [`MIN_GROUP_WRITES`](replier) writes or
    /// more on a thread of its own, so the writer's thread goes back to
    /// SQLite at once. Should the OS refuse the thread, the writer answers
    /// them itself.
    #[must_use]
    pub fn with_replier(mut self) -> Self {
        match Replier::start() {
            Ok(replier) => self.replier = Some(replier),
            Err(e) => {
                tracing::warn!(target: "walguard::db", error = %e, "cannot start the replier thread; the writer answers group commits itself");
            }
        }
        self
    }

    /// Sends every checkpoint report to `listener`.
    #[must_use]
    pub fn on_checkpoint(mut self, listener: CheckpointListener) -> Self {
        self.on_checkpoint = Some(listener);
        self
    }

    /// Tells `listener` of every count of answered writes (metrics).
    #[must_use]
    pub fn on_count(mut self, listener: CountListener) -> Self {
        self.on_count = Some(listener);
        self
    }

    /// Sets what phase 1 of a two-phase size checkpoint calls once it
    /// returned ([`Store::set_backfill_waker`]): the caller then calls
    /// [`Writer::backfill_returned`] on the writer's thread.
    pub fn set_backfill_waker(&mut self, waker: impl Fn() + Send + Sync + 'static) {
        if let Some(store) = self.store.as_mut() {
            store.set_backfill_waker(waker);
        }
    }

    /// Whether group commit is on.
    #[must_use]
    pub fn group_commit(&self) -> bool {
        self.group_commit
    }

    /// The cap on writes per group commit (at least 1).
    #[must_use]
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Whether the queue holds `max_batch` writes: flush before more.
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.queue.stmts.len() >= self.max_batch
    }

    /// Whether writes are answered one by one as they come: group commit
    /// off, or the writer stopped after a panic.
    #[must_use]
    pub fn one_by_one(&self) -> bool {
        !self.group_commit || self.state.panicked().is_some()
    }

    /// This session's commit count (0 once the store is closed).
    #[must_use]
    pub fn commits(&self) -> u64 {
        self.store.as_ref().map_or(0, |s| s.durability().commits())
    }

    /// Takes one single write: queues it for the next group commit (a full
    /// queue is flushed first); with group commit off, runs it now and
    /// answers it (or holds it for the replica); after a panic, answers it
    /// [`Error::WriterPanicked`].
    pub fn accept(&mut self, stmt: Statement, reply: R) {
        if !self.group_commit {
            let before = self.commits();
            let result = self.guarded(|w| {
                let result = w.store().and_then(|s| s.execute(&stmt));
                w.after_write();
                result
            });
            if self.hold.is_some() && result.is_ok() && self.commits() > before {
                // Counted when answered, as a group's writes are.
                let commits = self.commits();
                if let Some(hold) = self.hold.as_mut() {
                    hold.push(commits, vec![HeldReply::Write(reply, result)]);
                }
                return;
            }
            self.count(result.is_ok());
            reply.send(result);
            return;
        }
        if let Some(message) = self.state.panicked() {
            self.count(false);
            reply.send(Err(Error::WriterPanicked { message }));
            return;
        }
        if self.is_full() {
            self.flush();
        }
        self.queue.stmts.push(stmt);
        self.queue.replies.push(reply);
    }

    /// Commits every queued write as one group and answers each sender.
    pub fn flush(&mut self) {
        let _ = self.guarded(|w| {
            w.flush_unguarded();
            Ok(())
        });
    }

    /// Runs statements as one atomic transaction, after the queued writes;
    /// the rows changed by each.
    ///
    /// # Errors
    ///
    /// As [`Store::transaction`]; [`Error::WriterPanicked`],
    /// [`Error::ShutdownDeadline`] or [`Error::Closed`] when the writer
    /// cannot serve.
    pub fn transaction(&mut self, stmts: &[Statement]) -> Result<Vec<usize>> {
        let result = self.guarded(|w| {
            w.flush_unguarded();
            let result = w.store().and_then(|s| s.transaction(stmts));
            w.after_write();
            result
        });
        self.count(result.is_ok());
        result
    }

    /// Runs a read query on the write connection, after the queued writes.
    ///
    /// # Errors
    ///
    /// As [`Writer::transaction`].
    pub fn query(&mut self, stmt: &Statement) -> Result<ResultSet> {
        self.guarded(|w| {
            w.flush_unguarded();
            w.store().and_then(|s| s.query(stmt))
        })
    }

    /// Runs a closure against the connection, after the queued writes.
    ///
    /// # Errors
    ///
    /// As [`Store::call`] and [`Writer::transaction`].
    pub fn call<T>(&mut self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let result = self.guarded(|w| {
            w.flush_unguarded();
            // A panic in the closure is caught by the store: the caller's
            // error, not the writer's end.
            let result = w.store().and_then(|s| s.call(f));
            w.after_write();
            result
        });
        self.count(result.is_ok());
        result
    }

    /// Runs a checkpoint now, after the queued writes; the report also
    /// goes to the checkpoint listener. A writer that cannot serve reports
    /// a failed checkpoint.
    pub fn checkpoint(&mut self, mode: CheckpointMode, reason: CheckpointReason) -> CheckpointReport {
        let report = self.guarded(|w| {
            w.flush_unguarded();
            w.store().map(|store| store.checkpoint(mode, reason))
        });
        let report =
            report.unwrap_or_else(|e| CheckpointReport::failed(mode, reason, Duration::ZERO, &e));
        self.publish(&report);
        report
    }

    /// What is durable now, after the queued writes (`None` once closed).
    pub fn durability(&mut self) -> Option<Durability> {
        self.flush();
        self.store.as_ref().map(Store::durability)
    }

    /// The batching and WAL figures, after the queued writes.
    pub fn stats(&mut self) -> WriterStats {
        self.flush();
        let group = self.store.as_ref().map(Store::group_stats);
        WriterStats {
            group_commit: self.group_commit,
            max_batch: self.max_batch,
            flushes: self.flushes,
            flushed_writes: group.map_or(0, |g| g.writes),
            largest_flush: self.largest_flush,
            group,
            wal: self.store.as_ref().and_then(Store::wal_frames),
        }
    }

    /// Brakes engaged in this session (0 without a brake).
    #[must_use]
    pub fn brakes(&self) -> u64 {
        self.brake.as_ref().map_or(0, brake::Brake::count)
    }

    /// Panics inside the writer's own code, as a bug of ours would: the
    /// writer stops serving, and every request, this one included, gets
    /// [`Error::WriterPanicked`] with this message. For tests.
    ///
    /// # Errors
    ///
    /// Always [`Error::WriterPanicked`].
    #[cfg(feature = "testing")]
    pub fn inject_panic(&mut self, message: &str) -> Result<()> {
        self.guarded(|_| -> Result<()> {
            // Stands for a bug in the writer's own code.
            panic!("{message}")
        })
    }

    /// Phase 1 of a two-phase size checkpoint returned: runs phase 2 now,
    /// between two groups, when due.
    pub fn backfill_returned(&mut self) {
        let _ = self.guarded(|w| {
            w.after_write();
            Ok(())
        });
    }

    /// Answers a transaction or a closure: at once, or, under
    /// `replication.ack: replicated` when it committed something (`before`
    /// is the commit count before it ran), once the replica has it, as a
    /// group's writes are.
    pub fn answer_write<T: Send + 'static>(
        &mut self,
        before: u64,
        result: Result<T>,
        reply: impl FnOnce(Result<T>) + Send + 'static,
    ) {
        let commits = self.commits();
        match self.hold.as_mut() {
            Some(hold) if result.is_ok() && commits > before => {
                hold.push(
                    commits,
                    vec![HeldReply::Other(Box::new(move |error| {
                        reply(match error {
                            None => result,
                            Some(e) => Err(e),
                        });
                    }))],
                );
            }
            _ => reply(result),
        }
    }

    /// The first `through` commits are on the replica (`None`: a sync that
    /// did not answer): releases the held replies they cover, then those
    /// held past `replication.max_lag`.
    pub fn replicated_through(&mut self, through: Option<u64>) {
        if let (Some(commits), Some(store)) = (through, self.store.as_mut()) {
            store.replicated_through(commits);
        }
        self.release(through, false);
    }

    /// At the start of a round: applies a change of checkpoint owner, and
    /// says whether the WAL brake holds the writes back ([`Braking`]).
    /// Never during the shutdown.
    pub fn braking(&mut self, now: Instant) -> Braking {
        self.apply_owner();
        let shut_down = self.state.is_shut_down();
        let litestream = self.applied_owner == CheckpointOwner::Litestream;
        let frames = self
            .store
            .as_ref()
            .and_then(Store::wal_frames)
            .map_or(0, |w| w.current);
        let Some(brake) = self.brake.as_mut() else {
            return Braking::No;
        };
        if shut_down {
            brake.release();
            return Braking::No;
        }
        let braking = brake.check(frames, litestream, now);
        if braking == Braking::Engaged {
            tracing::debug!(target: "walguard::db", frames, "wal brake: writes wait for litestream's checkpoint");
        }
        braking
    }

    /// The sync the brake asked for returned: whether the brake was on
    /// (the writer then has requests to take again).
    pub fn brake_done(&mut self) -> bool {
        self.brake.as_mut().is_some_and(brake::Brake::done)
    }

    /// Drops the brake: the end serves what is left without pausing.
    pub fn drop_brake(&mut self) {
        self.brake = None;
    }

    /// Commits the queued writes and waits until every answer is sent:
    /// when the writer stops without a shutdown.
    pub fn finish(&mut self) {
        self.flush();
        if let Some(replier) = self.replier.as_mut() {
            replier.finish();
        }
        self.replier = None;
    }

    /// The clean end, once every request accepted before it has been
    /// served: commits the queued writes, answers every held reply as not
    /// replicated, runs a TRUNCATE checkpoint under `deadline` (skipped
    /// while Litestream owns checkpointing; busy or failed is reported,
    /// never fatal), closes the connection and releases the engine lock.
    pub fn shutdown(&mut self, deadline: Duration) -> ShutdownOutcome {
        self.finish();
        let mut summary = self.summary();
        let Some(mut store) = self.store.take() else {
            summary.close_error = Some(match self.state.panicked() {
                Some(message) => format!("writer stopped after a panic: {message}"),
                None => "the store was already closed".to_owned(),
            });
            self.engine_lock = None;
            self.state.set_shut_down();
            return ShutdownOutcome {
                truncate: None,
                summary,
            };
        };
        self.release(None, true);
        // The TRUNCATE has a deadline of its own: the drain watchdog's
        // interrupts, repeated until the shutdown ends, must not reach it
        // and turn a wait on a lock (`busy`) into `failed: interrupted`.
        self.state.set_interrupt(None);
        let report = (self.state.owner() == CheckpointOwner::Walguard).then(|| {
            store.checkpoint_with_deadline(CheckpointMode::Truncate, CheckpointReason::Shutdown, deadline)
        });
        if let Some(report) = &report {
            self.publish(report);
        }
        // Where the file is now, whether or not a TRUNCATE just looked: a
        // file renamed back is the same file, with every acknowledged write.
        let _ = store.check_file();
        summary.durability = Some(store.durability());
        summary.file_gone = store.file_is_gone();
        summary.file_returned = store.file_was_gone() && !store.file_is_gone();
        self.state.set_interrupt(None);
        if let Err((store, e)) = store.close() {
            let error = crate::checkpoint::error_chain(&e);
            tracing::warn!(target: "walguard::db", error = %error, "closing the database failed; dropping the connection");
            summary.close_error = Some(error);
            drop(store);
        }
        // The store is closed: the next engine may take the file.
        self.engine_lock = None;
        self.state.set_shut_down();
        ShutdownOutcome {
            truncate: report,
            summary,
        }
    }

    fn summary(&self) -> DbSummary {
        let mut summary = DbSummary::default();
        summary.writes_acknowledged = self.state.writes_acknowledged();
        summary.writes_failed = self.state.writes_failed();
        summary.durability = self.store.as_ref().map(Store::durability);
        summary
    }

    /// Gives the store the size threshold of the owner now in the shared
    /// state, when it changed.
    fn apply_owner(&mut self) {
        let owner = self.state.owner();
        if owner == self.applied_owner {
            return;
        }
        self.applied_owner = owner;
        let frames = match owner {
            CheckpointOwner::Litestream => self.wal_cap_frames,
            CheckpointOwner::Walguard => self.size_threshold,
        };
        if let Some(store) = self.store.as_mut()
            && let Err(e) = store.set_size_threshold(frames)
        {
            tracing::warn!(target: "walguard::db", error = %crate::checkpoint::error_chain(&e), frames, "cannot set the size threshold for the new checkpoint owner");
        }
    }

    /// Answers held replies (see [`Hold::release`]) and counts them.
    fn release(&mut self, through: Option<u64>, everything: bool) {
        let Some(hold) = self.hold.as_mut() else {
            return;
        };
        let (state, on_count) = (&self.state, &self.on_count);
        hold.release(through, everything, &self.path, |released| match released {
            Released::Write(ok) => count(state, on_count, u64::from(ok), u64::from(!ok)),
            Released::Withdrawn => {
                // Counted acknowledged at its COMMIT: now failed.
                state.count_not_replicated();
                if let Some(on_count) = on_count {
                    on_count(0, 1);
                }
            }
            Released::Other => {}
        });
    }

    /// The store, to serve a request: an error instead when the writer
    /// stopped after a panic, passed its shutdown deadline, or is closed.
    fn store(&mut self) -> Result<&mut Store> {
        if let Some(message) = self.state.panicked() {
            return Err(Error::WriterPanicked { message });
        }
        if self.state.is_past_deadline() {
            return Err(Error::ShutdownDeadline {
                path: self.path.clone(),
            });
        }
        self.store.as_mut().ok_or_else(|| Error::Closed {
            path: self.path.clone(),
        })
    }

    /// Runs one request's work; a panic in it stops the writer (see the
    /// module docs).
    fn guarded<T>(&mut self, work: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        match catch_unwind(AssertUnwindSafe(|| work(self))) {
            Ok(result) => result,
            Err(payload) => {
                let message = crate::error::panic_message(payload.as_ref());
                tracing::error!(
                    target: "walguard::db",
                    panic = %message,
                    "DbActor panicked; the writer stops serving and answers every request with an error"
                );
                self.state.set_panicked(message.clone());
                self.state.set_interrupt(None);
                // Writes still queued are answered, not dropped.
                let Answers { stmts, replies, .. } = std::mem::take(&mut self.queue);
                drop(stmts);
                for reply in replies {
                    reply.send(Err(Error::WriterPanicked {
                        message: message.clone(),
                    }));
                }
                // Dropping the connection rolls back an open transaction.
                drop(self.store.take());
                Err(Error::WriterPanicked { message })
            }
        }
    }

    fn count(&self, ok: bool) {
        count(&self.state, &self.on_count, u64::from(ok), u64::from(!ok));
    }

    fn publish(&self, report: &CheckpointReport) {
        // A checkpoint may have reopened the connection: the interrupt
        // handle follows it.
        self.state
            .set_interrupt(self.store.as_ref().map(Store::interrupt_handle));
        // Each phase of a two-phase size checkpoint is one checkpoint,
        // measured and reported: phase 1 first, so the last one a listener
        // notes is the one that decided durability.
        if let Some(listener) = &self.on_checkpoint {
            if let Some(phase1) = report.backfill() {
                listener(phase1);
            }
            listener(report);
        }
    }

    /// After every commit: the size-triggered checkpoint, when due.
    fn after_write(&mut self) {
        self.apply_owner();
        if let Some(report) = self.store.as_mut().and_then(Store::checkpoint_if_due) {
            self.publish(&report);
        }
    }

    fn flush_unguarded(&mut self) {
        if self.queue.stmts.is_empty() {
            return;
        }
        let Answers {
            stmts,
            replies,
            mut results,
        } = std::mem::take(&mut self.queue);
        self.flushes += 1;
        self.largest_flush = self.largest_flush.max(stmts.len());
        results.clear();
        match self.store() {
            Ok(store) => results.extend(store.execute_group(&stmts)),
            // Each write gets its own copy of why it did not run.
            Err(_) => {
                for _ in &stmts {
                    let result = self.store().map(|_| 0);
                    results.push(result);
                }
            }
        }
        let commits = self.commits();
        if let Some(hold) = self.hold.as_mut()
            && self.store.is_some()
        {
            // Failures are answered now; successes wait for the replica.
            let mut kept = Vec::new();
            let mut failed = 0;
            for (result, reply) in results.drain(..).zip(replies) {
                if result.is_ok() {
                    kept.push(HeldReply::Write(reply, result));
                } else {
                    failed += 1;
                    reply.send(result);
                }
            }
            if !kept.is_empty() {
                hold.push(commits, kept);
            }
            count(&self.state, &self.on_count, 0, failed);
            self.queue = Answers {
                stmts: reuse(stmts),
                replies: Vec::new(),
                results,
            };
            self.after_write();
            return;
        }
        let ok = results.iter().filter(|r| r.is_ok()).count() as u64;
        let failed = results.len() as u64 - ok;
        self.answer(Answers {
            stmts,
            replies,
            results,
        });
        // One atomic add and one metrics update per outcome, not per write.
        count(&self.state, &self.on_count, ok, failed);
        self.after_write();
    }

    /// Answers a group's writes: on the replier's thread when there is one
    /// and the group is large enough (or the replier still answers an
    /// earlier one), else here. Keeps emptied vectors for the next flush.
    fn answer(&mut self, answers: Answers<R>) {
        let left = match &self.replier {
            Some(replier) if answers.replies.len() >= replier::MIN_GROUP_WRITES || replier.busy() => {
                match replier.answer(answers) {
                    Ok(()) => replier.spare(),
                    Err(answers) => Some(answers),
                }
            }
            _ => Some(answers),
        };
        if let Some(mut left) = left {
            left.send();
            if self.queue.stmts.is_empty() && self.queue.stmts.capacity() == 0 {
                self.queue = left;
            }
        }
    }
}

impl<R: WriteReply> Drop for Writer<R> {
    fn drop(&mut self) {
        // Writes still queued are committed and answered, not dropped.
        self.finish();
    }
}

/// Counts `ok` and `failed` answered writes in `state` and tells the
/// listener.
fn count(state: &WriterState, on_count: &Option<CountListener>, ok: u64, failed: u64) {
    state.count_many(ok, failed);
    if let Some(on_count) = on_count
        && ok + failed > 0
    {
        on_count(ok, failed);
    }
}

/// An emptied vector that keeps its capacity.
fn reuse<T>(mut v: Vec<T>) -> Vec<T> {
    v.clear();
    v
}

#[cfg(test)]
mod tests;
