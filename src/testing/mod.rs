//! Power-loss simulation for tests: a VFS shim that knows what reached stable
//! storage (feature `testing`).
//!
//! ```
//! use rusqlite::OpenFlags;
//! use walguard::testing::PowerLossVfs;
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("app.db");
//! let vfs = PowerLossVfs::register()?;
//! {
//!     let conn = vfs.open(&path, OpenFlags::default())?;
//!     conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))?;
//!     conn.pragma_update(None, "synchronous", "FULL")?;
//!     conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")?;
//!     vfs.crash_now(); // the power goes out
//! } // the connection closes normally; its checkpoint just fails
//! vfs.restore_durable_images()?; // the machine boots again
//! let conn = vfs.open(&path, OpenFlags::default())?;
//! let rows: i64 = conn.query_row("SELECT count(*) FROM t", [], |row| row.get(0))?;
//! assert_eq!(rows, 1); // FULL synced the WAL at commit
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Overview
//!
//! A process kill loses nothing in WAL mode: the WAL is in the OS page cache.
//! A power loss or OS crash loses whatever the disk had not made durable, and
//! that is what `PRAGMA synchronous` is about. Testing it needs a model of
//! the disk, which [`PowerLossVfs`] provides:
//!
//! - It wraps SQLite's default VFS (found with `sqlite3_vfs_find(NULL)`) and
//!   registers the wrapper under a unique name. Every file method forwards to
//!   the real file, shared memory and memory mapping included, so several
//!   connections work together exactly as in production.
//! - For each main database, WAL and rollback journal file it keeps a
//!   **durable image** (the bytes as of its last successful `xSync`) and the
//!   writes, truncates and deletes made since then.
//! - [`PowerLossVfs::crash_now`] or [`PowerLossVfs::crash_at`] cut the power:
//!   from then on every write, sync, truncate and delete fails with an I/O
//!   error and touches nothing. The test then closes its connections
//!   normally, and [`PowerLossVfs::restore_durable_images`] replaces each file
//!   on disk by what survived. A stale `-shm` file may stay: the next opener
//!   rebuilds the WAL index from the WAL.
//! - [`RestoreMode::Torn`] is the harder model: a random prefix of the
//!   pending writes also survives, the write at the cut is torn on 512-byte
//!   sectors, and each later write survives or not at random.
//! - Real `fsync` is skipped by default, since the model decides what is
//!   durable ([`VfsOptions::real_sync`]).
//! - [`PowerLossVfs::inject`] injects faults: failed writes, a full disk,
//!   failed `fsync` with Linux semantics, failed checkpoint writes.
//!
//! # Crash points
//!
//! Every write, truncate, sync and delete of a modelled file counts as one
//! I/O operation ([`PowerLossVfs::io_ops`]). Run the workload once to count
//! them, then run it again on a fresh database with
//! [`PowerLossVfs::crash_at`] set to any operation number: the shim cuts the
//! power by itself when that operation starts. The shim also sees when a
//! connection holds the WAL checkpoint lock, so it reports whether a crash
//! landed inside a checkpoint ([`CrashReport::in_checkpoint`]) and which
//! operation numbers belonged to checkpoints
//! ([`PowerLossVfs::checkpoint_op_ranges`]), to aim crashes there.
//!
//! Phase 1 of the two-phase size checkpoint runs on a thread of its own,
//! beside the writer, so one count over both threads differs from one run
//! to the next. The shim also counts per [`Lane`] (phase 1's thread, told
//! by its name, or any other) and per [`Phase`] (a checkpoint on phase 1's
//! thread, or the foreground's first checkpoint after one):
//! [`PowerLossVfs::crash_at_on`] cuts at a lane's own operation `n`,
//! [`PowerLossVfs::crash_in_phase`] at operation `k` of the `n`th phase 1
//! or phase 2, whenever it comes, and [`CrashReport`] says which lane met
//! the cut and which phase held the checkpoint lock.
//! [`CrashPoint::draw_by_lane`] draws such cuts. How much phase 1 copies
//! still varies, so a cut drawn from one run may lie past the end of
//! another: the caller redraws it, and counts that.
//!
//! # Under the store and the actors
//!
//! [`Store::open_with_vfs`](crate::Store::open_with_vfs) opens the store
//! through the shim ([`PowerLossVfs::name`]), and so does
//! `WalGuardBuilder::vfs` in `walguard-actors`: a test can then cut the
//! power under the running actors, shut them down (their close-time
//! checkpoint just fails), restore, and check what its engine kept.
//! `actors/tests/crash_lab.rs` does exactly that.
//!
//! # Writing a crash test of your own
//!
//! The same pieces walguard's own crash tests use:
//!
//! - [`env_u64`] reads the first seed (and any size) from the environment,
//!   so a failure's seed replays it;
//! - [`CRASH_TABLE_SQL`] and [`crash_row`] write rows whose bodies depend on
//!   their id and on a generation number, so damage and rewrites show;
//! - [`check_survivors`] checks what a crash left: integrity, the rows
//!   exactly `1..=k`, each intact, each request whole. It returns
//!   [`Survivors`] to hold against what was acknowledged
//!   ([`Survivors::require_acknowledged`], [`Survivors::require_between`]),
//!   and tells a [`Violation`] of the system under test (with its
//!   [`ViolationKind`], for negative controls) from a failure of the harness
//!   ([`SurvivorError::Harness`]).
//!
//! # Rules
//!
//! - Close every connection opened through the shim before
//!   [`PowerLossVfs::restore_durable_images`]; it refuses otherwise
//!   ([`VfsError::FilesOpen`]).
//! - Only files opened through the shim are modelled. A file seen for the
//!   first time is taken as durable as it is on disk.
//! - Deletes are metadata, made durable by a directory sync or, as on a
//!   journaling file system (ext4, XFS, APFS), by the next successful sync of
//!   any modelled file. Temp files are not modelled.
//! - Checkpoint detection needs the normal locking mode (with
//!   `locking_mode=EXCLUSIVE` SQLite takes no WAL-index locks).
//! - Dropping a [`PowerLossVfs`] unregisters its name and frees its images.
//!   Connections still open keep working against the real files, unmodelled.
//!   The small VFS record itself (a few hundred bytes) is leaked on purpose:
//!   SQLite keeps raw pointers to it in every connection, so freeing it could
//!   never be proven safe.

mod crash_point;
mod error;
mod model;
mod seeds;
mod shim;
mod survivors;

use std::fmt;
use std::ops::RangeInclusive;
use std::path::Path;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

pub use self::crash_point::{CrashPoint, IN_CHECKPOINT_ONE_IN, IN_PHASE_ONE_IN};
pub use self::error::VfsError;
pub use self::seeds::env_u64;
use self::shim::{Registration, Shared};
pub use self::survivors::{
    AfterCheck, CRASH_TABLE_SQL, SurvivorError, Survivors, Violation, ViolationKind,
    check_survivors, crash_row, crash_row_body,
};
use crate::Error;

/// The kind of a modelled file, from the flags SQLite opens it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileKind {
    /// The main database file.
    MainDb,
    /// The write-ahead log (`-wal`).
    Wal,
    /// A rollback journal (`-journal`), used before the switch to WAL.
    Journal,
}

/// A fault to inject. Each fires on the next `count` matching operations,
/// then is spent; `u32::MAX` is "until [`PowerLossVfs::clear_faults`]". A
/// failing operation touches nothing, and still counts as an I/O operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Writes to `file` fail with `SQLITE_IOERR_WRITE`.
    WriteIoErr {
        /// Which file.
        file: FileKind,
        /// How many writes fail.
        count: u32,
    },
    /// Writes to `file` fail with `SQLITE_FULL` (the disk is full).
    DiskFull {
        /// Which file.
        file: FileKind,
        /// How many writes fail.
        count: u32,
    },
    /// Syncs of `file` fail with `SQLITE_IOERR_FSYNC`, with Linux semantics:
    /// the kernel marks the dirty pages clean, so the writes made since the
    /// last good sync never reach the disk (they are dropped from the model),
    /// although the live file still shows them until power is lost.
    SyncFails {
        /// Which file.
        file: FileKind,
        /// How many syncs fail.
        count: u32,
    },
    /// Writes to the main database made while a checkpoint runs fail with
    /// `SQLITE_IOERR_WRITE`.
    CheckpointWriteIoErr {
        /// How many writes fail.
        count: u32,
    },
    /// Opens of `file` fail with `SQLITE_CANTOPEN` (a connection that
    /// cannot be opened again, e.g. the store's reopen after a failed
    /// checkpoint fsync). Not counted as an I/O operation: no file is
    /// touched.
    OpenFails {
        /// Which file.
        file: FileKind,
        /// How many opens fail.
        count: u32,
    },
}

/// How much of the not-yet-synced data survives a power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RestoreMode {
    /// Exactly the durable images: nothing written since the last sync.
    #[default]
    Exact,
    /// The harder model: per file, a random prefix of the pending writes, the
    /// write at the cut torn on 512-byte sectors, and each later write kept
    /// or not at random. Reproducible from `seed`.
    Torn {
        /// Seed of the random choices.
        seed: u64,
    },
}

/// Which thread an I/O operation came from, as the shim tags it: phase 1
/// of the two-phase size checkpoint runs on a thread of its own (named
/// [`BACKFILL_THREAD_NAME`](crate::store::BACKFILL_THREAD_NAME)), every other
/// connection on the threads of its caller.
///
/// Phase 1 runs beside the writer, so the operations of the two
/// interleave differently from one run to the next and an operation
/// number counted over both ([`PowerLossVfs::crash_at`]) does not replay.
/// Counted per lane ([`PowerLossVfs::crash_at_on`]) it does, as far as the
/// lane's own work is the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Lane {
    /// Every thread but phase 1's: the writer, and the test's own
    /// connections.
    Foreground,
    /// Phase 1 of the two-phase size checkpoint.
    Backfill,
}

impl Lane {
    /// The lane of the calling thread.
    #[must_use]
    pub fn current() -> Self {
        if std::thread::current().name() == Some(crate::store::BACKFILL_THREAD_NAME) {
            Self::Backfill
        } else {
            Self::Foreground
        }
    }

    /// Index into per-lane arrays.
    pub(crate) const fn index(self) -> usize {
        match self {
            Self::Foreground => 0,
            Self::Backfill => 1,
        }
    }
}

/// A phase of the two-phase size checkpoint, as the shim tells them apart
/// from the checkpoint lock and the lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Phase 1: a checkpoint on phase 1's thread ([`Lane::Backfill`]).
    One,
    /// Phase 2: the foreground's first checkpoint after a phase 1 returned
    /// (phase 2 itself, or an interval, manual or shutdown checkpoint that
    /// waited for phase 1 and does phase 2's work).
    Two,
}

impl Phase {
    /// Index into per-phase arrays.
    pub(crate) const fn index(self) -> usize {
        match self {
            Self::One => 0,
            Self::Two => 1,
        }
    }
}

/// One checkpoint of a [`Phase`] that did I/O
/// ([`PowerLossVfs::phase_spans`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PhaseSpan {
    /// Its ordinal among the checkpoints of its phase that did I/O,
    /// 0-based (one that did none is skipped, so that a phase 2 left with
    /// nothing to copy in one run does not shift the others).
    pub nth: u64,
    /// The I/O operations it made.
    pub ops: u64,
}

/// What the operation number of a cut counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CutCount {
    /// Every operation, of both lanes ([`PowerLossVfs::crash_at`]).
    All,
    /// The operations of one lane ([`PowerLossVfs::crash_at_on`]).
    Lane(Lane),
    /// The operations of the `nth` (0-based) checkpoint of `phase` that
    /// does I/O, whenever it comes ([`PowerLossVfs::crash_in_phase`]).
    InPhase {
        /// Which phase.
        phase: Phase,
        /// Which of its checkpoints.
        nth: u64,
    },
}

/// Where the power was cut.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CrashReport {
    /// How many I/O operations took effect before the crash.
    pub ops_before_crash: u64,
    /// Whether a connection of this shim held the checkpoint lock.
    pub in_checkpoint: bool,
    /// The lane whose operation met the cut (`None`: [`PowerLossVfs::crash_now`]).
    pub lane: Option<Lane>,
    /// The lane whose connection held the checkpoint lock, if one did.
    pub checkpoint_lane: Option<Lane>,
    /// The phase of the checkpoint in progress, if it was one.
    pub phase: Option<Phase>,
    /// Whether phase 1's connection had a modelled file open (phase 1 was
    /// in flight, holding the checkpoint lock or not).
    pub backfill_open: bool,
    lane_ops_before_crash: [u64; 2],
}

impl CrashReport {
    /// How many operations of `lane` took effect before the crash.
    #[must_use]
    pub fn ops_before_crash_on(&self, lane: Lane) -> u64 {
        self.lane_ops_before_crash[lane.index()]
    }
}

/// What [`PowerLossVfs::restore_durable_images`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestoreReport {
    /// Files written back (or removed).
    pub files: usize,
    /// Pending operations that survived (only in [`RestoreMode::Torn`]).
    pub pending_kept: usize,
    /// Pending operations lost.
    pub pending_lost: usize,
    /// Writes that survived only in part.
    pub torn_writes: usize,
}

/// Counters of one shim.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VfsStats {
    /// I/O operations (writes, truncates, syncs, deletes) that took effect or
    /// failed by injection, not counting those refused after a crash.
    pub io_ops: u64,
    /// Checkpoints seen (the checkpoint lock taken).
    pub checkpoints: u64,
    /// Successful syncs (`xSync`) of modelled files: the `fsync` calls a
    /// real disk would have seen.
    pub syncs: u64,
    /// Injected faults that fired.
    pub faults_fired: u64,
    /// Files modelled.
    pub tracked_files: usize,
    /// Modelled file handles open now.
    pub open_files: usize,
    /// Operations not yet made durable by a sync.
    pub pending_ops: usize,
}

/// Settings of a [`PowerLossVfs`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VfsOptions {
    real_sync: bool,
}

impl VfsOptions {
    /// Also call the real `fsync` on each sync (default: off, since the model
    /// alone decides durability and real syncs only slow tests down). When on,
    /// a real `fsync` failure is treated like an injected one.
    #[must_use]
    pub fn real_sync(mut self, on: bool) -> Self {
        self.real_sync = on;
        self
    }
}

/// A VFS shim that records what reached stable storage and can simulate a
/// power loss. See the [module docs](self) for the model and its rules.
pub struct PowerLossVfs {
    shared: &'static Shared,
    registration: Registration,
}

impl fmt::Debug for PowerLossVfs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PowerLossVfs")
            .field("name", &self.name())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl PowerLossVfs {
    /// Registers a new shim over SQLite's default VFS, with default options.
    ///
    /// # Errors
    /// [`VfsError::NoDefault`] or [`VfsError::Register`] if SQLite refuses.
    pub fn register() -> Result<Self, Error> {
        Self::register_with(VfsOptions::default())
    }

    /// Registers a new shim with `options`.
    ///
    /// # Errors
    /// [`VfsError::NoDefault`] or [`VfsError::Register`] if SQLite refuses.
    pub fn register_with(options: VfsOptions) -> Result<Self, Error> {
        let (shared, registration) = shim::register(options)?;
        Ok(Self {
            shared,
            registration,
        })
    }

    /// The unique name the shim is registered under (for `vfs=` URIs or
    /// [`Connection::open_with_flags_and_vfs`]).
    #[must_use]
    pub fn name(&self) -> &str {
        // The name is built from ASCII in `shim::register`.
        self.shared.name().to_str().unwrap_or_default()
    }

    /// Opens a connection through the shim.
    ///
    /// # Errors
    /// Whatever [`Connection::open_with_flags_and_vfs`] returns.
    pub fn open<P: AsRef<Path>>(&self, path: P, flags: OpenFlags) -> rusqlite::Result<Connection> {
        Connection::open_with_flags_and_vfs(path, flags, self.name())
    }

    /// How many I/O operations (writes, truncates, syncs, deletes of modelled
    /// files) have happened so far. Operation numbers start at 1.
    #[must_use]
    pub fn io_ops(&self) -> u64 {
        self.shared.lock().io_ops()
    }

    /// Cuts the power when I/O operation number `op` starts: operations
    /// `1..op` take effect, operation `op` and all later ones fail. An `op`
    /// already past cuts the power at the next operation.
    ///
    /// ```
    /// use rusqlite::{Connection, OpenFlags};
    /// use walguard::testing::PowerLossVfs;
    ///
    /// fn workload(conn: &Connection) -> rusqlite::Result<()> {
    ///     conn.execute_batch("CREATE TABLE IF NOT EXISTS t(x)")?;
    ///     for i in 0..10 {
    ///         conn.execute("INSERT INTO t VALUES (?1)", [i])?;
    ///     }
    ///     Ok(())
    /// }
    ///
    /// let dir = tempfile::tempdir()?;
    /// // Dry run: count the I/O operations.
    /// let dry = PowerLossVfs::register()?;
    /// workload(&dry.open(dir.path().join("dry.db"), OpenFlags::default())?)?;
    /// let total = dry.io_ops();
    ///
    /// // Real run: cut the power halfway.
    /// let vfs = PowerLossVfs::register()?;
    /// vfs.crash_at(total / 2);
    /// let path = dir.path().join("real.db");
    /// let conn = vfs.open(&path, OpenFlags::default())?;
    /// assert!(workload(&conn).is_err());
    /// let report = vfs.crash_report().ok_or("no crash")?;
    /// assert_eq!(report.ops_before_crash, total / 2 - 1);
    /// drop(conn);
    /// vfs.restore_durable_images()?;
    ///
    /// let check: String = Connection::open(&path)?
    ///     .query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
    /// assert_eq!(check, "ok");
    /// Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn crash_at(&self, op: u64) {
        self.shared.lock().crash_at(op);
    }

    /// How many I/O operations threads of `lane` have made so far.
    #[must_use]
    pub fn io_ops_on(&self, lane: Lane) -> u64 {
        self.shared.lock().lane_io_ops(lane)
    }

    /// Cuts the power when `lane`'s I/O operation number `op` starts,
    /// whatever the other lane did meanwhile: `lane`'s operations `1..op`
    /// take effect, and from its operation `op` on every operation of
    /// either lane fails. Only an operation of `lane` triggers the cut; if
    /// `lane` never makes `op` operations, the power stays on.
    pub fn crash_at_on(&self, lane: Lane, op: u64) {
        self.shared
            .lock()
            .crash_at_counting(CutCount::Lane(lane), op);
    }

    /// Cuts the power when the `nth` (0-based) checkpoint of `phase` that
    /// does I/O ([`PhaseSpan::nth`]) starts its operation number `op`
    /// (1-based), whenever that checkpoint comes
    /// and however many operations either lane made before it. If that
    /// checkpoint never comes, or makes fewer operations, the power stays
    /// on.
    pub fn crash_in_phase(&self, phase: Phase, nth: u64, op: u64) {
        self.shared
            .lock()
            .crash_at_counting(CutCount::InPhase { phase, nth }, op);
    }

    /// Arms the cut `point` ([`CrashPoint::count`] says how).
    pub fn arm(&self, point: &CrashPoint) {
        self.shared.lock().crash_at_counting(point.count, point.op);
    }

    /// Cuts the power now.
    pub fn crash_now(&self) {
        self.shared.lock().crash_now();
    }

    /// Where the power was cut, if it was (until the next restore).
    #[must_use]
    pub fn crash_report(&self) -> Option<CrashReport> {
        self.shared.lock().crash()
    }

    /// Whether the power is off.
    #[must_use]
    pub fn is_crashed(&self) -> bool {
        self.shared.lock().crash().is_some()
    }

    /// The I/O operation numbers that ran inside each checkpoint so far (the
    /// checkpoint lock held), oldest first; checkpoints that did no I/O are
    /// left out. A dry run's ranges tell where to aim [`Self::crash_at`].
    #[must_use]
    pub fn checkpoint_op_ranges(&self) -> Vec<RangeInclusive<u64>> {
        self.shared.lock().checkpoint_op_ranges()
    }

    /// Like [`Self::checkpoint_op_ranges`], for the checkpoints that
    /// connections of `lane` ran, numbered in `lane`'s own operations
    /// ([`Self::io_ops_on`]): where to aim [`Self::crash_at_on`].
    #[must_use]
    pub fn checkpoint_op_ranges_on(&self, lane: Lane) -> Vec<RangeInclusive<u64>> {
        self.shared.lock().lane_checkpoint_op_ranges(lane)
    }

    /// The checkpoints of `phase` so far that did I/O, oldest first: where
    /// to aim [`Self::crash_in_phase`].
    #[must_use]
    pub fn phase_spans(&self, phase: Phase) -> Vec<PhaseSpan> {
        self.shared.lock().phase_spans(phase)
    }

    /// Power comes back: replaces every modelled file on disk by its durable
    /// image ([`RestoreMode::Exact`]), then turns the power back on so the
    /// same shim can open the files again.
    ///
    /// # Errors
    /// [`VfsError::FilesOpen`] if a connection is still open;
    /// [`VfsError::Restore`] if a file cannot be written.
    pub fn restore_durable_images(&self) -> Result<RestoreReport, Error> {
        self.restore_durable_images_with(RestoreMode::Exact)
    }

    /// Like [`Self::restore_durable_images`], with a choice of model.
    ///
    /// # Errors
    /// [`VfsError::FilesOpen`] if a connection is still open;
    /// [`VfsError::Restore`] if a file cannot be written.
    pub fn restore_durable_images_with(&self, mode: RestoreMode) -> Result<RestoreReport, Error> {
        self.shared.lock().restore(mode)
    }

    /// Arms a fault. Several faults may be armed at once; the first armed one
    /// that matches an operation fires.
    ///
    /// ```
    /// use rusqlite::OpenFlags;
    /// use walguard::testing::{Fault, FileKind, PowerLossVfs};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let vfs = PowerLossVfs::register()?;
    /// let conn = vfs.open(dir.path().join("app.db"), OpenFlags::default())?;
    /// conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))?;
    /// conn.execute_batch("CREATE TABLE t(x)")?;
    ///
    /// vfs.inject(Fault::DiskFull { file: FileKind::Wal, count: 1 });
    /// assert!(conn.execute("INSERT INTO t VALUES (1)", []).is_err()); // rolled back
    /// conn.execute("INSERT INTO t VALUES (2)", [])?; // the connection still works
    /// let rows: i64 = conn.query_row("SELECT count(*) FROM t", [], |row| row.get(0))?;
    /// assert_eq!(rows, 1);
    /// Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().inject(fault);
    }

    /// Runs `action` once, right after the next successful open of a
    /// `kind` file from a thread of `lane`, before SQLite reads it: to
    /// change the world between an open and what its caller does next
    /// (e.g. replace the database file under a connection phase 1 just
    /// opened). A later call replaces an action not yet run.
    pub fn after_next_open(
        &self,
        lane: Lane,
        kind: FileKind,
        action: impl FnOnce() + Send + 'static,
    ) {
        self.shared.set_after_open(shim::AfterOpen {
            lane,
            kind,
            action: Box::new(action),
        });
    }

    /// Disarms all faults.
    pub fn clear_faults(&self) {
        self.shared.lock().clear_faults();
    }

    /// The shim's counters.
    #[must_use]
    pub fn stats(&self) -> VfsStats {
        self.shared.lock().stats()
    }
}

impl Drop for PowerLossVfs {
    fn drop(&mut self) {
        self.registration.unregister();
        self.shared.lock().detach();
    }
}

/// Sets `SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE` on `conn`, so closing it never
/// checkpoints (nor deletes the WAL).
///
/// This is the tested answer to a failed checkpoint `fsync` on Linux, where
/// the kernel drops the dirty pages: after a checkpoint I/O error, close
/// every connection with this set and reopen. [`Store`](crate::Store) does it
/// by itself for its own connection (see "Failed fsync" in the
/// [checkpoint policy](crate::checkpoint)); this helper is for tests that
/// drive raw connections. The WAL index is rebuilt, and
/// the next checkpoint copies every frame again. A normal close would
/// checkpoint from the stale backfill count and delete the WAL, losing the
/// frames whose copy never reached the disk.
///
/// # Errors
/// Whatever `sqlite3_db_config` returns.
pub fn disable_checkpoint_on_close(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shim_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<PowerLossVfs>();
    }

    #[test]
    fn each_registration_has_its_own_name() -> Result<(), Error> {
        let a = PowerLossVfs::register()?;
        let b = PowerLossVfs::register()?;
        assert_ne!(a.name(), b.name());
        assert!(a.name().starts_with("walguard-power-loss-"));
        Ok(())
    }
}
