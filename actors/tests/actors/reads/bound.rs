//! The snapshot-age bound through the actors: a read past
//! `read.max_snapshot_age` is interrupted and the TRUNCATE it held up
//! completes (control: no bound, it stays busy); the starvation status
//! names the reader that pins the WAL.

use super::*;

/// Settings for the bound's tests: a blocking checkpoint waits up to 2 s
/// on readers (the lesser of the two busy timeouts); `max_age` bounds a
/// read's snapshot.
fn bounded(dir: &std::path::Path, max_age: Duration) -> Settings {
    let mut s = settings(dir, MINUTE);
    s.database.busy_timeout = Duration::from_secs(2);
    s.database.checkpoint_busy_timeout = Duration::from_secs(2);
    s.read.max_snapshot_age = max_age;
    s
}

/// The snapshot-age bound through the actors: a read pinning the WAL past
/// `read.max_snapshot_age` is interrupted, its caller gets the error that
/// names the setting, and the TRUNCATE that was waiting on it completes
/// (well inside its own 2 s). Control below: with no bound, the same
/// TRUNCATE gives up busy.
#[actix_rt::test]
async fn a_read_past_its_bound_is_interrupted_and_the_checkpoint_completes() {
    let dir = tempfile::tempdir().unwrap();
    let guard = start_threaded(bounded(dir.path(), Duration::from_millis(300))).await;
    let db = guard.db().clone();
    db.execute(insert(1)).await.unwrap();
    let read = pin_snapshot(&db).await;
    for id in 2..50 {
        db.execute(insert(id)).await.unwrap();
    }
    let report = db.checkpoint(CheckpointMode::Truncate).await.unwrap();
    assert_eq!(
        *report.outcome(),
        CheckpointOutcome::Completed,
        "{report:?}"
    );
    let err = read.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, Error::Db(walguard::Error::ReadTooOld { limit, .. }) if *limit == Duration::from_millis(300)),
        "{err:?}"
    );
    assert!(err.to_string().contains("read.max_snapshot_age"), "{err}");
    let report = guard.report().await.unwrap();
    let reads = report.reads.expect("the report has the readers");
    assert_eq!(reads.counts().interrupted, 1, "{reads}");
    guard.shutdown().await.unwrap();
}

/// Control: with no bound (an hour), the same read keeps its snapshot and
/// the same TRUNCATE gives up busy after its 2 s; the shutdown then stops
/// the read.
#[actix_rt::test]
async fn control_with_no_bound_the_checkpoint_stays_busy() {
    let dir = tempfile::tempdir().unwrap();
    let guard = start_threaded(bounded(dir.path(), Duration::from_secs(3600))).await;
    let db = guard.db().clone();
    db.execute(insert(1)).await.unwrap();
    let read = pin_snapshot(&db).await;
    for id in 2..50 {
        db.execute(insert(id)).await.unwrap();
    }
    let report = db.checkpoint(CheckpointMode::Truncate).await.unwrap();
    assert_eq!(*report.outcome(), CheckpointOutcome::Busy, "{report:?}");
    assert!(!read.is_finished(), "the read ended by itself?");
    guard.shutdown().await.unwrap();
    let err = read.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, Error::Db(walguard::Error::ReadStopped { .. })),
        "{err:?}"
    );
}

/// The starvation status names what pins the WAL: a read of walguard's
/// own (its connection, `closure`, age), or a connection outside walguard
/// when none of ours runs. On the paused clock: three intervals pass while
/// the reader holds its snapshot (the wall-clock bound of 30 s is far).
#[actix_rt::test]
async fn the_starvation_status_names_the_reader_that_pins_the_wal() {
    use walguard::exposure::StarvationCause;
    tokio::time::pause();
    for ours in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let guard = crate::common::start_here(settings(dir.path(), MINUTE)).await;
        guard.watch_exposure(Duration::from_secs(1));
        guard.db().execute(insert(1)).await.unwrap();
        let outside = rusqlite::Connection::open(&path).unwrap();
        let read = if ours {
            Some(pin_snapshot(guard.db()).await)
        } else {
            outside
                .execute_batch("BEGIN; SELECT count(*) FROM kv;")
                .unwrap();
            None
        };
        guard.db().execute(insert(2)).await.unwrap();
        guard.start_checkpoint_loop();
        tokio::time::sleep(3 * MINUTE + Duration::from_secs(2)).await;
        let status = guard.status().await.unwrap();
        assert_eq!(
            status.starvation_cause,
            Some(StarvationCause::ReaderPinning),
            "{status:?}"
        );
        let by = status.pinned_by.clone().expect("names what pins the WAL");
        if ours {
            assert!(
                by.starts_with("walguard's own read connection") && by.contains("closure"),
                "{by}"
            );
        } else {
            assert!(by.contains("outside walguard"), "{by}");
        }
        drop(outside);
        guard.shutdown().await.unwrap();
        if let Some(read) = read {
            let err = read.await.unwrap().unwrap_err();
            assert!(
                matches!(&err, Error::Db(walguard::Error::ReadStopped { .. })),
                "{err:?}"
            );
        }
    }
}
