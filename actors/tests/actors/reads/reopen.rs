//! A checkpoint I/O error with the readers open: the reopen pauses the
//! pool, the read in flight is interrupted, the next checkpoint completes.

use super::*;

/// Kind: a checkpoint's fsync fails while the read pool is open (issue 23,
/// a regression the read side brought: the writer's reopen, which
/// rebuilds the WAL index, failed on the readers' connections, and every
/// later checkpoint was refused until the shutdown). The reopen pauses the
/// pool: the read in flight is interrupted (`ReadPausedForReopen`), the
/// next checkpoint completes, reads go on, and the shutdown TRUNCATE
/// completes with every acknowledged write in the file.
#[cfg(feature = "testing")]
#[actix_rt::test]
async fn a_checkpoint_io_error_with_readers_open_is_answered_by_a_reopen() {
    use walguard::testing::{Fault, FileKind, PowerLossVfs};
    let vfs = PowerLossVfs::register().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), MINUTE);
    s.checkpoint.size_threshold_frames = 0;
    let guard = WalGuard::builder(s)
        .db_placement(Placement::Current)
        .vfs(vfs.name())
        .start()
        .unwrap();
    create_table(&guard).await;
    let db = guard.db();
    for id in 0..10 {
        db.execute(insert(id)).await.unwrap();
    }
    // A read of ours pins a snapshot: a partial checkpoint copies up to it
    // (the backfill count moves), as in the core's failed-fsync scenario.
    let (started_tx, started) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let read = {
        let db = db.clone();
        actix_rt::spawn(async move {
            db.read(move |c| {
                let n: i64 = c.query_row("SELECT count(*) FROM kv", [], |r| r.get(0))?;
                let _ = started_tx.send(());
                let _ = released.recv_timeout(MINUTE);
                Ok(n)
            })
            .await
        })
    };
    tokio::task::spawn_blocking(move || started.recv_timeout(MINUTE))
        .await
        .unwrap()
        .unwrap();
    for id in 10..20 {
        db.execute(insert(id)).await.unwrap();
    }
    let partial = db.checkpoint(CheckpointMode::Passive).await.unwrap();
    assert_eq!(
        *partial.outcome(),
        CheckpointOutcome::Partial,
        "{partial:?}"
    );
    release.send(()).unwrap();
    assert_eq!(read.await.unwrap().unwrap(), 10);
    // A read in flight when the checkpoint fails: it runs until something
    // interrupts it (no bound reaches it in this test).
    let (started_tx, started) = mpsc::channel();
    let in_flight = {
        let db = db.clone();
        actix_rt::spawn(async move {
            db.read(move |c| {
                let _ = started_tx.send(());
                c.query_row(ENDLESS, [], |r| r.get::<_, i64>(0))
            })
            .await
        })
    };
    tokio::task::spawn_blocking(move || started.recv_timeout(MINUTE))
        .await
        .unwrap()
        .unwrap();
    vfs.inject(Fault::SyncFails {
        file: FileKind::MainDb,
        count: 1,
    });
    let failed = db.checkpoint(CheckpointMode::Passive).await.unwrap();
    assert!(failed.io_error(), "{failed:?}");
    let err = in_flight.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, Error::Db(walguard::Error::ReadPausedForReopen { .. })),
        "{err:?}"
    );
    // The index was rebuilt: the next checkpoint copies every frame again
    // (before the fix: refused, "another connection").
    db.execute(insert(20)).await.unwrap();
    let next = db.checkpoint(CheckpointMode::Passive).await.unwrap();
    assert_eq!(*next.outcome(), CheckpointOutcome::Completed, "{next:?}");
    // Reads go on, on connections opened again.
    let count = db.query("SELECT count(*) FROM kv").await.unwrap();
    assert_eq!(count.rows()[0][0], rusqlite::types::Value::Integer(21));
    let report = guard.shutdown().await.unwrap();
    let truncate = report.shutdown_checkpoint.expect("the TRUNCATE ran");
    assert_eq!(
        *truncate.outcome(),
        CheckpointOutcome::Completed,
        "{truncate:?}"
    );
    let reads = report.reads.expect("the report has the readers");
    assert_eq!(reads.counts().interrupted, 1, "{reads}");
    let conn = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    let (integrity, rows): (String, i64) = (
        conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap(),
        conn.query_row("SELECT count(*) FROM kv", [], |r| r.get(0))
            .unwrap(),
    );
    assert_eq!((integrity.as_str(), rows), ("ok", 21));
}
