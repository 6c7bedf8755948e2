//! Answers arrive: senders on many threads never lose a wake-up, and
//! groups are answered in their order (with its negative control).

use super::*;

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
