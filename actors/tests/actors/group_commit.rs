//! Group commit and the size-triggered checkpoint, through `DbActor`.
//!
//! Most tests run `DbActor` on the test's own thread (`Placement::Current`):
//! writes spawned one after the other (`sent_at_once`) enter the lane in
//! order, and the actor only runs once they all have, so which writes
//! share a group is deterministic. The ordering and WAL tests also run with
//! `DbActor` on its own thread, where only what must always hold is
//! asserted.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use walguard::{
    CheckpointMode, CheckpointOutcome, CheckpointReason, Settings, SizeCheckpoint, Statement,
};
use walguard_actors::db::WriterStats;
use walguard_actors::{Placement, WalGuard};

use crate::common::{
    create_table, insert, integrity_and_count, sent_at_once, settings, start_here, wal_path,
};

const MINUTE: Duration = Duration::from_secs(60);

async fn stats(guard: &WalGuard) -> WriterStats {
    guard.db().writer_stats().await.unwrap()
}

async fn start_on(settings: Settings, placement: Placement) -> WalGuard {
    let guard = WalGuard::builder(settings)
        .db_placement(placement)
        .start()
        .unwrap();
    create_table(&guard).await;
    guard
}

/// A write alone is committed at once: on a paused clock, which jumps to
/// the next timer whenever the runtime idles, no virtual time passes.
#[actix_rt::test]
async fn a_lone_write_commits_at_once_with_no_timer() {
    tokio::time::pause();
    let dir = tempfile::tempdir().unwrap();
    let guard = start_here(settings(dir.path(), MINUTE)).await;
    let t0 = tokio::time::Instant::now();
    for id in 0..10 {
        guard.db().execute(insert(id)).await.unwrap();
        assert_eq!(
            tokio::time::Instant::now(),
            t0,
            "write {id} waited for a timer"
        );
    }
    let s = stats(&guard).await;
    assert!(s.group_commit);
    assert_eq!((s.flushes, s.largest_flush), (11, 1), "{s:?}"); // CREATE TABLE + 10
    let durability = guard.db().durability().await.unwrap().unwrap();
    assert_eq!((durability.commits(), durability.writes()), (11, 11));
    guard.shutdown().await.unwrap();
}

/// Writes waiting together share one commit; each sender still gets its own
/// answer, after that commit.
#[actix_rt::test]
async fn waiting_writes_share_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let guard = start_here(settings(dir.path(), MINUTE)).await;
    let db = guard.db();
    let requests: Vec<_> = (0..100).map(|id| sent_at_once(db, insert(id))).collect();
    for request in requests {
        assert_eq!(request.await.unwrap().unwrap(), 1);
    }
    let s = stats(&guard).await;
    assert_eq!(
        (s.flushes, s.flushed_writes, s.largest_flush),
        (2, 101, 100),
        "{s:?}"
    );
    let durability = guard.db().durability().await.unwrap().unwrap();
    assert_eq!((durability.commits(), durability.writes()), (2, 101));
    let report = guard.shutdown().await.unwrap();
    assert_eq!(report.db.writes_acknowledged, 101);
    assert_eq!(
        integrity_and_count(&dir.path().join("state.db")),
        ("ok".to_owned(), 100)
    );
}

/// Several senders pipelining writes at once: each sender's writes land in
/// the order it sent them, whatever groups they were committed in.
#[actix_rt::test]
async fn writes_from_each_sender_keep_their_order() {
    const SENDERS: i64 = 8;
    const WRITES: i64 = 384; // 12 windows
    const WINDOW: i64 = 32;
    for placement in [Placement::Current, Placement::OwnArbiter] {
        let dir = tempfile::tempdir().unwrap();
        let guard = start_on(settings(dir.path(), MINUTE), placement.clone()).await;
        guard
            .db()
            .execute(
                "CREATE TABLE log (seq INTEGER PRIMARY KEY AUTOINCREMENT, sender INTEGER, n INTEGER)",
            )
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for sender in 0..SENDERS {
            let db = guard.db().clone();
            tasks.push(actix_rt::spawn(async move {
                for start in (0..WRITES).step_by(WINDOW as usize) {
                    // A window of requests on the lane at once, awaited in
                    // order.
                    let window: Vec<_> = (start..start + WINDOW)
                        .map(|n| {
                            sent_at_once(
                                &db,
                                Statement::new("INSERT INTO log (sender, n) VALUES (?1, ?2)")
                                    .bind(sender)
                                    .bind(n),
                            )
                        })
                        .collect();
                    for request in window {
                        assert_eq!(request.await.unwrap().unwrap(), 1);
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let rows = guard
            .db()
            .query("SELECT sender, n FROM log ORDER BY seq")
            .await
            .unwrap();
        assert_eq!(rows.len() as i64, SENDERS * WRITES);
        let mut next = vec![0i64; SENDERS as usize];
        for row in rows.rows() {
            let (rusqlite::types::Value::Integer(sender), rusqlite::types::Value::Integer(n)) =
                (&row[0], &row[1])
            else {
                panic!("{row:?}");
            };
            assert_eq!(*n, next[*sender as usize], "sender {sender} out of order");
            next[*sender as usize] += 1;
        }
        let s = stats(&guard).await;
        assert!(s.largest_flush <= s.max_batch, "{s:?}");
        if matches!(placement, Placement::Current) {
            // All eight windows were on the lane together.
            assert_eq!(s.largest_flush, (SENDERS * WINDOW) as usize, "{s:?}");
        }
        guard.shutdown().await.unwrap();
    }
}

/// A failing write in a group fails alone: its neighbours commit and get
/// their own success.
#[actix_rt::test]
async fn a_failing_neighbour_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let guard = start_here(settings(dir.path(), MINUTE)).await;
    guard.db().execute(insert(5)).await.unwrap();
    let db = guard.db();
    let mut requests: Vec<_> = (1..=3).map(|id| sent_at_once(db, insert(id))).collect();
    requests.push(sent_at_once(db, "INSERT INTO nowhere VALUES (1)"));
    requests.extend((4..=10).map(|id| sent_at_once(db, insert(id))));
    let results: Vec<_> = {
        let mut out = Vec::new();
        for request in requests {
            out.push(request.await.unwrap());
        }
        out
    };
    for (i, result) in results.iter().enumerate() {
        match i {
            // The bad SQL, and id 5 (position 5 after the insert at 3).
            3 | 5 => assert!(
                matches!(
                    result,
                    Err(walguard_actors::Error::Db(
                        walguard::Error::Statement { .. }
                    ))
                ),
                "{i}: {result:?}"
            ),
            _ => assert!(matches!(result, Ok(1)), "{i}: {result:?}"),
        }
    }
    let s = stats(&guard).await;
    assert_eq!(s.largest_flush, 11, "{s:?}");
    let group = s.group.unwrap();
    assert_eq!(
        (group.savepoint_reruns, group.one_by_one_reruns),
        (1, 0),
        "{group:?}"
    );
    let report = guard.shutdown().await.unwrap();
    assert_eq!(report.db.writes_failed, 2);
    assert_eq!(report.db.writes_acknowledged, 2 + 9); // CREATE TABLE, id 5, 9 more
    assert_eq!(
        integrity_and_count(&dir.path().join("state.db")),
        ("ok".to_owned(), 10)
    );
}

/// No group holds more than `database.max_batch` writes: a full queue is
/// committed before the next write joins it.
#[actix_rt::test]
async fn the_batch_cap_is_respected() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), MINUTE);
    s.database.max_batch = 16;
    let guard = start_here(s).await;
    let db = guard.db();
    let requests: Vec<_> = (0..100).map(|id| sent_at_once(db, insert(id))).collect();
    for request in requests {
        request.await.unwrap().unwrap();
    }
    let s = stats(&guard).await;
    assert_eq!(s.max_batch, 16);
    // CREATE TABLE, then 6 full groups of 16 and one of 4.
    assert_eq!(
        (s.flushes, s.flushed_writes, s.largest_flush),
        (8, 101, 16),
        "{s:?}"
    );
    guard.shutdown().await.unwrap();
}

/// The lane is bounded: a sender meets backpressure at
/// `database.mailbox_capacity` requests (`DbHandle::try_execute`, a hook
/// of feature `testing`, is refused then).
#[cfg(feature = "testing")]
#[actix_rt::test]
async fn the_mailbox_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), MINUTE);
    s.database.mailbox_capacity = 8;
    let guard = start_here(s).await;
    let db = guard.db();
    let mut accepted = 0;
    let mut answers = Vec::new();
    for id in 0..100 {
        let Ok(answer) = db.try_execute(insert(id)) else {
            break;
        };
        answers.push(answer);
        accepted += 1;
    }
    assert_eq!(accepted, 8);
    let count = guard.db().query("SELECT count(*) FROM kv").await.unwrap();
    assert_eq!(count.rows()[0][0], rusqlite::types::Value::Integer(8));
    guard.shutdown().await.unwrap();
}

/// Every other message sees the writes sent before it committed: queries,
/// checkpoints, durability.
#[actix_rt::test]
async fn other_messages_see_every_earlier_write_committed() {
    let dir = tempfile::tempdir().unwrap();
    let guard = start_here(settings(dir.path(), MINUTE)).await;
    let db = guard.db();
    let writes: Vec<_> = (0..50).map(|id| sent_at_once(db, insert(id))).collect();
    // The spawned writes reach the lane before the query below is sent.
    tokio::task::yield_now().await;
    let count = guard.db().query("SELECT count(*) FROM kv").await.unwrap();
    assert_eq!(count.rows()[0][0], rusqlite::types::Value::Integer(50));

    let more: Vec<_> = (50..100).map(|id| sent_at_once(db, insert(id))).collect();
    tokio::task::yield_now().await;
    let report = guard
        .db()
        .checkpoint(CheckpointMode::Passive)
        .await
        .unwrap();
    assert_eq!(*report.outcome(), CheckpointOutcome::Completed);
    assert!(report.log_frames() > 0, "{report:?}");
    let durability = guard.db().durability().await.unwrap().unwrap();
    assert_eq!(durability.writes(), 101);
    assert_eq!(durability.exposed_writes(), 0, "{durability:?}");

    for request in writes.into_iter().chain(more) {
        request.await.unwrap().unwrap();
    }
    guard.shutdown().await.unwrap();
}

/// With `database.group_commit: false`, every write is its own commit.
#[actix_rt::test]
async fn group_commit_off_commits_each_write_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), MINUTE);
    s.database.group_commit = false;
    let guard = start_here(s).await;
    let db = guard.db();
    let requests: Vec<_> = (0..20).map(|id| sent_at_once(db, insert(id))).collect();
    for request in requests {
        request.await.unwrap().unwrap();
    }
    let s = stats(&guard).await;
    assert!(!s.group_commit);
    assert_eq!(s.flushes, 0);
    let durability = guard.db().durability().await.unwrap().unwrap();
    assert_eq!((durability.commits(), durability.writes()), (21, 21));
    guard.shutdown().await.unwrap();
}

/// Runs `writes` inserts with `in_flight` senders, each awaiting its reply
/// before its next write (a closed loop).
async fn sustained(guard: &WalGuard, writes: i64, in_flight: usize) {
    let next = Rc::new(Cell::new(0i64));
    let mut tasks = Vec::new();
    for _ in 0..in_flight {
        let (db, next) = (guard.db().clone(), Rc::clone(&next));
        tasks.push(actix_rt::spawn(async move {
            loop {
                let id = next.get();
                if id >= writes {
                    break;
                }
                next.set(id + 1);
                db.execute(insert(id)).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

/// Under sustained writes the WAL stays bounded by frames, not by time:
/// `DbActor` runs a PASSIVE checkpoint (reason `size`) after each commit that
/// reaches the threshold, reports every one, and the WAL never holds more
/// than twice the threshold plus one group. Measured two ways: the peak the
/// WAL hook saw, and the `-wal` file's size on disk (a WAL file never
/// shrinks below its largest extent here: `journal_size_limit` is 64 MiB).
#[actix_rt::test]
async fn the_wal_stays_bounded_by_frames_under_sustained_writes() {
    const PAGE_AND_FRAME_HEADER: u64 = 4096 + 24;
    const WAL_HEADER: u64 = 32;
    // Both places of the size checkpoint's copy; with two phases, enough
    // writes for two size checkpoints even when each runs at the backstop
    // (1.5 × the threshold).
    for (size_checkpoint, group_commit, writes) in [
        (SizeCheckpoint::OnWriter, true, 50_000),
        (SizeCheckpoint::OnWriter, false, 10_000),
        (SizeCheckpoint::TwoPhase, true, 100_000),
        (SizeCheckpoint::TwoPhase, false, 20_000),
    ] {
        let two_phase = size_checkpoint == SizeCheckpoint::TwoPhase;
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path(), MINUTE);
        s.database.group_commit = group_commit;
        s.checkpoint.size_checkpoint = size_checkpoint;
        let threshold = s.checkpoint.size_threshold_frames;
        assert_eq!(threshold, 1000, "the default, SQLite's own");
        let guard = start_on(s, Placement::OwnArbiter).await;
        let autocheckpoint: i64 = guard
            .db()
            .call(|c| c.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(autocheckpoint, 0, "SQLite's own auto-checkpoint is off");

        sustained(&guard, writes, 256).await;

        let s = stats(&guard).await;
        let wal = s.wal.unwrap();
        // A group of max_batch 100-byte rows dirties far fewer pages than
        // it has rows: max_batch frames is a safe bound on one group.
        let bound = 2 * threshold + s.max_batch as u32;
        assert!(
            wal.peak <= bound,
            "{size_checkpoint:?}, group commit {group_commit}: peak {} frames > {bound}",
            wal.peak
        );
        assert!(wal.peak >= threshold, "the threshold was reached: {wal:?}");
        assert!(
            wal.size_checkpoints >= 2,
            "group commit {group_commit}: {wal:?}"
        );
        let on_disk = std::fs::metadata(wal_path(&dir.path().join("state.db")))
            .unwrap()
            .len();
        assert!(
            on_disk <= WAL_HEADER + u64::from(bound) * PAGE_AND_FRAME_HEADER,
            "group commit {group_commit}: -wal file {on_disk} bytes"
        );

        // Every size checkpoint reached MetricsActor; with `two_phase` as
        // two checkpoints, phase 1 (reason backfill) and phase 2 (reason
        // size), phase 1's report inside phase 2's.
        let report = guard.report().await.unwrap();
        let per_checkpoint = if two_phase { 2 } else { 1 };
        assert_eq!(
            report.counts.total,
            per_checkpoint * wal.size_checkpoints,
            "{report:?}"
        );
        let last = report.last_checkpoint.unwrap();
        assert_eq!(last.reason(), CheckpointReason::Size);
        assert_eq!(last.mode(), CheckpointMode::Passive);
        if two_phase {
            let phase1 = last.backfill().expect("two phases");
            assert_eq!(phase1.reason(), CheckpointReason::Backfill);
        } else {
            assert!(last.backfill().is_none());
        }
        let report = guard.shutdown().await.unwrap();
        // CREATE TABLE and the PRAGMA closure count too.
        assert_eq!(report.db.writes_acknowledged, writes as u64 + 2);
        let path = dir.path().join("state.db");
        assert_eq!(integrity_and_count(&path), ("ok".to_owned(), writes));
    }
}

/// `checkpoint.size_threshold_frames: 0` leaves size-triggered checkpoints
/// to SQLite's rule (`database.wal_autocheckpoint`), run inside the commit:
/// none is reported, and the WAL still restarts.
#[actix_rt::test]
async fn threshold_zero_leaves_the_size_checkpoint_to_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), MINUTE);
    s.checkpoint.size_threshold_frames = 0;
    s.database.wal_autocheckpoint = 20;
    let guard = start_here(s).await;
    assert!(stats(&guard).await.wal.is_none());
    sustained(&guard, 2_000, 16).await;
    let log: i64 = guard
        .db()
        .call(|c| c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1)))
        .await
        .unwrap();
    assert!(log < 2 * 20 + 16, "the WAL restarted near 20 frames: {log}");
    let report = guard.shutdown().await.unwrap();
    assert_eq!(
        report.counts.total, 1,
        "only the shutdown TRUNCATE: {report:?}"
    );
}

/// With `two_phase`, phase 1's thread wakes `DbActor` when it returns, so
/// phase 2 runs and the durable point moves even if no write follows; the
/// shutdown then closes the writer last (the WAL is deleted) and loses
/// nothing.
#[actix_rt::test]
async fn two_phase_finishes_without_a_further_write_and_shuts_down_clean() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), MINUTE);
    s.checkpoint.size_checkpoint = SizeCheckpoint::TwoPhase;
    s.checkpoint.size_threshold_frames = 50;
    let guard = start_on(s, Placement::OwnArbiter).await;
    let mut writes = 0;
    while stats(&guard).await.wal.unwrap().current < 50 {
        guard.db().execute(insert(writes)).await.unwrap();
        writes += 1;
    }
    // No write from here on: only the waker can bring phase 2.
    let bound = std::time::Instant::now() + Duration::from_secs(30);
    let wal = loop {
        let wal = stats(&guard).await.wal.unwrap();
        if wal.size_checkpoints >= 1 {
            break wal;
        }
        assert!(
            std::time::Instant::now() < bound,
            "phase 2 never ran: {wal:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(wal.size_checkpoints, 1, "{wal:?}");
    let durability = guard.db().durability().await.unwrap().unwrap();
    assert_eq!(durability.exposed_commits(), 0, "{durability:?}");
    let report = guard.report().await.unwrap();
    let last = report.last_checkpoint.unwrap();
    assert_eq!(last.reason(), CheckpointReason::Size);
    assert_eq!(*last.outcome(), CheckpointOutcome::Completed, "{last:?}");
    assert_eq!(
        last.backfill().unwrap().reason(),
        CheckpointReason::Backfill
    );
    let report = guard.shutdown().await.unwrap();
    assert_eq!(report.db.writes_acknowledged, writes as u64 + 1);
    let path = dir.path().join("state.db");
    assert!(!wal_path(&path).exists(), "the writer's close was the last");
    assert_eq!(integrity_and_count(&path), ("ok".to_owned(), writes));
}
