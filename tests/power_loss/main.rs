//! POWER LOSS / OS CRASH tests, through the `testing` feature's VFS shim.
//!
//! These model a power cut or kernel crash, not a process kill: the shim
//! keeps, for the database and its WAL, the bytes that reached stable storage
//! (as of each file's last successful fsync), cuts the power at a chosen I/O
//! operation, and puts back only what was durable (optionally with a torn,
//! reordered tail of unsynced writes). A process kill loses nothing in WAL
//! mode and is tested elsewhere.
//!
//! Two kinds of test live here. Those named `store_*` run walguard's
//! [`Store`] through the shim and hold what survived against the store's own
//! "durable through" point: they are the evidence for walguard's claims.
//! The others drive a plain SQLite connection and show the SQLite facts
//! walguard is built on (what a checkpoint syncs, what a naive retry after a
//! failed fsync loses), and the shim's own rules.
//!
//! Every test ends with `PRAGMA integrity_check` (through
//! [`walguard::testing::check_survivors`]) and an exact count, or an exactly
//! bounded range, of surviving transactions. Random tests are seeded: set
//! `WALGUARD_SEED` to replay one; a failure prints its seed.
#![cfg(feature = "testing")]

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::{Connection, OpenFlags, params_from_iter};
use walguard::settings::DatabaseSettings;
use walguard::settings::Synchronous;
use walguard::testing::{
    AfterCheck, CRASH_TABLE_SQL, CrashPoint, Fault, FileKind, Lane, Phase, PowerLossVfs,
    RestoreMode, SurvivorError, VfsOptions, ViolationKind, check_survivors, crash_row,
    disable_checkpoint_on_close, env_u64,
};
use walguard::{
    CheckpointMode, CheckpointOutcome, CheckpointReason, CheckpointReport, Statement, Store,
};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// Base seed of the random tests, overridable with `WALGUARD_SEED`.
fn base_seed() -> u64 {
    env_u64("WALGUARD_SEED", 0x5EED_0F10_AD00).unwrap_or_else(|e| panic!("{e}"))
}

// --- the workload ---------------------------------------------------------

/// Rows inserted by transaction `txn` (1-based): 1 to 3.
fn rows_in(txn: u64) -> u64 {
    1 + txn % 3
}

/// Rows in transactions `1..=txn`.
fn rows_through(txn: u64) -> u64 {
    (1..=txn).map(rows_in).sum()
}

/// The statements of transaction `txn` (1-based): `rows_in(txn)` rows of
/// `walguard::testing`'s crash table, request `txn`.
fn rows_of(txn: u64) -> Vec<Statement> {
    let first = rows_through(txn - 1) + 1;
    (first..first + rows_in(txn))
        .map(|id| crash_row(id, txn, rows_in(txn), 0))
        .collect()
}

/// Opens `path` through `vfs` in WAL mode with `synchronous` set, and no
/// automatic checkpoints (the tests checkpoint explicitly).
fn open(vfs: &PowerLossVfs, path: &Path, synchronous: &str) -> TestResult<Connection> {
    let conn = vfs.open(path, OpenFlags::default())?;
    // Before the switch to WAL: the switch takes a lock.
    conn.busy_timeout(Duration::from_secs(5))?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    assert_eq!(mode, "wal");
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    Ok(conn)
}

/// Creates the table and makes it durable with a full checkpoint.
fn setup(conn: &Connection) -> TestResult {
    conn.execute_batch(CRASH_TABLE_SQL)?;
    let (busy, log, done) = checkpoint(conn, "PASSIVE")?;
    assert_eq!((busy, log), (0, done));
    Ok(())
}

/// Commits transaction `txn` (1-based): `rows_in(txn)` rows.
fn commit(conn: &Connection, txn: u64) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = rows_of(txn).iter().try_for_each(|stmt| {
        conn.execute(stmt.sql(), params_from_iter(stmt.params()))
            .map(drop)
    });
    match result.and_then(|()| conn.execute_batch("COMMIT")) {
        Ok(()) => Ok(()),
        Err(e) => {
            // Best effort: a failed COMMIT may already have rolled back.
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// `PRAGMA wal_checkpoint(mode)`: `(busy, log, checkpointed)`.
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<(i64, i64, i64)> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
    })
}

/// A checkpoint result that copied every frame: it made all prior commits
/// durable (under `NORMAL` or `FULL`).
fn caught_up((busy, log, done): (i64, i64, i64)) -> bool {
    busy == 0 && log == done
}

/// After a power loss: opens `path` without the shim and checks integrity
/// and that the rows are exactly transactions `1..=k`, intact and whole.
/// Returns `k`.
fn survivors(path: &Path) -> Result<u64, SurvivorError> {
    check_survivors(path, AfterCheck::Checkpoint).map(|found| found.last_request())
}

/// Power loss: cut, close every connection normally, restore.
fn power_loss(vfs: &PowerLossVfs, conns: Vec<Connection>, mode: RestoreMode) -> TestResult {
    vfs.crash_now();
    drop(conns);
    vfs.restore_durable_images_with(mode)?;
    Ok(())
}

fn temp_db() -> TestResult<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("state.db");
    Ok((dir, path))
}

// --- fixed scenarios --------------------------------------------------------

/// Transactions the store claims durable: its durable commits, less the
/// `CREATE TABLE` ([`store_through_with`]).
fn durable_txns(store: &Store) -> u64 {
    store.durability().durable_commits() - 1
}

/// Power loss under a store: cut, close the store (its close-time
/// checkpoint just fails) and the other connections, restore exactly.
fn store_power_loss(vfs: &PowerLossVfs, store: Store, others: Vec<Connection>) -> TestResult {
    vfs.crash_now();
    drop(others);
    // Closing fails after the cut; the connection is dropped either way.
    let _ = store.close();
    vfs.restore_durable_images()?;
    Ok(())
}

/// Commits transaction `txn` through the store, as [`commit`] does on a raw
/// connection.
fn store_commit(store: &mut Store, txn: u64) -> walguard::Result<()> {
    store.transaction(&rows_of(txn)).map(drop)
}

/// A store under NORMAL through `vfs`, with the table made durable.
fn store_through(vfs: &PowerLossVfs, path: &Path) -> TestResult<Store> {
    store_through_with(vfs, path, Synchronous::Normal)
}

/// A store under `synchronous` through `vfs`, no automatic checkpoints (the
/// tests checkpoint explicitly), with the table made durable: its durable
/// point is then the `CREATE TABLE`, commit 1.
fn store_through_with(
    vfs: &PowerLossVfs,
    path: &Path,
    synchronous: Synchronous,
) -> TestResult<Store> {
    let mut settings = DatabaseSettings::at(path);
    settings.synchronous = synchronous;
    settings.wal_autocheckpoint = 0;
    // Only checkpoints wait on locks, and they must not wait for real.
    settings.busy_timeout = Duration::from_millis(10);
    let mut store = Store::open_with_vfs(&settings, vfs.name())?;
    store.execute(&Statement::new(CRASH_TABLE_SQL))?;
    let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
    assert_eq!(*report.outcome(), CheckpointOutcome::Completed);
    Ok(store)
}

/// Operation counts of one dry run of the campaign workload.
#[derive(Debug)]
struct DryRun {
    /// Operations done by `open` + `setup` (never crashed: the table must
    /// exist).
    setup_ops: u64,
    total_ops: u64,
    checkpoints: Vec<RangeInclusive<u64>>,
    /// Phase 1s of the two-phase size checkpoint that did I/O.
    phase1s: usize,
}

mod campaign;
mod failed_fsync;
mod shim;
mod store;
mod two_phase;
