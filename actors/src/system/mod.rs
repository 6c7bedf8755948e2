//! The system: wires the actors, and stops them in order.
//!
//! - `system/mod.rs`: [`WalGuard`], its builder and [`Placement`];
//! - `system/handle.rs`: [`DbHandle`], the typed client of `DbActor`.

mod handle;

use std::time::Duration;

use actix::{Actor, Addr, Arbiter, ArbiterHandle, Supervisor, System};
use walguard::stats::DbSummary;
use walguard::{SessionReport, Settings, Store};

use crate::checkpoint::CheckpointActor;
use crate::db::DbActor;
use crate::error::{Error, Result};
use crate::exposure::ExposureWatch;
use crate::messages::{
    EndWatch, Finish, GetReport, GetStatus, Shutdown, StartLoop, Status, StopLoop, WatchExposure,
};
use crate::metrics::MetricsActor;

pub use handle::DbHandle;

/// Where `DbActor` runs.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Placement {
    /// A new arbiter (thread) of its own, stopped at shutdown. The default:
    /// its blocking SQLite calls then stall no other actor.
    #[default]
    OwnArbiter,
    /// The arbiter of the caller. Tests on a paused clock need this: each
    /// arbiter has its own runtime and clock, and a paused runtime jumps
    /// ahead while it waits on another thread.
    Current,
    /// An arbiter of the caller's choice.
    Arbiter(ArbiterHandle),
}

/// Builds a [`WalGuard`].
#[derive(Debug)]
#[must_use]
pub struct WalGuardBuilder {
    settings: Settings,
    placement: Placement,
    vfs: Option<String>,
}

impl WalGuardBuilder {
    /// Where `DbActor` runs (default: its own arbiter).
    pub fn db_placement(mut self, placement: Placement) -> Self {
        self.placement = placement;
        self
    }

    /// Opens the database through the SQLite VFS registered under `name`
    /// instead of the default one ([`Store::open_with_vfs`]): a VFS of your
    /// own, or `walguard::testing::PowerLossVfs` (feature `testing`) to
    /// simulate a power loss under the running actors.
    pub fn vfs(mut self, name: impl Into<String>) -> Self {
        self.vfs = Some(name.into());
        self
    }

    /// Opens the database and starts the four actors. Must run inside an
    /// actix `System`. Starts the checkpoint loop only when
    /// `checkpoint.enabled` is set.
    ///
    /// # Errors
    ///
    /// [`Error::Db`] when the settings are invalid or the database cannot be
    /// opened in WAL mode; [`Error::NoSystem`] outside a running `System`.
    pub fn start(self) -> Result<WalGuard> {
        let Self {
            settings,
            placement,
            vfs,
        } = self;
        settings.validate()?;
        if System::try_current().is_none() {
            return Err(Error::NoSystem);
        }
        let mut store = match &vfs {
            Some(vfs) => Store::open_with_vfs(&settings.database, vfs)?,
            None => Store::open(&settings.database)?,
        };
        // Every size-triggered checkpoint runs in DbActor and is reported,
        // none silently inside a COMMIT (0 leaves them to SQLite).
        store.set_size_threshold(settings.checkpoint.size_threshold_frames)?;

        let metrics = MetricsActor::new(settings.metrics.window).start();
        let reports = metrics.clone().recipient();
        let make_db = move |_: &mut actix::Context<DbActor>| DbActor::new(store, Some(reports));
        let (db, arbiter) = match placement {
            Placement::OwnArbiter => {
                let arbiter = Arbiter::new();
                let addr = DbActor::start_in_arbiter(&arbiter.handle(), make_db);
                (addr, Some(arbiter))
            }
            Placement::Current => (DbActor::create(make_db), None),
            Placement::Arbiter(handle) => (DbActor::start_in_arbiter(&handle, make_db), None),
        };

        let interval = settings.checkpoint.interval;
        let enabled = settings.checkpoint.enabled;
        let (db_for_ckpt, metrics_for_ckpt) = (db.clone(), metrics.clone());
        let checkpoint = Supervisor::start(move |_| {
            CheckpointActor::new(db_for_ckpt, metrics_for_ckpt, interval).enabled(enabled)
        });
        let exposure = ExposureWatch::new(
            db.clone(),
            &settings.database.path,
            interval,
            Some(metrics.clone().recipient()),
        )
        .start();

        Ok(WalGuard {
            db: DbHandle::new(db),
            checkpoint,
            metrics,
            exposure,
            arbiter,
            settings,
        })
    }
}

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
    checkpoint: Addr<CheckpointActor>,
    metrics: Addr<MetricsActor>,
    exposure: Addr<ExposureWatch>,
    arbiter: Option<Arbiter>,
    settings: Settings,
}

impl WalGuard {
    /// A builder, to choose where `DbActor` runs.
    pub fn builder(settings: Settings) -> WalGuardBuilder {
        WalGuardBuilder {
            settings,
            placement: Placement::default(),
            vfs: None,
        }
    }

    /// Starts with `DbActor` on its own arbiter.
    ///
    /// # Errors
    ///
    /// As [`WalGuardBuilder::start`].
    pub fn start(settings: Settings) -> Result<Self> {
        Self::builder(settings).start()
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

    /// The clean shutdown, in order:
    ///
    /// 1. stop the checkpoint loop;
    /// 2. let `DbActor` finish every write it already accepted (its mailbox
    ///    is FIFO and [`Shutdown`] queues behind them);
    /// 3. TRUNCATE checkpoint on the writer under `checkpoint.shutdown_timeout`
    ///    (busy timeout lowered to it, `sqlite3_interrupt` as the hard stop);
    ///    busy or failed is logged and shutdown goes on;
    /// 4. close the connection;
    /// 5. end the exposure watch;
    /// 6. emit the end-of-session event and return the report.
    ///
    /// # Errors
    ///
    /// [`Error::Mailbox`] only when `MetricsActor` is gone and no report can
    /// be made; a `DbActor` that is already gone is noted in the report.
    pub async fn shutdown(self) -> Result<SessionReport> {
        if let Err(e) = self.checkpoint.send(StopLoop).await {
            tracing::warn!(target: "walguard::system", error = %e, "checkpoint actor did not answer StopLoop; going on");
        }
        let deadline = self.settings.checkpoint.shutdown_timeout;
        let summary = match self.db.addr().send(Shutdown { deadline }).await {
            Ok(outcome) => outcome.summary,
            Err(e) => {
                tracing::warn!(target: "walguard::system", error = %e, "DbActor did not answer Shutdown; going on");
                let mut summary = DbSummary::default();
                summary.close_error = Some(format!("DbActor did not answer: {e}"));
                summary
            }
        };
        let durability = summary.durability;
        if let Err(e) = self.exposure.send(EndWatch { durability }).await {
            tracing::warn!(target: "walguard::system", error = %e, "exposure watch did not answer EndWatch; going on");
        }
        let report = self
            .metrics
            .send(Finish(summary))
            .await
            .map_err(Error::mailbox("MetricsActor"))?;
        if let Some(arbiter) = self.arbiter {
            arbiter.stop();
        }
        Ok(report)
    }
}
