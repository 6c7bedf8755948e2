//! [`WalGuardBuilder`]: opens the database (migrations, replication's
//! restore and identity, the replica hold) and starts the actors, wired.

use std::sync::Arc;

use actix::{Actor, Addr, AsyncContext, Supervisor, System};
use walguard::read::ReadPool;
use walguard::settings::AckMode;
use walguard::{EngineLock, Migrations, Settings, Store};

use super::{DbHandle, Placement, WalGuard};
use crate::checkpoint::CheckpointActor;
use crate::db::DbActor;
use crate::error::{Error, Result};
use crate::exposure::ExposureWatch;
use crate::metrics::MetricsActor;
use crate::replication::ReplicationActor;

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
    /// A builder with the defaults: `DbActor` on its own arbiter.
    pub(super) fn new(settings: Settings) -> Self {
        Self {
            settings,
            placement: Placement::default(),
            vfs: None,
            migrations: None,
            engine_lock: None,
        }
    }

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

    /// Opens the database, then its read connections
    /// ([`walguard::read::ReadPool`], `read.connections` of them), and
    /// starts the four actors. Must run inside an actix `System`. Starts the checkpoint loop only when
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
    /// ran ([`walguard::SessionReport::migrations`]).
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
        // The readers, once the writer has put the file in WAL mode.
        let reads = Arc::new(match vfs.as_deref() {
            Some(vfs) => ReadPool::open_with_vfs(&settings.database, &settings.read, vfs)?,
            None => ReadPool::open(&settings.database, &settings.read)?,
        });

        let metrics = MetricsActor::new(settings.metrics.window)
            .with_migrations(migrated)
            .with_reads(Arc::clone(&reads))
            .start();
        let reports = metrics.clone().recipient();
        // The exposure watch hears every checkpoint too (for the cause its
        // starvation warning names), so its address exists before DbActor.
        let watch_ctx = actix::Context::<ExposureWatch>::new();
        let watch_reports = watch_ctx.address().recipient();
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
        let hold = (replication_on && settings.replication.ack == AckMode::Replicated)
            .then_some(settings.replication.max_lag);
        let wal_cap = settings.replication.wal_cap_frames;
        let (db, arbiter) = DbActor::new(store, None)
            .with_reports(vec![reports, watch_reports])
            .with_engine_lock(engine_lock)
            .map_writer(|w| {
                let w = w.with_wal_cap(wal_cap);
                match hold {
                    Some(max_lag) => w.holding_for_replica(max_lag),
                    None => w,
                }
            })
            .start_at(placement);
        let db = db.with_reads(reads);
        let state = Arc::clone(db.state());

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

        let replication =
            prepared.map(|prepared| start_replication(&settings, prepared, &db, &metrics));
        Ok(WalGuard {
            db,
            state,
            checkpoint,
            metrics,
            exposure,
            replication,
            arbiter,
            settings,
        })
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

/// Starts the replication actor for a Litestream made ready, and gives
/// `DbActor` its WAL brake (`DbActor`'s "Beside Litestream").
fn start_replication(
    settings: &Settings,
    prepared: crate::replication::Prepared,
    db: &DbHandle,
    metrics: &Addr<MetricsActor>,
) -> Addr<ReplicationActor> {
    let replication = ReplicationActor::new(
        settings.replication.clone(),
        prepared,
        db.clone(),
        Some(metrics.clone().recipient()),
    )
    .start();
    db.addr().do_send(crate::messages::SetWalBrake {
        to: replication.clone().recipient(),
        frames: settings
            .checkpoint
            .size_threshold_frames
            .saturating_mul(walguard::writer::BRAKE_THRESHOLD_FACTOR),
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
