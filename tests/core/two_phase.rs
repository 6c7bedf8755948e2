//! The two-phase size checkpoint (`SizeCheckpoint::TwoPhase`): phase 1 on a
//! second connection and thread, phase 2 on the writer. What it must keep:
//! the WAL bound, exact durability, the neighbours' contract (someone
//! else's checkpoint, a moved file, shutdown, panics). Power loss inside
//! each phase is in `tests/power_loss/`.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use walguard::settings::DatabaseSettings;
use walguard::{
    CheckpointMode, CheckpointOutcome, CheckpointReason, CheckpointReport, SizeCheckpoint,
    Statement, Store,
};

use crate::support::{integrity, temp_db};

fn two_phase_store(path: &std::path::Path, threshold: u32, mode: SizeCheckpoint) -> Store {
    let mut store = Store::open(&DatabaseSettings::at(path)).unwrap();
    store
        .execute(&Statement::new(
            "CREATE TABLE kv (k INTEGER PRIMARY KEY, v BLOB NOT NULL)",
        ))
        .unwrap();
    store.set_size_threshold(threshold).unwrap();
    store.set_size_checkpoint(mode);
    store
}

fn row(k: i64, bytes: usize) -> Statement {
    Statement::new("INSERT INTO kv (k, v) VALUES (?1, ?2)")
        .bind(k)
        .bind(vec![(k % 251) as u8; bytes])
}

/// A writer that never pauses: `groups` groups of 1 to 8 rows, the size
/// checkpoint after each. Checks that the durable point moves exactly: in
/// a call that returned a completed phase 2, to every commit made; in a
/// commit, only when it restarted the WAL (a checkpoint completed before
/// it, whoever ran it), to every commit before that one; never otherwise.
fn sustained(store: &mut Store, groups: i64) -> Vec<CheckpointReport> {
    let mut reports = Vec::new();
    let mut k = 0;
    for g in 0..groups {
        let group: Vec<Statement> = (0..=(g % 8))
            .map(|_| {
                k += 1;
                row(k, 300)
            })
            .collect();
        let before = store.durability();
        assert!(store.execute_group(&group).iter().all(Result::is_ok));
        let after_commit = store.durability();
        if after_commit.durable_commits() != before.durable_commits() {
            assert_eq!(after_commit.durable_commits(), before.commits());
        }
        let report = store.checkpoint_if_due();
        let after = store.durability();
        match &report {
            Some(r)
                if r.reason() == CheckpointReason::Size
                    && *r.outcome() == CheckpointOutcome::Completed =>
            {
                assert_eq!(after.durable_commits(), after.commits(), "{r:?}");
            }
            _ => assert_eq!(
                after.durable_commits(),
                after_commit.durable_commits(),
                "{report:?}"
            ),
        }
        reports.extend(report);
    }
    reports
}

/// The WAL stays within 2 × the threshold under a writer that never pauses,
/// every size checkpoint ran in two phases (phase 1's report inside phase
/// 2's), and the durable point moved only when phase 2 completed.
#[test]
fn two_phase_keeps_the_wal_within_twice_the_threshold_under_sustained_writes() {
    const THRESHOLD: u32 = 200;
    let (_dir, path) = temp_db();
    let mut store = two_phase_store(&path, THRESHOLD, SizeCheckpoint::TwoPhase);
    let reports = sustained(&mut store, 6000);
    let frames = store.wal_frames().unwrap();
    assert!(
        frames.peak <= 2 * THRESHOLD,
        "peak {} frames, threshold {THRESHOLD}",
        frames.peak
    );
    assert!(reports.len() >= 5, "{} size checkpoints", reports.len());
    let completed = reports
        .iter()
        .filter(|r| *r.outcome() == CheckpointOutcome::Completed)
        .count();
    assert!(completed * 2 >= reports.len(), "{reports:#?}");
    for r in &reports {
        assert_eq!(r.reason(), CheckpointReason::Size, "{r:?}");
        let phase1 = r.backfill().expect("phase 1 inside phase 2's report");
        assert_eq!(phase1.reason(), CheckpointReason::Backfill);
        assert!(!phase1.outcome().is_failure(), "{phase1:?}");
    }
    assert_eq!(frames.size_checkpoints, reports.len() as u64);
    assert!(store.durability().durable_commits() > 0);
    store.close().map_err(|(_, e)| e).unwrap();
    assert!(
        !walguard::files::wal_path(&path).exists(),
        "the last close deletes the WAL"
    );
}

/// Negative control of the bound: phase 1 alone (never finished on the
/// writer) lets the same writer grow the WAL past 2 × the threshold.
#[test]
fn phase_one_alone_breaks_the_bound() {
    const THRESHOLD: u32 = 200;
    let (_dir, path) = temp_db();
    let mut store = two_phase_store(&path, THRESHOLD, SizeCheckpoint::BackfillOnly);
    let reports = sustained(&mut store, 6000);
    let frames = store.wal_frames().unwrap();
    assert!(!reports.is_empty());
    assert!(
        reports
            .iter()
            .all(|r| r.reason() == CheckpointReason::Backfill)
    );
    assert!(
        frames.peak > 2 * THRESHOLD,
        "phase 1 alone kept the WAL at {} frames: the bound test could not fail",
        frames.peak
    );
}

/// Waits for phase 1 through the store's waker.
fn waker(store: &mut Store) -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    store.set_backfill_waker(move || {
        let _ = tx.lock().unwrap().send(());
    });
    rx
}

/// Fills the WAL with about `pages` frames in a few transactions.
fn fill(store: &mut Store, first: i64, rows: i64) {
    for chunk in 0..rows / 100 {
        let group: Vec<Statement> = (0..100)
            .map(|i| row(first + chunk * 100 + i, 3000))
            .collect();
        store.transaction(&group).unwrap();
    }
}

/// Kind: someone else's checkpoint racing our phase 1 for the checkpointer
/// lock. Whichever comes second is busy `(1, -1, -1)`, never a failure
/// (FACTS.md, "Someone else's checkpoint"): usually the neighbour, while
/// our phase 1 copies. Our phase 2 then completes.
#[test]
fn a_neighbours_checkpoint_during_phase_one_is_busy() {
    let (_dir, path) = temp_db();
    let mut store = two_phase_store(&path, 1000, SizeCheckpoint::TwoPhase);
    let done = waker(&mut store);
    fill(&mut store, 1, 8000);
    let neighbour = Connection::open(&path).unwrap();
    assert!(store.checkpoint_if_due().is_none());
    assert!(store.backfill_running());
    let mut rows = Vec::new();
    let bound = Instant::now() + Duration::from_secs(30);
    while done.try_recv().is_err() {
        let row: (i64, i64, i64) = neighbour
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        rows.push(row);
        assert!(Instant::now() < bound);
    }
    let outcomes: Vec<CheckpointOutcome> = rows
        .iter()
        .map(|&(b, l, c)| CheckpointOutcome::classify(b != 0, l, c))
        .collect();
    assert!(rows.iter().filter(|r| r.0 == 1).all(|r| *r == (1, -1, -1)));
    assert!(outcomes.iter().all(|o| !o.is_failure()), "{rows:?}");
    let report = store.checkpoint_if_due().expect("phase 2");
    let phase1 = report.backfill().unwrap();
    assert!(!phase1.outcome().is_failure(), "{report:?}");
    assert!(
        outcomes.contains(&CheckpointOutcome::Busy) || *phase1.outcome() == CheckpointOutcome::Busy,
        "neither checkpoint met the other: {rows:?}, {phase1:?}"
    );
    if *phase1.outcome() == CheckpointOutcome::Busy {
        assert_eq!(
            (phase1.log_frames(), phase1.checkpointed_frames()),
            (-1, -1)
        );
    }
    assert_eq!(
        *report.outcome(),
        CheckpointOutcome::Completed,
        "{report:?}"
    );
    assert_eq!(store.durability().exposed_commits(), 0);
    eprintln!(
        "neighbour: {} tries, {} busy; our phase 1: {}",
        rows.len(),
        rows.iter().filter(|r| r.0 == 1).count(),
        phase1.outcome()
    );
}

/// Kind: a neighbour holds the checkpointer lock (a FULL waiting on a
/// reader) when our phase 1 runs: phase 1 is busy, phase 2 is busy, the
/// durable point does not move, and nothing fails.
#[test]
fn phase_one_meeting_a_neighbours_checkpoint_is_busy_and_moves_nothing() {
    let (_dir, path) = temp_db();
    let mut settings = DatabaseSettings::at(&path);
    settings.checkpoint_busy_timeout = Duration::from_millis(50);
    let mut store = Store::open(&settings).unwrap();
    store
        .execute(&Statement::new(
            "CREATE TABLE kv (k INTEGER PRIMARY KEY, v BLOB NOT NULL)",
        ))
        .unwrap();
    store.execute(&row(1, 10)).unwrap();
    store.set_size_threshold(10).unwrap();
    store.set_size_checkpoint(SizeCheckpoint::TwoPhase);
    let done = waker(&mut store);
    let reader = pin_reader_blob(&path);
    // Past the threshold, before the neighbour: its FULL holds the write
    // lock too while it waits.
    for k in 2..40 {
        store.execute(&row(k, 10)).unwrap();
    }
    let durable = store.durability().durable_commits();
    let (started_tx, started_rx) = mpsc::channel();
    let neighbour_path = path.clone();
    let neighbour = std::thread::spawn(move || {
        let conn = Connection::open(&neighbour_path).unwrap();
        conn.busy_timeout(Duration::from_secs(30)).unwrap();
        started_tx.send(()).unwrap();
        loop {
            let row: (i64, i64, i64) = conn
                .query_row("PRAGMA wal_checkpoint(FULL)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .unwrap();
            if row.0 == 0 {
                return row;
            }
        }
    });
    started_rx.recv().unwrap();
    // Wait until the neighbour holds the lock: a manual PASSIVE is busy.
    let bound = Instant::now() + Duration::from_secs(10);
    while *store
        .checkpoint(CheckpointMode::Passive, CheckpointReason::Manual)
        .outcome()
        != CheckpointOutcome::Busy
    {
        assert!(Instant::now() < bound, "the neighbour never took the lock");
        std::thread::yield_now();
    }
    assert!(store.checkpoint_if_due().is_none(), "phase 1 starts");
    assert!(store.backfill_running());
    done.recv_timeout(Duration::from_secs(30)).unwrap();
    let report = store.checkpoint_if_due().expect("phase 2");
    let phase1 = report.backfill().expect("two phases");
    assert_eq!(*phase1.outcome(), CheckpointOutcome::Busy, "{phase1:?}");
    assert_eq!(
        (phase1.log_frames(), phase1.checkpointed_frames()),
        (-1, -1)
    );
    assert_eq!(*report.outcome(), CheckpointOutcome::Busy, "{report:?}");
    assert_eq!(store.durability().durable_commits(), durable);
    drop(reader);
    let (busy, log, copied) = neighbour.join().unwrap();
    assert_eq!((busy, log == copied), (0, true));
}

fn pin_reader_blob(path: &std::path::Path) -> Connection {
    let reader = Connection::open(path).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT count(*) FROM kv", [], |r| r.get(0))
        .unwrap();
    reader
}

/// Kind: shutdown with phase 1 in flight. `close` interrupts and joins it
/// before the writer's own close, which is then the last one: it
/// checkpoints and deletes the WAL; nothing is lost, and it does not wait
/// for the whole copy.
#[test]
fn close_joins_phase_one_first_and_the_last_close_deletes_the_wal() {
    let (_dir, path) = temp_db();
    let mut store = two_phase_store(&path, 1000, SizeCheckpoint::TwoPhase);
    fill(&mut store, 1, 6000);
    assert!(store.checkpoint_if_due().is_none());
    assert!(store.backfill_running());
    store.close().map_err(|(_, e)| e).unwrap();
    assert!(!walguard::files::wal_path(&path).exists());
    let conn = Connection::open(&path).unwrap();
    assert_eq!(integrity(&conn), "ok");
    let n: i64 = conn
        .query_row("SELECT count(*) FROM kv", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 6000);

    // Dropped without close: the same order.
    let (_dir, path) = temp_db();
    let mut store = two_phase_store(&path, 1000, SizeCheckpoint::TwoPhase);
    fill(&mut store, 1, 3000);
    assert!(store.checkpoint_if_due().is_none());
    drop(store);
    let conn = Connection::open(&path).unwrap();
    assert_eq!(integrity(&conn), "ok");
    let n: i64 = conn
        .query_row("SELECT count(*) FROM kv", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 3000);
}

/// Kind: the shutdown TRUNCATE with phase 1 in flight interrupts it and
/// carries its report; the TRUNCATE itself completes.
#[test]
fn the_shutdown_checkpoint_stops_phase_one_and_reports_it() {
    let (_dir, path) = temp_db();
    let mut store = two_phase_store(&path, 1000, SizeCheckpoint::TwoPhase);
    fill(&mut store, 1, 6000);
    assert!(store.checkpoint_if_due().is_none());
    let report = store.checkpoint_with_deadline(
        CheckpointMode::Truncate,
        CheckpointReason::Shutdown,
        Duration::from_secs(2),
    );
    assert_eq!(
        *report.outcome(),
        CheckpointOutcome::Completed,
        "{report:?}"
    );
    let phase1 = report.backfill().expect("phase 1 reported");
    assert_eq!(phase1.reason(), CheckpointReason::Backfill);
    assert_eq!(store.durability().exposed_commits(), 0);
}

/// Kind: a moved, deleted or replaced file. Phase 1 refuses to checkpoint
/// whatever is at the path now (and creates nothing there), phase 2 finds
/// the file gone, and nothing counts as durable.
#[cfg(unix)]
#[test]
fn phase_one_never_checkpoints_a_file_that_is_not_ours() {
    let (dir, path) = temp_db();
    let mut store = two_phase_store(&path, 50, SizeCheckpoint::TwoPhase);
    let done = waker(&mut store);
    let away = dir.path().join("moved.db");
    std::fs::rename(&path, &away).unwrap();
    let durable = store.durability().durable_commits();
    let mut k = 0;
    let report = loop {
        k += 1;
        store.execute(&row(k, 300)).unwrap();
        if let Some(report) = store.checkpoint_if_due() {
            break report;
        }
        if store.backfill_running() {
            done.recv_timeout(Duration::from_secs(30)).unwrap();
        }
    };
    let phase1 = report.backfill().expect("two phases");
    assert!(phase1.outcome().is_failure(), "{phase1:?}");
    assert!(
        phase1.outcome().to_string().contains("phase-1"),
        "{phase1:?}"
    );
    assert!(report.outcome().is_failure(), "{report:?}");
    assert!(!path.exists(), "phase 1 created a database at the path");
    assert_eq!(store.durability().durable_commits(), durable);
    assert!(store.execute(&row(k + 1, 1)).is_err(), "writes are refused");
}

/// Kind: a panic on phase 1's thread (here in the waker it runs). It is a
/// failed phase 1 in the report; the writer goes on, phase 2 completes and
/// the durable point moves by phase 2 alone.
#[test]
fn a_panic_in_phase_one_never_takes_the_writer_down() {
    let (_dir, path) = temp_db();
    let mut store = two_phase_store(&path, 50, SizeCheckpoint::TwoPhase);
    store.set_backfill_waker(|| panic!("waker bug"));
    let mut k = 0;
    let report = loop {
        k += 1;
        store.execute(&row(k, 300)).unwrap();
        if let Some(report) = store.checkpoint_if_due() {
            break report;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let phase1 = report.backfill().expect("two phases");
    assert!(
        phase1.outcome().to_string().contains("waker bug"),
        "{phase1:?}"
    );
    assert_eq!(
        *report.outcome(),
        CheckpointOutcome::Completed,
        "{report:?}"
    );
    assert_eq!(store.durability().exposed_commits(), 0);
    store.execute(&row(k + 1, 1)).unwrap();
}
