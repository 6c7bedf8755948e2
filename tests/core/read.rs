//! The read side (`walguard::read::ReadPool`, issue 23): reads run at once
//! beside the writer, each in one snapshot, see every write acknowledged
//! before them, never write; a read past `read.max_snapshot_age` is
//! interrupted and the checkpoint it held up completes (negative control:
//! no bound, it stays held up); a panic is its caller's error; close
//! drains, interrupts the rest, and the shutdown TRUNCATE then completes.
//!
//! Real threads, since concurrency is the point. No bound here is one a
//! loaded machine can cross: what must overlap is made to overlap by
//! construction (each read waits for the others), what must be
//! interrupted never ends by itself, and every wait for an event gives up
//! only after [`PATIENCE`].

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tempfile::TempDir;
use walguard::read::ReadPool;
use walguard::settings::{DatabaseSettings, ReadSettings};
use walguard::{
    CheckpointMode, CheckpointOutcome, CheckpointReason, Error, Settings, Statement, Store,
};

use crate::support::{chain, put, store_with_kv, temp_db, wal_path};

/// The longest any test waits for something that must happen: far beyond
/// what a loaded machine needs, short enough to fail a hung test.
const PATIENCE: Duration = Duration::from_secs(60);

/// A short snapshot-age bound: the tests that need it interrupted run
/// reads that never end by themselves.
const SHORT_BOUND: Duration = Duration::from_millis(150);

/// A bound no test reaches: the negative control's.
const NO_BOUND: Duration = Duration::from_secs(3600);

/// A statement that runs until it is interrupted.
const ENDLESS: &str =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";

struct Fixture {
    _dir: TempDir,
    path: PathBuf,
    store: Store,
    pool: ReadPool,
}

/// A store with a `kv` table holding `rows` rows, and a pool beside it.
fn fixture(connections: usize, max_age: Duration, rows: i64) -> Fixture {
    let (dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    for i in 0..rows {
        put(&mut store, &format!("k{i}"), i);
    }
    let pool = ReadPool::open(
        &DatabaseSettings::at(&path),
        &read_settings(connections, max_age),
    )
    .expect("open the read pool");
    Fixture {
        _dir: dir,
        path,
        store,
        pool,
    }
}

fn read_settings(connections: usize, max_age: Duration) -> ReadSettings {
    let mut settings = ReadSettings::default();
    settings.connections = connections;
    settings.max_snapshot_age = max_age;
    settings
}

fn kv_count(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT count(*) FROM kv", [], |r| r.get(0))
}

/// Submits `f` and hands back the channel its result arrives on.
fn submit<R: Send + 'static>(
    pool: &ReadPool,
    f: impl FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
) -> mpsc::Receiver<walguard::Result<R>> {
    let (tx, rx) = mpsc::channel();
    pool.submit(f, move |result| {
        let _ = tx.send(result);
    });
    rx
}

fn passive(store: &mut Store) -> CheckpointOutcome {
    store
        .checkpoint(CheckpointMode::Passive, CheckpointReason::Manual)
        .outcome()
        .clone()
}

fn held_up(outcome: &CheckpointOutcome) -> bool {
    matches!(
        outcome,
        CheckpointOutcome::Partial | CheckpointOutcome::Busy
    )
}

/// Waits until `pred` holds for the pool's running reads.
fn wait_for_running(
    pool: &ReadPool,
    what: &str,
    pred: impl Fn(&[walguard::read::RunningRead]) -> bool,
) {
    let start = Instant::now();
    while !pred(&pool.running()) {
        assert!(
            start.elapsed() < PATIENCE,
            "gave up waiting for {what}: {:?}",
            pool.running()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A read that takes its snapshot, says so, waits for the word (in Rust
/// code, which no bound stops: its snapshot stays pinned meanwhile), then
/// runs [`ENDLESS`]: it pins the WAL until something interrupts it.
fn pinning_endless_read(
    pool: &ReadPool,
) -> (mpsc::Receiver<walguard::Result<i64>>, mpsc::Sender<()>) {
    let (started_tx, started_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let rx = submit(pool, move |conn| {
        kv_count(conn)?;
        let _ = started_tx.send(());
        let _ = go_rx.recv_timeout(PATIENCE);
        conn.query_row(ENDLESS, [], |r| r.get(0))
    });
    started_rx
        .recv_timeout(PATIENCE)
        .expect("the read took its snapshot");
    (rx, go_tx)
}

#[test]
fn four_reads_run_at_once_and_a_write_goes_through_meanwhile() {
    let mut f = fixture(4, NO_BOUND, 10);
    let (started_tx, started_rx) = mpsc::channel();
    let mut gos = Vec::new();
    let mut results = Vec::new();
    for _ in 0..4 {
        let (go_tx, go_rx) = mpsc::channel::<()>();
        gos.push(go_tx);
        let started_tx = started_tx.clone();
        results.push(submit(&f.pool, move |conn| {
            let n = kv_count(conn)?;
            let start = Instant::now();
            let _ = started_tx.send(());
            // Ends only once all four have started: they overlap by
            // construction, or this times out.
            let all_started = go_rx.recv_timeout(PATIENCE).is_ok();
            Ok((n, start, Instant::now(), all_started))
        }));
    }
    for _ in 0..4 {
        started_rx
            .recv_timeout(PATIENCE)
            .expect("four reads start at once");
    }
    assert_eq!(f.pool.running().len(), 4, "{:?}", f.pool.running());
    // The writer is not held up by four open snapshots.
    put(&mut f.store, "during", 99);
    for go in &gos {
        go.send(()).unwrap();
    }
    let spans: Vec<_> = results
        .iter()
        .map(|rx| rx.recv_timeout(PATIENCE).unwrap().unwrap())
        .collect();
    assert!(spans.iter().all(|s| s.0 == 10 && s.3), "{spans:?}");
    let latest_start = spans.iter().map(|s| s.1).max().unwrap();
    let earliest_end = spans.iter().map(|s| s.2).min().unwrap();
    assert!(
        latest_start < earliest_end,
        "the four reads overlap in time"
    );
    let stats = f.pool.stats();
    assert!(stats.to_string().contains("4 served"), "{stats}");
    assert_eq!(stats.counts().served, 4);
    assert_eq!(stats.time().n(), 4);
    assert!(stats.time().p50() <= stats.time().p95() && stats.time().p95() <= stats.time().max());
    assert!(stats.running().is_empty());
}

#[test]
fn a_read_sees_every_write_acknowledged_before_it() {
    let mut f = fixture(4, NO_BOUND, 0);
    for i in 0..50_i64 {
        put(&mut f.store, &format!("k{i}"), i);
        let seen = if i % 2 == 0 {
            f.pool.read(kv_count).unwrap()
        } else {
            match f
                .pool
                .query(Statement::new("SELECT count(*) FROM kv"))
                .unwrap()
                .rows()[0][0]
            {
                rusqlite::types::Value::Integer(n) => n,
                ref other => panic!("{other:?}"),
            }
        };
        assert_eq!(seen, i + 1, "a read after write {i} was acknowledged");
    }
}

#[test]
fn every_statement_of_one_read_sees_the_same_snapshot() {
    let mut f = fixture(1, NO_BOUND, 3);
    let (first_tx, first_rx) = mpsc::channel();
    let (written_tx, written_rx) = mpsc::channel::<()>();
    let rx = submit(&f.pool, move |conn| {
        let before = kv_count(conn)?;
        let _ = first_tx.send(());
        let written = written_rx.recv_timeout(PATIENCE).is_ok();
        let sum: i64 = conn.query_row("SELECT sum(v) FROM kv", [], |r| r.get(0))?;
        Ok((before, kv_count(conn)?, sum, written))
    });
    first_rx.recv_timeout(PATIENCE).unwrap();
    put(&mut f.store, "new", 100);
    written_tx.send(()).unwrap();
    let (before, after, sum, written) = rx.recv_timeout(PATIENCE).unwrap().unwrap();
    assert!(written);
    assert_eq!(
        (before, after, sum),
        (3, 3, 3),
        "one snapshot for the whole read"
    );
    assert_eq!(
        f.pool.read(kv_count).unwrap(),
        4,
        "the next read sees the write"
    );
}

#[test]
fn the_read_side_refuses_writes_and_what_would_end_its_snapshot() {
    let mut f = fixture(2, NO_BOUND, 2);
    let refused = |result: walguard::Result<_>, would: &str| match result {
        Err(ref e @ Error::ReadRefused { would: w, .. }) => {
            assert!(w.contains(would), "{}", chain(e));
            assert!(chain(e).contains("read side"), "{}", chain(e));
        }
        other => panic!("expected ReadRefused ({would}), got {other:?}"),
    };
    refused(
        f.pool
            .query(Statement::new("INSERT INTO kv (k, v) VALUES ('x', 1)"))
            .map(drop),
        "writes",
    );
    let err = f.pool.query(Statement::new("DELETE FROM kv")).unwrap_err();
    assert!(
        chain(&err).contains("DELETE FROM kv"),
        "names the statement: {}",
        chain(&err)
    );
    refused(
        f.pool
            .read(|c| c.execute("UPDATE kv SET v = 7", []).map(drop)),
        "writes",
    );
    refused(
        f.pool
            .read(|c| c.execute("CREATE TABLE t (a)", []).map(drop)),
        "writes",
    );
    refused(
        f.pool.query(Statement::new("COMMIT")).map(drop),
        "transaction",
    );
    refused(
        f.pool.read(|c| c.execute_batch("COMMIT; BEGIN")),
        "transaction",
    );
    refused(
        f.pool.read(|c| c.execute_batch("SAVEPOINT s")),
        "transaction",
    );
    refused(
        f.pool.read(|c| c.execute_batch("CREATE TEMP TABLE t (a)")),
        "temporary",
    );
    refused(
        f.pool
            .read(|c| c.execute_batch("ATTACH ':memory:' AS other")),
        "attaches",
    );
    // Nothing was written, and the connections still serve.
    assert_eq!(crate::support::count(&f.store, "kv"), 2);
    assert_eq!(f.pool.read(kv_count).unwrap(), 2);
    assert_eq!(f.pool.stats().counts().failed, 9);
    // A failing read is the read's error, named by its statement.
    let err = f
        .pool
        .query(Statement::new("SELECT nope FROM kv"))
        .unwrap_err();
    assert!(matches!(err, Error::Statement { .. }), "{err:?}");
    put(&mut f.store, "after", 1);
    assert_eq!(f.pool.read(kv_count).unwrap(), 3);
}

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
