//! The replica hold (`src/store/replica_hold.rs`): while the replica lacks
//! commits, no checkpoint walguard runs lets the WAL restart under them,
//! and the close keeps the WAL. Real WAL files; the WAL header's salt
//! tells a restart (SQLite draws new salts each time it starts the WAL
//! over).
//!
//! Negative controls: the same sequences without the hold restart the WAL
//! and delete it on close.

use std::path::Path;

use walguard::settings::DatabaseSettings;
use walguard::{CheckpointMode, CheckpointOutcome, CheckpointReason, SizeCheckpoint, Store};

use crate::support::{
    count, integrity, put, store_with_kv, store_with_kv_using, temp_db, wal_path,
};

/// The WAL header's first salt; `None` without a WAL or its header.
fn salt(path: &Path) -> Option<[u8; 4]> {
    let bytes = std::fs::read(wal_path(path)).ok()?;
    bytes.get(16..20).map(|s| s.try_into().unwrap())
}

fn wal_len(path: &Path) -> u64 {
    std::fs::metadata(wal_path(path)).map_or(0, |m| m.len())
}

/// Writes, checkpoints, writes: what restarts the WAL when nothing holds
/// it. Returns whether the salt changed (the WAL restarted).
fn write_checkpoint_write(store: &mut Store, path: &Path) -> bool {
    for i in 0..40 {
        put(store, &format!("a{i}"), i);
    }
    let before = salt(path).expect("a wal with a header");
    let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
    assert!(!report.outcome().is_failure(), "{report:?}");
    for i in 0..40 {
        put(store, &format!("b{i}"), i);
    }
    salt(path).expect("a wal with a header") != before
}

#[test]
fn a_checkpoint_ahead_of_the_replica_never_restarts_the_wal() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    store.hold_for_replica().unwrap();
    assert!(
        !write_checkpoint_write(&mut store, &path),
        "the wal restarted under frames the replica lacks"
    );
    let hold = store.replica_hold().unwrap();
    assert!(hold.pinned_commits.is_some(), "{hold:?}");
    assert_eq!(hold.pins, 1);
    // A second checkpoint keeps the first pin (it protects more).
    store.checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
    assert_eq!(store.replica_hold().unwrap().pins, 1);
}

#[test]
fn negative_control_without_the_hold_the_wal_restarts() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    assert!(
        write_checkpoint_write(&mut store, &path),
        "the sequence must restart the wal when nothing holds it, or the test above proves nothing"
    );
}

#[test]
fn the_pin_ends_once_the_replica_has_its_commits() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    store.hold_for_replica().unwrap();
    write_checkpoint_write(&mut store, &path);
    let pinned = store.replica_hold().unwrap().pinned_commits.unwrap();
    store.replicated_through(pinned - 1);
    assert_eq!(
        store.replica_hold().unwrap().pinned_commits,
        Some(pinned),
        "released before the replica had every pinned commit"
    );
    store.replicated_through(pinned);
    assert_eq!(store.replica_hold().unwrap().pinned_commits, None);
    // With the pin gone, a checkpoint backfills everything and the WAL
    // restarts as usual (a new pin is taken, at the new end).
    let before = salt(&path).unwrap();
    store.replicated_through(store.durability().commits());
    let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
    assert_eq!(
        *report.outcome(),
        CheckpointOutcome::Completed,
        "{report:?}"
    );
    store.replicated_through(store.durability().commits());
    put(&mut store, "c", 1);
    assert_ne!(
        salt(&path).unwrap(),
        before,
        "the wal should restart once all is replicated"
    );
}

#[test]
fn truncate_waits_for_the_replica_and_answers_busy_at_once() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    store.hold_for_replica().unwrap();
    for i in 0..40 {
        put(&mut store, &format!("a{i}"), i);
    }
    let len = wal_len(&path);
    let started = std::time::Instant::now();
    let report = store.checkpoint(CheckpointMode::Truncate, CheckpointReason::Manual);
    assert_eq!(*report.outcome(), CheckpointOutcome::Busy, "{report:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_millis(200),
        "a held truncate must not wait out its busy timeout: {:?}",
        started.elapsed()
    );
    assert_eq!(
        wal_len(&path),
        len,
        "the wal was truncated under unreplicated frames"
    );
    store.replicated_through(store.durability().commits());
    let report = store.checkpoint(CheckpointMode::Truncate, CheckpointReason::Manual);
    assert_eq!(
        *report.outcome(),
        CheckpointOutcome::Completed,
        "{report:?}"
    );
    assert_eq!(wal_len(&path), 0);
}

#[test]
fn the_close_keeps_the_wal_while_the_replica_lacks_commits() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    store.hold_for_replica().unwrap();
    for i in 0..40 {
        put(&mut store, &format!("a{i}"), i);
    }
    store.close().map_err(|(_, e)| e).unwrap();
    assert!(
        wal_len(&path) > 0,
        "the close checkpointed and deleted the wal"
    );
    // Nothing is lost: the next open reads the WAL.
    let store = Store::open(&DatabaseSettings::at(&path)).unwrap();
    assert_eq!(count(&store, "kv"), 40);
    store.close().map_err(|(_, e)| e).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(integrity(&conn), "ok");
}

#[test]
fn negative_control_the_close_deletes_the_wal_once_all_is_replicated() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    store.hold_for_replica().unwrap();
    for i in 0..40 {
        put(&mut store, &format!("a{i}"), i);
    }
    store.replicated_through(store.durability().commits());
    store.close().map_err(|(_, e)| e).unwrap();
    assert_eq!(
        wal_len(&path),
        0,
        "with every commit replicated the close checkpoints as usual"
    );
}

/// 400 writes under a two-phase size checkpoint every 20 frames: whether
/// the WAL restarted (with the hold on or off).
fn two_phase_restarts(hold: bool) -> bool {
    let (_dir, path) = temp_db();
    let mut settings = DatabaseSettings::at(&path);
    settings.wal_autocheckpoint = 0;
    let mut store = store_with_kv_using(&settings);
    store.set_size_threshold(20).unwrap();
    store.set_size_checkpoint(SizeCheckpoint::TwoPhase);
    if hold {
        store.hold_for_replica().unwrap();
    }
    put(&mut store, "first", 0);
    let first = salt(&path).unwrap();
    for i in 0..400 {
        put(&mut store, &format!("k{i}"), i);
        let _ = store.checkpoint_if_due();
        // Phase 1 runs on its own thread: give it time to return, so that
        // phase 2 and the restart after it get their chance.
        if i % 40 == 39 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    if hold {
        assert!(store.replica_hold().unwrap().pinned_commits.is_some());
    }
    salt(&path).unwrap() != first
}

#[test]
fn two_phase_size_checkpoints_never_restart_the_wal_ahead_of_the_replica() {
    assert!(
        !two_phase_restarts(true),
        "a size checkpoint restarted the wal"
    );
}

#[test]
fn negative_control_two_phase_size_checkpoints_restart_the_wal_without_the_hold() {
    assert!(two_phase_restarts(false));
}
