use std::time::{Duration, Instant};

use walguard::CheckpointOutcome;
use walguard_actors::WalGuard;

use crate::common::{create_table, insert, integrity_and_count, settings, wal_path};

/// A clean shutdown with no other connection: every acknowledged write is
/// there, the WAL is empty or gone, integrity holds.
#[actix_rt::test]
async fn clean_shutdown_leaves_an_empty_wal_and_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), Duration::from_secs(60));
    let path = s.database.path.clone();
    let guard = WalGuard::start(s).unwrap();
    create_table(&guard).await;

    // Fire 500 writes without waiting, then shut down: the shutdown queues
    // behind them and every one is drained first.
    let db = guard.db().clone();
    let pending: Vec<_> = (0..500)
        .map(|i| {
            let db = db.clone();
            actix_rt::spawn(async move { db.execute(insert(i)).await })
        })
        .collect();
    let mut acknowledged = 0;
    for p in pending {
        p.await.unwrap().unwrap();
        acknowledged += 1;
    }
    let report = guard.shutdown().await.unwrap();

    assert_eq!(report.db.writes_acknowledged, acknowledged + 1); // + CREATE TABLE
    let truncate = report.shutdown_checkpoint.expect("TRUNCATE ran");
    assert_eq!(*truncate.outcome(), CheckpointOutcome::Completed);
    assert_eq!(
        (truncate.log_frames(), truncate.checkpointed_frames()),
        (0, 0)
    );
    assert!(report.db.close_error.is_none());
    let wal = wal_path(&path);
    assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0);
    assert_eq!(integrity_and_count(&path), ("ok".to_owned(), 500));
}

/// Writes accepted before shutdown are drained even when nobody awaits them.
#[actix_rt::test]
async fn shutdown_drains_writes_already_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), Duration::from_secs(60));
    let path = s.database.path.clone();
    let guard = WalGuard::start(s).unwrap();
    create_table(&guard).await;
    for i in 0..200 {
        let _unawaited = crate::common::sent_at_once(guard.db(), insert(i));
    }
    // Let the spawned writes reach the lane before the shutdown step.
    tokio::task::yield_now().await;
    let report = guard.shutdown().await.unwrap();
    assert_eq!(report.db.writes_acknowledged, 201);
    assert_eq!(integrity_and_count(&path), ("ok".to_owned(), 200));
}

/// Another connection holds a read snapshot through shutdown: the TRUNCATE
/// cannot finish, so it reports busy, and shutdown still returns within its
/// deadline; no write is lost.
#[actix_rt::test]
async fn shutdown_under_a_reader_returns_within_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), Duration::from_secs(60));
    let deadline = Duration::from_millis(300);
    s.checkpoint.shutdown_timeout = deadline;
    let path = s.database.path.clone();
    let guard = WalGuard::start(s).unwrap();
    create_table(&guard).await;
    for i in 0..100 {
        guard.db().execute(insert(i)).await.unwrap();
    }

    let reader = rusqlite::Connection::open(&path).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let seen: i64 = reader
        .query_row("SELECT count(*) FROM kv", [], |r| r.get(0))
        .unwrap();
    assert_eq!(seen, 100);
    for i in 100..150 {
        guard.db().execute(insert(i)).await.unwrap();
    }

    let started = Instant::now();
    let report = guard.shutdown().await.unwrap();
    let took = started.elapsed();
    // A hang guard: deadline plus a margin for a loaded machine.
    assert!(
        took < deadline + Duration::from_secs(2),
        "shutdown took {took:?}"
    );
    let truncate = report.shutdown_checkpoint.expect("TRUNCATE ran");
    assert_eq!(*truncate.outcome(), CheckpointOutcome::Busy, "{truncate:?}");
    assert_eq!(report.counts.busy, 1);

    reader.execute_batch("COMMIT").unwrap();
    drop(reader);
    assert_eq!(integrity_and_count(&path), ("ok".to_owned(), 150));
}

/// Kind: a second engine tries the file while the first one's shutdown
/// still writes to it: its TRUNCATE (held for its whole deadline by a
/// reader here) and its close. The engine lock is released only once the
/// store is closed: a thread that tries to take it every millisecond,
/// from before the shutdown on, first gets it after the TRUNCATE ended,
/// which is at least the TRUNCATE's own duration after the shutdown
/// began, however loaded the machine. (A lock released before the
/// TRUNCATE is taken within milliseconds of the shutdown's start.)
#[actix_rt::test]
async fn the_engine_lock_is_held_until_the_shutdown_has_closed_the_store() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), Duration::from_secs(60));
    s.checkpoint.shutdown_timeout = Duration::from_secs(1);
    let path = s.database.path.clone();
    let guard = WalGuard::start(s).unwrap();
    create_table(&guard).await;
    guard.db().execute(insert(1)).await.unwrap();
    let reader = rusqlite::Connection::open(&path).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT count(*) FROM kv", [], |r| r.get(0))
        .unwrap();
    guard.db().execute(insert(2)).await.unwrap();

    let refused = Arc::new(AtomicU64::new(0));
    let second_engine = {
        let (refused, path) = (Arc::clone(&refused), path.clone());
        std::thread::spawn(move || {
            loop {
                if let Ok(lock) = walguard::EngineLock::acquire(&path) {
                    return (Instant::now(), lock);
                }
                refused.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    while refused.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let began = Instant::now();
    let report = guard.shutdown().await.unwrap();
    let (taken_at, lock) = second_engine.join().unwrap();
    drop(lock);
    let truncate = report.shutdown_checkpoint.expect("TRUNCATE ran");
    assert_eq!(*truncate.outcome(), CheckpointOutcome::Busy, "{truncate:?}");
    let after = taken_at.saturating_duration_since(began);
    assert!(
        after >= truncate.elapsed(),
        "a second engine got the lock {after:?} into the shutdown, while its TRUNCATE ran for {:?}",
        truncate.elapsed()
    );
    reader.execute_batch("COMMIT").unwrap();
}

/// After shutdown, requests get their own "shut down" error (not "`DbActor`
/// did not answer"), whatever the request.
#[actix_rt::test]
async fn requests_after_shutdown_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let guard = WalGuard::start(settings(dir.path(), Duration::from_secs(60))).unwrap();
    create_table(&guard).await;
    let db = guard.db().clone();
    guard.shutdown().await.unwrap();
    // "At once": refused on the first poll, without waiting on anything (a
    // zero timeout polls the request once, then gives up).
    let err = tokio::time::timeout(Duration::ZERO, db.execute(insert(1)))
        .await
        .expect("the request waited instead of being refused at once")
        .unwrap_err();
    assert!(matches!(err, walguard_actors::Error::ShutDown), "{err:?}");
    assert!(err.to_string().contains("shut down"), "{err}");
    let err = db.query("SELECT 1").await.unwrap_err();
    assert!(matches!(err, walguard_actors::Error::ShutDown), "{err:?}");
    let err = db.call(|c| c.execute("SELECT 1", [])).await.unwrap_err();
    assert!(matches!(err, walguard_actors::Error::ShutDown), "{err:?}");
    let err = db
        .checkpoint(walguard::CheckpointMode::Passive)
        .await
        .unwrap_err();
    assert!(matches!(err, walguard_actors::Error::ShutDown), "{err:?}");
}
