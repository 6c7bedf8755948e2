//! Every message the three actors accept, in one place.
//!
//! Engines mostly use [`DbHandle`](crate::DbHandle), which sends these and
//! flattens the two error layers (mailbox, database) into one.

use std::marker::PhantomData;
use std::time::Duration;

use actix::Message;
use rusqlite::Connection;
use walguard::stats::DbSummary;
use walguard::{
    CheckpointMode, CheckpointReason, CheckpointReport, Durability, ResultSet, SessionReport,
    Statement,
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

/// `CheckpointActor`: start the periodic loop (idempotent: a running loop is
/// left as it is, never doubled).
#[derive(Debug, Clone, Copy)]
pub struct StartLoop;

impl Message for StartLoop {
    type Result = ();
}

/// `CheckpointActor`: stop the periodic loop. A checkpoint already sent to
/// `DbActor` still completes.
#[derive(Debug, Clone, Copy)]
pub struct StopLoop;

impl Message for StopLoop {
    type Result = ();
}

/// `CheckpointActor`: stop as if a fault happened, so the supervisor restarts
/// it. For tests and chaos drills.
#[derive(Debug, Clone)]
pub struct InjectFault(pub String);

impl Message for InjectFault {
    type Result = ();
}

/// `CheckpointActor`: its schedule state.
#[derive(Debug, Clone, Copy)]
pub struct GetLoopState;

/// The schedule state of `CheckpointActor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopState {
    /// Whether the loop is on.
    pub enabled: bool,
    /// Whether a timer is registered (at most one ever is).
    pub armed: bool,
    /// Whether a checkpoint is in flight.
    pub in_flight: bool,
    /// The interval.
    pub interval: Duration,
}

impl Message for GetLoopState {
    type Result = LoopState;
}

/// `MetricsActor`: one checkpoint result. Sent by `DbActor` for every
/// checkpoint it runs, whatever asked for it.
#[derive(Debug, Clone)]
pub struct CheckpointDone(pub CheckpointReport);

impl Message for CheckpointDone {
    type Result = ();
}

/// `MetricsActor`: an interval tick was skipped.
#[derive(Debug, Clone, Copy)]
pub struct TickSkipped;

impl Message for TickSkipped {
    type Result = ();
}

/// `MetricsActor`: the checkpoint actor was restarted.
#[derive(Debug, Clone, Copy)]
pub struct Restarted;

impl Message for Restarted {
    type Result = ();
}

/// `MetricsActor`: the report so far, without ending the session.
#[derive(Debug, Clone, Copy)]
pub struct GetReport;

impl Message for GetReport {
    type Result = SessionReport;
}

/// `MetricsActor`: end the session: emit the end-of-session event once and
/// answer the final report.
#[derive(Debug, Clone)]
pub struct Finish(pub DbSummary);

impl Message for Finish {
    type Result = SessionReport;
}
