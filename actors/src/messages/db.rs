//! What [`DbActor`](crate::DbActor) accepts: writes, reads, checkpoints,
//! its figures, and the shutdown step.

use std::marker::PhantomData;
use std::time::Duration;

use actix::Message;
use rusqlite::Connection;
use walguard::stats::DbSummary;
use walguard::store::{GroupStats, WalFrames};
use walguard::{
    CheckpointMode, CheckpointReason, CheckpointReport, Durability, ResultSet, Statement,
};

/// `DbActor`: run one statement; answers the rows changed, once the commit
/// that holds it has returned. With group commit on, it shares that commit
/// with the single writes waiting beside it, and still gets its own result
/// (see [`DbActor`](crate::DbActor)).
#[derive(Debug, Clone)]
pub struct Execute(pub Statement);

impl Message for Execute {
    type Result = Result<usize, walguard::Error>;
}

/// `DbActor`: run statements as one atomic transaction; answers the rows
/// changed by each.
#[derive(Debug, Clone)]
pub struct Transaction(pub Vec<Statement>);

impl Message for Transaction {
    type Result = Result<Vec<usize>, walguard::Error>;
}

/// `DbActor`: run a read query on the write connection; answers the rows.
#[derive(Debug, Clone)]
pub struct Query(pub Statement);

impl Message for Query {
    type Result = Result<ResultSet, walguard::Error>;
}

/// `DbActor`: run a typed closure against the connection, for users who need
/// rusqlite directly. The closure must leave no transaction open.
pub struct Call<F, R> {
    pub(crate) f: F,
    _result: PhantomData<fn() -> R>,
}

impl<F, R> Call<F, R>
where
    F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
    R: Send + 'static,
{
    /// Wraps the closure.
    pub fn new(f: F) -> Self {
        Self {
            f,
            _result: PhantomData,
        }
    }
}

impl<F, R> std::fmt::Debug for Call<F, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Call(<closure>)")
    }
}

impl<F, R> Message for Call<F, R>
where
    F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
    R: Send + 'static,
{
    type Result = Result<R, walguard::Error>;
}

/// `DbActor`: run a checkpoint now, between transactions. The report also
/// goes to `MetricsActor`.
#[derive(Debug, Clone, Copy)]
pub struct Checkpoint {
    /// Which mode.
    pub mode: CheckpointMode,
    /// Why (logged and counted).
    pub reason: CheckpointReason,
}

impl Message for Checkpoint {
    type Result = CheckpointReport;
}

/// `DbActor`: what is durable and what is exposed right now (`None` once the
/// store is closed).
#[derive(Debug, Clone, Copy)]
pub struct GetDurability;

impl Message for GetDurability {
    type Result = Option<Durability>;
}

/// `DbActor`: the clean-shutdown step. Every message accepted before it has
/// been handled (the mailbox is FIFO); then a TRUNCATE checkpoint runs under
/// `deadline`, the connection closes, and the actor stops.
#[derive(Debug, Clone, Copy)]
pub struct Shutdown {
    /// Hard deadline of the TRUNCATE checkpoint.
    pub deadline: Duration,
}

/// What [`Shutdown`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct ShutdownOutcome {
    /// The TRUNCATE checkpoint (`None` when the store was already closed).
    pub truncate: Option<CheckpointReport>,
    /// Writes, durability and any close error.
    pub summary: DbSummary,
}

impl Message for Shutdown {
    type Result = ShutdownOutcome;
}

/// `DbActor`: how group commit and the size-triggered checkpoint have been
/// going. Flushes the queued writes first, like every message but
/// [`Execute`].
#[derive(Debug, Clone, Copy)]
pub struct GetWriterStats;

impl Message for GetWriterStats {
    type Result = WriterStats;
}

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

/// `DbActor`: panic inside the actor's own code, as a bug of ours would.
/// For tests of what the writer does then: it stops serving, and every
/// request, this one included, gets
/// [`walguard::Error::WriterPanicked`] with this message.
#[derive(Debug, Clone)]
pub struct InjectPanic(pub String);

impl Message for InjectPanic {
    type Result = Result<(), walguard::Error>;
}
