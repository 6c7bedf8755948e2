//! The system: wires the actors, and stops them in order.
//!
//! - `system/mod.rs`: [`WalGuard`] and [`Placement`];
//! - `system/start.rs`: [`WalGuardBuilder`], which opens the database and
//!   starts the actors;
//! - `system/shutdown.rs`: the clean shutdown, its budget and its
//!   watchdog;
mod shutdown;
mod start;

use std::sync::Arc;
use std::time::Duration;

use actix::{Addr, Arbiter};
use walguard::{Migrations, SessionReport, Settings};

use crate::checkpoint::CheckpointActor;
use crate::error::{Error, Result};
use crate::exposure::ExposureWatch;
use crate::messages::{
    GetReplicated, GetReport, GetStatus, StartLoop, Status, StopLoop, WatchExposure,
};
use crate::metrics::MetricsActor;
use crate::replication::ReplicationActor;
use walguard::replication::Replicated;
use walguard::writer::WriterState;

use crate::db::Placement;
use crate::handle::DbHandle;
pub use shutdown::{
    FINAL_SYNC_TIMEOUT, LITESTREAM_STOP_TIMEOUT, REPLICATION_SHUTDOWN_SLICE, SHUTDOWN_CLOSE_GRACE,
    SHUTDOWN_DRAIN_GRACE,
};
pub use start::WalGuardBuilder;

/// The running subsystem: `DbActor`, a supervised `CheckpointActor`,
/// `MetricsActor` and `ExposureWatch`.
///
/// ```no_run
/// use walguard::{Settings, Statement};
/// use walguard_actors::WalGuard;
///
/// #[actix::main]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let guard = WalGuard::start(Settings::for_database("engine.db"))?;
///     guard.start_checkpoint_loop();
///     guard.db().execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, qty INTEGER)").await?;
///     guard.db().execute(Statement::new("INSERT INTO orders (qty) VALUES (?1)").bind(5)).await?;
///     let report = guard.shutdown().await?;
///     println!("{report}");
///     Ok(())
/// }
/// ```
#[derive(Debug)]
pub struct WalGuard {
    db: DbHandle,
    state: Arc<WriterState>,
    checkpoint: Addr<CheckpointActor>,
    metrics: Addr<MetricsActor>,
    exposure: Addr<ExposureWatch>,
    replication: Option<Addr<ReplicationActor>>,
    arbiter: Option<Arbiter>,
    settings: Settings,
}

impl WalGuard {
    /// A builder, to choose where `DbActor` runs.
    pub fn builder(settings: Settings) -> WalGuardBuilder {
        WalGuardBuilder::new(settings)
    }

    /// Starts with `DbActor` on its own arbiter.
    ///
    /// # Errors
    ///
    /// As [`WalGuardBuilder::start`].
    pub fn start(settings: Settings) -> Result<Self> {
        Self::builder(settings).start()
    }

    /// Starts like [`WalGuard::start`], after bringing the schema to the
    /// latest of `migrations` (see [`WalGuardBuilder::start`]).
    ///
    /// ```no_run
    /// use walguard::{Migrations, Settings};
    /// use walguard_actors::WalGuard;
    ///
    /// #[actix::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let migrations = Migrations::from_directory("migrations")?;
    ///     let guard = WalGuard::start_with_migrations(Settings::for_database("engine.db"), migrations)?;
    ///     println!("{}", guard.shutdown().await?);
    ///     Ok(())
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`WalGuardBuilder::start`].
    pub fn start_with_migrations(settings: Settings, migrations: Migrations) -> Result<Self> {
        Self::builder(settings).migrations(migrations).start()
    }

    /// The handle engines send requests through.
    #[must_use]
    pub fn db(&self) -> &DbHandle {
        &self.db
    }

    /// The supervised checkpoint actor.
    #[must_use]
    pub fn checkpoint_actor(&self) -> &Addr<CheckpointActor> {
        &self.checkpoint
    }

    /// The metrics actor.
    #[must_use]
    pub fn metrics_actor(&self) -> &Addr<MetricsActor> {
        &self.metrics
    }

    /// The exposure watch.
    #[must_use]
    pub fn exposure_watch(&self) -> &Addr<ExposureWatch> {
        &self.exposure
    }

    /// The replication actor (`None` with `replication.mode: off`).
    #[must_use]
    pub fn replication_actor(&self) -> Option<&Addr<ReplicationActor>> {
        self.replication.as_ref()
    }

    /// What the replica holds now (`None` with replication off).
    ///
    /// # Errors
    ///
    /// [`Error::Mailbox`] when the replication actor is gone.
    pub async fn replicated(&self) -> Result<Option<Replicated>> {
        match &self.replication {
            Some(addr) => Ok(Some(
                addr.send(GetReplicated)
                    .await
                    .map_err(Error::mailbox("ReplicationActor"))?,
            )),
            None => Ok(None),
        }
    }

    /// The settings it runs with.
    #[must_use]
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Starts the periodic checkpoint loop (idempotent).
    pub fn start_checkpoint_loop(&self) {
        self.checkpoint.do_send(StartLoop);
    }

    /// Stops the periodic checkpoint loop.
    pub fn stop_checkpoint_loop(&self) {
        self.checkpoint.do_send(StopLoop);
    }

    /// The session report so far.
    ///
    /// # Errors
    ///
    /// [`Error::Mailbox`] when `MetricsActor` is gone.
    pub async fn report(&self) -> Result<SessionReport> {
        self.metrics
            .send(GetReport)
            .await
            .map_err(Error::mailbox("MetricsActor"))
    }

    /// Starts the exposure watch: every `every` (e.g.
    /// [`DEFAULT_WATCH_PERIOD`](crate::exposure::DEFAULT_WATCH_PERIOD)),
    /// `ExposureWatch` asks `DbActor` what is durable and how many frames the
    /// WAL holds, updates the gauges of [`crate::telemetry`], and warns once
    /// per episode when the exposure passes two checkpoint intervals
    /// (checkpoint starvation). Calling it again replaces the running watch.
    /// The watch ends with the session.
    pub fn watch_exposure(&self, every: Duration) {
        self.exposure.do_send(WatchExposure { every });
    }

    /// The live status: checkpoint counts and timings so far, and what the
    /// exposure watch last saw.
    ///
    /// # Errors
    ///
    /// [`Error::Mailbox`] when `MetricsActor` is gone.
    pub async fn status(&self) -> Result<Status> {
        self.metrics
            .send(GetStatus)
            .await
            .map_err(Error::mailbox("MetricsActor"))
    }
}
