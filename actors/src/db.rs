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

use actix::{Actor, Context, Handler, MessageResult, Recipient};
use rusqlite::Connection;
use walguard::stats::DbSummary;
use walguard::{CheckpointMode, CheckpointReason, CheckpointReport, Store};

use crate::messages::{
    Call, Checkpoint, CheckpointDone, Execute, GetDurability, Query, Shutdown, ShutdownOutcome,
    Transaction,
};

/// Default `DbActor` mailbox capacity, in messages. Senders using `send`
/// wait when it is full: backpressure instead of unbounded memory.
pub const DEFAULT_DB_MAILBOX_CAPACITY: usize = 1024;

/// The actor that owns the only write connection.
#[derive(Debug)]
pub struct DbActor {
    store: Option<Store>,
    path: std::path::PathBuf,
    reports: Option<Recipient<CheckpointDone>>,
    mailbox_capacity: usize,
    writes_acknowledged: u64,
    writes_failed: u64,
}

impl DbActor {
    /// Wraps an open store. Checkpoint reports go to `reports` when given.
    #[must_use]
    pub fn new(store: Store, reports: Option<Recipient<CheckpointDone>>) -> Self {
        Self {
            path: store.path().to_path_buf(),
            store: Some(store),
            reports,
            mailbox_capacity: DEFAULT_DB_MAILBOX_CAPACITY,
            writes_acknowledged: 0,
            writes_failed: 0,
        }
    }

    /// Sets the mailbox capacity (at least 1).
    #[must_use]
    pub fn with_mailbox_capacity(mut self, capacity: usize) -> Self {
        self.mailbox_capacity = capacity.max(1);
        self
    }

    fn store(&mut self) -> Result<&mut Store, walguard::Error> {
        self.store.as_mut().ok_or_else(|| walguard::Error::Closed {
            path: self.path.clone(),
        })
    }

    fn count<T>(&mut self, result: &Result<T, walguard::Error>) {
        if result.is_ok() {
            self.writes_acknowledged += 1;
        } else {
            self.writes_failed += 1;
        }
    }

    fn publish(&self, report: &CheckpointReport) {
        if let Some(reports) = &self.reports {
            reports.do_send(CheckpointDone(report.clone()));
        }
    }

    fn summary(&self) -> DbSummary {
        let mut summary = DbSummary::default();
        summary.writes_acknowledged = self.writes_acknowledged;
        summary.writes_failed = self.writes_failed;
        summary.durability = self.store.as_ref().map(Store::durability);
        summary
    }
}

impl Actor for DbActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.mailbox_capacity);
    }
}

impl Handler<Execute> for DbActor {
    type Result = Result<usize, walguard::Error>;

    fn handle(&mut self, msg: Execute, _: &mut Self::Context) -> Self::Result {
        let result = self.store().and_then(|s| s.execute(&msg.0));
        self.count(&result);
        result
    }
}

impl Handler<Transaction> for DbActor {
    type Result = Result<Vec<usize>, walguard::Error>;

    fn handle(&mut self, msg: Transaction, _: &mut Self::Context) -> Self::Result {
        let result = self.store().and_then(|s| s.transaction(&msg.0));
        self.count(&result);
        result
    }
}

impl Handler<Query> for DbActor {
    type Result = Result<walguard::ResultSet, walguard::Error>;

    fn handle(&mut self, msg: Query, _: &mut Self::Context) -> Self::Result {
        self.store().and_then(|s| s.query(&msg.0))
    }
}

impl<F, R> Handler<Call<F, R>> for DbActor
where
    F: FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
    R: Send + 'static,
{
    type Result = Result<R, walguard::Error>;

    fn handle(&mut self, msg: Call<F, R>, _: &mut Self::Context) -> Self::Result {
        let result = self.store().and_then(|s| s.call(msg.f));
        self.count(&result);
        result
    }
}

impl Handler<Checkpoint> for DbActor {
    type Result = MessageResult<Checkpoint>;

    fn handle(&mut self, msg: Checkpoint, _: &mut Self::Context) -> Self::Result {
        let report = match self.store() {
            Ok(store) => store.checkpoint(msg.mode, msg.reason),
            Err(e) => CheckpointReport::failed(msg.mode, msg.reason, std::time::Duration::ZERO, &e),
        };
        self.publish(&report);
        MessageResult(report)
    }
}

impl Handler<GetDurability> for DbActor {
    type Result = Option<walguard::Durability>;

    fn handle(&mut self, _: GetDurability, _: &mut Self::Context) -> Self::Result {
        self.store.as_ref().map(Store::durability)
    }
}

impl Handler<Shutdown> for DbActor {
    type Result = MessageResult<Shutdown>;

    fn handle(&mut self, msg: Shutdown, ctx: &mut Self::Context) -> Self::Result {
        use actix::ActorContext as _;

        let mut summary = self.summary();
        let Some(mut store) = self.store.take() else {
            summary.close_error = Some("the store was already closed".to_owned());
            return MessageResult(ShutdownOutcome {
                truncate: None,
                summary,
            });
        };
        // Best effort: a busy or failed TRUNCATE is reported, never fatal.
        let report = store.checkpoint_with_deadline(
            CheckpointMode::Truncate,
            CheckpointReason::Shutdown,
            msg.deadline,
        );
        self.publish(&report);
        summary.durability = Some(store.durability());
        if let Err((store, e)) = store.close() {
            let error = walguard::checkpoint::error_chain(&e);
            tracing::warn!(target: "walguard::db", error = %error, "closing the database failed; dropping the connection");
            summary.close_error = Some(error);
            drop(store);
        }
        ctx.stop();
        MessageResult(ShutdownOutcome {
            truncate: Some(report),
            summary,
        })
    }
}
