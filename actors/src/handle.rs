//! [`DbHandle`]: the one door to the database. Every write takes the lane
//! (`actors/src/lane.rs`) and is served by the writer in the order it was
//! accepted; every read ([`DbHandle::read`], [`DbHandle::query`]) goes to
//! the read pool ([`walguard::read::ReadPool`]) beside it, with no actor on
//! its path: the pool's thread answers on a oneshot channel the handle
//! awaits. Mailbox and database errors come back flattened into one.

use std::sync::Arc;

use actix::{Actor as _, Addr, Arbiter, Context};
use rusqlite::Connection;
use tokio::sync::oneshot;
use walguard::replication::CheckpointOwner;
use walguard::writer::WriterState;
use walguard::{
    CheckpointMode, CheckpointReason, CheckpointReport, Durability, ResultSet, Statement,
};

use walguard::read::ReadPool;

use crate::db::{DbActor, Placement, WriterStats};
use crate::error::{Error, Result};
use crate::lane::{LaneSender, Request};
use crate::messages::{ReplicatedThrough, WalBrakeDone};

/// A cheap, cloneable handle for sending requests to `DbActor`; flattens
/// mailbox and database errors into one [`Error`]. Made by
/// [`WalGuard`](crate::WalGuard) (its [`db`](crate::WalGuard::db)) or
/// [`DbActor::spawn`].
#[derive(Debug, Clone)]
pub struct DbHandle {
    addr: Addr<DbActor>,
    /// What the writer shares, to say why it did not answer.
    state: Arc<WriterState>,
    /// The lane every request takes (`None` only if the actor was started
    /// twice, which cannot happen: then every request is refused).
    lane: Option<LaneSender<DbActor>>,
    /// The read connections (`None` for a writer started alone with
    /// [`DbActor::spawn`]: its reads take the lane).
    reads: Option<Arc<ReadPool>>,
}

impl DbHandle {
    /// Wraps the address of a writer that shares `state` and serves `lane`.
    pub(crate) fn new(
        addr: Addr<DbActor>,
        state: Arc<WriterState>,
        lane: Option<LaneSender<DbActor>>,
    ) -> Self {
        Self {
            addr,
            state,
            lane,
            reads: None,
        }
    }

    /// The same handle, its reads served by `reads`.
    pub(crate) fn with_reads(mut self, reads: Arc<ReadPool>) -> Self {
        self.reads = Some(reads);
        self
    }

    /// The read pool, for the shutdown and the reports (`None` for a
    /// writer started alone).
    pub(crate) fn reads(&self) -> Option<&Arc<ReadPool>> {
        self.reads.as_ref()
    }

    /// The actor's address, for the shutdown step and the signals of the
    /// other actors (never a request).
    pub(crate) fn addr(&self) -> &Addr<DbActor> {
        &self.addr
    }

    /// What the writer shares (counts, shutdown, checkpoint owner).
    pub(crate) fn state(&self) -> &Arc<WriterState> {
        &self.state
    }

    /// Puts `request` on the lane.
    async fn send(&self, request: Request<DbActor>) -> Result<()> {
        match &self.lane {
            Some(lane) => lane.send(request).await.map_err(|_| self.unanswered()),
            None => Err(self.unanswered()),
        }
    }

    /// Runs `f` on the writer through the lane, in the order of the
    /// handle's requests, and returns what it returned.
    async fn ask<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut DbActor, &mut Context<DbActor>) -> T + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let run = Box::new(move |act: &mut DbActor, ctx: &mut Context<DbActor>| {
            // The sender may have given up waiting; nothing to do then.
            let _ = tx.send(f(act, ctx));
        });
        self.send(Request::Other(run)).await?;
        rx.await.map_err(|_| self.unanswered())
    }

    /// Runs a request that may write (a transaction, a closure) on the
    /// writer through the lane, and returns its result once it may be
    /// acknowledged: at its COMMIT, or under `replication.ack: replicated`
    /// once the replica has it ([`walguard::writer::Writer::answer_write`]).
    async fn ask_write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut DbActor) -> std::result::Result<T, walguard::Error> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let run = Box::new(move |act: &mut DbActor, _: &mut Context<DbActor>| {
            let before = act.writer().commits();
            let result = f(act);
            act.writer().answer_write(before, result, move |result| {
                let _ = tx.send(result);
            });
        });
        self.send(Request::Other(run)).await?;
        Ok(rx.await.map_err(|_| self.unanswered())??)
    }

    /// Why the writer did not answer: it stopped after a panic
    /// ([`walguard::Error::WriterPanicked`]), it was shut down
    /// ([`Error::ShutDown`]), or it is gone for another reason
    /// ([`Error::Mailbox`]).
    fn unanswered(&self) -> Error {
        if let Some(message) = self.state.panicked() {
            Error::Db(walguard::Error::WriterPanicked { message })
        } else if self.state.is_shut_down() {
            Error::ShutDown
        } else {
            Error::Mailbox {
                actor: "DbActor",
                source: actix::MailboxError::Closed,
            }
        }
    }

    /// Runs one statement; the rows changed, once it is committed (with
    /// group commit, together with the writes waiting beside it).
    ///
    /// # Errors
    ///
    /// [`Error::Db`] naming the statement (or
    /// [`walguard::Error::WriterPanicked`] once the writer stopped after a
    /// panic of its own); [`Error::ShutDown`] after shutdown;
    /// [`Error::Mailbox`] when the actor is gone otherwise.
    pub async fn execute(&self, stmt: impl Into<Statement>) -> Result<usize> {
        let (reply, answer) = oneshot::channel();
        self.send(Request::Execute {
            stmt: stmt.into(),
            reply,
        })
        .await?;
        Ok(answer.await.map_err(|_| self.unanswered())??)
    }

    /// Puts one write on the lane at once, from a thread outside any async
    /// runtime (the open-loop benchmark's generator, which must send at
    /// each write's due time and await nothing), and returns its answer to
    /// await elsewhere.
    ///
    /// # Errors
    ///
    /// As [`DbHandle::execute`]; also [`Error::Mailbox`] when called from
    /// inside an async runtime.
    #[cfg(feature = "bench")]
    pub fn execute_from_thread(
        &self,
        stmt: Statement,
    ) -> Result<std::pin::Pin<Box<dyn std::future::Future<Output = Result<usize>> + Send>>> {
        let (reply, answer) = oneshot::channel();
        self.lane
            .as_ref()
            .ok_or_else(|| self.unanswered())?
            .send_from_thread(Request::Execute { stmt, reply })
            .map_err(|_| self.unanswered())?;
        let handle = self.clone();
        Ok(Box::pin(async move {
            Ok(answer.await.map_err(|_| handle.unanswered())??)
        }))
    }

    /// Runs statements as one atomic transaction; the rows changed by each.
    ///
    /// # Errors
    ///
    /// As [`DbHandle::execute`]; nothing of the batch is written on error.
    pub async fn transaction(&self, stmts: Vec<Statement>) -> Result<Vec<usize>> {
        self.ask_write(move |act| act.writer().transaction(&stmts))
            .await
    }

    /// Runs `f` on a read connection, inside one read transaction (every
    /// statement in it sees the same snapshot), concurrently with the
    /// writes and with other reads: never on the writer's lane. A read
    /// sent after a write's acknowledgement sees that write, through any
    /// handle. A read still running past `read.max_snapshot_age` is
    /// interrupted at its next SQLite step.
    ///
    /// A writer started alone ([`DbActor::spawn`], no pool) runs `f` on
    /// its lane instead, after the writes queued before it, like
    /// [`DbHandle::call`] (and counted like it).
    ///
    /// ```no_run
    /// # async fn demo(db: &walguard_actors::DbHandle) -> walguard_actors::Result<()> {
    /// let total: i64 = db
    ///     .read(|conn| conn.query_row("SELECT coalesce(sum(qty), 0) FROM orders", [], |r| r.get(0)))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Db`] with [`walguard::Error::Read`] (what `f` returned),
    /// [`walguard::Error::ReadRefused`] (`f` tried to write, end the
    /// transaction, attach a database or create a temporary object),
    /// [`walguard::Error::ReadTooOld`] (past `read.max_snapshot_age`, named
    /// in its message), [`walguard::Error::ReadPanicked`],
    /// [`walguard::Error::ReadStopped`] (interrupted by the shutdown), or
    /// [`walguard::Error::WriterPanicked`] once the writer stopped after a
    /// panic of its own; [`Error::ShutDown`] after shutdown.
    pub async fn read<F, R>(&self, f: F) -> Result<R>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let Some(reads) = self.open_reads()? else {
            return self
                .ask(move |act, _| act.writer().call(|conn| f(conn)))
                .await?
                .map_err(Error::from);
        };
        let (tx, rx) = oneshot::channel();
        reads.submit(f, move |result| {
            let _ = tx.send(result);
        });
        self.read_answer(rx).await
    }

    /// Runs one read statement on a read connection (as
    /// [`DbHandle::read`]) and returns its rows. A statement that would
    /// write, checkpoint, control the transaction, attach a database or
    /// change a guarded setting is refused there, and nothing happens.
    ///
    /// # Errors
    ///
    /// As [`DbHandle::read`]; [`walguard::Error::Statement`] naming the SQL
    /// when it fails; [`walguard::Error::ReadRefused`] naming the SQL and
    /// what it would do when it is not a read.
    pub async fn query(&self, stmt: impl Into<Statement>) -> Result<ResultSet> {
        let stmt = stmt.into();
        let Some(reads) = self.open_reads()? else {
            return self.query_on_writer(stmt).await;
        };
        let (tx, rx) = oneshot::channel();
        reads.submit_query(stmt, move |result| {
            let _ = tx.send(result);
        });
        self.read_answer(rx).await
    }

    /// Runs a read query on the write connection, after the writes queued
    /// before it: for what only the writer can say (the exposure watch's
    /// `PRAGMA wal_checkpoint(NOOP)`).
    pub(crate) async fn query_on_writer(&self, stmt: Statement) -> Result<ResultSet> {
        Ok(self.ask(move |act, _| act.writer().query(&stmt)).await??)
    }

    /// The pool, unless the writer has stopped: reads are refused like
    /// every other request once it panicked or was shut down.
    fn open_reads(&self) -> Result<Option<&Arc<ReadPool>>> {
        if let Some(message) = self.state.panicked() {
            return Err(Error::Db(walguard::Error::WriterPanicked { message }));
        }
        if self.state.is_shut_down() {
            return Err(Error::ShutDown);
        }
        Ok(self.reads.as_ref())
    }

    /// A read's answer: a pool closed (it closes only at shutdown) is
    /// [`Error::ShutDown`].
    async fn read_answer<R>(&self, rx: oneshot::Receiver<walguard::Result<R>>) -> Result<R> {
        match rx.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(walguard::Error::ReadPoolClosed { .. })) | Err(_) => Err(Error::ShutDown),
            Ok(Err(e)) => Err(Error::Db(e)),
        }
    }

    /// Runs a closure against the write connection. The closure must leave
    /// no transaction open.
    ///
    /// # Errors
    ///
    /// As [`DbHandle::execute`], with what the closure returned.
    pub async fn call<F, R>(&self, f: F) -> Result<R>
    where
        F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        self.ask_write(move |act| act.writer().call(f)).await
    }

    /// Runs a checkpoint now (reason `manual`); the report also goes to
    /// `MetricsActor`.
    ///
    /// # Errors
    ///
    /// [`Error::Mailbox`] when the actor is gone. A failed checkpoint is a
    /// report, not an error.
    pub async fn checkpoint(&self, mode: CheckpointMode) -> Result<CheckpointReport> {
        self.checkpoint_for(mode, CheckpointReason::Manual).await
    }

    /// Runs a checkpoint now, for `reason` (the interval loop's).
    pub(crate) async fn checkpoint_for(
        &self,
        mode: CheckpointMode,
        reason: CheckpointReason,
    ) -> Result<CheckpointReport> {
        self.ask(move |act, _| act.writer().checkpoint(mode, reason))
            .await
    }

    /// What is durable and what a power loss could take now; `None` after
    /// shutdown.
    ///
    /// # Errors
    ///
    /// [`Error::Mailbox`] when the actor is gone.
    pub async fn durability(&self) -> Result<Option<Durability>> {
        self.ask(|act, _| act.writer().durability()).await
    }

    /// How group commit and the size-triggered checkpoint have been going,
    /// after the writes queued before it.
    ///
    /// # Errors
    ///
    /// [`Error::ShutDown`] after shutdown; [`Error::Mailbox`] when the
    /// actor is gone otherwise.
    pub async fn writer_stats(&self) -> Result<WriterStats> {
        self.ask(|act, _| act.writer().stats()).await
    }

    /// Panics inside the writer's own code, as a bug of ours would, for
    /// tests of what the writer does then: it stops serving, and every
    /// request, this one included, gets
    /// [`walguard::Error::WriterPanicked`] with this message.
    ///
    /// # Errors
    ///
    /// [`Error::Db`] with [`walguard::Error::WriterPanicked`].
    #[cfg(feature = "testing")]
    pub async fn inject_panic(&self, message: impl Into<String>) -> Result<()> {
        let message = message.into();
        Ok(self
            .ask(move |act, _| act.writer().inject_panic(&message))
            .await??)
    }

    /// As [`DbHandle::execute`], without waiting for a slot on the lane:
    /// refused at once while the lane holds `database.mailbox_capacity`
    /// requests. For tests of the backpressure.
    ///
    /// # Errors
    ///
    /// [`Error::Mailbox`] (mailbox full) when the lane is full, or closed.
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub fn try_execute(
        &self,
        stmt: Statement,
    ) -> Result<impl std::future::Future<Output = Result<usize>> + use<>> {
        let (reply, answer) = oneshot::channel();
        let full = || Error::Mailbox {
            actor: "DbActor",
            source: actix::MailboxError::Closed,
        };
        self.lane
            .as_ref()
            .ok_or_else(full)?
            .try_send(Request::Execute { stmt, reply })
            .map_err(|_| full())?;
        let handle = self.clone();
        Ok(async move { Ok(answer.await.map_err(|_| handle.unanswered())??) })
    }

    /// Who runs the checkpoints now (the one home of that fact is the
    /// writer's shared state).
    pub(crate) fn checkpoint_owner(&self) -> CheckpointOwner {
        self.state.owner()
    }

    /// Hands checkpointing to `owner`; the writer applies it before its
    /// next round.
    pub(crate) fn set_checkpoint_owner(&self, owner: CheckpointOwner) {
        self.state.set_owner(owner);
    }

    /// The first `commits` commits are on the replica (`None`: a sync that
    /// did not answer).
    pub(crate) fn replicated_through(&self, commits: Option<u64>) {
        self.addr.do_send(ReplicatedThrough(commits));
    }

    /// The sync the WAL brake asked for returned.
    pub(crate) fn brake_done(&self) {
        self.addr.do_send(WalBrakeDone);
    }
}

impl DbActor {
    /// Starts the actor on the current arbiter and returns its handle, the
    /// only way to send it requests.
    #[must_use]
    pub fn spawn(self) -> DbHandle {
        self.start_at(Placement::Current).0
    }

    /// Starts the actor where `placement` says, with a replier thread when
    /// it has an arbiter of its own; returns its handle, and the arbiter it
    /// made.
    pub(crate) fn start_at(mut self, placement: Placement) -> (DbHandle, Option<Arbiter>) {
        let unwired = self.take_unwired();
        let state = Arc::clone(self.writer().state());
        let (addr, arbiter) = match placement {
            Placement::OwnArbiter => {
                // A thread that answers group commits only where the writer
                // has a thread of its own (see `walguard::writer`).
                let act = self.map_writer(walguard::writer::Writer::with_replier);
                let arbiter = Arbiter::new();
                let addr = Self::start_in_arbiter(&arbiter.handle(), move |_| act);
                (addr, Some(arbiter))
            }
            Placement::Current => (self.start(), None),
            Placement::Arbiter(handle) => (Self::start_in_arbiter(&handle, move |_| self), None),
        };
        let lane = unwired.map(|u| u.wake(&addr));
        (DbHandle::new(addr, state, lane), arbiter)
    }
}
