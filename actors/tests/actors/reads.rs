//! The read side through the actors: `DbHandle::read` and `query` on the
//! read pool, beside the writer's lane; read your writes; the shutdown
//! closing the readers before its TRUNCATE; the snapshot-age bound and the
//! checkpoints it frees.
//!
//! Real threads here (`Placement::OwnArbiter`, the pool's own threads):
//! concurrency is the point. Every time bound is one a loaded machine
//! cannot cross in the wrong direction: a read that never ends on its own
//! is what the bound or the shutdown must stop.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use walguard::{CheckpointMode, CheckpointOutcome, Settings};
use walguard_actors::{DbHandle, Error, Placement, WalGuard};

use crate::common::{create_table, hold_writer, insert, settings, wal_path};

const MINUTE: Duration = Duration::from_secs(60);

/// A statement that never ends on its own: only an interrupt stops it.
const ENDLESS: &str =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";

async fn start_threaded(settings: Settings) -> WalGuard {
    let guard = WalGuard::builder(settings)
        .db_placement(Placement::OwnArbiter)
        .start()
        .expect("start");
    create_table(&guard).await;
    guard
}

/// Starts a read that takes its snapshot (one `SELECT`), says so, then
/// runs [`ENDLESS`]; returns once the snapshot is taken, with the task
/// awaiting the read's answer.
async fn pin_snapshot(db: &DbHandle) -> actix_rt::task::JoinHandle<walguard_actors::Result<i64>> {
    let (started_tx, started) = mpsc::channel();
    let db = db.clone();
    let task = actix_rt::spawn(async move {
        db.read(move |conn| {
            let _: i64 = conn.query_row("SELECT count(*) FROM kv", [], |r| r.get(0))?;
            let _ = started_tx.send(());
            conn.query_row(ENDLESS, [], |r| r.get(0))
        })
        .await
    });
    let waited = tokio::task::spawn_blocking(move || started.recv_timeout(MINUTE))
        .await
        .unwrap();
    waited.expect("the read took its snapshot");
    task
}

/// A read runs while the writer is held inside a closure: it is served on
/// a read connection, not behind the lane. Control: a read sent through
/// the lane (`call`) waits for the writer.
#[actix_rt::test]
async fn a_read_is_served_while_the_writer_is_busy() {
    let dir = tempfile::tempdir().unwrap();
    let guard = start_threaded(settings(dir.path(), MINUTE)).await;
    let db = guard.db();
    db.execute(insert(1)).await.unwrap();
    let (held, release) = hold_writer(db).await;

    let count: i64 = tokio::time::timeout(
        MINUTE,
        db.read(|c| c.query_row("SELECT count(*) FROM kv", [], |r| r.get(0))),
    )
    .await
    .expect("the read waited for the writer")
    .unwrap();
    assert_eq!(count, 1);
    let rows = db.query("SELECT id FROM kv").await.unwrap();
    assert_eq!(rows.len(), 1);

    // Control: through the lane, the same read waits while the writer is held.
    let on_lane = {
        let db = db.clone();
        actix_rt::spawn(async move {
            db.call(|c| c.query_row("SELECT count(*) FROM kv", [], |r| r.get::<_, i64>(0)))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !on_lane.is_finished(),
        "a closure on the lane ran past a held writer"
    );
    release.send(()).unwrap();
    held.await.unwrap().unwrap();
    assert_eq!(on_lane.await.unwrap().unwrap(), 1);

    let report = guard.shutdown().await.unwrap();
    assert!(report.db.close_error.is_none(), "{report:?}");
}

/// Read your writes: a read sent after a write's acknowledgement sees it,
/// through the same handle, a clone, or a clone made before the write;
/// every time, over many writes.
#[actix_rt::test]
async fn a_read_after_an_ack_sees_the_write_through_any_handle() {
    let dir = tempfile::tempdir().unwrap();
    let guard = start_threaded(settings(dir.path(), MINUTE)).await;
    let db = guard.db().clone();
    let earlier = db.clone();
    for id in 0..200i64 {
        db.execute(insert(id)).await.unwrap();
        let later = db.clone();
        let through: [&DbHandle; 3] = [&db, &earlier, &later];
        let reader = through[(id % 3) as usize];
        let seen: i64 = reader
            .read(move |c| c.query_row("SELECT count(*) FROM kv WHERE id = ?1", [id], |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(seen, 1, "write {id} not seen after its ack");
        let total = reader.query("SELECT count(*) FROM kv").await.unwrap();
        assert_eq!(total.rows()[0][0], rusqlite::types::Value::Integer(id + 1));
    }
    // And from another task, after a transaction's ack.
    db.transaction(vec![insert(1000), insert(1001)])
        .await
        .unwrap();
    let other = earlier.clone();
    let seen = actix_rt::spawn(async move {
        other
            .read(|c| {
                c.query_row("SELECT count(*) FROM kv WHERE id >= 1000", [], |r| {
                    r.get::<_, i64>(0)
                })
            })
            .await
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(seen, 2);
    guard.shutdown().await.unwrap();
}

/// Every statement of one read sees the same snapshot, even while writes
/// commit between them.
#[actix_rt::test]
async fn one_read_is_one_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let guard = start_threaded(settings(dir.path(), MINUTE)).await;
    let db = guard.db();
    db.execute(insert(1)).await.unwrap();
    let (first_tx, first) = mpsc::channel();
    let (go_tx, go) = mpsc::channel::<()>();
    let read = {
        let db = db.clone();
        actix_rt::spawn(async move {
            db.read(move |c| {
                let before: i64 = c.query_row("SELECT count(*) FROM kv", [], |r| r.get(0))?;
                let _ = first_tx.send(());
                let _ = go.recv_timeout(MINUTE);
                let after: i64 = c.query_row("SELECT count(*) FROM kv", [], |r| r.get(0))?;
                Ok((before, after))
            })
            .await
        })
    };
    tokio::task::spawn_blocking(move || first.recv_timeout(MINUTE))
        .await
        .unwrap()
        .unwrap();
    db.execute(insert(2)).await.unwrap();
    go_tx.send(()).unwrap();
    assert_eq!(read.await.unwrap().unwrap(), (1, 1));
    let now: i64 = db
        .read(|c| c.query_row("SELECT count(*) FROM kv", [], |r| r.get(0)))
        .await
        .unwrap();
    assert_eq!(now, 2);
    guard.shutdown().await.unwrap();
}

/// `query` refuses what is not a read, with an error naming the statement
/// and what it would do; nothing is written; `read` refuses a write too.
#[actix_rt::test]
async fn a_write_through_query_or_read_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let guard = start_threaded(settings(dir.path(), MINUTE)).await;
    let db = guard.db();
    let sql = "INSERT INTO kv (id, v) VALUES (7, x'00')";
    let err = db.query(sql).await.unwrap_err();
    assert!(
        matches!(&err, Error::Db(walguard::Error::ReadRefused { what, would: "writes" }) if what == sql),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains(sql) && message.contains("writes"),
        "{message}"
    );
    let err = db
        .read(|c| c.execute("DELETE FROM kv", []))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Db(walguard::Error::ReadRefused { what, would: "writes" }) if what == "closure"),
        "{err:?}"
    );
    let err = db
        .query("PRAGMA wal_checkpoint(TRUNCATE)")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Db(walguard::Error::ReadRefused { .. })),
        "{err:?}"
    );
    let count = db.query("SELECT count(*) FROM kv").await.unwrap();
    assert_eq!(count.rows()[0][0], rusqlite::types::Value::Integer(0));
    let report = guard.shutdown().await.unwrap();
    // The session report counts them: three refused, one served.
    let reads = report.reads.clone().expect("the report has the readers");
    let c = reads.counts();
    assert_eq!((c.served, c.failed, c.interrupted), (1, 3, 0), "{reads}");
    assert_eq!(reads.time().n(), 4, "{reads}");
    let text = report.to_string();
    assert!(
        text.contains("reads on 4 connections: 1 served, 3 failed"),
        "{text}"
    );
}

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

// --- writes never wait for reads (issue 23, item 2) ---------------------------

/// How long each of the latency test's reads runs: about 150 ms.
const LONG_READ: Duration = Duration::from_millis(150);

/// A read of about [`LONG_READ`]: short statements, one after another, in
/// one transaction, with a millisecond between them (a read waiting on its
/// pages, or on its caller's work); returns when it started and ended. Not
/// a spin: four reads spinning on a machine of two cores would measure the
/// OS scheduler's time slices, not whether a write waits for a read.
fn long_read(conn: &rusqlite::Connection) -> rusqlite::Result<(Instant, Instant)> {
    let start = Instant::now();
    while start.elapsed() < LONG_READ {
        let _: i64 = conn.query_row("SELECT count(*) FROM kv", [], |r| r.get(0))?;
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok((start, Instant::now()))
}

/// Writes every 1 ms (open loop: each write is sent at its tick, whatever
/// the earlier ones are doing) until `done` says so and at least `min`
/// were sent; returns the worst time from send to acknowledgement.
async fn worst_write_latency(
    db: &DbHandle,
    first_id: i64,
    min: i64,
    done: impl Fn() -> bool,
) -> Duration {
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let mut sent = Vec::new();
    let mut id = first_id;
    while id - first_id < min || !done() {
        tick.tick().await;
        let db = db.clone();
        let at = Instant::now();
        sent.push(actix_rt::spawn(async move {
            db.execute(insert(id)).await.map(|_| at.elapsed())
        }));
        id += 1;
    }
    let mut worst = Duration::ZERO;
    for write in sent {
        worst = worst.max(write.await.unwrap().unwrap());
    }
    worst
}

/// Whether every one of the reads ran at one time with every other.
fn all_overlap(spans: &[(Instant, Instant)]) -> bool {
    let latest_start = spans.iter().map(|s| s.0).max();
    let earliest_end = spans.iter().map(|s| s.1).min();
    matches!((latest_start, earliest_end), (Some(s), Some(e)) if s < e)
}

/// Writes every 1 ms; with 4 reads of about 150 ms running on the read
/// connections, the worst write latency stays within 3x the no-read
/// figure measured in the same test, or 20 ms above it, whichever is
/// larger, and the 4 reads overlap in time. Control: the same 4 reads on
/// the writer's lane (`call`) run one after another and the worst write
/// latency crosses that bound (each write behind them waits for them).
#[actix_rt::test]
async fn writes_do_not_wait_for_reads() {
    let dir = tempfile::tempdir().unwrap();
    let guard = start_threaded(settings(dir.path(), MINUTE)).await;
    let db = guard.db().clone();
    for id in 0..100 {
        db.execute(insert(1_000_000 + id)).await.unwrap();
    }

    let alone = worst_write_latency(&db, 0, 300, || true).await;
    let bound = (alone * 3).max(alone + Duration::from_millis(20));

    let reads: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            actix_rt::spawn(async move { db.read(long_read).await })
        })
        .collect();
    let beside = worst_write_latency(&db, 10_000, 150, || {
        reads.iter().all(actix_rt::task::JoinHandle::is_finished)
    })
    .await;
    let mut spans = Vec::new();
    for read in reads {
        spans.push(read.await.unwrap().unwrap());
    }
    assert!(
        all_overlap(&spans),
        "the 4 reads did not overlap: {spans:?}"
    );
    assert!(
        beside <= bound,
        "worst write latency with 4 reads running {beside:?}, alone {alone:?}, bound {bound:?}"
    );

    // Control: the same reads through the writer's lane.
    let on_lane: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            actix_rt::spawn(async move { db.call(|c| long_read(c)).await })
        })
        .collect();
    let behind = worst_write_latency(&db, 20_000, 150, || {
        on_lane.iter().all(actix_rt::task::JoinHandle::is_finished)
    })
    .await;
    let mut spans = Vec::new();
    for read in on_lane {
        spans.push(read.await.unwrap().unwrap());
    }
    assert!(
        !all_overlap(&spans),
        "reads on the lane overlapped: {spans:?}"
    );
    assert!(
        behind > bound,
        "control: reads on the lane left the worst write latency at {behind:?} (alone {alone:?}, bound {bound:?})"
    );
    eprintln!(
        "worst write latency: alone {alone:?}, beside 4 reads {beside:?}, reads on the lane {behind:?}"
    );
    guard.shutdown().await.unwrap();
}

// --- a checkpoint I/O error with the readers open -----------------------------

/// Kind: a checkpoint's fsync fails while the read pool is open. The
/// writer's reopen (which rebuilds the WAL index) cannot complete while
/// any other connection is open, the readers included: every later
/// checkpoint is refused ("another connection", nothing is checkpointed
/// from the stale index), while writes and reads go on. The shutdown
/// closes the readers before its TRUNCATE: the reopen then succeeds and
/// the TRUNCATE completes, with every acknowledged write in the file.
/// (What the pool does not do yet: close and reopen itself around the
/// writer's reopen during the session; docs/operations.md says what to
/// watch.)
#[cfg(feature = "testing")]
#[actix_rt::test]
async fn a_checkpoint_io_error_with_readers_open_waits_for_the_shutdown_to_reopen() {
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
    vfs.inject(Fault::SyncFails {
        file: FileKind::MainDb,
        count: 1,
    });
    let failed = db.checkpoint(CheckpointMode::Passive).await.unwrap();
    assert!(failed.io_error(), "{failed:?}");
    let refused = db.checkpoint(CheckpointMode::Passive).await.unwrap();
    assert!(
        refused.outcome().to_string().contains("another connection"),
        "{refused:?}"
    );
    // Writes and reads go on.
    db.execute(insert(20)).await.unwrap();
    let count = db.query("SELECT count(*) FROM kv").await.unwrap();
    assert_eq!(count.rows()[0][0], rusqlite::types::Value::Integer(21));
    let report = guard.shutdown().await.unwrap();
    let truncate = report.shutdown_checkpoint.expect("the TRUNCATE ran");
    assert_eq!(
        *truncate.outcome(),
        CheckpointOutcome::Completed,
        "{truncate:?}"
    );
    let conn = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    let (integrity, rows): (String, i64) = (
        conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap(),
        conn.query_row("SELECT count(*) FROM kv", [], |r| r.get(0))
            .unwrap(),
    );
    assert_eq!((integrity.as_str(), rows), ("ok", 21));
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
