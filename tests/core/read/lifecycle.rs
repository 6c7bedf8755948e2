//! The pool's lifecycle: a panicking read, close (drain, interrupt, the
//! TRUNCATE after it), the running list, sharing, and where a pool opens.

use super::*;

#[test]
fn a_panicking_read_is_its_callers_error_and_its_connection_is_replaced() {
    let mut f = fixture(1, NO_BOUND, 5);
    let rx = submit(&f.pool, |conn| -> rusqlite::Result<()> {
        let _pinned = kv_count(conn)?;
        let mut stmt = conn.prepare("SELECT k FROM kv")?;
        let mut rows = stmt.query([])?;
        rows.next()?;
        panic!("planted panic in a read");
    });
    let err = rx.recv_timeout(PATIENCE).unwrap().unwrap_err();
    match &err {
        Error::ReadPanicked { message } => assert!(message.contains("planted panic"), "{message}"),
        other => panic!("expected ReadPanicked, got {other:?}"),
    }
    let counts = f.pool.stats().counts();
    assert_eq!(
        (counts.panicked, counts.failed, counts.replaced),
        (1, 1, 1),
        "{counts:?}"
    );
    // Its snapshot is gone: a checkpoint catches up.
    put(&mut f.store, "after", 1);
    assert_eq!(passive(&mut f.store), CheckpointOutcome::Completed);
    // The one connection (replaced) serves the next read.
    assert_eq!(f.pool.read(kv_count).unwrap(), 6);
}

#[test]
fn close_drains_running_reads_refuses_queued_ones_and_the_truncate_completes() {
    let mut f = fixture(1, NO_BOUND, 5);
    let (started_tx, started_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let running = submit(&f.pool, move |conn| {
        let n = kv_count(conn)?;
        let _ = started_tx.send(());
        let _ = go_rx.recv_timeout(PATIENCE);
        Ok(n)
    });
    started_rx.recv_timeout(PATIENCE).unwrap();
    let queued = submit(&f.pool, kv_count);
    for i in 0..10 {
        put(&mut f.store, &format!("late{i}"), i);
    }
    let pool = std::sync::Arc::new(f.pool);
    let closer = {
        let pool = std::sync::Arc::clone(&pool);
        std::thread::spawn(move || pool.close(PATIENCE))
    };
    // The close has begun once the queued read is refused.
    let refused = queued.recv_timeout(PATIENCE).unwrap().unwrap_err();
    assert!(
        matches!(refused, Error::ReadPoolClosed { .. }),
        "{refused:?}"
    );
    assert!(chain(&refused).contains(&f.path.display().to_string()));
    go_tx.send(()).unwrap();
    let report = closer.join().unwrap();
    assert_eq!(
        (report.drained, report.interrupted, report.refused),
        (1, 0, 1),
        "{report:?}"
    );
    assert!(report.left_running.is_empty());
    assert_eq!(
        running.recv_timeout(PATIENCE).unwrap().unwrap(),
        5,
        "drained, not stopped"
    );
    // After the close: refused, and nothing of ours holds the WAL.
    assert!(matches!(
        pool.read(kv_count),
        Err(Error::ReadPoolClosed { .. })
    ));
    assert_eq!(
        pool.close(Duration::ZERO),
        walguard::read::ReadPoolClose::default()
    );
    let truncate = f.store.checkpoint_with_deadline(
        CheckpointMode::Truncate,
        CheckpointReason::Shutdown,
        Duration::from_secs(2),
    );
    assert_eq!(truncate.outcome(), &CheckpointOutcome::Completed);
    assert_eq!(std::fs::metadata(wal_path(&f.path)).unwrap().len(), 0);
    let counts = pool.stats().counts();
    assert_eq!((counts.served, counts.refused), (1, 2), "{counts:?}");
}

/// What close cannot do: stop Rust code. A closure busy outside SQLite
/// past the grace is left behind and named; once it returns, its snapshot
/// is gone and the TRUNCATE completes.
#[test]
fn close_names_a_closure_busy_outside_sqlite_and_it_ends_when_it_returns() {
    let mut f = fixture(1, NO_BOUND, 3);
    let (started_tx, started_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let rx = submit(&f.pool, move |conn| {
        let n = kv_count(conn)?;
        let _ = started_tx.send(());
        let _ = go_rx.recv_timeout(PATIENCE);
        Ok(n)
    });
    started_rx.recv_timeout(PATIENCE).unwrap();
    put(&mut f.store, "late", 1);
    let report = f.pool.close(Duration::ZERO);
    assert_eq!(report.interrupted, 1, "{report:?}");
    assert_eq!(report.left_running.len(), 1, "{report:?}");
    let left = &report.left_running[0];
    assert!(left.stopped() && left.what() == "closure", "{left}");
    assert!(left.to_string().contains("closing"), "{left}");
    assert!(
        held_up(&passive(&mut f.store)),
        "its snapshot is still pinned"
    );
    go_tx.send(()).unwrap();
    let err = rx.recv_timeout(PATIENCE).unwrap().unwrap_err();
    assert!(matches!(err, Error::ReadStopped { .. }), "{err:?}");
    let truncate = f.store.checkpoint_with_deadline(
        CheckpointMode::Truncate,
        CheckpointReason::Shutdown,
        Duration::from_secs(2),
    );
    assert_eq!(truncate.outcome(), &CheckpointOutcome::Completed);
}

#[test]
fn the_running_list_names_a_query_by_its_sql() {
    let f = fixture(2, NO_BOUND, 1);
    let (tx, rx) = mpsc::channel();
    f.pool.submit_query(Statement::new(ENDLESS), move |r| {
        let _ = tx.send(r);
    });
    wait_for_running(&f.pool, "the query to run", |r| !r.is_empty());
    let listed = f.pool.running();
    assert_eq!(listed[0].what(), ENDLESS);
    assert!(
        listed[0].to_string().contains("WITH RECURSIVE"),
        "{}",
        listed[0]
    );
    assert_eq!(f.pool.close(Duration::ZERO).interrupted, 1);
    let err = rx.recv_timeout(PATIENCE).unwrap().unwrap_err();
    assert!(chain(&err).contains("WITH RECURSIVE"), "{}", chain(&err));
}

#[test]
fn the_pool_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<ReadPool>();
}

#[test]
fn the_pool_opens_only_beside_a_writer_in_wal_mode() {
    let (_dir, path) = temp_db();
    let read = ReadSettings::default();
    let err = ReadPool::open(&DatabaseSettings::at(&path), &read).unwrap_err();
    assert!(matches!(err, Error::Open { .. }), "no file: {err:?}");
    plain_database(&path);
    let err = ReadPool::open(&DatabaseSettings::at(&path), &read).unwrap_err();
    assert!(matches!(err, Error::NotWal { .. }), "not WAL: {err:?}");
    let mut bad = ReadSettings::default();
    bad.connections = 0;
    let err = ReadPool::open(&DatabaseSettings::at(&path), &bad).unwrap_err();
    assert!(chain(&err).contains("read.connections"), "{}", chain(&err));
}

fn plain_database(path: &Path) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("CREATE TABLE t (a)").unwrap();
}

#[test]
fn read_settings_load_validate_and_name_their_keys() {
    let defaults = Settings::default();
    assert_eq!(defaults.read.connections, 4);
    assert_eq!(defaults.read.max_snapshot_age, Duration::from_secs(30));
    let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let s = Settings::load_from(
        None,
        env(&[
            ("WALGUARD__READ__CONNECTIONS", "8"),
            ("WALGUARD__READ__MAX_SNAPSHOT_AGE", "5s"),
        ]),
    )
    .unwrap();
    assert_eq!(
        (s.read.connections, s.read.max_snapshot_age),
        (8, Duration::from_secs(5))
    );
    for (yaml, key, value) in [
        ("read:\n  connections: 0\n", "read.connections", "0"),
        ("read:\n  connections: 65\n", "read.connections", "65"),
        (
            "read:\n  max_snapshot_age: 0s\n",
            "read.max_snapshot_age",
            "0s",
        ),
    ] {
        match Settings::from_yaml(yaml).unwrap_err() {
            Error::InvalidSetting {
                key: k, value: v, ..
            } => assert_eq!((k.as_str(), v.as_str()), (key, value)),
            other => panic!("{yaml}: {other:?}"),
        }
    }
    let err =
        Settings::load_from(None, env(&[("WALGUARD__READ__CONNECTIONS", "100")])).unwrap_err();
    assert!(
        chain(&err).contains("WALGUARD__READ__CONNECTIONS"),
        "{}",
        chain(&err)
    );
    let err = Settings::from_yaml("read:\n  max_snapshot_age: 30\n").unwrap_err();
    assert!(
        chain(&err).contains("read.max_snapshot_age"),
        "{}",
        chain(&err)
    );
}
