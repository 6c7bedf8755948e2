//! The writer's reopen after a checkpoint I/O error, with the read pool
//! open (issue 23): the reopen rebuilds the WAL index only when no other
//! connection of ours is open, so it pauses the pool around it
//! (`Store::attach_readers`). A failed fsync is injected through the
//! power-loss VFS (feature `testing`), after a partial checkpoint, as in
//! `tests/power_loss/failed_fsync.rs`: without the partial one the stale
//! index counts no copied frame and nothing would tell the two apart.

use std::sync::Arc;

use walguard::testing::{Fault, FileKind, PowerLossVfs};

use super::*;

/// Dropped in this order: the readers, the writer (the last connection),
/// the VFS, the directory.
struct Setup {
    pool: Arc<ReadPool>,
    store: Store,
    vfs: PowerLossVfs,
    path: PathBuf,
    _dir: TempDir,
}

/// A store through the power-loss VFS (no automatic checkpoint, a short
/// busy timeout: only checkpoints wait on locks), a `kv` table with 5
/// rows, and a pool of `connections` through the same VFS.
fn setup(connections: usize) -> Setup {
    let (dir, path) = temp_db();
    let vfs = PowerLossVfs::register().expect("register the vfs");
    let mut settings = DatabaseSettings::at(&path);
    settings.wal_autocheckpoint = 0;
    settings.busy_timeout = Duration::from_millis(10);
    let mut store = Store::open_with_vfs(&settings, vfs.name()).expect("open the store");
    store
        .execute(&Statement::new(
            "CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)",
        ))
        .expect("create kv");
    for i in 0..5 {
        put(&mut store, &format!("k{i}"), i);
    }
    let pool =
        ReadPool::open_with_vfs(&settings, &read_settings(connections, NO_BOUND), vfs.name())
            .expect("open the read pool");
    Setup {
        pool: Arc::new(pool),
        store,
        vfs,
        path,
        _dir: dir,
    }
}

/// A read of ours pins a snapshot while 5 more rows commit: a PASSIVE
/// checkpoint copies up to it (partial, the backfill count moves). Then
/// the next checkpoint's database fsync fails.
fn partial_then_failed_fsync(s: &mut Setup) {
    let (started_tx, started_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let pinned = submit(&s.pool, move |conn| {
        let n = kv_count(conn)?;
        let _ = started_tx.send(());
        let _ = go_rx.recv_timeout(PATIENCE);
        Ok(n)
    });
    started_rx.recv_timeout(PATIENCE).unwrap();
    for i in 5..10 {
        put(&mut s.store, &format!("k{i}"), i);
    }
    assert_eq!(passive(&mut s.store), CheckpointOutcome::Partial);
    go_tx.send(()).unwrap();
    assert_eq!(pinned.recv_timeout(PATIENCE).unwrap().unwrap(), 5);
    s.vfs.inject(Fault::SyncFails {
        file: FileKind::MainDb,
        count: 1,
    });
}

/// With the pool attached, the failed checkpoint's reopen pauses it: the
/// read running then is interrupted (`ReadPausedForReopen`), a read
/// submitted during the pause waits and is served after it, on a
/// connection opened again; the next checkpoint completes, and the pool
/// goes on serving. Every row is in the file after the close.
#[test]
fn a_checkpoint_io_error_reopens_with_the_readers_paused_and_the_next_checkpoint_completes() {
    let mut s = setup(2);
    s.store.attach_readers(s.pool.clone());
    partial_then_failed_fsync(&mut s);
    // A read in flight when the checkpoint fails: its statement runs until
    // it is interrupted; then it submits another read, while the pool is
    // paused (nothing else interrupts it: no bound, no close).
    let (held_tx, held_rx) = mpsc::channel();
    let in_flight = {
        let pool = Arc::clone(&s.pool);
        submit(&s.pool, move |conn| {
            kv_count(conn)?;
            let endless = conn.query_row(ENDLESS, [], |r| r.get::<_, i64>(0));
            let _ = held_tx.send(submit(&pool, kv_count));
            endless
        })
    };
    wait_for_running(&s.pool, "the read in flight", |r| r.len() == 1);
    let failed = s
        .store
        .checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
    assert!(failed.io_error(), "{failed:?}");
    let err = in_flight.recv_timeout(PATIENCE).unwrap().unwrap_err();
    assert!(
        matches!(&err, Error::ReadPausedForReopen { what, .. } if what == "closure"),
        "{err:?}"
    );
    assert!(chain(&err).contains("reopen"), "{}", chain(&err));
    let held = held_rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(held.recv_timeout(PATIENCE).unwrap().unwrap(), 10);
    // The index was rebuilt: the next checkpoint copies every frame again.
    put(&mut s.store, "after", 10);
    assert_eq!(passive(&mut s.store), CheckpointOutcome::Completed);
    assert_eq!(s.pool.read(kv_count).unwrap(), 11);
    let counts = s.pool.stats().counts();
    assert_eq!(
        (counts.served, counts.interrupted),
        (3, 1),
        "the pinning read, the held one and the last: {counts:?}"
    );
    s.pool.close(PATIENCE);
    let Setup {
        store, path, _dir, ..
    } = s;
    store.close().map_err(|(_, e)| e).unwrap();
    let conn = Connection::open(&path).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!((integrity.as_str(), kv_count(&conn).unwrap()), ("ok", 11));
}

/// Negative control: the same pool, not attached. Its connections keep
/// the stale WAL index alive: the reopen fails (`StaleWalIndex`) and the
/// next checkpoint is refused, until the pool closes.
#[test]
fn without_the_pause_the_readers_keep_the_stale_index_and_checkpoints_are_refused() {
    let mut s = setup(2);
    partial_then_failed_fsync(&mut s);
    let failed = s
        .store
        .checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
    assert!(failed.io_error(), "{failed:?}");
    put(&mut s.store, "after", 10);
    let refused = s
        .store
        .checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
    assert!(
        refused.outcome().to_string().contains("another connection"),
        "{refused:?}"
    );
    s.pool.close(PATIENCE);
    assert_eq!(passive(&mut s.store), CheckpointOutcome::Completed);
}

/// A read busy outside SQLite (Rust code holding its snapshot) does not
/// stop at the interrupt: the pause gives up after `READ_PAUSE_TIMEOUT`
/// and resumes the pool (the other connection serves meanwhile), the
/// reopen is not tried (`ReadersBusy`, at every checkpoint call), and the
/// first checkpoint after that read has returned reopens and completes.
#[test]
fn a_read_busy_outside_sqlite_defers_the_reopen_until_it_returns() {
    let mut s = setup(2);
    s.store.attach_readers(s.pool.clone());
    partial_then_failed_fsync(&mut s);
    let (started_tx, started_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let busy = submit(&s.pool, move |conn| {
        let n = kv_count(conn)?;
        let _ = started_tx.send(());
        let _ = go_rx.recv_timeout(PATIENCE);
        Ok(n)
    });
    started_rx.recv_timeout(PATIENCE).unwrap();
    let failed = s
        .store
        .checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
    assert!(failed.io_error(), "{failed:?}");
    // Resumed: the other connection serves.
    assert_eq!(s.pool.read(kv_count).unwrap(), 10);
    let refused = s
        .store
        .checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
    assert!(
        refused
            .outcome()
            .to_string()
            .contains("cannot close the read connections"),
        "{refused:?}"
    );
    go_tx.send(()).unwrap();
    // It returned, but it was interrupted: what it read is dropped.
    let err = busy.recv_timeout(PATIENCE).unwrap().unwrap_err();
    assert!(matches!(err, Error::ReadPausedForReopen { .. }), "{err:?}");
    put(&mut s.store, "after", 10);
    assert_eq!(passive(&mut s.store), CheckpointOutcome::Completed);
    assert_eq!(s.pool.read(kv_count).unwrap(), 11);
}
