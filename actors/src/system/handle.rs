//! [`DbHandle`]: sends requests to `DbActor` and flattens mailbox and
//! database errors into one. A system's handles send through the lane
//! (`actors/src/lane.rs`); a handle made from a bare address, through the
//! mailbox.

use std::sync::Arc;

use actix::{Addr, Context, Handler, MailboxError};
use rusqlite::Connection;
use tokio::sync::oneshot;
use walguard::{
    CheckpointMode, CheckpointReason, CheckpointReport, Durability, ResultSet, Statement,
};

use crate::db::DbActor;
use crate::error::{Error, Result};
use crate::lane::{LaneSender, Request};
use crate::messages::{Call, Checkpoint, Execute, GetDurability, Query, Transaction};
use crate::writer_state::WriterState;

/// A cheap, cloneable handle for sending requests to `DbActor`; flattens
/// mailbox and database errors into one [`Error`].
#[derive(Debug, Clone)]
pub struct DbHandle {
    addr: Addr<DbActor>,
    /// What the writer shares, to say why it did not answer (`None` for a
    /// handle made from a bare address).
    state: Option<Arc<WriterState>>,
    /// The lane every request takes (`None` for a handle made from a bare
    /// address: the mailbox then).
    lane: Option<LaneSender<DbActor>>,
}

impl DbHandle {
    /// Wraps an address.
    #[must_use]
    pub fn new(addr: Addr<DbActor>) -> Self {
        Self {
            addr,
            state: None,
            lane: None,
        }
    }

    /// Wraps the address of a writer that shares `state` and serves `lane`.
    pub(crate) fn with_lane(
        addr: Addr<DbActor>,
        state: Arc<WriterState>,
        lane: LaneSender<DbActor>,
    ) -> Self {
        Self {
            addr,
            state: Some(state),
            lane: Some(lane),
        }
    }

    /// Runs `f` on the writer through `lane`, in the order of the handle's
    /// requests, and returns what it returned.
    async fn ask<T: Send + 'static>(
        &self,
        lane: &LaneSender<DbActor>,
        f: impl FnOnce(&mut DbActor, &mut Context<DbActor>) -> T + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let run = Box::new(move |act: &mut DbActor, ctx: &mut Context<DbActor>| {
            // The sender may have given up waiting; nothing to do then.
            let _ = tx.send(f(act, ctx));
        });
        lane.send(Request::Other(run))
            .await
            .map_err(|_| self.unanswered()(MailboxError::Closed))?;
        rx.await
            .map_err(|_| self.unanswered()(MailboxError::Closed))
    }

    /// Runs a request that may write (a transaction, a closure) on the
    /// writer through `lane`, and returns its result once it may be
    /// acknowledged: at its COMMIT, or under `replication.ack: replicated`
    /// once the replica has it ([`DbActor::answer_write`]).
    async fn ask_write<T: Send + 'static>(
        &self,
        lane: &LaneSender<DbActor>,
        f: impl FnOnce(&mut DbActor, &mut Context<DbActor>) -> std::result::Result<T, walguard::Error>
        + Send
        + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let run = Box::new(move |act: &mut DbActor, ctx: &mut Context<DbActor>| {
            let before = act.commits();
            let result = f(act, ctx);
            act.answer_write(before, result, tx);
        });
        lane.send(Request::Other(run))
            .await
            .map_err(|_| self.unanswered()(MailboxError::Closed))?;
        Ok(rx
            .await
            .map_err(|_| self.unanswered()(MailboxError::Closed))??)
    }

    /// Why the writer did not answer: it stopped after a panic
    /// ([`walguard::Error::WriterPanicked`]), it was shut down
    /// ([`Error::ShutDown`]), or its mailbox is gone for another reason
    /// ([`Error::Mailbox`]).
    fn unanswered(&self) -> impl FnOnce(MailboxError) -> Error + '_ {
        move |source| match &self.state {
            Some(state) => {
                if let Some(message) = state.panicked() {
                    Error::Db(walguard::Error::WriterPanicked { message })
                } else if state.is_shut_down() {
                    Error::ShutDown
                } else {
                    Error::Mailbox {
                        actor: "DbActor",
                        source,
                    }
                }
            }
            None => Error::Mailbox {
                actor: "DbActor",
                source,
            },
        }
    }

    /// The actor's address, to send messages directly. Messages sent there
    /// keep their order among themselves, not with this handle's requests
    /// (which take the lane, [`DbActor`]'s "The lane").
    #[must_use]
    pub fn addr(&self) -> &Addr<DbActor> {
        &self.addr
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
        let Some(lane) = &self.lane else {
            let reply = self.addr.send(Execute(stmt.into())).await;
            return Ok(reply.map_err(self.unanswered())??);
        };
        let (reply, answer) = oneshot::channel();
        lane.send(Request::Execute {
            stmt: stmt.into(),
            reply,
        })
        .await
        .map_err(|_| self.unanswered()(MailboxError::Closed))?;
        let result = answer
            .await
            .map_err(|_| self.unanswered()(MailboxError::Closed))?;
        Ok(result?)
    }

    /// Puts one write on the lane at once, from a thread outside any async
    /// runtime (the open-loop benchmark's generator, which must send at
    /// each write's due time and await nothing), and returns its answer to
    /// await elsewhere. A handle without a lane sends to the mailbox, which
    /// also queues at once.
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
        let Some(lane) = &self.lane else {
            let reply = self.addr.send(Execute(stmt));
            let handle = self.clone();
            return Ok(Box::pin(async move {
                Ok(reply.await.map_err(handle.unanswered())??)
            }));
        };
        let (reply, answer) = oneshot::channel();
        lane.send_from_thread(Request::Execute { stmt, reply })
            .map_err(|_| self.unanswered()(MailboxError::Closed))?;
        let handle = self.clone();
        Ok(Box::pin(async move {
            let result = answer
                .await
                .map_err(|_| handle.unanswered()(MailboxError::Closed))?;
            Ok(result?)
        }))
    }

    /// Runs statements as one atomic transaction; the rows changed by each.
    ///
    /// # Errors
    ///
    /// As [`DbHandle::execute`]; nothing of the batch is written on error.
    pub async fn transaction(&self, stmts: Vec<Statement>) -> Result<Vec<usize>> {
        let msg = Transaction(stmts);
        let Some(lane) = &self.lane else {
            return Ok(self.addr.send(msg).await.map_err(self.unanswered())??);
        };
        self.ask_write(lane, move |act, ctx| act.handle(msg, ctx))
            .await
    }

    /// Runs a read query.
    ///
    /// # Errors
    ///
    /// As [`DbHandle::execute`].
    pub async fn query(&self, stmt: impl Into<Statement>) -> Result<ResultSet> {
        let msg = Query(stmt.into());
        let Some(lane) = &self.lane else {
            return Ok(self.addr.send(msg).await.map_err(self.unanswered())??);
        };
        Ok(self
            .ask(lane, move |act, ctx| act.handle(msg, ctx))
            .await??)
    }

    /// Runs a closure against the write connection.
    ///
    /// # Errors
    ///
    /// As [`DbHandle::execute`], with what the closure returned.
    pub async fn call<F, R>(&self, f: F) -> Result<R>
    where
        F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let msg = Call::new(f);
        let Some(lane) = &self.lane else {
            return Ok(self.addr.send(msg).await.map_err(self.unanswered())??);
        };
        self.ask_write(lane, move |act, ctx| act.handle(msg, ctx))
            .await
    }

    /// Runs a checkpoint now (reason `manual`); the report also goes to
    /// `MetricsActor`.
    ///
    /// # Errors
    ///
    /// [`Error::Mailbox`] when the actor is gone. A failed checkpoint is a
    /// report, not an error.
    pub async fn checkpoint(&self, mode: CheckpointMode) -> Result<CheckpointReport> {
        let msg = Checkpoint {
            mode,
            reason: CheckpointReason::Manual,
        };
        let Some(lane) = &self.lane else {
            return self.addr.send(msg).await.map_err(self.unanswered());
        };
        self.ask(lane, move |act, ctx| act.handle(msg, ctx).0).await
    }

    /// What is durable and what a power loss could take now; `None` after
    /// shutdown.
    ///
    /// # Errors
    ///
    /// [`Error::Mailbox`] when the actor is gone.
    pub async fn durability(&self) -> Result<Option<Durability>> {
        let Some(lane) = &self.lane else {
            return self
                .addr
                .send(GetDurability)
                .await
                .map_err(self.unanswered());
        };
        self.ask(lane, |act, ctx| act.handle(GetDurability, ctx))
            .await
    }
}
