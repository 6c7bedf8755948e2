//! The store under a power cut: what survives is exactly what it claims
//! durable, under NORMAL and FULL, with a reader pinning the WAL, and
//! while its file is away.

use super::*;

/// NORMAL: the store's completed checkpoint is its durable point, and a
/// power loss keeps exactly the commits through it; the 50 after it roll
/// back.
#[test]
fn store_under_normal_keeps_exactly_the_commits_through_its_durable_point() -> TestResult {
    let (_dir, path) = temp_db()?;
    let vfs = PowerLossVfs::register()?;
    let mut store = store_through_with(&vfs, &path, Synchronous::Normal)?;
    for txn in 1..=100 {
        store_commit(&mut store, txn)?;
    }
    assert_eq!(durable_txns(&store), 0, "no checkpoint since the table");
    let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
    assert_eq!(
        *report.outcome(),
        CheckpointOutcome::Completed,
        "{report:?}"
    );
    for txn in 101..=150 {
        store_commit(&mut store, txn)?;
    }
    let claimed = durable_txns(&store);
    assert_eq!(claimed, 100);
    assert_eq!(store.durability().exposed_commits(), 50);
    store_power_loss(&vfs, store, Vec::new())?;
    assert_eq!(survivors(&path)?, claimed);
    Ok(())
}

/// FULL: every commit the store acknowledged is durable at once, and a power
/// loss keeps all of them, with no checkpoint since the table.
#[test]
fn store_under_full_keeps_every_acknowledged_commit() -> TestResult {
    let (_dir, path) = temp_db()?;
    let vfs = PowerLossVfs::register()?;
    let mut store = store_through_with(&vfs, &path, Synchronous::Full)?;
    for txn in 1..=150 {
        store_commit(&mut store, txn)?;
    }
    assert_eq!(durable_txns(&store), 150);
    assert_eq!(store.durability().exposed_commits(), 0);
    store_power_loss(&vfs, store, Vec::new())?;
    assert_eq!(survivors(&path)?, 150);
    Ok(())
}

/// A reader pinning the WAL makes the store's PASSIVE checkpoint `partial`:
/// SQLite copies and syncs nothing (the shim sees no I/O), and the store's
/// durable point does not move. A TRUNCATE under the same reader ends
/// `busy`, and does not move it either. A power loss then keeps exactly the
/// commits through the last completed checkpoint, which is what the store
/// claimed.
#[test]
fn store_pinned_reader_checkpoint_is_not_a_durability_point() -> TestResult {
    let (_dir, path) = temp_db()?;
    let vfs = PowerLossVfs::register()?;
    let mut store = store_through_with(&vfs, &path, Synchronous::Normal)?;
    for txn in 1..=100 {
        store_commit(&mut store, txn)?;
    }
    let reader = open(&vfs, &path, "NORMAL")?;
    reader.execute_batch("BEGIN")?;
    let seen: i64 = reader.query_row("SELECT count(*) FROM t", [], |row| row.get(0))?;
    assert_eq!(seen as u64, rows_through(100));
    let full = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
    assert_eq!(*full.outcome(), CheckpointOutcome::Completed, "{full:?}");
    assert_eq!(durable_txns(&store), 100);
    for txn in 101..=150 {
        store_commit(&mut store, txn)?;
    }
    let ops_before = vfs.io_ops();
    let partial = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
    assert_eq!(
        *partial.outcome(),
        CheckpointOutcome::Partial,
        "{partial:?}"
    );
    assert_eq!(
        vfs.io_ops(),
        ops_before,
        "the pinned reader leaves nothing to copy: nothing was written or synced"
    );
    assert_eq!(durable_txns(&store), 100, "a partial checkpoint moved it");
    let busy = store.checkpoint(CheckpointMode::Truncate, CheckpointReason::Manual);
    assert_eq!(*busy.outcome(), CheckpointOutcome::Busy, "{busy:?}");
    assert_eq!(durable_txns(&store), 100, "a busy checkpoint moved it");
    store_power_loss(&vfs, store, vec![reader])?;
    assert_eq!(survivors(&path)?, 100);
    Ok(())
}

// --- randomized campaign ----------------------------------------------------

/// When the database's directory is moved away, the file is gone from its
/// path: the store refuses writes and checkpoints (no reopen is tried
/// against a path that leads nowhere); once the directory is back, the
/// failed checkpoint's pending fault fires, the store reopens, and nothing
/// is lost.
#[test]
fn the_store_refuses_statements_while_its_file_is_away() -> TestResult {
    let dir = tempfile::tempdir()?;
    let home = dir.path().join("home");
    let away = dir.path().join("away");
    std::fs::create_dir(&home)?;
    let path = home.join("state.db");
    let vfs = PowerLossVfs::register()?;
    let mut store = store_through(&vfs, &path)?;
    store_commit(&mut store, 1)?;

    std::fs::rename(&home, &away)?;
    vfs.inject(Fault::CheckpointWriteIoErr { count: 1 });
    let refused = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
    assert!(
        refused.outcome().to_string().contains("deleted or renamed"),
        "{refused:?}"
    );
    let write = store_commit(&mut store, 2).expect_err("the file is away");
    assert!(
        matches!(write, walguard::Error::DatabaseGone { .. }),
        "{write:?}"
    );
    assert!(store.file_was_gone());

    std::fs::rename(&away, &home)?;
    let failed = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
    assert!(
        failed.io_error(),
        "the injected fault fires now: {failed:?}"
    );
    let reopened = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
    assert_eq!(
        *reopened.outcome(),
        CheckpointOutcome::Completed,
        "{reopened:?}"
    );
    store_commit(&mut store, 2)?;
    store.close().map_err(|(_, e)| e)?;
    assert_eq!(survivors(&path)?, 2);
    Ok(())
}

// --- the two-phase size checkpoint ------------------------------------------
