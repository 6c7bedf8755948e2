//! [`DbHandle`]: sends requests to `DbActor` and flattens mailbox and
//! database errors into one.

use std::sync::Arc;

use actix::{Addr, MailboxError};
use rusqlite::Connection;
use walguard::{
    CheckpointMode, CheckpointReason, CheckpointReport, Durability, ResultSet, Statement,
};

use crate::db::DbActor;
use crate::error::{Error, Result};
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
}

impl DbHandle {
    /// Wraps an address.
    #[must_use]
    pub fn new(addr: Addr<DbActor>) -> Self {
        Self { addr, state: None }
    }

    /// Wraps the address of a writer that shares `state`.
    pub(crate) fn with_state(addr: Addr<DbActor>, state: Arc<WriterState>) -> Self {
        Self {
            addr,
            state: Some(state),
        }
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

    /// The actor's address, to send messages directly.
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
        let reply = self.addr.send(Execute(stmt.into())).await;
        Ok(reply.map_err(self.unanswered())??)
    }

    /// Runs statements as one atomic transaction; the rows changed by each.
    ///
    /// # Errors
    ///
    /// As [`DbHandle::execute`]; nothing of the batch is written on error.
    pub async fn transaction(&self, stmts: Vec<Statement>) -> Result<Vec<usize>> {
        let reply = self.addr.send(Transaction(stmts)).await;
        Ok(reply.map_err(self.unanswered())??)
    }

    /// Runs a read query.
    ///
    /// # Errors
    ///
    /// As [`DbHandle::execute`].
    pub async fn query(&self, stmt: impl Into<Statement>) -> Result<ResultSet> {
        let reply = self.addr.send(Query(stmt.into())).await;
        Ok(reply.map_err(self.unanswered())??)
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
        let reply = self.addr.send(Call::new(f)).await;
        Ok(reply.map_err(self.unanswered())??)
    }

    /// Runs a checkpoint now (reason `manual`); the report also goes to
    /// `MetricsActor`.
    ///
    /// # Errors
    ///
    /// [`Error::Mailbox`] when the actor is gone. A failed checkpoint is a
    /// report, not an error.
    pub async fn checkpoint(&self, mode: CheckpointMode) -> Result<CheckpointReport> {
        self.addr
            .send(Checkpoint {
                mode,
                reason: CheckpointReason::Manual,
            })
            .await
            .map_err(self.unanswered())
    }

    /// What is durable and what a power loss could take now; `None` after
    /// shutdown.
    ///
    /// # Errors
    ///
    /// [`Error::Mailbox`] when the actor is gone.
    pub async fn durability(&self) -> Result<Option<Durability>> {
        self.addr
            .send(GetDurability)
            .await
            .map_err(self.unanswered())
    }
}
