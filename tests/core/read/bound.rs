//! The snapshot-age bound, `read.max_snapshot_age`: a read past it is
//! interrupted and the checkpoint it held up completes; its negative
//! control (no bound); what the bound cannot do (a closure between steps).

use super::*;

#[test]
fn a_read_past_its_bound_is_interrupted_and_the_checkpoint_it_held_up_completes() {
    let mut f = fixture(2, SHORT_BOUND, 20);
    let (rx, go) = pinning_endless_read(&f.pool);
    for i in 0..20 {
        put(&mut f.store, &format!("late{i}"), i);
    }
    let outcome = passive(&mut f.store);
    assert!(
        held_up(&outcome),
        "the reader holds the checkpoint up: {outcome:?}"
    );
    go.send(()).unwrap();
    let err = rx
        .recv_timeout(PATIENCE)
        .expect("the bound ends the read")
        .unwrap_err();
    match &err {
        Error::ReadTooOld { what, age, limit } => {
            assert_eq!(what, "closure");
            assert!(*age >= SHORT_BOUND, "{age:?}");
            assert_eq!(*limit, SHORT_BOUND);
        }
        other => panic!("expected ReadTooOld, got {other:?}"),
    }
    let text = chain(&err);
    assert!(
        text.contains("read.max_snapshot_age") && text.contains("150ms"),
        "{text}"
    );
    assert_eq!(
        passive(&mut f.store),
        CheckpointOutcome::Completed,
        "the WAL is free"
    );
    let stats = f.pool.stats();
    assert_eq!((stats.counts().interrupted, stats.counts().failed), (1, 0));
    // The connection serves the next read.
    assert_eq!(f.pool.read(kv_count).unwrap(), 40);
}

/// Negative control of the bound: the same reader under a bound it never
/// reaches keeps the checkpoint held up, until a close interrupts it.
#[test]
fn without_a_bound_the_checkpoint_stays_held_up_until_close() {
    let mut f = fixture(2, NO_BOUND, 20);
    let (rx, go) = pinning_endless_read(&f.pool);
    for i in 0..20 {
        put(&mut f.store, &format!("late{i}"), i);
    }
    let outcome = passive(&mut f.store);
    assert!(held_up(&outcome), "held up: {outcome:?}");
    go.send(()).unwrap();
    // Four times the bound that interrupted it above: no result comes.
    assert!(
        rx.recv_timeout(SHORT_BOUND * 4).is_err(),
        "nothing ends the read"
    );
    let outcome = passive(&mut f.store);
    assert!(held_up(&outcome), "still held up: {outcome:?}");
    let running = f.pool.running();
    assert_eq!(running.len(), 1);
    assert!(
        running[0].age() >= SHORT_BOUND * 4 && !running[0].overdue(),
        "{running:?}"
    );
    assert_eq!(f.pool.stats().counts().interrupted, 0);

    let report = f.pool.close(Duration::ZERO);
    assert_eq!((report.interrupted, report.drained), (1, 0), "{report:?}");
    assert!(report.left_running.is_empty(), "{report:?}");
    let err = rx.recv_timeout(PATIENCE).unwrap().unwrap_err();
    assert!(matches!(err, Error::ReadStopped { .. }), "{err:?}");
    let truncate = f.store.checkpoint_with_deadline(
        CheckpointMode::Truncate,
        CheckpointReason::Shutdown,
        Duration::from_secs(2),
    );
    assert_eq!(truncate.outcome(), &CheckpointOutcome::Completed);
}

/// The bound cannot stop Rust code: a closure that holds a statement open
/// and waits keeps its snapshot until its next SQLite step, which is
/// interrupted.
#[test]
fn a_closure_holding_a_statement_open_is_stopped_at_its_next_step() {
    let mut f = fixture(1, SHORT_BOUND, 20);
    let (started_tx, started_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (steps_tx, steps_rx) = mpsc::channel();
    let rx = submit(&f.pool, move |conn| {
        let mut stmt = conn.prepare("SELECT k FROM kv")?;
        let mut rows = stmt.query([])?;
        rows.next()?;
        let _ = started_tx.send(());
        let _ = go_rx.recv_timeout(PATIENCE);
        let next = rows.next().map(|_| ()).map_err(|e| e.sqlite_error_code());
        drop(rows);
        drop(stmt);
        // A statement started after the interrupt, none being open: the
        // progress handler stops it.
        let fresh = conn
            .query_row("SELECT sum(v) FROM kv", [], |r| r.get::<_, i64>(0))
            .map(drop)
            .map_err(|e| e.sqlite_error_code());
        let _ = steps_tx.send((next, fresh));
        Ok(())
    });
    started_rx.recv_timeout(PATIENCE).unwrap();
    put(&mut f.store, "late", 1);
    wait_for_running(&f.pool, "the watchdog to interrupt the read", |r| {
        r.first().is_some_and(walguard::read::RunningRead::overdue)
    });
    let listed = f.pool.running();
    assert_eq!(listed[0].what(), "closure");
    assert!(
        listed[0].to_string().contains("read.max_snapshot_age"),
        "{}",
        listed[0]
    );
    // Overdue, but its Rust code runs on: the snapshot is still pinned.
    assert!(held_up(&passive(&mut f.store)));
    go_tx.send(()).unwrap();
    let interrupted = Some(rusqlite::ErrorCode::OperationInterrupted);
    assert_eq!(
        steps_rx.recv_timeout(PATIENCE).unwrap(),
        (Err(interrupted), Err(interrupted)),
        "both next steps are interrupted"
    );
    let err = rx.recv_timeout(PATIENCE).unwrap().unwrap_err();
    assert!(matches!(err, Error::ReadTooOld { .. }), "{err:?}");
    assert_eq!(passive(&mut f.store), CheckpointOutcome::Completed);
}
