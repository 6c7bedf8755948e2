//! The system: wires the actors, and stops them in order.
//!
//! - `system/mod.rs`: [`WalGuard`], its builder and [`Placement`];
//! - `system/handle.rs`: [`DbHandle`], the typed client of `DbActor`.

mod handle;

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use actix::{Actor, Addr, Arbiter, ArbiterHandle, AsyncContext, Supervisor, System};
use walguard::stats::DbSummary;
use walguard::{EngineLock, Migrations, SessionReport, Settings, Store};

use crate::checkpoint::CheckpointActor;
use crate::db::DbActor;
use crate::error::{Error, Result};
use crate::exposure::ExposureWatch;
use crate::messages::{
    EndWatch, Finish, GetReport, GetStatus, Shutdown, StartLoop, Status, StopLoop, WatchExposure,
};
use crate::messages::{FinalSync, GetReplicated};
use crate::metrics::MetricsActor;
use crate::replication::ReplicationActor;
use crate::writer_state::WriterState;
use walguard::replication::Replicated;
use walguard::settings::AckMode;

pub use handle::DbHandle;

/// How long the shutdown waits, past `database.busy_timeout`, for the
/// request in flight before it interrupts it and answers the queued ones
/// unrun: 250 ms.
pub const SHUTDOWN_DRAIN_GRACE: Duration = Duration::from_millis(250);

/// The longest the shutdown's final sync to the replica waits: 500 ms.
pub const FINAL_SYNC_TIMEOUT: Duration = Duration::from_millis(500);

/// The longest stopping the Litestream walguard started takes: 250 ms
/// (it is killed: the final sync has run, and Litestream resumes after a
/// kill).
pub const LITESTREAM_STOP_TIMEOUT: Duration = Duration::from_millis(250);

/// What replication adds to the shutdown budget: the final sync and the
/// stop of Litestream, 750 ms. With the defaults the whole shutdown then
/// takes at most 4.75 s, inside the 5 s of the `walguard` command.
pub const REPLICATION_SHUTDOWN_SLICE: Duration =
    FINAL_SYNC_TIMEOUT.saturating_add(LITESTREAM_STOP_TIMEOUT);

/// Time for the close and the last replies after the TRUNCATE: 250 ms.
pub const SHUTDOWN_CLOSE_GRACE: Duration = Duration::from_millis(250);

/// How often a shutdown past its drain deadline interrupts the connection
/// again (a closure may start statement after statement): 50 ms.
const SHUTDOWN_INTERRUPT_PERIOD: Duration = Duration::from_millis(50);

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
    migrations: Option<Migrations>,
    engine_lock: Option<EngineLock>,
}

impl WalGuardBuilder {
    /// Starts under `lock`, an engine lock the caller already holds, instead
    /// of taking it at [`WalGuardBuilder::start`]: for a program that must
    /// prepare the file (create it, restore it, migrate it by hand) under
    /// the lock, so that a second engine started at the same moment hears
    /// [`walguard::Error::AlreadyServed`] and never a half-made file. The
    /// `walguard run` command does this.
    ///
    /// [`WalGuardBuilder::start`] fails with
    /// [`Error::EngineLockForAnotherDatabase`] when `lock` is for another
    /// path than `database.path`.
    pub fn engine_lock(mut self, lock: EngineLock) -> Self {
        self.engine_lock = Some(lock);
        self
    }

    /// Brings the schema to the latest of `migrations` at start, before the
    /// writer serves anything (see [`WalGuardBuilder::start`] and
    /// [`walguard::migrations`]).
    pub fn migrations(mut self, migrations: Migrations) -> Self {
        self.migrations = Some(migrations);
        self
    }

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
    /// With [`WalGuardBuilder::migrations`], under the engine lock and
    /// before any actor starts: a database from the future is refused
    /// before the write connection opens it (the file stays byte for byte
    /// as it was), then every pending migration is applied in one
    /// transaction, fsynced, and a TRUNCATE checkpoint follows
    /// ([`Store::migrate`]). With replication on, the TRUNCATE is left out
    /// ([`Store::migrate_leaving_wal`]): Litestream, started next, must read
    /// the migrations' frames from the WAL. The session report says what
    /// ran ([`SessionReport::migrations`]).
    ///
    /// # Errors
    ///
    /// [`Error::Db`] when the settings are invalid or the database cannot be
    /// opened in WAL mode, and with migrations:
    /// [`walguard::Error::SchemaFromTheFuture`],
    /// [`walguard::Error::MigrationFailed`],
    /// [`walguard::Error::MigrationSplitsTransaction`] (nothing applied,
    /// the engine lock released); [`Error::NoSystem`] outside a running
    /// `System`; [`Error::EngineLockForAnotherDatabase`] when the lock given
    /// to [`WalGuardBuilder::engine_lock`] is for another path.
    pub fn start(self) -> Result<WalGuard> {
        let Self {
            settings,
            placement,
            vfs,
            migrations,
            engine_lock,
        } = self;
        settings.validate()?;
        if System::try_current().is_none() {
            return Err(Error::NoSystem);
        }
        // One engine per file: the lock comes before the connection.
        let engine_lock = engine_lock_for(&settings, engine_lock)?;
        let replication_on = settings.replication.is_on();
        if replication_on {
            replication_before_open(&settings)?;
        }
        let (mut store, migrated) = open_store(&settings, vfs.as_deref(), migrations.as_ref())?;
        // Every size-triggered checkpoint runs in DbActor and is reported,
        // none silently inside a COMMIT (0 leaves them to SQLite).
        store.set_size_threshold(settings.checkpoint.size_threshold_frames)?;
        store.set_size_checkpoint(settings.checkpoint.size_checkpoint);
        if replication_on {
            replication_after_open(&settings, &mut store)?;
        }

        let metrics = MetricsActor::new(settings.metrics.window)
            .with_migrations(migrated)
            .start();
        let reports = metrics.clone().recipient();
        // The exposure watch hears every checkpoint too (for the cause its
        // starvation warning names), so its address exists before DbActor.
        let watch_ctx = actix::Context::<ExposureWatch>::new();
        let watch_reports = watch_ctx.address().recipient();
        let state = Arc::new(WriterState::default());
        let db_state = Arc::clone(&state);
        // Litestream next: it opens the database walguard just made sure
        // of, and its first sync proves the replica settings, before any
        // write.
        let prepared = if replication_on {
            let prepared = ReplicationActor::prepare(
                &settings.replication,
                &settings.database.path,
                walguard::replication::CheckpointHandover::from_settings(&settings.checkpoint),
            )?;
            // This start's identity token, once Litestream runs (a refused
            // start stamps nothing); its next sync carries it.
            let stamped = crate::replication::stamp_identity(&settings)?;
            // Every commit from here on counts itself under it (issue 20).
            store.count_commits_in_identity(stamped.seq);
            Some(prepared)
        } else {
            None
        };
        let size_threshold = settings.checkpoint.size_threshold_frames;
        let hold = (replication_on && settings.replication.ack == AckMode::Replicated)
            .then_some(settings.replication.max_lag);
        let (lane, served) = crate::lane::lane(settings.database.mailbox_capacity);
        // A thread that answers group commits only where the writer has a
        // thread of its own (see crate::replier).
        let replier = matches!(placement, Placement::OwnArbiter);
        let make_db = move |_: &mut actix::Context<DbActor>| {
            let db = DbActor::new(store, Some(reports)).with_lane(served);
            let db = if replier { db.with_replier() } else { db };
            let db = db
                .with_reports_to(watch_reports)
                .with_engine_lock(engine_lock)
                .with_state(db_state)
                .with_size_threshold(size_threshold);
            match hold {
                Some(max_lag) => db.holding_for_replica(max_lag),
                None => db,
            }
        };
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
        let exposure = watch_ctx.run(ExposureWatch::new(
            db.clone(),
            &settings.database.path,
            interval,
            Some(metrics.clone().recipient()),
        ));

        let replication = prepared
            .map(|prepared| start_replication(&settings, prepared, &db, &checkpoint, &metrics));
        Ok(WalGuard {
            replication,
            db: DbHandle::with_lane(db.clone(), Arc::clone(&state), lane.wake(&db)),
            state,
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
        WalGuardBuilder {
            settings,
            placement: Placement::default(),
            vfs: None,
            migrations: None,
            engine_lock: None,
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

    /// The longest [`WalGuard::shutdown`] takes, whatever holds the
    /// writer: `database.busy_timeout` plus [`SHUTDOWN_DRAIN_GRACE`] for the
    /// request in flight, then the TRUNCATE's `checkpoint.shutdown_timeout`
    /// plus its interrupt grace (a quarter of it, at least 250 ms), plus
    /// [`SHUTDOWN_CLOSE_GRACE`]. With the defaults (1 s, 2 s): 4 s, inside
    /// the 5 s the `walguard` command and Windows' console close give.
    #[must_use]
    pub fn shutdown_budget(&self) -> Duration {
        let (drain, total) = budget(&self.settings);
        debug_assert!(drain <= total);
        total
    }

    /// The clean shutdown, in order, within [`WalGuard::shutdown_budget`]:
    ///
    /// 1. stop the checkpoint loop;
    /// 2. let `DbActor` finish every write it already accepted (its mailbox
    ///    is FIFO and [`Shutdown`] queues behind them). Should the writer
    ///    still be busy `database.busy_timeout` + [`SHUTDOWN_DRAIN_GRACE`]
    ///    after the start (a long query, a closure, a write waiting on
    ///    another process's lock), the running statement is interrupted
    ///    (`sqlite3_interrupt`; its sender gets the SQLite error
    ///    `interrupted`) and every request still waiting is answered
    ///    [`walguard::Error::ShutdownDeadline`] without being run;
    /// 3. TRUNCATE checkpoint on the writer under `checkpoint.shutdown_timeout`
    ///    (busy timeout lowered to it, `sqlite3_interrupt` as the hard stop);
    ///    busy or failed is logged and shutdown goes on;
    /// 4. close the connection and release the engine lock;
    /// 5. end the exposure watch;
    /// 6. emit the end-of-session event and return the report.
    ///
    /// A closure that blocks outside SQLite cannot be interrupted: at the
    /// end of the budget the shutdown stops waiting and says so in the
    /// report (`close_error`), with the write counts so far; the writer
    /// closes the database when the closure returns. Requests after the
    /// shutdown get [`Error::ShutDown`].
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
        let (drain, total) = budget(&self.settings);
        let started = std::time::Instant::now();
        // Replication: drain, final sync, stop Litestream, all before the
        // writer's own shutdown (which then checkpoints and closes).
        let replicated = match &self.replication {
            Some(replication) => {
                let step = replication.send(FinalSync {
                    timeout: FINAL_SYNC_TIMEOUT,
                    stop_timeout: LITESTREAM_STOP_TIMEOUT,
                });
                match tokio::time::timeout(drain + REPLICATION_SHUTDOWN_SLICE, step).await {
                    Ok(Ok(replicated)) => Some(replicated),
                    Ok(Err(e)) => {
                        tracing::warn!(target: "walguard::system", error = %e, "replication actor did not answer FinalSync; going on");
                        None
                    }
                    Err(_) => {
                        tracing::warn!(target: "walguard::system", "the final sync did not finish in time; going on");
                        None
                    }
                }
            }
            None => None,
        };
        let spent = started.elapsed().saturating_sub(REPLICATION_SHUTDOWN_SLICE);
        let (drain, total) = (drain.saturating_sub(spent), total.saturating_sub(spent));
        let (done, gave_up) = watchdog(Arc::clone(&self.state), drain, total);
        let answer = tokio::select! {
            biased;
            answer = self.db.addr().send(Shutdown { deadline }) => Some(answer),
            Ok(()) = gave_up => None,
        };
        let _ = done.send(());
        let summary = match answer {
            Some(Ok(outcome)) => outcome.summary,
            Some(Err(e)) => {
                tracing::warn!(target: "walguard::system", error = %e, "DbActor did not answer Shutdown; going on");
                self.unanswered_summary(format!("DbActor did not answer: {e}"))
            }
            None => {
                tracing::error!(
                    target: "walguard::system",
                    budget_ms = total.as_millis() as u64,
                    "the writer did not stop within the shutdown budget; giving up on it"
                );
                self.unanswered_summary(format!(
                    "the writer did not stop within the shutdown budget of {}: a request still holds it (a closure blocked outside SQLite?); the database closes when it returns",
                    walguard::settings::format_duration(total)
                ))
            }
        };
        self.state.set_shut_down();
        let durability = summary.durability;
        if let Err(e) = self.exposure.send(EndWatch { durability }).await {
            tracing::warn!(target: "walguard::system", error = %e, "exposure watch did not answer EndWatch; going on");
        }
        let mut report = self
            .metrics
            .send(Finish(summary))
            .await
            .map_err(Error::mailbox("MetricsActor"))?;
        report.replication = replicated.or(report.replication);
        if let Some(arbiter) = self.arbiter {
            arbiter.stop();
        }
        Ok(report)
    }

    /// The summary when `DbActor` could not answer: the counts it shares.
    fn unanswered_summary(&self, close_error: String) -> DbSummary {
        let mut summary = DbSummary::default();
        summary.writes_acknowledged = self.state.writes_acknowledged();
        summary.writes_failed = self.state.writes_failed();
        summary.close_error = Some(close_error);
        summary
    }
}

/// Opens the write connection (through `vfs` when given) and, with
/// `migrations`, brings the schema to their latest version: a database from
/// the future is refused before the connection could change a byte of it;
/// with replication on the TRUNCATE is left out (see
/// [`WalGuardBuilder::start`]).
fn open_store(
    settings: &Settings,
    vfs: Option<&str>,
    migrations: Option<&Migrations>,
) -> Result<(Store, Option<walguard::MigrationReport>)> {
    if let Some(migrations) = migrations {
        migrations.refuse_future(&settings.database, vfs)?;
    }
    let mut store = match vfs {
        Some(vfs) => Store::open_with_vfs(&settings.database, vfs)?,
        None => Store::open(&settings.database)?,
    };
    let migrated = match migrations {
        Some(migrations) if settings.replication.is_on() => {
            Some(store.migrate_leaving_wal(migrations)?)
        }
        Some(migrations) => Some(store.migrate(migrations)?),
        None => None,
    };
    Ok((store, migrated))
}

/// The shutdown's drain deadline and whole budget, from the settings (see
/// [`WalGuard::shutdown_budget`]).
fn budget(settings: &Settings) -> (Duration, Duration) {
    let drain = settings.database.busy_timeout + SHUTDOWN_DRAIN_GRACE;
    let truncate = settings.checkpoint.shutdown_timeout;
    let truncate = truncate + (truncate / 4).max(walguard::checkpoint::MIN_DEADLINE_GRACE);
    let replication = if settings.replication.is_on() {
        REPLICATION_SHUTDOWN_SLICE
    } else {
        Duration::ZERO
    };
    (drain, drain + replication + truncate + SHUTDOWN_CLOSE_GRACE)
}

/// A thread on the wall clock (not tokio's, which a test may pause): past
/// `drain` it closes the writer's gate and interrupts its connection, again
/// every [`SHUTDOWN_INTERRUPT_PERIOD`]; past `total` it gives up, which the
/// returned receiver reports. Sending on the returned sender ends it.
fn watchdog(
    state: Arc<WriterState>,
    drain: Duration,
    total: Duration,
) -> (mpsc::Sender<()>, tokio::sync::oneshot::Receiver<()>) {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let (gave_up_tx, gave_up_rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("walguard-shutdown-watchdog".to_owned())
        .spawn(move || {
            if done_rx.recv_timeout(drain) != Err(RecvTimeoutError::Timeout) {
                return;
            }
            tracing::warn!(
                target: "walguard::system",
                drain_ms = drain.as_millis() as u64,
                "the writer is still busy at the shutdown's drain deadline; interrupting it and refusing what waits"
            );
            let start = std::time::Instant::now();
            while start.elapsed() < total.saturating_sub(drain) {
                state.pass_deadline();
                if done_rx.recv_timeout(SHUTDOWN_INTERRUPT_PERIOD) != Err(RecvTimeoutError::Timeout) {
                    return;
                }
            }
            let _ = gave_up_tx.send(());
        });
    if let Err(e) = spawned {
        tracing::warn!(target: "walguard::system", error = %e, "cannot start the shutdown watchdog; the shutdown has no deadline");
    }
    (done_tx, gave_up_rx)
}

/// Starts the replication actor for a Litestream made ready, and gives
/// `DbActor` its WAL brake (`DbActor`'s "Beside Litestream").
fn start_replication(
    settings: &Settings,
    prepared: crate::replication::Prepared,
    db: &Addr<DbActor>,
    checkpoint: &Addr<CheckpointActor>,
    metrics: &Addr<MetricsActor>,
) -> Addr<ReplicationActor> {
    let replication = ReplicationActor::new(
        settings.replication.clone(),
        prepared,
        db.clone(),
        Some(checkpoint.clone()),
        Some(metrics.clone().recipient()),
    )
    .start();
    db.do_send(crate::messages::SetWalBrake {
        to: replication.clone().recipient(),
        frames: settings
            .checkpoint
            .size_threshold_frames
            .saturating_mul(crate::db::BRAKE_THRESHOLD_FACTOR),
    });
    replication
}

/// With replication on, before the store opens: the restore on start
/// (when asked), then the replica's identity, checked before anything is
/// written or replicated.
fn replication_before_open(settings: &Settings) -> Result<()> {
    if settings.replication.restore_on_start {
        crate::replication::restore_if_missing(settings)?;
    }
    crate::replication::check_identity(settings)?;
    Ok(())
}

/// With replication on, once the store is open: the replica hold (no
/// checkpoint of walguard's takes frames the replica lacks out of the
/// WAL, `walguard::Store::hold_for_replica`).
fn replication_after_open(_settings: &Settings, store: &mut Store) -> Result<()> {
    if !replica_hold_disabled_for_tests() {
        store.hold_for_replica()?;
    }
    Ok(())
}

/// The engine lock of `database.path`: `given` when it is for that path,
/// else taken now.
fn engine_lock_for(settings: &Settings, given: Option<EngineLock>) -> Result<EngineLock> {
    match given {
        Some(lock) if lock.database() == settings.database.path => Ok(lock),
        Some(lock) => Err(Error::EngineLockForAnotherDatabase {
            lock: lock.database().to_owned(),
            database: settings.database.path.clone(),
        }),
        None => Ok(EngineLock::acquire(&settings.database.path)?),
    }
}

/// The negative control of the replication tests: `WALGUARD_TEST_NO_REPLICA_HOLD=1`
/// turns the replica hold off, so a test can show the hole it prevents.
/// Only in builds with the `testing` feature.
fn replica_hold_disabled_for_tests() -> bool {
    #[cfg(feature = "testing")]
    return std::env::var_os("WALGUARD_TEST_NO_REPLICA_HOLD").is_some_and(|v| v == "1");
    #[cfg(not(feature = "testing"))]
    false
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{SHUTDOWN_CLOSE_GRACE, SHUTDOWN_DRAIN_GRACE, budget};

    /// The drain deadline is `database.busy_timeout` + 250 ms, and the
    /// budget adds the TRUNCATE's deadline with its grace and the close's:
    /// exact values, where the process tests of the shutdown can only bound
    /// the wall-clock time from below (an upper bound is one a loaded
    /// machine crosses).
    #[test]
    fn the_drain_deadline_is_the_busy_timeout_plus_250_ms() {
        let mut settings = walguard::Settings::for_database("unused.db");
        settings.database.busy_timeout = Duration::from_millis(300);
        settings.checkpoint.shutdown_timeout = Duration::from_secs(1);
        let (drain, total) = budget(&settings);
        assert_eq!(SHUTDOWN_DRAIN_GRACE, Duration::from_millis(250));
        assert_eq!(drain, Duration::from_millis(550));
        assert_eq!(
            total,
            drain + Duration::from_millis(1_250) + SHUTDOWN_CLOSE_GRACE
        );
    }
}
