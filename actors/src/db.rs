//! `DbActor`: the one owner of the write connection.
//!
//! A thin shell over [`walguard::Store`]: each message becomes one call on
//! the store and its result becomes the reply. Because an actor handles one
//! message at a time, every write is serialized, and checkpoints run between
//! transactions by construction.
//!
//! The store's calls block, so `DbActor` runs on its own arbiter thread by
//! default ([`Placement`](crate::Placement)); a blocking call would otherwise
//! stall every other actor on the same thread.
//!
//! # Group commit
//!
//! With `database.group_commit` on (the default), single writes
//! ([`Execute`]) are not committed one by one. The handler queues the
//! statement with its sender's reply channel and, when no flush is pending,
//! schedules one with `ctx.notify`. Actix handles every message already in
//! the mailbox before it gets to the context's own items, so by the time the
//! flush runs, every write that was waiting has joined the queue; the flush
//! commits them in one transaction ([`Store::execute_group`]) and only then
//! answers each sender with its own result. So:
//!
//! - **a lone writer does not wait for company**: its flush runs as soon as
//!   the mailbox is empty, with no timer anywhere;
//! - **the batch grows with the load**: while one group commits (and, under
//!   `synchronous=FULL`, fsyncs), the next one gathers in the mailbox;
//! - **the batch is capped** at `database.max_batch` writes: a full queue is
//!   flushed before the next write joins it;
//! - **writes keep their order**: the queue is in mailbox order, and every
//!   other message ([`Transaction`], [`Query`], [`Call`], [`Checkpoint`],
//!   [`GetDurability`], [`Shutdown`]...) flushes the queue before it is
//!   handled, so it sees every earlier write committed;
//! - **one failing write fails alone**: see [`Store::execute_group`] (a
//!   rerun with a savepoint per write, paid only by groups that hold a
//!   failure).
//!
//! # The lane
//!
//! The system's [`DbHandle`](crate::DbHandle)s do not send actix messages
//! per request: they queue every request on a bounded channel that
//! `DbActor` drains, with one actix message to wake it when the channel
//! goes from idle to busy (`actors/src/lane.rs`, which says why and how the
//! order is kept). Each round of the lane takes the writes queued, up to
//! `database.max_batch`, and commits them as one group as soon as the lane
//! is empty, exactly as the mailbox path above does; any other request
//! commits the writes before it first. The messages below keep working
//! for whoever sends them to the actor's address.
//!
//! # Every checkpoint measured
//!
//! With `checkpoint.size_threshold_frames` above zero (the default, 1000),
//! SQLite's own auto-checkpoint is off on the writer
//! ([`Store::set_size_threshold`]) and `DbActor` runs the PASSIVE
//! checkpoint itself after a commit that leaves that many frames in the WAL,
//! with reason `size`, and reports it to `MetricsActor` like every other
//! checkpoint. A checkpoint inside a COMMIT would have been invisible.
//!
//! # Beside Litestream
//!
//! With replication on, the replication actor tells `DbActor` who runs the
//! checkpoints ([`SetCheckpointOwner`]). While Litestream does, the
//! size-triggered checkpoint waits for `replication.wal_cap_frames` (the
//! hard cap) instead of `checkpoint.size_threshold_frames`, and the
//! shutdown TRUNCATE is skipped (Litestream's read lock would only make it
//! wait out its deadline). With `replication.ack: replicated`, the replies
//! of each group commit are held until a sync that started after its
//! COMMIT has answered ([`ReplicatedThrough`]); a reply held longer than
//! `replication.max_lag` is answered [`walguard::Error::NotReplicated`]
//! (the write stays committed locally). Only group-committed writes
//! ([`Execute`]) are held: a [`Transaction`] or [`Call`] is answered at
//! its local COMMIT.
//!
//! # Backpressure
//!
//! The lane and the mailbox each hold `database.mailbox_capacity`
//! requests; a [`DbHandle`](crate::DbHandle) (the lane) and senders that
//! use `send` (the mailbox) wait while it is full. `do_send` ignores the
//! capacity (actix's rule); do not flood with it. The lane's bound counts
//! the requests on its channel: the up to 256 (`TAKE_AT_ONCE` in `actors/src/lane.rs`)
//! the writer has taken off it and not served yet come on top.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use actix::dev::{MessageResponse, OneshotSender};
use actix::{Actor, AsyncContext, Context, Handler, Message, MessageResult, Recipient};
use rusqlite::Connection;
use walguard::stats::DbSummary;
use walguard::{CheckpointMode, CheckpointReason, CheckpointReport, EngineLock, Statement, Store};

use crate::lane::{Lane, Request, Wake};
use crate::messages::{
    Call, Checkpoint, CheckpointDone, Execute, GetDurability, InjectPanic, Query,
    ReplicatedThrough, SetCheckpointOwner, Shutdown, ShutdownOutcome, Transaction,
};
use crate::replier::{Answers, Replier};
use crate::writer_state::WriterState;
use walguard::replication::CheckpointOwner;

// `GetWriterStats` and `WriterStats` had their home here; this keeps the
// old paths working.
pub use crate::messages::{GetWriterStats, WriterStats};

/// Default `DbActor` mailbox capacity, in messages: the
/// `database.mailbox_capacity` default.
pub const DEFAULT_DB_MAILBOX_CAPACITY: usize =
    walguard::settings::DEFAULT_MAILBOX_CAPACITY_MESSAGES;

/// What an [`Execute`] answers.
type ExecuteResult = crate::replier::ExecuteResult;

/// Writes waiting for the next group commit, each with its sender's reply
/// channel (`None` for `do_send`). Shared with [`ExecuteReply`], which adds
/// the reply channel right after the handler returns.
#[derive(Debug, Default)]
struct Queue {
    stmts: Vec<Statement>,
    replies: Vec<Option<OneshotSender<ExecuteResult>>>,
}

fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    // The lock is never held across anything that can panic; a poisoned
    // queue is still a consistent queue.
    queue.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The actor that owns the only write connection.
#[derive(Debug)]
pub struct DbActor {
    store: Option<Store>,
    path: std::path::PathBuf,
    /// Where every checkpoint report goes (`MetricsActor`, the exposure
    /// watch).
    reports: Vec<Recipient<CheckpointDone>>,
    mailbox_capacity: usize,
    group_commit: bool,
    max_batch: usize,
    queue: Arc<Mutex<Queue>>,
    /// The previous flush's vectors, emptied, swapped in for the next one:
    /// the queue keeps its capacity instead of growing again from nothing
    /// on every flush.
    spare: Queue,
    flush_scheduled: bool,
    // The writes flushed are the store's (`GroupStats::writes`: every write
    // of a flush lands in exactly one group). These two are not: a flush is
    // one `execute_group` call, which the store splits into several groups
    // around statements that need their own transaction (a `PRAGMA`, a
    // `BEGIN`...), so the store cannot tell flushes apart from groups, and
    // `max_batch` caps flushes, not groups.
    flushes: u64,
    largest_flush: usize,
    /// Shared with the handles and the shutdown; holds the write counts.
    state: Arc<WriterState>,
    /// The engine lock of the database, held as long as the store is open.
    engine_lock: Option<EngineLock>,
    /// Who runs the checkpoints ([`SetCheckpointOwner`]).
    owner: CheckpointOwner,
    /// `checkpoint.size_threshold_frames`, given back when walguard owns
    /// checkpointing again.
    size_threshold: u32,
    /// `replication.ack: replicated`: replies held until the replica has
    /// their commit, and the longest they wait (`replication.max_lag`).
    hold_for_replica: Option<std::time::Duration>,
    held: std::collections::VecDeque<Held>,
    /// The requests of the system's handles ([`crate::lane`]).
    lane: Option<Lane<DbActor>>,
    /// The thread that answers group commits ([`crate::replier`]).
    replier: Option<Replier>,
    /// The WAL brake beside Litestream ([`SetWalBrake`]).
    brake: Option<Brake>,
}

/// The WAL brake: while Litestream owns checkpointing, its PASSIVE
/// checkpoints run beside walguard's writes and, under sustained load,
/// rarely find the moment to start the WAL over (measured: 52,238 frames
/// at about 12,000 writes/s against 1,503 without replication). Once the
/// WAL passes `frames`, the writer stops taking requests from the lane and
/// asks the replication actor for a local sync ([`WalBrake`]); Litestream
/// then copies the WAL and checkpoints with no writer beside it, which
/// lets the next write start the WAL over. Writes go on at
/// [`WalBrakeDone`], or after [`BRAKE_MAX_PAUSE`] whatever happened.
#[derive(Debug)]
struct Brake {
    to: Recipient<crate::messages::WalBrake>,
    frames: u32,
    /// The WAL size that engages the brake next: `frames`, and after a
    /// brake that did not start the WAL over, `frames` more than it was
    /// then (at most one brake per `frames` frames written).
    next_at: u32,
    /// Since when the writer waits, while it does.
    engaged: Option<std::time::Instant>,
    /// Brakes engaged in this session.
    count: u64,
}

/// The longest the WAL brake holds the writes back: 250 ms.
pub const BRAKE_MAX_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);

/// The WAL size at which the brake engages, as a multiple of
/// `checkpoint.size_threshold_frames` (Litestream's
/// `min-checkpoint-page-count`): 2.
pub const BRAKE_THRESHOLD_FACTOR: u32 = 2;

/// How a round of the lane ended ([`DbActor::serve_lane`]).
enum Round {
    /// The group reached `max_batch`.
    Full,
    /// A request that is not a single write came next.
    Other(crate::lane::Run<DbActor>),
    /// The lane is empty.
    Empty,
}

/// What [`DbActor::accept`] did with a single write.
enum Accepted {
    /// Answered at once: group commit is off, or the writer stopped after
    /// a panic.
    Now(ExecuteResult),
    /// To be queued for the next group commit (the queue has room).
    Queue(Statement),
    /// Committed alone (group commit off), to be answered once the replica
    /// has it (`replication.ack: replicated`); not counted yet.
    Hold(ExecuteResult),
}

/// The replies of one commit (a group, a lone write, a transaction or a
/// closure that wrote), held for the replica.
#[derive(Debug)]
struct Held {
    /// The store's commit count after the COMMIT.
    commits: u64,
    since: std::time::Instant,
    replies: Vec<HeldReply>,
}

/// One held reply.
enum HeldReply {
    /// A single write, counted when answered.
    Write(Option<OneshotSender<ExecuteResult>>, ExecuteResult),
    /// A transaction or a closure that wrote, counted at its COMMIT: sends
    /// its result (`None`) or the error instead (`Some`).
    Other(Box<dyn FnOnce(Option<walguard::Error>) + Send>),
}

impl std::fmt::Debug for HeldReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Write(_, result) => f.debug_tuple("Write").field(result).finish(),
            Self::Other(_) => f.write_str("Other(<reply>)"),
        }
    }
}

impl DbActor {
    /// Wraps an open store. Checkpoint reports go to `reports` when given.
    ///
    /// Group commit, its cap and the mailbox capacity come from the store's
    /// settings (`database.group_commit`, `database.max_batch`,
    /// `database.mailbox_capacity`); the builder methods below override
    /// them. The size-triggered checkpoint is the store's
    /// ([`Store::set_size_threshold`]).
    #[must_use]
    pub fn new(store: Store, reports: Option<Recipient<CheckpointDone>>) -> Self {
        let settings = store.settings();
        Self {
            path: store.path().to_path_buf(),
            mailbox_capacity: settings.mailbox_capacity.max(1),
            group_commit: settings.group_commit,
            max_batch: settings.max_batch.max(1),
            store: Some(store),
            reports: reports.into_iter().collect(),
            queue: Arc::default(),
            spare: Queue::default(),
            flush_scheduled: false,
            flushes: 0,
            largest_flush: 0,
            state: Arc::default(),
            engine_lock: None,
            owner: CheckpointOwner::Walguard,
            size_threshold: walguard::settings::DEFAULT_SIZE_THRESHOLD_FRAMES,
            hold_for_replica: None,
            held: std::collections::VecDeque::new(),
            lane: None,
            replier: None,
            brake: None,
        }
    }

    /// Answers group commits on a thread of their own ([`crate::replier`]).
    /// Should the OS refuse the thread, the writer answers them itself, as
    /// without this call.
    #[must_use]
    pub(crate) fn with_replier(mut self) -> Self {
        match Replier::start() {
            Ok(replier) => self.replier = Some(replier),
            Err(e) => {
                tracing::warn!(target: "walguard::db", error = %e, "cannot start the replier thread; the writer answers group commits itself");
            }
        }
        self
    }

    /// Serves the requests of `lane` ([`crate::lane`]).
    #[must_use]
    pub(crate) fn with_lane(mut self, lane: Lane<DbActor>) -> Self {
        self.lane = Some(lane);
        self
    }

    /// The size threshold walguard uses while it owns checkpointing
    /// (`checkpoint.size_threshold_frames`; the store's own setting is
    /// left as it is until ownership changes).
    #[must_use]
    pub fn with_size_threshold(mut self, frames: u32) -> Self {
        self.size_threshold = frames;
        self
    }

    /// Holds the replies of group commits until the replica has them
    /// (`replication.ack: replicated`), at most `max_lag`.
    #[must_use]
    pub fn holding_for_replica(mut self, max_lag: std::time::Duration) -> Self {
        self.hold_for_replica = Some(max_lag);
        self
    }

    /// Answers the held replies whose commit is on the replica
    /// (`through`), then those held past `replication.max_lag`.
    fn release(&mut self, through: Option<u64>) {
        let Some(max_lag) = self.hold_for_replica else {
            return;
        };
        while let Some(front) = self.held.front() {
            let replicated = through.is_some_and(|c| front.commits <= c);
            let waited = front.since.elapsed();
            if !replicated && waited <= max_lag {
                break;
            }
            let Some(group) = self.held.pop_front() else {
                break;
            };
            let path = self.path.clone();
            let not_replicated = || walguard::Error::NotReplicated {
                path: path.clone(),
                waited_ms: waited.as_millis() as u64,
            };
            for held in group.replies {
                match held {
                    HeldReply::Write(reply, result) => {
                        let result = if replicated {
                            result
                        } else {
                            Err(not_replicated())
                        };
                        self.count(&result);
                        if let Some(reply) = reply {
                            let _ = reply.send(result);
                        }
                    }
                    HeldReply::Other(send) if replicated => send(None),
                    HeldReply::Other(send) => {
                        // Counted acknowledged at its COMMIT: now failed.
                        self.state.count_not_replicated();
                        crate::telemetry::record_write(false);
                        send(Some(not_replicated()));
                    }
                }
            }
        }
    }

    /// This session's commit count (0 once the store is closed).
    pub(crate) fn commits(&self) -> u64 {
        self.store.as_ref().map_or(0, |s| s.durability().commits())
    }

    /// Holds `replies` for the replica, behind the commit made last.
    fn hold(&mut self, replies: Vec<HeldReply>) {
        self.held.push_back(Held {
            commits: self.commits(),
            since: std::time::Instant::now(),
            replies,
        });
    }

    /// Answers a transaction or a closure sent through the lane: at once,
    /// or, under `replication.ack: replicated` when it committed something
    /// (`before` is the commit count before it ran), once the replica has
    /// it, as a group's writes are.
    pub(crate) fn answer_write<T: Send + 'static>(
        &mut self,
        before: u64,
        result: Result<T, walguard::Error>,
        reply: tokio::sync::oneshot::Sender<Result<T, walguard::Error>>,
    ) {
        if self.hold_for_replica.is_none() || result.is_err() || self.commits() <= before {
            let _ = reply.send(result);
            return;
        }
        self.hold(vec![HeldReply::Other(Box::new(move |error| {
            let _ = reply.send(match error {
                None => result,
                Some(e) => Err(e),
            });
        }))]);
    }

    /// Answers every held reply as not replicated (shutdown).
    fn release_all_unreplicated(&mut self) {
        if let Some(max_lag) = self.hold_for_replica {
            self.hold_for_replica = Some(std::time::Duration::ZERO);
            self.release(None);
            self.hold_for_replica = Some(max_lag);
        }
    }

    /// Sends every checkpoint report to `also` too.
    #[must_use]
    pub fn with_reports_to(mut self, also: Recipient<CheckpointDone>) -> Self {
        self.reports.push(also);
        self
    }

    /// Holds `lock` (see [`EngineLock`]) as long as the store is open, and
    /// releases it once shutdown has closed the store.
    #[must_use]
    pub fn with_engine_lock(mut self, lock: EngineLock) -> Self {
        self.engine_lock = Some(lock);
        self
    }

    /// Shares `state` with the system's handles and shutdown.
    #[must_use]
    pub(crate) fn with_state(mut self, state: Arc<WriterState>) -> Self {
        self.state = state;
        self
    }

    /// Sets the mailbox capacity (at least 1).
    #[must_use]
    pub fn with_mailbox_capacity(mut self, capacity: usize) -> Self {
        self.mailbox_capacity = capacity.max(1);
        self
    }

    /// Turns group commit on or off.
    #[must_use]
    pub fn with_group_commit(mut self, on: bool) -> Self {
        self.group_commit = on;
        self
    }

    /// Sets the most writes one group commit holds (at least 1).
    #[must_use]
    pub fn with_max_batch(mut self, writes: usize) -> Self {
        self.max_batch = writes.max(1);
        self
    }

    /// The store, to serve a request: an error instead when the writer
    /// stopped after a panic, passed its shutdown deadline, or is closed.
    fn store(&mut self) -> Result<&mut Store, walguard::Error> {
        if let Some(message) = self.state.panicked() {
            return Err(walguard::Error::WriterPanicked { message });
        }
        if self.state.is_past_deadline() {
            return Err(walguard::Error::ShutdownDeadline {
                path: self.path.clone(),
            });
        }
        self.store.as_mut().ok_or_else(|| walguard::Error::Closed {
            path: self.path.clone(),
        })
    }

    /// Runs one handler's work. A panic in it is a bug of ours (a panic in
    /// a caller's closure is caught by [`Store::call`] and is that caller's
    /// error): the writer stops serving, answers every later request with
    /// [`walguard::Error::WriterPanicked`], and keeps its counts for the
    /// session report. Closing the connection rolls back whatever
    /// transaction the panic left open.
    fn guarded<T>(
        &mut self,
        work: impl FnOnce(&mut Self) -> Result<T, walguard::Error>,
    ) -> Result<T, walguard::Error> {
        match catch_unwind(AssertUnwindSafe(|| work(self))) {
            Ok(result) => result,
            Err(payload) => {
                let message = walguard::error::panic_message(payload.as_ref());
                tracing::error!(
                    target: "walguard::db",
                    panic = %message,
                    "DbActor panicked; the writer stops serving and answers every request with an error"
                );
                self.state.set_panicked(message.clone());
                self.state.set_interrupt(None);
                // Writes still queued are answered, not dropped.
                let Queue { replies, .. } = std::mem::take(&mut *lock(&self.queue));
                for reply in replies.into_iter().flatten() {
                    let _ = reply.send(Err(walguard::Error::WriterPanicked {
                        message: message.clone(),
                    }));
                }
                // Dropping the connection rolls back an open transaction.
                drop(self.store.take());
                Err(walguard::Error::WriterPanicked { message })
            }
        }
    }

    /// The one place writes are counted, whatever path they took.
    fn count<T>(&mut self, result: &Result<T, walguard::Error>) {
        self.state.count(result.is_ok());
        crate::telemetry::record_write(result.is_ok());
    }

    fn publish(&self, report: &CheckpointReport) {
        // A checkpoint may have reopened the connection: the interrupt
        // handle follows it.
        self.state
            .set_interrupt(self.store.as_ref().map(Store::interrupt_handle));
        // Each phase of a two-phase size checkpoint is one checkpoint,
        // measured and reported: phase 1 first, so the last one a listener
        // notes is the one that decided durability.
        for to in &self.reports {
            if let Some(phase1) = report.backfill() {
                to.do_send(CheckpointDone(phase1.clone()));
            }
            to.do_send(CheckpointDone(report.clone()));
        }
    }

    /// After every commit: the size-triggered checkpoint, when due.
    fn after_write(&mut self) {
        if let Some(report) = self.store.as_mut().and_then(Store::checkpoint_if_due) {
            self.publish(&report);
        }
    }

    /// Counts a flush's answered writes at once (one atomic add and one
    /// metrics update per outcome, not per write).
    fn count_many(&mut self, ok: u64, failed: u64) {
        self.state.count_many(ok, failed);
        crate::telemetry::record_writes(ok, failed);
    }

    /// Commits every queued write as one group and answers each sender.
    fn flush(&mut self) {
        debug_assert!(self.spare.stmts.is_empty() && self.spare.replies.is_empty());
        std::mem::swap(&mut *lock(&self.queue), &mut self.spare);
        let Queue {
            mut stmts,
            mut replies,
        } = std::mem::take(&mut self.spare);
        if stmts.is_empty() {
            self.spare = Queue { stmts, replies };
            return;
        }
        self.flushes += 1;
        self.largest_flush = self.largest_flush.max(stmts.len());
        let results = match self.store() {
            Ok(store) => store.execute_group(&stmts),
            // Each write gets its own copy of why it did not run.
            Err(_) => stmts.iter().map(|_| self.store().map(|_| 0)).collect(),
        };
        if self.hold_for_replica.is_some()
            && let Some(commits) = self.store.as_ref().map(|s| s.durability().commits())
        {
            stmts.clear();
            // Failures are answered now; successes wait for the replica.
            let mut kept = Vec::new();
            for (result, reply) in results.into_iter().zip(replies.drain(..)) {
                if result.is_ok() {
                    kept.push(HeldReply::Write(reply, result));
                } else {
                    self.count(&result);
                    if let Some(reply) = reply {
                        let _ = reply.send(result);
                    }
                }
            }
            self.spare = Queue { stmts, replies };
            if !kept.is_empty() {
                debug_assert_eq!(commits, self.commits());
                self.hold(kept);
            }
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
        self.count_many(ok, failed);
        self.after_write();
    }

    /// Answers a group's writes: on the replier's thread when there is one
    /// ([`crate::replier`]), else here. Keeps emptied vectors for the next
    /// flush.
    fn answer(&mut self, answers: Answers) {
        let left = match &self.replier {
            Some(replier)
                if answers.replies.len() >= crate::replier::MIN_GROUP_WRITES || replier.busy() =>
            {
                match replier.answer(answers) {
                    Ok(()) => replier.spare(),
                    Err(answers) => Some(answers),
                }
            }
            _ => Some(answers),
        };
        if let Some(mut left) = left {
            left.send();
            self.spare = Queue {
                stmts: left.stmts,
                replies: left.replies,
            };
        }
    }

    /// Waits until the replier answered every group handed to it.
    fn finish_replies(&mut self) {
        if let Some(replier) = self.replier.as_mut() {
            replier.finish();
        }
        self.replier = None;
    }

    /// Takes one single write: runs it now when group commit is off,
    /// answers it when the writer stopped after a panic, and otherwise makes
    /// room for it in the queue (a full queue is flushed first).
    fn accept(&mut self, stmt: Statement) -> Accepted {
        if !self.group_commit {
            let before = self.commits();
            let result = self.guarded(|act| {
                let result = act.store().and_then(|s| s.execute(&stmt));
                act.after_write();
                result
            });
            if self.hold_for_replica.is_some() && result.is_ok() && self.commits() > before {
                // Counted when answered, as a group's writes are.
                return Accepted::Hold(result);
            }
            self.count(&result);
            return Accepted::Now(result);
        }
        if let Some(message) = self.state.panicked() {
            let result = Err(walguard::Error::WriterPanicked { message });
            self.count(&result);
            return Accepted::Now(result);
        }
        if lock(&self.queue).stmts.len() >= self.max_batch {
            self.flush_guarded();
        }
        Accepted::Queue(stmt)
    }

    fn flush_guarded(&mut self) {
        let _ = self.guarded(|act| {
            act.flush();
            Ok(())
        });
    }

    /// One round of the lane: the single writes queued, up to
    /// `max_batch`, committed as one group once the lane is empty or the
    /// group is full; or one other request (which commits the writes
    /// before it first). Returns whether another round is due now.
    fn serve_lane(&mut self, ctx: &mut Context<Self>) -> bool {
        if self.braking(ctx) {
            // The lane stays scheduled: the brake's end wakes it.
            return false;
        }
        if !self.group_commit || self.state.panicked().is_some() {
            return self.serve_lane_one_by_one(ctx);
        }
        // The queue is locked once for the whole round, not per write.
        let queue = Arc::clone(&self.queue);
        let mut queued = lock(&queue);
        let ended = loop {
            if queued.stmts.len() >= self.max_batch {
                break Round::Full;
            }
            match self.lane.as_mut().and_then(Lane::next) {
                Some(Request::Execute { stmt, reply }) => {
                    queued.stmts.push(stmt);
                    queued.replies.push(Some(reply));
                }
                Some(Request::Other(run)) => break Round::Other(run),
                None => break Round::Empty,
            }
        };
        drop(queued);
        match ended {
            Round::Full => {
                self.flush_guarded();
                true
            }
            // Every handler commits the writes queued before it first.
            Round::Other(run) => {
                run(self, ctx);
                true
            }
            Round::Empty => {
                self.flush_guarded();
                self.lane.as_ref().is_some_and(Lane::idle)
            }
        }
    }

    /// A round without group commit (or after a panic): each write is
    /// answered as it comes.
    fn serve_lane_one_by_one(&mut self, ctx: &mut Context<Self>) -> bool {
        // At most max_batch writes per round, as with group commit, so the
        // mailbox gets its turn between rounds.
        for _ in 0..self.max_batch.max(1) {
            match self.lane.as_mut().and_then(Lane::next) {
                Some(Request::Execute { stmt, reply }) => match self.accept(stmt) {
                    Accepted::Now(result) => {
                        let _ = reply.send(result);
                    }
                    Accepted::Hold(result) => {
                        self.hold(vec![HeldReply::Write(Some(reply), result)]);
                    }
                    Accepted::Queue(stmt) => {
                        // Not reached (`accept` queues only with group
                        // commit on and no panic); queued, never dropped.
                        let mut queued = lock(&self.queue);
                        queued.stmts.push(stmt);
                        queued.replies.push(Some(reply));
                    }
                },
                Some(Request::Other(run)) => {
                    run(self, ctx);
                    return true;
                }
                None => {
                    self.flush_guarded();
                    return self.lane.as_ref().is_some_and(Lane::idle);
                }
            }
        }
        true
    }

    /// Whether the WAL brake holds the writes back now: engages it when
    /// the WAL passed its threshold while Litestream owns checkpointing,
    /// and lets go after [`BRAKE_MAX_PAUSE`]. Never during the shutdown.
    fn braking(&mut self, ctx: &mut Context<Self>) -> bool {
        let Some(brake) = self.brake.as_mut() else {
            return false;
        };
        if self.state.is_shut_down() {
            brake.engaged = None;
            return false;
        }
        if let Some(since) = brake.engaged {
            if since.elapsed() < BRAKE_MAX_PAUSE {
                return true;
            }
            brake.engaged = None;
            return false;
        }
        let frames = self
            .store
            .as_ref()
            .and_then(Store::wal_frames)
            .map_or(0, |w| w.current);
        if frames < brake.frames {
            // The WAL started over (or never grew): back to the threshold.
            brake.next_at = brake.frames;
        }
        if self.owner != CheckpointOwner::Litestream || frames < brake.next_at {
            return false;
        }
        brake.next_at = frames.saturating_add(brake.frames);
        brake.engaged = Some(std::time::Instant::now());
        brake.count += 1;
        brake.to.do_send(crate::messages::WalBrake);
        // Let go after the longest pause, whatever the sync does.
        ctx.run_later(BRAKE_MAX_PAUSE, |_, ctx| ctx.notify(Wake));
        tracing::debug!(target: "walguard::db", frames, "wal brake: writes wait for litestream's checkpoint");
        true
    }

    /// Serves every request the lane holds, after closing it: the
    /// shutdown's and the end's (later requests are refused and their
    /// senders told the writer is gone).
    fn drain_lane(&mut self, ctx: &mut Context<Self>) {
        // The end serves what is left without pausing for the WAL.
        self.brake = None;
        let Some(lane) = self.lane.as_mut() else {
            return;
        };
        lane.close();
        while self.lane.as_ref().is_some_and(|l| !l.is_empty()) {
            self.serve_lane(ctx);
        }
    }

    fn summary(&self) -> DbSummary {
        let mut summary = DbSummary::default();
        summary.writes_acknowledged = self.state.writes_acknowledged();
        summary.writes_failed = self.state.writes_failed();
        summary.durability = self.store.as_ref().map(Store::durability);
        summary
    }

    fn writer_stats(&self) -> WriterStats {
        let group = self.store.as_ref().map(Store::group_stats);
        WriterStats {
            group_commit: self.group_commit,
            max_batch: self.max_batch,
            flushes: self.flushes,
            // Only asked while the store is open: after `Shutdown` closes
            // it, the actor stops and answers nothing more.
            flushed_writes: group.map_or(0, |g| g.writes),
            largest_flush: self.largest_flush,
            group,
            wal: self.store.as_ref().and_then(Store::wal_frames),
        }
    }
}

impl Actor for DbActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.mailbox_capacity);
        // Phase 2 of a two-phase size checkpoint runs as soon as phase 1
        // returned, even if no write comes: phase 1's thread wakes the
        // writer. A weak address, so the store does not keep its own actor
        // alive.
        if let Some(store) = self.store.as_mut() {
            let me = ctx.address().downgrade();
            store.set_backfill_waker(move || {
                if let Some(me) = me.upgrade() {
                    me.do_send(BackfillReturned);
                }
            });
        }
        self.state
            .set_interrupt(self.store.as_ref().map(Store::interrupt_handle));
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        // Writes queued when the actor stops without `Shutdown` (every
        // address dropped) are committed and answered, not dropped.
        self.drain_lane(ctx);
        self.flush_guarded();
        self.finish_replies();
    }
}

impl Handler<Wake> for DbActor {
    type Result = ();

    fn handle(&mut self, _: Wake, ctx: &mut Self::Context) {
        if self.serve_lane(ctx) {
            // After the messages already in the mailbox (see crate::lane).
            ctx.notify(Wake);
        }
    }
}

/// Sent by phase 1 of a two-phase size checkpoint, from its own thread,
/// once it returned: the writer then runs phase 2 between two groups
/// ([`Store::checkpoint_if_due`]). Private, like [`Flush`].
struct BackfillReturned;

impl Message for BackfillReturned {
    type Result = ();
}

impl Handler<BackfillReturned> for DbActor {
    type Result = ();

    fn handle(&mut self, _: BackfillReturned, _: &mut Self::Context) {
        let _ = self.guarded(|act| {
            act.after_write();
            Ok(())
        });
    }
}

/// The context's own message that commits the queued writes; scheduled with
/// `ctx.notify`, so it runs once the mailbox is empty. Private, and so kept
/// here rather than in [`crate::messages`]: only `DbActor` sends it, to
/// itself, and no one else may.
struct Flush;

impl Message for Flush {
    type Result = ();
}

impl Handler<Flush> for DbActor {
    type Result = ();

    fn handle(&mut self, _: Flush, _: &mut Self::Context) {
        self.flush_scheduled = false;
        self.flush_guarded();
    }
}

/// How `DbActor` answers an [`Execute`]: at once (group commit off), or
/// once the group commit that holds the write has returned.
#[derive(Debug)]
pub struct ExecuteReply(Reply);

#[derive(Debug)]
enum Reply {
    Now(ExecuteResult),
    Queued {
        queue: Arc<Mutex<Queue>>,
        stmt: Statement,
    },
}

impl MessageResponse<DbActor, Execute> for ExecuteReply {
    fn handle(self, _: &mut Context<DbActor>, tx: Option<OneshotSender<ExecuteResult>>) {
        match self.0 {
            Reply::Now(result) => {
                if let Some(tx) = tx {
                    let _ = tx.send(result);
                }
            }
            Reply::Queued { queue, stmt } => {
                let mut queue = lock(&queue);
                queue.stmts.push(stmt);
                queue.replies.push(tx);
            }
        }
    }
}

impl Handler<Execute> for DbActor {
    type Result = ExecuteReply;

    fn handle(&mut self, msg: Execute, ctx: &mut Self::Context) -> Self::Result {
        let stmt = match self.accept(msg.0) {
            Accepted::Now(result) => return ExecuteReply(Reply::Now(result)),
            // The mailbox road answers a lone write at its local COMMIT;
            // `DbHandle`'s lane holds it for the replica.
            Accepted::Hold(result) => {
                self.count(&result);
                return ExecuteReply(Reply::Now(result));
            }
            Accepted::Queue(stmt) => stmt,
        };
        if !self.flush_scheduled {
            self.flush_scheduled = true;
            ctx.notify(Flush);
        }
        ExecuteReply(Reply::Queued {
            queue: Arc::clone(&self.queue),
            stmt,
        })
    }
}

impl Handler<Transaction> for DbActor {
    type Result = Result<Vec<usize>, walguard::Error>;

    fn handle(&mut self, msg: Transaction, _: &mut Self::Context) -> Self::Result {
        let result = self.guarded(|act| {
            act.flush();
            let result = act.store().and_then(|s| s.transaction(&msg.0));
            act.after_write();
            result
        });
        self.count(&result);
        result
    }
}

impl Handler<Query> for DbActor {
    type Result = Result<walguard::ResultSet, walguard::Error>;

    fn handle(&mut self, msg: Query, _: &mut Self::Context) -> Self::Result {
        self.guarded(|act| {
            act.flush();
            act.store().and_then(|s| s.query(&msg.0))
        })
    }
}

impl<F, R> Handler<Call<F, R>> for DbActor
where
    F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
    R: Send + 'static,
{
    type Result = Result<R, walguard::Error>;

    fn handle(&mut self, msg: Call<F, R>, _: &mut Self::Context) -> Self::Result {
        let result = self.guarded(|act| {
            act.flush();
            // A panic in the closure is caught by the store: the caller's
            // error, not the writer's end.
            let result = act.store().and_then(|s| s.call(msg.f));
            act.after_write();
            result
        });
        self.count(&result);
        result
    }
}

impl Handler<Checkpoint> for DbActor {
    type Result = MessageResult<Checkpoint>;

    fn handle(&mut self, msg: Checkpoint, _: &mut Self::Context) -> Self::Result {
        let report = self.guarded(|act| {
            act.flush();
            act.store()
                .map(|store| store.checkpoint(msg.mode, msg.reason))
        });
        let report = report.unwrap_or_else(|e| {
            CheckpointReport::failed(msg.mode, msg.reason, std::time::Duration::ZERO, &e)
        });
        self.publish(&report);
        MessageResult(report)
    }
}

impl Handler<GetDurability> for DbActor {
    type Result = Option<walguard::Durability>;

    fn handle(&mut self, _: GetDurability, _: &mut Self::Context) -> Self::Result {
        self.flush_guarded();
        self.store.as_ref().map(Store::durability)
    }
}

impl Handler<GetWriterStats> for DbActor {
    type Result = MessageResult<GetWriterStats>;

    fn handle(&mut self, _: GetWriterStats, _: &mut Self::Context) -> Self::Result {
        self.flush_guarded();
        MessageResult(self.writer_stats())
    }
}

impl Handler<Shutdown> for DbActor {
    type Result = MessageResult<Shutdown>;

    fn handle(&mut self, msg: Shutdown, ctx: &mut Self::Context) -> Self::Result {
        use actix::ActorContext as _;

        // Requests refused from here on are told "shut down" (not "mailbox
        // closed"), also while the drain below still runs.
        self.state.set_shut_down();
        // Every request the lane accepted before the shutdown is served,
        // and answered before the summary counts it.
        self.drain_lane(ctx);
        self.flush_guarded();
        self.finish_replies();
        let mut summary = self.summary();
        let Some(mut store) = self.store.take() else {
            summary.close_error = Some(match self.state.panicked() {
                Some(message) => format!("writer stopped after a panic: {message}"),
                None => "the store was already closed".to_owned(),
            });
            self.engine_lock = None;
            self.state.set_shut_down();
            ctx.stop();
            return MessageResult(ShutdownOutcome {
                truncate: None,
                summary,
            });
        };
        self.release_all_unreplicated();
        // Best effort: a busy or failed TRUNCATE is reported, never fatal.
        // Skipped while a Litestream walguard does not stop owns
        // checkpointing: its read lock would only make it wait.
        // The TRUNCATE has a deadline of its own: the drain watchdog's
        // interrupts, repeated until the shutdown ends, must not reach it
        // and turn a wait on a lock (`busy`) into `failed: interrupted`.
        self.state.set_interrupt(None);
        let report = (self.owner == CheckpointOwner::Walguard).then(|| {
            store.checkpoint_with_deadline(
                CheckpointMode::Truncate,
                CheckpointReason::Shutdown,
                msg.deadline,
            )
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
            let error = walguard::error::error_chain(&e);
            tracing::warn!(target: "walguard::db", error = %error, "closing the database failed; dropping the connection");
            summary.close_error = Some(error);
            drop(store);
        }
        // The store is closed: the next engine may take the file.
        self.engine_lock = None;
        self.state.set_shut_down();
        ctx.stop();
        MessageResult(ShutdownOutcome {
            truncate: report,
            summary,
        })
    }
}

impl Handler<InjectPanic> for DbActor {
    type Result = Result<(), walguard::Error>;

    fn handle(&mut self, msg: InjectPanic, _: &mut Self::Context) -> Self::Result {
        self.guarded(|_| -> Result<(), walguard::Error> {
            // Stands for a bug in DbActor's own code.
            panic!("{}", msg.0)
        })
    }
}

impl Handler<SetCheckpointOwner> for DbActor {
    type Result = ();

    fn handle(&mut self, msg: SetCheckpointOwner, _: &mut Self::Context) {
        self.owner = msg.owner;
        let frames = match msg.owner {
            CheckpointOwner::Litestream => msg.wal_cap_frames,
            CheckpointOwner::Walguard => self.size_threshold,
        };
        if let Some(store) = self.store.as_mut()
            && let Err(e) = store.set_size_threshold(frames)
        {
            tracing::warn!(target: "walguard::db", error = %walguard::error::error_chain(&e), frames, "cannot set the size threshold for the new checkpoint owner");
        }
    }
}

impl Handler<crate::messages::SetWalBrake> for DbActor {
    type Result = ();

    fn handle(&mut self, msg: crate::messages::SetWalBrake, _: &mut Self::Context) {
        // The negative control of the brake's test (feature `testing`).
        #[cfg(feature = "testing")]
        if std::env::var_os("WALGUARD_TEST_NO_WAL_BRAKE").is_some_and(|v| v == "1") {
            return;
        }
        self.brake = (msg.frames > 0).then(|| Brake {
            to: msg.to,
            frames: msg.frames,
            next_at: msg.frames,
            engaged: None,
            count: 0,
        });
    }
}

impl Handler<crate::messages::WalBrakeDone> for DbActor {
    type Result = ();

    fn handle(&mut self, _: crate::messages::WalBrakeDone, ctx: &mut Self::Context) {
        if let Some(brake) = self.brake.as_mut()
            && brake.engaged.take().is_some()
        {
            ctx.notify(Wake);
        }
    }
}

impl Handler<ReplicatedThrough> for DbActor {
    type Result = ();

    fn handle(&mut self, msg: ReplicatedThrough, _: &mut Self::Context) {
        if let (Some(commits), Some(store)) = (msg.0, self.store.as_mut()) {
            store.replicated_through(commits);
        }
        self.release(msg.0);
    }
}
