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
//! `replication.max_lag` is answered [`Error::NotReplicated`](crate::Error::NotReplicated) (the write
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
//! [`Error::WriterPanicked`](crate::Error::WriterPanicked), keeps its counts, and drops the connection
//! (which rolls back whatever transaction the panic left open). A panic in
//! a caller's closure is caught by [`Store::call`] and is that caller's
//! error.

mod brake;
mod hold;
mod replier;
mod requests;
mod state;
mod steps;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::replication::CheckpointOwner;
use crate::stats::DbSummary;
use crate::store::{GroupStats, WalFrames};
use crate::{CheckpointReport, EngineLock, Result, Store};
use hold::Hold;
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

    /// The state this writer shares with its handles, the shutdown and
    /// the interval loop (counts, shutdown, panic, checkpoint owner).
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

    /// Answers group commits of 16 writes or
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
}

impl<R: WriteReply> Drop for Writer<R> {
    fn drop(&mut self) {
        // Writes still queued are committed and answered, not dropped.
        self.finish();
    }
}

/// Counts `ok` and `failed` answered writes in `state` and tells the
/// listener.
fn count(state: &WriterState, on_count: Option<&CountListener>, ok: u64, failed: u64) {
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
