//! The shutdown racing the senders: a request refused during the drain is
//! `ShutDown`; many mixed senders are all answered, in order, and counted.

use super::*;

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
