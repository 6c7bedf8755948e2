//! A read's ends: the shutdown interrupts a long read and its TRUNCATE
//! completes; a panicking read is its caller's error and the pool goes on.

use super::*;

/// The shutdown closes the readers before its TRUNCATE: a read that never
/// ends on its own is interrupted at the drain deadline (its caller gets
/// `ReadStopped`), the TRUNCATE completes and leaves an empty WAL, and a
/// read after the shutdown is `ShutDown`. The read pinned a snapshot older
/// than the last writes, so a TRUNCATE under it could not have completed.
#[actix_rt::test]
async fn shutdown_interrupts_a_long_read_and_its_truncate_completes() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), MINUTE);
    s.database.busy_timeout = Duration::from_millis(200);
    let guard = start_threaded(s).await;
    let db = guard.db().clone();
    db.execute(insert(1)).await.unwrap();
    let read = pin_snapshot(&db).await;
    for id in 2..50 {
        db.execute(insert(id)).await.unwrap();
    }
    let started = Instant::now();
    let report = guard.shutdown().await.unwrap();
    let took = started.elapsed();
    let err = read.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, Error::Db(walguard::Error::ReadStopped { .. })),
        "{err:?}"
    );
    let truncate = report.shutdown_checkpoint.expect("the TRUNCATE ran");
    assert_eq!(
        *truncate.outcome(),
        CheckpointOutcome::Completed,
        "{truncate:?}"
    );
    assert_eq!(
        std::fs::metadata(wal_path(&dir.path().join("state.db"))).map_or(0, |m| m.len()),
        0,
        "the WAL is empty after the TRUNCATE"
    );
    // The reads had the drain deadline: busy_timeout + 250 ms, at least.
    assert!(took >= Duration::from_millis(400), "{took:?}");
    let after = db
        .read(|c| c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)))
        .await;
    assert!(matches!(after, Err(Error::ShutDown)), "{after:?}");
    let after = db.query("SELECT 1").await;
    assert!(matches!(after, Err(Error::ShutDown)), "{after:?}");
}

/// A panicking read closure is its caller's error (`ReadPanicked`, with
/// the message); the pool replaces that connection and goes on serving, on
/// every connection, and the writer never heard of it.
#[actix_rt::test]
async fn a_panicking_read_is_its_callers_error_and_the_pool_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), MINUTE);
    s.read.connections = 1;
    let guard = start_threaded(s).await;
    let db = guard.db();
    db.execute(insert(1)).await.unwrap();
    let err = db
        .read(|_| -> rusqlite::Result<()> { panic!("a bug in the reader") })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Db(walguard::Error::ReadPanicked { message }) if message.contains("a bug in the reader")),
        "{err:?}"
    );
    for _ in 0..3 {
        let n: i64 = db
            .read(|c| c.query_row("SELECT count(*) FROM kv", [], |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
    db.execute(insert(2)).await.unwrap();
    let report = guard.shutdown().await.unwrap();
    let reads = report.reads.expect("the report has the readers");
    assert_eq!(
        (
            reads.counts().served,
            reads.counts().failed,
            reads.counts().panicked,
            reads.counts().replaced
        ),
        (3, 1, 1, 1),
        "{reads}"
    );
    assert_eq!(
        report.db.writes_acknowledged, 3,
        "CREATE TABLE and two inserts"
    );
}
