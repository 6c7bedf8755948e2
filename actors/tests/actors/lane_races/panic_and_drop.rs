//! Ends other than a clean shutdown: a writer panic in a busy lane answers
//! everything; every handle dropped with requests in flight or writes on
//! the lane, and the accepted writes are committed.

use super::*;

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
