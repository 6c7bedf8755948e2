//! The lane: a system's `DbHandle` sends every request on a bounded channel
//! that `DbActor` drains (not through the actor's mailbox). The group
//! commit promises hold on it as they do on the mailbox: writes waiting
//! together share one commit, each gets its own result, the order is kept,
//! every other request sees the writes before it, the lane is bounded, and
//! the shutdown serves what it accepted.
//!
//! `DbActor` runs on the test's own thread (`Placement::Current`), and the
//! requests are tasks spawned in order: a current-thread runtime runs them
//! in that order, each puts its request on the lane at its first poll, and
//! the actor only runs once they all have. So which writes share a group is
//! deterministic.

use std::time::Duration;

use actix_rt::task::JoinHandle;
use walguard::{CheckpointMode, CheckpointOutcome, Statement};
use walguard_actors::db::WriterStats;
use walguard_actors::{DbHandle, WalGuard};

use crate::common::{insert, integrity_and_count, settings, start_here};

const MINUTE: Duration = Duration::from_secs(60);

async fn stats(guard: &WalGuard) -> WriterStats {
    guard.db().writer_stats().await.unwrap()
}

/// Spawns one task per write, in order; each awaits its own answer.
fn spawn_writes(
    db: &DbHandle,
    stmts: impl IntoIterator<Item = Statement>,
) -> Vec<JoinHandle<walguard_actors::Result<usize>>> {
    stmts
        .into_iter()
        .map(|stmt| {
            let db = db.clone();
            actix_rt::spawn(async move { db.execute(stmt).await })
        })
        .collect()
}

/// Runs `request` as a task spawned now, so that it reaches the lane after
/// every task spawned before it, and returns its answer.
async fn then<F, Fut, T>(db: &DbHandle, request: F) -> T
where
    F: FnOnce(DbHandle) -> Fut,
    Fut: std::future::Future<Output = walguard_actors::Result<T>> + 'static,
    T: 'static,
{
    actix_rt::spawn(request(db.clone())).await.unwrap().unwrap()
}

/// Writes sent through the handle together share one commit, and each
/// sender gets its own answer after it.
#[actix_rt::test]
async fn handle_writes_waiting_together_share_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let guard = start_here(settings(dir.path(), MINUTE)).await;
    let tasks = spawn_writes(guard.db(), (0..100).map(insert));
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), 1);
    }
    let s = stats(&guard).await;
    // CREATE TABLE, then the 100 in one group.
    assert_eq!(
        (s.flushes, s.flushed_writes, s.largest_flush),
        (2, 101, 100),
        "{s:?}"
    );
    let durability = guard.db().durability().await.unwrap().unwrap();
    assert_eq!((durability.commits(), durability.writes()), (2, 101));
    guard.shutdown().await.unwrap();
    assert_eq!(
        integrity_and_count(&dir.path().join("state.db")),
        ("ok".to_owned(), 100)
    );
}

/// A failing write fails alone, through the lane as through the mailbox.
#[actix_rt::test]
async fn a_failing_write_on_the_lane_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let guard = start_here(settings(dir.path(), MINUTE)).await;
    let mut stmts: Vec<Statement> = (1..=10).map(insert).collect();
    stmts.insert(3, "INSERT INTO nowhere VALUES (1)".into());
    stmts.insert(6, insert(2)); // a duplicate key
    let tasks = spawn_writes(guard.db(), stmts);
    let mut failed = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Ok(1) => {}
            Err(walguard_actors::Error::Db(walguard::Error::Statement { .. })) => failed.push(i),
            other => panic!("{i}: {other:?}"),
        }
    }
    assert_eq!(failed, [3, 6]);
    let s = stats(&guard).await;
    assert_eq!(s.largest_flush, 12, "{s:?}");
    let report = guard.shutdown().await.unwrap();
    assert_eq!(report.db.writes_failed, 2);
    assert_eq!(
        integrity_and_count(&dir.path().join("state.db")),
        ("ok".to_owned(), 10)
    );
}

/// No group holds more than `database.max_batch` writes from the lane.
#[actix_rt::test]
async fn the_batch_cap_holds_on_the_lane() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), MINUTE);
    s.database.max_batch = 16;
    let guard = start_here(s).await;
    for task in spawn_writes(guard.db(), (0..100).map(insert)) {
        task.await.unwrap().unwrap();
    }
    let s = stats(&guard).await;
    // CREATE TABLE, then 6 full groups of 16 and one of 4.
    assert_eq!(
        (s.flushes, s.flushed_writes, s.largest_flush),
        (8, 101, 16),
        "{s:?}"
    );
    guard.shutdown().await.unwrap();
}

/// The lane holds `database.mailbox_capacity` requests: the others wait
/// for room, so the first group the writer sees is exactly that size
/// (with an unbounded lane it would be all 20).
#[actix_rt::test]
async fn the_lane_is_bounded_by_the_mailbox_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), MINUTE);
    s.database.mailbox_capacity = 8;
    let guard = start_here(s).await;
    for task in spawn_writes(guard.db(), (0..20).map(insert)) {
        task.await.unwrap().unwrap();
    }
    let s = stats(&guard).await;
    assert_eq!((s.flushed_writes, s.largest_flush), (21, 8), "{s:?}");
    guard.shutdown().await.unwrap();
    assert_eq!(
        integrity_and_count(&dir.path().join("state.db")),
        ("ok".to_owned(), 20)
    );
}

/// Every other request of the handle sees the writes the handle accepted
/// before it committed: a query, a checkpoint, durability, a closure, a
/// transaction.
#[actix_rt::test]
async fn handle_requests_see_every_earlier_write_committed() {
    let dir = tempfile::tempdir().unwrap();
    let guard = start_here(settings(dir.path(), MINUTE)).await;
    let db = guard.db().clone();
    // Each request is a task spawned after the writes before it, so it
    // reaches the lane after them.
    let writes = spawn_writes(&db, (0..50).map(insert));
    let count = then(&db, |db| async move {
        db.query("SELECT count(*) FROM kv").await
    })
    .await;
    assert_eq!(count.rows()[0][0], rusqlite::types::Value::Integer(50));

    let more = spawn_writes(&db, (50..100).map(insert));
    let report = then(&db, |db| async move {
        db.checkpoint(CheckpointMode::Passive).await
    })
    .await;
    assert_eq!(*report.outcome(), CheckpointOutcome::Completed);
    assert!(report.log_frames() > 0, "{report:?}");
    let durability = then(&db, |db| async move { db.durability().await })
        .await
        .unwrap();
    assert_eq!(durability.writes(), 101);
    assert_eq!(durability.exposed_writes(), 0, "{durability:?}");

    let last = spawn_writes(&db, (100..110).map(insert));
    let seen: i64 = then(&db, |db| async move {
        db.call(|c| c.query_row("SELECT count(*) FROM kv", [], |r| r.get(0)))
            .await
    })
    .await;
    assert_eq!(seen, 110);
    let tail = spawn_writes(&db, (110..120).map(insert));
    let changed = then(&db, |db| async move {
        db.transaction(vec![Statement::new("DELETE FROM kv WHERE id >= 110")])
            .await
    })
    .await;
    assert_eq!(changed, [10]);

    for task in writes.into_iter().chain(more).chain(last).chain(tail) {
        task.await.unwrap().unwrap();
    }
    guard.shutdown().await.unwrap();
    assert_eq!(
        integrity_and_count(&dir.path().join("state.db")),
        ("ok".to_owned(), 110)
    );
}

/// With `database.group_commit: false`, each write from the lane is its own
/// commit.
#[actix_rt::test]
async fn group_commit_off_on_the_lane_commits_each_write_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), MINUTE);
    s.database.group_commit = false;
    let guard = start_here(s).await;
    for task in spawn_writes(guard.db(), (0..20).map(insert)) {
        task.await.unwrap().unwrap();
    }
    let s = stats(&guard).await;
    assert_eq!(s.flushes, 0);
    let durability = guard.db().durability().await.unwrap().unwrap();
    assert_eq!((durability.commits(), durability.writes()), (21, 21));
    guard.shutdown().await.unwrap();
}

/// The shutdown serves every request the lane accepted before it, and
/// refuses the later ones. The writer runs on its own thread and is held
/// inside a closure while 300 writes wait on the lane and the shutdown
/// reaches the mailbox: the shutdown, not a later round of the lane, must
/// serve them (without that step they would be dropped and answered "shut
/// down").
#[actix_rt::test]
async fn shutdown_serves_every_request_the_lane_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), MINUTE);
    // 16 writes a round: the 300 take 19 rounds of the drain, so a drain
    // that served one round only would leave 284 unserved.
    s.database.max_batch = 16;
    let path = s.database.path.clone();
    let guard = WalGuard::start(s).unwrap();
    crate::common::create_table(&guard).await;
    let db = guard.db().clone();
    let (held, release) = crate::common::hold_writer(&db).await;
    let tasks = spawn_writes(&db, (0..300).map(insert));
    // Every write is on the lane after its task's first poll; the shutdown
    // then reaches the mailbox behind the held closure.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let shutdown = actix_rt::spawn(guard.shutdown());
    tokio::time::sleep(Duration::from_millis(100)).await;
    release.send(()).unwrap();
    held.await.unwrap().unwrap();
    let report = shutdown.await.unwrap().unwrap();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), 1);
    }
    // CREATE TABLE, the closure and the 300.
    assert_eq!(report.db.writes_acknowledged, 302);
    let err = db.execute(insert(1000)).await.unwrap_err();
    assert!(matches!(err, walguard_actors::Error::ShutDown), "{err:?}");
    assert_eq!(integrity_and_count(&path), ("ok".to_owned(), 300));
}
