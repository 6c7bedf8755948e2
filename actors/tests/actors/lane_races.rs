//! Adversarial tests of the lane, from a review that set out to break it.
//! Five failed before the fixes that came with them:
//! `request_refused_during_shutdown_drain_is_shut_down`,
//! `mixed_senders_racing_shutdown`,
//! `group_commit_off_busy_lane_does_not_starve_the_mailbox`,
//! `group_commit_off_busy_lane_does_not_hold_the_shutdown` and
//! `groups_are_answered_in_their_order`. Real time, `DbActor` on its own
//! arbiter (the default placement, with the replier).
//!
//! No test here waits a fixed time for a state to be reached: each waits
//! for the state itself (writes acknowledged, rows committed),
//! and the only wall-clock bounds are [`HANG`] and drain deadlines of
//! 30 s, which only a hang reaches however loaded the machine.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use walguard::Statement;
use walguard_actors::{Error, WalGuard};

use crate::common::{create_table, insert, integrity_and_count, settings};

const MINUTE: Duration = Duration::from_secs(60);

/// How long a wait for a state may take before the test fails as hung.
const HANG: Duration = Duration::from_secs(60);

/// A `busy_timeout` that puts the shutdown's drain deadline (30.25 s) out
/// of reach of a slow round, and within reach of a starved shutdown.
const FAR_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Waits until the senders have had `n` writes acknowledged: the lane is
/// busy. Fails only on a hang.
async fn until_acked(acked: &AtomicU64, n: u64) {
    let started = Instant::now();
    while acked.load(Ordering::Relaxed) < n {
        assert!(
            started.elapsed() < HANG,
            "{} writes acknowledged after {HANG:?}, waiting for {n}",
            acked.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until `path` holds `rows` rows in `kv`, read by a connection of
/// its own, and returns (`integrity_check`, row count): the writer, on its
/// own thread, has committed what it accepted. Fails only on a hang (the
/// count still short, or past `rows`, after [`HANG`]).
async fn until_rows(path: &Path, rows: i64) -> (String, i64) {
    let started = Instant::now();
    loop {
        let (integrity, count) = integrity_and_count(path);
        if count == rows || started.elapsed() >= HANG {
            return (integrity, count);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

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

/// A request refused because the shutdown closed the lane is answered
/// `Error::ShutDown`, also while the shutdown is still serving what it
/// accepted.
#[actix_rt::test]
async fn request_refused_during_shutdown_drain_is_shut_down() {
    // Whether the shutdown's message reaches the mailbox before the first
    // closure ends cannot be seen from here; a try where it did not (the
    // second closure then ran before the shutdown) is tried again, with a
    // longer wait. Without a refusal in 20 tries the lane is not closed
    // during the drain: that fails too.
    for attempt in 1..=20u64 {
        match refused_during_drain(Duration::from_millis(20 * attempt)).await {
            Some(err) => {
                assert!(
                    matches!(err, Error::ShutDown),
                    "refused during the drain: {err:?}"
                );
                return;
            }
            None => eprintln!("try {attempt}: the second closure ran before the shutdown"),
        }
    }
    panic!("no request was refused while the shutdown served the lane");
}

/// The writer is held by a first closure; a second one waits on the lane;
/// the shutdown starts, and `wait` later the first closure ends. The
/// second closure sends a write when it runs: inside the drain, the lane
/// is closed and the write is refused at once (its error returned);
/// before the shutdown, the write is queued (`None`).
async fn refused_during_drain(wait: Duration) -> Option<Error> {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), MINUTE);
    // A drain deadline far past both closures.
    s.database.busy_timeout = FAR_BUSY_TIMEOUT;
    let guard = WalGuard::start(s).unwrap();
    create_table(&guard).await;
    let db = guard.db().clone();
    let (held, release) = crate::common::hold_writer(&db).await;
    let probe = db.clone();
    let mut second = Box::pin(async move {
        db.call(move |_| {
            let mut write = Box::pin(probe.execute(insert(1)));
            Ok(futures_poll_once(&mut write).map(|r| r.unwrap_err()))
        })
        .await
    });
    // On the lane now, behind the first closure.
    assert!(futures_poll_once(&mut second).is_none());
    let second = actix_rt::spawn(second);
    let shutdown = actix_rt::spawn(guard.shutdown());
    tokio::time::sleep(wait).await;
    release.send(()).unwrap();
    held.await.unwrap().unwrap();
    let refused = tokio::time::timeout(HANG, second)
        .await
        .expect("second closure hung")
        .unwrap()
        .unwrap();
    tokio::time::timeout(HANG, shutdown)
        .await
        .expect("shutdown hung")
        .unwrap()
        .unwrap();
    refused
}

fn count_query(id: i64) -> Statement {
    Statement::new("SELECT count(*) FROM kv WHERE id = ?1").bind(id)
}

/// Many senders, mixed kinds, random yields, each pipelining a write and
/// then a read that must see it (a query after the write's ack: it does
/// not take the lane); shutdown racing with them. Every request
/// completes in time, order holds, and the report's count equals the Ok
/// answers.
#[actix_rt::test]
async fn mixed_senders_racing_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), MINUTE);
    // Room for every request, so that a write's first poll puts it on the lane.
    s.database.mailbox_capacity = 1024;
    s.database.max_batch = 32;
    let path = s.database.path.clone();
    let guard = WalGuard::start(s).unwrap();
    create_table(&guard).await;
    let ok = Arc::new(AtomicU64::new(1)); // CREATE TABLE
    let mut tasks = Vec::new();
    for t in 0..24i64 {
        let db = guard.db().clone();
        let ok = Arc::clone(&ok);
        tasks.push(actix_rt::spawn(async move {
            let mut seed = t as u64 * 7919 + 1;
            for i in 0..400i64 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let id = t * 1_000_000 + i;
                // Put the write on the lane (first poll), then a read.
                let mut w = Box::pin(db.execute(insert(id)));
                tokio::select! {
                    biased;
                    r = &mut w => {
                        r?;
                        ok.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    () = std::future::ready(()) => {}
                }
                // A query runs on a read connection, off the lane: it sees
                // the write once acknowledged (read your writes), so it
                // waits for the ack; the other kinds pipeline behind it.
                let acked_first = seed.is_multiple_of(4);
                if acked_first {
                    w.as_mut().await?;
                    ok.fetch_add(1, Ordering::Relaxed);
                }
                let seen = match seed % 4 {
                    0 => db
                        .query(count_query(id))
                        .await
                        .map(|r| r.rows()[0][0].clone()),
                    1 => db
                        .call(move |c| {
                            c.query_row("SELECT count(*) FROM kv WHERE id = ?1", [id], |r| {
                                r.get::<_, i64>(0)
                            })
                        })
                        .await
                        .map(rusqlite::types::Value::Integer),
                    2 => db
                        .durability()
                        .await
                        .map(|_| rusqlite::types::Value::Integer(1)),
                    _ => db
                        .transaction(vec![
                            Statement::new("UPDATE kv SET v = x'00' WHERE id = ?1").bind(id),
                        ])
                        .await
                        .map(|n| rusqlite::types::Value::Integer(n[0] as i64)),
                };
                let seen = match seen {
                    Ok(v) => v,
                    Err(e) => {
                        // The write may have been accepted before the refusal.
                        if !acked_first && w.await.is_ok() {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        return Err(e);
                    }
                };
                if seed % 4 == 1 || seed % 4 == 3 {
                    // A closure and a transaction count as writes too.
                    ok.fetch_add(1, Ordering::Relaxed);
                }
                assert_eq!(
                    seen,
                    rusqlite::types::Value::Integer(1),
                    "task {t} write {i} not seen"
                );
                if !acked_first {
                    w.await?;
                    ok.fetch_add(1, Ordering::Relaxed);
                }
                if seed.is_multiple_of(3) {
                    tokio::task::yield_now().await;
                }
            }
            Ok::<(), Error>(())
        }));
    }
    // The shutdown races senders well under way (CREATE TABLE counted).
    until_acked(&ok, 1 + 500).await;
    let report = tokio::time::timeout(HANG, guard.shutdown())
        .await
        .expect("shutdown hung")
        .unwrap();
    for t in tasks {
        match tokio::time::timeout(HANG, t)
            .await
            .expect("request hung")
            .unwrap()
        {
            Ok(()) | Err(Error::ShutDown) => {}
            // A request refused during the drain (`Mailbox`) fails here:
            // the drain answers everything that was sent before it.
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(report.db.writes_acknowledged, ok.load(Ordering::Relaxed));
    let (integrity, _) = integrity_and_count(&path);
    assert_eq!(integrity, "ok");
}

/// A panic of the writer in the middle of a busy lane: every request is
/// answered (Ok before, `WriterPanicked` after), none hangs, and the count of
/// Ok answers equals the report's.
// The panic is injected through a hook of feature `testing`.
#[cfg(feature = "testing")]
#[actix_rt::test]
async fn writer_panic_in_busy_lane_answers_everything() {
    let dir = tempfile::tempdir().unwrap();
    let guard = WalGuard::start(settings(dir.path(), MINUTE)).unwrap();
    create_table(&guard).await;
    let ok = Arc::new(AtomicU64::new(1));
    let mut tasks = Vec::new();
    for t in 0..32i64 {
        let db = guard.db().clone();
        let ok = Arc::clone(&ok);
        tasks.push(actix_rt::spawn(async move {
            for i in 0..2000i64 {
                let r = if i % 50 == 49 {
                    db.call(|_| -> rusqlite::Result<()> { panic!("caller's closure") })
                        .await
                        .map(|()| 0)
                } else {
                    db.execute(insert(t * 1_000_000 + i)).await
                };
                match r {
                    Ok(_) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(Error::Db(walguard::Error::WriterPanicked { .. })) => return,
                    Err(e) if i % 50 == 49 => {
                        let _ = e;
                    }
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
        }));
    }
    // The lane busy: the panic comes in the middle of the senders.
    until_acked(&ok, 1 + 1000).await;
    let _ = guard.db().inject_panic("ours").await;
    for t in tasks {
        tokio::time::timeout(HANG, t)
            .await
            .expect("request hung")
            .unwrap();
    }
    let report = tokio::time::timeout(HANG, guard.shutdown())
        .await
        .expect("shutdown hung")
        .unwrap();
    assert_eq!(report.db.writes_acknowledged, ok.load(Ordering::Relaxed));
}

/// Dropping the `WalGuard` (and every handle) without shutdown while
/// requests are in flight: every request is answered, the accepted writes
/// are committed.
#[actix_rt::test]
async fn drop_without_shutdown_with_requests_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), MINUTE);
    let path = s.database.path.clone();
    let guard = WalGuard::start(s).unwrap();
    create_table(&guard).await;
    let ok = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for t in 0..16i64 {
        let db = guard.db().clone();
        let ok = Arc::clone(&ok);
        tasks.push(actix_rt::spawn(async move {
            for i in 0..300i64 {
                if db.execute(insert(t * 1_000_000 + i)).await.is_ok() {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
            }
            drop(db);
        }));
    }
    // Dropped with requests in flight: some acknowledged, most not yet.
    until_acked(&ok, 100).await;
    drop(guard);
    for t in tasks {
        tokio::time::timeout(HANG, t)
            .await
            .expect("request hung")
            .unwrap();
    }
    let ok = ok.load(Ordering::Relaxed);
    let (integrity, count) = until_rows(&path, ok as i64).await;
    assert_eq!(integrity, "ok");
    assert_eq!(count as u64, ok);
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

/// Every handle dropped, no shutdown, with writes still on the lane whose
/// senders gave up waiting: the writes accepted are committed anyway.
#[actix_rt::test]
async fn writes_on_the_lane_when_every_handle_is_dropped_are_committed() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), MINUTE);
    s.database.mailbox_capacity = 2048;
    let path = s.database.path.clone();
    let guard = WalGuard::start(s).unwrap();
    create_table(&guard).await;
    let db = guard.db().clone();
    for id in 0..1000 {
        let mut w = Box::pin(db.execute(insert(id)));
        tokio::select! {
            biased;
            _ = &mut w => {}
            () = std::future::ready(()) => {}
        }
    }
    drop(db);
    drop(guard);
    let (integrity, count) = until_rows(&path, 1000).await;
    assert_eq!((integrity.as_str(), count), ("ok", 1000));
}

/// Senders on several OS threads (their own runtimes), in short bursts
/// with idle gaps, so the lane switches idle/busy constantly while the
/// actor clears its flag: a lost wake-up leaves a request unanswered.
#[actix_rt::test]
async fn senders_on_many_threads_never_lose_a_wake() {
    let dir = tempfile::tempdir().unwrap();
    let s = settings(dir.path(), MINUTE);
    let path = s.database.path.clone();
    let guard = WalGuard::start(s).unwrap();
    create_table(&guard).await;
    let mut threads = Vec::new();
    for t in 0..4i64 {
        let db = guard.db().clone();
        threads.push(std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut seed = t as u64 + 11;
                for i in 0..3000i64 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let r = tokio::time::timeout(HANG, db.execute(insert(t * 1_000_000 + i)))
                        .await
                        .expect("lost wake-up: a write hung");
                    r.unwrap();
                    match seed % 8 {
                        0 => tokio::time::sleep(Duration::from_micros(seed % 300)).await,
                        1 => std::thread::yield_now(),
                        _ => {}
                    }
                }
            });
        }));
    }
    for t in threads {
        tokio::task::spawn_blocking(move || t.join().unwrap())
            .await
            .unwrap();
    }
    guard.shutdown().await.unwrap();
    assert_eq!(integrity_and_count(&path), ("ok".to_owned(), 12000));
}

/// The replier module doc: "the writes of one group are answered in their
/// order, and groups in theirs". A big group (replier) followed by a small
/// one (answered by the writer): every answer of the first must arrive
/// before any of the second.
#[actix_rt::test]
async fn groups_are_answered_in_their_order() {
    assert_eq!(
        later_group_first(1000).await,
        0,
        "rounds where a later group was answered first"
    );
}

/// Negative control: a first group under `MIN_GROUP_WRITES` (16), answered
/// by the writer like the second, never trips the check.
#[actix_rt::test]
async fn groups_are_answered_in_their_order_control() {
    assert_eq!(later_group_first(12).await, 0);
}

async fn later_group_first(a: i64) -> u32 {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), MINUTE);
    s.database.mailbox_capacity = 4096;
    let guard = WalGuard::start(s).unwrap();
    create_table(&guard).await;
    let db = guard.db().clone();
    let mut violations = 0;
    for round in 0..20i64 {
        let (held, release) = crate::common::hold_writer(&db).await;
        let seq = Arc::new(AtomicU64::new(0));
        let waiting = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        let base = round * 10_000;
        let push = |id: i64, tasks: &mut Vec<_>| {
            let dbc = db.clone();
            let mut w = Box::pin(async move { dbc.execute(insert(id)).await });
            let seq = Arc::clone(&seq);
            let waiting = Arc::clone(&waiting);
            // Put it on the lane now, in order; then wait in a task.
            let first = futures_poll_once(&mut w);
            assert!(first.is_none());
            tasks.push(actix_rt::spawn(async move {
                // Counted in the same poll that registers the task's waker.
                waiting.fetch_add(1, Ordering::SeqCst);
                w.await.unwrap();
                (id, seq.fetch_add(1, Ordering::SeqCst))
            }));
        };
        for i in 0..a {
            push(base + i, &mut tasks);
        }
        // A boundary between the two groups.
        let boundary = {
            let db = db.clone();
            let mut f = Box::pin(async move { db.call(|_| Ok(())).await });
            assert!(futures_poll_once(&mut f).is_none());
            actix_rt::spawn(f)
        };
        for i in a..a + 3 {
            push(base + i, &mut tasks);
        }
        // Every waiting task registers its waker before the writer goes
        // on: its answer then wakes it from the writer's or the replier's
        // thread, in the order the answers were sent. A task still queued
        // for its first poll when its answer came would run in the order
        // of the local run queue instead, which the scheduler interleaves
        // with remote wakes: the check would measure the scheduler.
        let total = u64::try_from(tasks.len()).unwrap();
        while waiting.load(Ordering::SeqCst) < total {
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        held.await.unwrap().unwrap();
        boundary.await.unwrap().unwrap();
        let mut last_a = 0;
        let mut first_b = u64::MAX;
        for t in tasks {
            let (id, n) = t.await.unwrap();
            if id - base < a {
                last_a = last_a.max(n);
            } else {
                first_b = first_b.min(n);
            }
        }
        if first_b < last_a {
            violations += 1;
        }
    }
    guard.shutdown().await.unwrap();
    violations
}

fn futures_poll_once<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::Pin::new(f).poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}
