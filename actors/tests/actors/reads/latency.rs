//! Writes never wait for reads (issue 23, item 2): the worst write latency
//! beside 4 long reads stays near the no-read figure; control: the same
//! reads on the writer's lane push it past the bound.

use super::*;

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
