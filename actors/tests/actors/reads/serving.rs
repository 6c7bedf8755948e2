//! Reads beside the writer: served while the writer is busy (control: the
//! lane waits), read your writes through any handle, one read one
//! snapshot, a write through `query` or `read` refused clearly.

use super::*;

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
