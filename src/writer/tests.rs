//! The writer without actix: group commit, the counts, the checkpoint
//! owner, the replica hold and the shutdown, on a real file in a temp dir.

use std::sync::mpsc;
use std::time::Duration;

use super::Writer;
use crate::replication::CheckpointOwner;
use crate::{CheckpointMode, CheckpointReason, Result, Settings, Statement, Store};

// `WriteReply` for this type is in `replier.rs`'s tests.
type Tx = mpsc::Sender<Result<usize>>;

fn open(dir: &tempfile::TempDir, adjust: impl FnOnce(&mut Settings)) -> Writer<Tx> {
    let mut settings = Settings::for_database(dir.path().join("writer.db"));
    adjust(&mut settings);
    let mut store = Store::open(&settings.database).unwrap();
    store
        .set_size_threshold(settings.checkpoint.size_threshold_frames)
        .unwrap();
    let mut writer = Writer::new(store);
    writer
        .call(|c| c.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        .unwrap();
    writer
}

fn insert(id: i64) -> Statement {
    Statement::new("INSERT INTO t (id, v) VALUES (?1, 'x')").bind(id)
}

/// Queued writes commit as one group at the flush, each answered with its
/// own result: a failing write fails alone, and the counts say so.
#[test]
fn a_group_commits_at_the_flush_and_a_failing_write_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = open(&dir, |_| {});
    let mut answers = Vec::new();
    for id in [1, 2, 2, 3] {
        let (tx, rx) = mpsc::channel();
        writer.accept(insert(id), tx);
        answers.push(rx);
    }
    // Nothing answered before the flush.
    assert!(answers.iter().all(|rx| rx.try_recv().is_err()));
    writer.flush();
    let results: Vec<bool> = answers
        .iter()
        .map(|rx| rx.recv().unwrap().is_ok())
        .collect();
    assert_eq!(results, [true, true, false, true]);
    let stats = writer.stats();
    assert_eq!((stats.flushes, stats.largest_flush), (1, 4));
    // The CREATE TABLE closure counts as a write.
    assert_eq!(writer.state().writes_acknowledged(), 4);
    assert_eq!(writer.state().writes_failed(), 1);
    let rows = writer
        .query(&Statement::new("SELECT count(*) FROM t"))
        .unwrap();
    assert_eq!(rows.rows()[0][0], rusqlite::types::Value::Integer(3));
}

/// The queue never holds more than `database.max_batch` writes: a full
/// queue is flushed before the next write joins it.
#[test]
fn a_full_queue_is_flushed_before_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = open(&dir, |s| s.database.max_batch = 2);
    let mut answers = Vec::new();
    for id in 1..=5 {
        assert_eq!(writer.is_full(), id == 3 || id == 5);
        let (tx, rx) = mpsc::channel();
        writer.accept(insert(id), tx);
        answers.push(rx);
    }
    let stats = writer.stats();
    assert_eq!(
        (stats.flushes, stats.largest_flush, stats.flushed_writes),
        (3, 2, 5)
    );
    assert!(answers.iter().all(|rx| rx.recv().unwrap().is_ok()));
}

/// The checkpoint owner has one home, the shared state: while Litestream
/// owns checkpointing the store's size threshold is the WAL cap and the
/// shutdown runs no TRUNCATE; given back, both return.
#[test]
fn the_checkpoint_owner_in_the_shared_state_sets_threshold_and_truncate() {
    let dir = tempfile::tempdir().unwrap();
    let writer = open(&dir, |s| s.checkpoint.size_threshold_frames = 100);
    let mut writer = writer.with_wal_cap(5_000);
    assert_eq!(writer.stats().wal.unwrap().threshold, 100);
    writer.state().set_owner(CheckpointOwner::Litestream);
    let _ = writer.braking(std::time::Instant::now());
    assert_eq!(writer.stats().wal.unwrap().threshold, 5_000);
    writer.state().set_owner(CheckpointOwner::Walguard);
    writer.transaction(&[insert(1)]).unwrap();
    assert_eq!(writer.stats().wal.unwrap().threshold, 100);
    writer.state().set_owner(CheckpointOwner::Litestream);
    let outcome = writer.shutdown(Duration::from_secs(1));
    assert!(outcome.truncate.is_none());
    assert_eq!(outcome.summary.writes_acknowledged, 2);
    assert!(writer.state().is_shut_down());
}

/// With the replica hold of replies, a write is answered once a sync
/// covers its commit; at the shutdown the ones still held are answered
/// not replicated and counted failed.
#[test]
fn held_replies_wait_for_the_replica_and_the_shutdown_answers_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let writer = open(&dir, |_| {});
    let mut writer = writer.holding_for_replica(Duration::from_secs(3600));
    let (tx, first) = mpsc::channel();
    writer.accept(insert(1), tx);
    writer.flush();
    let covered = writer.commits();
    let (tx, second) = mpsc::channel();
    writer.accept(insert(2), tx);
    writer.flush();
    assert!(first.try_recv().is_err() && second.try_recv().is_err());
    writer.replicated_through(Some(covered));
    assert_eq!(first.try_recv().unwrap().unwrap(), 1);
    assert!(second.try_recv().is_err());
    let outcome = writer.shutdown(Duration::from_secs(1));
    assert!(matches!(
        second.try_recv().unwrap(),
        Err(crate::Error::NotReplicated { .. })
    ));
    // The summary is taken before the held replies are answered.
    assert_eq!(outcome.summary.writes_acknowledged, 2);
    assert_eq!(writer.state().writes_failed(), 1);
    assert!(outcome.truncate.is_some());
}

/// Every checkpoint goes to the listener, and a closed writer reports a
/// failed one instead of running it.
#[test]
fn checkpoints_reach_the_listener_and_a_closed_writer_fails_them() {
    let dir = tempfile::tempdir().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let into = std::sync::Arc::clone(&seen);
    let mut writer = open(&dir, |_| {}).on_checkpoint(Box::new(move |r| {
        into.lock().unwrap().push(r.reason());
    }));
    let report = writer.checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
    assert!(!report.outcome().is_failure());
    let _ = writer.shutdown(Duration::from_secs(1));
    let report = writer.checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
    assert!(report.outcome().is_failure());
    assert_eq!(
        *seen.lock().unwrap(),
        [
            CheckpointReason::Manual,
            CheckpointReason::Shutdown,
            CheckpointReason::Manual
        ]
    );
}
