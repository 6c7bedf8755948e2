//! A lane kept full (hook of feature `testing`): it starves neither the
//! mailbox nor the shutdown, group commit off or on.

use super::*;

/// The lane's capacity in the tests of a lane kept full: what a shutdown
/// then drains stays a few hundred writes.
#[cfg(feature = "testing")]
const FULL_LANE_CAPACITY: usize = 256;

/// Tasks that keep the lane full until `stop` is set, putting writes on it
/// without waiting for their answers, whatever the speed of the writer and
/// of the test's thread: without them, senders that wait for each answer
/// leave the lane empty whenever the writer is faster than they are, and a
/// round that serves until the lane is empty ends anyway.
#[cfg(feature = "testing")]
fn keep_the_lane_full(
    guard: &WalGuard,
    stop: &Arc<std::sync::atomic::AtomicBool>,
) -> Vec<actix_rt::task::JoinHandle<()>> {
    (0..4i64)
        .map(|t| {
            let db = guard.db().clone();
            let stop = Arc::clone(stop);
            actix_rt::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    // Its answer is not awaited; the write stays on the lane.
                    match db.try_execute(insert(1_000_000_000 + t * 100_000_000 + i)) {
                        Ok(_) => i += 1,
                        // Full, or closed by the shutdown: the others' turn.
                        Err(_) => tokio::task::yield_now().await,
                    }
                }
            })
        })
        .collect()
}

/// A lane that never runs empty must not starve the mailbox: a message
/// sent to the actor's address is handled within a few rounds, not after
/// the senders stop. Since the writer's requests all go through the lane
/// (`writer_stats` too, served in its turn behind the writes), the one
/// mailbox message a caller sends is the shutdown's: it must reach the
/// writer while the senders still keep the lane full, long before its
/// drain deadline (30.25 s), which a starved shutdown waits out, every
/// sender then being answered `ShutdownDeadline`.
// The lane is kept full through a hook of feature `testing`.
#[cfg(feature = "testing")]
async fn busy_lane_mailbox_wait(group_commit: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), MINUTE);
    s.database.group_commit = group_commit;
    s.database.synchronous = walguard::settings::Synchronous::Full;
    s.database.busy_timeout = FAR_BUSY_TIMEOUT;
    s.database.mailbox_capacity = FULL_LANE_CAPACITY;
    let guard = WalGuard::start(s).unwrap();
    create_table(&guard).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let fillers = keep_the_lane_full(&guard, &stop);
    let acked = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for t in 0..64i64 {
        let db = guard.db().clone();
        let acked = Arc::clone(&acked);
        tasks.push(actix_rt::spawn(async move {
            let mut i = 0;
            loop {
                match db.execute(insert(t * 10_000_000 + i)).await {
                    Ok(_) => {
                        acked.fetch_add(1, Ordering::Relaxed);
                        i += 1;
                    }
                    Err(Error::ShutDown | Error::Mailbox { .. }) => return 0,
                    Err(Error::Db(walguard::Error::ShutdownDeadline { .. })) => return 1,
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
        }));
    }
    until_acked(&acked, 256).await;
    // A request on the lane, behind the writes: served in its turn.
    let started = Instant::now();
    let answer = tokio::time::timeout(HANG, guard.db().writer_stats()).await;
    eprintln!("writer_stats waited {:?}", started.elapsed());
    assert!(
        matches!(answer, Ok(Ok(_))),
        "writer_stats unanswered behind a busy lane: {answer:?}"
    );
    // The mailbox message, the senders still going.
    let started = Instant::now();
    guard.shutdown().await.unwrap();
    let took = started.elapsed();
    let mut deadline_errors = 0;
    for t in tasks {
        deadline_errors += t.await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for f in fillers {
        f.await.unwrap();
    }
    eprintln!("the shutdown's message waited {took:?}");
    assert!(
        took < FAR_BUSY_TIMEOUT && deadline_errors == 0,
        "the shutdown's message starved for {took:?} by a busy lane; \
         {deadline_errors} senders answered ShutdownDeadline"
    );
}

#[cfg(feature = "testing")]
#[actix_rt::test]
async fn group_commit_off_busy_lane_does_not_starve_the_mailbox() {
    busy_lane_mailbox_wait(false).await;
}

/// The negative control: with group commit on, the same load leaves the
/// mailbox its turn.
#[cfg(feature = "testing")]
#[actix_rt::test]
async fn group_commit_on_busy_lane_does_not_starve_the_mailbox() {
    busy_lane_mailbox_wait(true).await;
}

/// Group commit off under `synchronous=full`, senders that keep going
/// until refused: the clean shutdown must not wait for the drain deadline.
/// The deadline is `busy_timeout` + 250 ms, 30.25 s here: far above the
/// round of at most 64 fsynced writes the shutdown waits behind, however
/// slow the disk or loaded the machine, and exactly what a starved
/// shutdown takes.
// The lane is kept full through a hook of feature `testing`.
#[cfg(feature = "testing")]
#[actix_rt::test]
async fn group_commit_off_busy_lane_does_not_hold_the_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), MINUTE);
    s.database.group_commit = false;
    s.database.synchronous = walguard::settings::Synchronous::Full;
    s.database.busy_timeout = FAR_BUSY_TIMEOUT;
    s.database.mailbox_capacity = FULL_LANE_CAPACITY;
    let guard = WalGuard::start(s).unwrap();
    create_table(&guard).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let fillers = keep_the_lane_full(&guard, &stop);
    let acked = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for t in 0..64i64 {
        let db = guard.db().clone();
        let acked = Arc::clone(&acked);
        tasks.push(actix_rt::spawn(async move {
            let mut i = 0;
            loop {
                match db.execute(insert(t * 10_000_000 + i)).await {
                    Err(Error::ShutDown | Error::Mailbox { .. }) => return 0,
                    Err(Error::Db(walguard::Error::ShutdownDeadline { .. })) => return 1,
                    _ => {
                        acked.fetch_add(1, Ordering::Relaxed);
                        i += 1;
                    }
                }
            }
        }));
    }
    until_acked(&acked, 256).await;
    let started = Instant::now();
    let report = guard.shutdown().await.unwrap();
    let took = started.elapsed();
    eprintln!(
        "shutdown took {took:?}: {:?} acked {}",
        report.db.close_error, report.db.writes_acknowledged
    );
    let mut deadline_errors = 0;
    for t in tasks {
        deadline_errors += t.await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for f in fillers {
        f.await.unwrap();
    }
    // A round of at most 64 fsynced writes, the lane's rest, then the
    // TRUNCATE: under the drain deadline (30.25 s), which a starved
    // shutdown waits out, answering every sender ShutdownDeadline.
    assert!(
        took < FAR_BUSY_TIMEOUT && deadline_errors == 0,
        "shutdown took {took:?}; {deadline_errors} senders answered ShutdownDeadline"
    );
}
