//! The store among real neighbours: a caller whose closure panics, another
//! connection that checkpoints, a batch that tries to end its own
//! transaction, a database file deleted or replaced under the store, and a
//! second engine on the same file. Each test names the kind it covers
//! (docs/reliability.md, "Neighbours").

use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use walguard::settings::DatabaseSettings;
use walguard::{
    CheckpointMode, CheckpointOutcome, CheckpointReason, EngineLock, Error, Statement, Store,
};

use crate::support::{count, integrity, pin_reader, put, store_with_kv, temp_db};

// --- a panic in the caller's closure ------------------------------------

/// Kind: a caller's closure panics. Its error says so and carries the
/// message; the transaction it left open is rolled back; the store serves
/// the next write.
#[test]
fn a_panicking_closure_is_its_callers_error_and_its_transaction_rolls_back() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    for i in 0..10 {
        put(&mut store, &format!("k{i}"), i);
    }
    let err = store
        .call(|c| -> rusqlite::Result<()> {
            c.execute_batch("BEGIN; INSERT INTO kv (k, v) VALUES ('k500', 500);")?;
            panic!("bug");
        })
        .unwrap_err();
    assert!(
        matches!(&err, Error::Panic { message } if message == "bug"),
        "{err:?}"
    );
    assert!(err.to_string().contains("panicked: bug"), "{err}");
    assert_eq!(
        count(&store, "kv"),
        10,
        "the open transaction was rolled back"
    );
    put(&mut store, "after", 11);
    assert_eq!(count(&store, "kv"), 11);

    // Siblings: a formatted (String) payload, and a panic after the closure
    // committed on its own: that commit stays and is counted.
    let commits = store.durability().commits();
    let err = store
        .call(|c| -> rusqlite::Result<()> {
            c.execute("INSERT INTO kv (k, v) VALUES ('kept', 1)", [])?;
            panic!("bug number {}", 2);
        })
        .unwrap_err();
    assert!(
        matches!(&err, Error::Panic { message } if message == "bug number 2"),
        "{err:?}"
    );
    assert_eq!(count(&store, "kv"), 12);
    assert_eq!(store.durability().commits(), commits + 1);
    store.close().map_err(|(_, e)| e).unwrap();
    assert_eq!(integrity(&Connection::open(&path).unwrap()), "ok");
}

// --- someone else's checkpoint ----------------------------------------------

/// Kind: another connection holds SQLite's checkpointer lock (here a FULL
/// checkpoint waiting on a reader; Litestream, a backup or the `sqlite3`
/// shell do the same). SQLite answers the store's checkpoint `(1, -1, -1)`:
/// busy, never "not in WAL mode", whatever the mode.
#[test]
fn a_checkpoint_while_another_connection_checkpoints_is_busy() {
    let (_dir, path) = temp_db();
    let mut settings = DatabaseSettings::at(&path);
    settings.checkpoint_busy_timeout = Duration::from_millis(50);
    let mut store = Store::open(&settings).unwrap();
    store
        .execute(&Statement::new(
            "CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)",
        ))
        .unwrap();
    put(&mut store, "a", 1);
    let reader = pin_reader(&path);
    put(&mut store, "b", 2);

    // Before the neighbour: the reader alone makes PASSIVE partial.
    let before = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
    assert_eq!(*before.outcome(), CheckpointOutcome::Partial, "{before:?}");

    let (started_tx, started_rx) = mpsc::channel();
    let neighbour_path = path.clone();
    let neighbour = std::thread::spawn(move || {
        let conn = Connection::open(&neighbour_path).unwrap();
        conn.busy_timeout(Duration::from_secs(30)).unwrap();
        started_tx.send(()).unwrap();
        // Waits on the reader while it holds the checkpointer lock. The
        // store's own checkpoints hold that lock for moments; a FULL that
        // meets one answers busy at once: try again until it waited.
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

    // The neighbour takes the lock a moment after it starts: wait for the
    // busy answer, within a bound.
    let bound = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    let busy = loop {
        let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
        assert!(!report.outcome().is_failure(), "{report:?}");
        if *report.outcome() == CheckpointOutcome::Busy {
            break report;
        }
        seen.push(report);
        assert!(Instant::now() < bound, "never busy: {seen:?}");
        std::thread::yield_now();
    };
    assert!(busy.busy(), "{busy:?}");
    assert_eq!((busy.log_frames(), busy.checkpointed_frames()), (-1, -1));
    // Every mode, the same answer; none of them counts as durable.
    for mode in [
        CheckpointMode::Full,
        CheckpointMode::Restart,
        CheckpointMode::Truncate,
    ] {
        let report = store.checkpoint(mode, CheckpointReason::Manual);
        assert_eq!(*report.outcome(), CheckpointOutcome::Busy, "{report:?}");
    }
    assert_eq!(store.durability().durable_commits(), 0);

    drop(reader);
    let (busy_flag, log, done) = neighbour.join().unwrap();
    assert_eq!((busy_flag, log == done), (0, true));
}

// --- durability from checkpoints someone else ran ------------------------

/// Kind: a checkpoint the store did not run makes commits durable too. The
/// WAL hook sees the WAL start over at the next commit, and everything
/// before that commit is durable, whoever checkpointed: another connection
/// (PASSIVE, TRUNCATE), or SQLite's own auto-checkpoint rule.
#[test]
fn a_checkpoint_by_another_connection_moves_the_durable_point() {
    for neighbour_mode in ["PASSIVE", "TRUNCATE"] {
        let (_dir, path) = temp_db();
        let mut store = store_with_kv(&path);
        put(&mut store, "a", 1);
        put(&mut store, "b", 2);
        let d = store.durability();
        assert_eq!((d.commits(), d.durable_commits()), (3, 0));

        let other = Connection::open(&path).unwrap();
        let (busy, log, done): (i64, i64, i64) = other
            .query_row(
                &format!("PRAGMA wal_checkpoint({neighbour_mode})"),
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(busy, 0, "{neighbour_mode}");
        assert_eq!(log, done, "{neighbour_mode}");
        // Nothing is seen until the store's next commit restarts the WAL.
        assert_eq!(store.durability().durable_commits(), 0);
        put(&mut store, "c", 3);
        let d = store.durability();
        assert_eq!(
            (d.commits(), d.durable_commits(), d.exposed_commits()),
            (4, 3, 1),
            "{neighbour_mode}"
        );
        assert!(d.durable_at().is_some());
    }
}

/// The negative control of the test above: with no checkpoint in between,
/// the same commits move nothing.
#[test]
fn without_a_checkpoint_commits_move_no_durable_point() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    for i in 0..50 {
        put(&mut store, &format!("k{i}"), i);
    }
    let d = store.durability();
    assert_eq!((d.commits(), d.durable_commits()), (51, 0));
}

/// A partial checkpoint by another connection (a reader pins the WAL) lets
/// no restart happen: the durable point stays.
#[test]
fn a_partial_checkpoint_by_another_connection_moves_nothing() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    put(&mut store, "a", 1);
    let reader = pin_reader(&path);
    put(&mut store, "b", 2);
    let other = Connection::open(&path).unwrap();
    let (log, done): (i64, i64) = other
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert!(done < log, "the reader kept frames: {done} of {log}");
    put(&mut store, "c", 3);
    assert_eq!(store.durability().durable_commits(), 0);
    drop(reader);
}

/// SQLite's own auto-checkpoint rule (size threshold off) is a checkpoint
/// the store did not run either: the durable point follows it.
#[test]
fn sqlites_auto_checkpoint_moves_the_durable_point() {
    let (_dir, path) = temp_db();
    let mut settings = DatabaseSettings::at(&path);
    settings.wal_autocheckpoint = 10;
    let mut store = Store::open(&settings).unwrap();
    store
        .execute(&Statement::new(
            "CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB)",
        ))
        .unwrap();
    for i in 0..200 {
        store
            .execute(
                &Statement::new("INSERT INTO kv (k, v) VALUES (?1, ?2)")
                    .bind(format!("k{i}"))
                    .bind(vec![1u8; 2000]),
            )
            .unwrap();
    }
    let d = store.durability();
    assert!(d.durable_commits() > 100, "{d:?}");
    assert!(d.exposed_commits() < 20, "{d:?}");
}

// --- an atomic batch stays atomic -------------------------------------------

/// Kind: a statement inside an atomic batch would end or split walguard's
/// transaction. It is refused before anything runs, with its position,
/// however it is spelled: SQLite says what it does, not its first keyword.
#[test]
fn a_batch_that_would_end_its_own_transaction_is_refused_before_it_runs() {
    let (_dir, path) = temp_db();
    let mut store = Store::open(&DatabaseSettings::at(&path)).unwrap();
    store
        .execute(&Statement::new(
            "CREATE TABLE k (v TEXT PRIMARY KEY CHECK (v <> 'bad'))",
        ))
        .unwrap();
    let splitters = [
        "COMMIT",
        "end",
        "  End Transaction",
        "/* looks harmless */ COMMIT",
        "-- a comment\nROLLBACK",
        "ROLLBACK TRANSACTION",
        "SAVEPOINT inner",
        "RELEASE walguard_write",
        "ROLLBACK TO inner",
        "BEGIN",
    ];
    for splitter in splitters {
        let err = store
            .transaction(&[
                Statement::new("INSERT INTO k VALUES ('first')"),
                Statement::new(splitter),
                Statement::new("INSERT INTO k VALUES ('bad')"),
            ])
            .unwrap_err();
        assert!(
            matches!(&err, Error::SplitsTransaction { index: 1, sql } if sql == splitter.trim()),
            "{splitter:?}: {err:?}"
        );
        assert!(err.to_string().contains("statement 1"), "{err}");
        assert_eq!(count(&store, "k"), 0, "{splitter:?}: nothing ran");
    }
    // The negative control: the same batch without the splitter fails on
    // its CHECK and, being atomic, leaves nothing either.
    let err = store
        .transaction(&[
            Statement::new("INSERT INTO k VALUES ('first')"),
            Statement::new("INSERT INTO k VALUES ('bad')"),
        ])
        .unwrap_err();
    assert!(
        matches!(err, Error::Transaction { index: 1, .. }),
        "{err:?}"
    );
    assert_eq!(count(&store, "k"), 0);
    // And a good batch commits whole.
    store
        .transaction(&[
            Statement::new("INSERT INTO k VALUES ('first')"),
            Statement::new("INSERT INTO k VALUES ('second')"),
        ])
        .unwrap();
    assert_eq!(count(&store, "k"), 2);
}

/// The same kind through group commit: a transaction-control statement
/// among single writes runs alone, in its place, and splits no group.
#[test]
fn group_commit_runs_transaction_control_alone() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    let results = store.execute_group(&[
        Statement::new("INSERT INTO kv (k, v) VALUES ('a', 1)"),
        Statement::new("/* x */ commit"),
        Statement::new("INSERT INTO kv (k, v) VALUES ('a', 2)"), // duplicate
        Statement::new("INSERT INTO kv (k, v) VALUES ('b', 3)"),
    ]);
    assert!(results[0].is_ok());
    // COMMIT alone: no transaction is open, SQLite says so.
    assert!(results[1].is_err(), "{:?}", results[1]);
    assert!(results[2].is_err());
    assert!(results[3].is_ok());
    assert_eq!(count(&store, "kv"), 2);
}

// --- a file that is gone -------------------------------------------------

/// Kind: the database file is deleted, renamed or replaced while the store
/// has it open. The next checkpoint finds it, says so, and from then on
/// writes are refused with the path and nothing more counts as durable.
///
/// Unix only: Windows refuses to delete, rename or replace the open
/// database (SQLite opens it without `FILE_SHARE_DELETE`), which
/// `cli/tests/windows.rs` shows.
#[cfg(unix)]
#[test]
fn a_deleted_renamed_or_replaced_file_is_never_durable() {
    for how in ["delete", "rename", "replace"] {
        let (dir, path) = temp_db();
        let mut store = store_with_kv(&path);
        put(&mut store, "a", 1);
        match how {
            "delete" => std::fs::remove_file(&path).unwrap(),
            "rename" => std::fs::rename(&path, dir.path().join("moved.db")).unwrap(),
            _ => {
                std::fs::rename(&path, dir.path().join("old.db")).unwrap();
                Connection::open(&path)
                    .unwrap()
                    .execute_batch("CREATE TABLE other (x)")
                    .unwrap();
            }
        }
        // SQLite itself says nothing: the write goes to the lost file.
        put(&mut store, "b", 2);
        let durable = store.durability().durable_commits();

        let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
        assert!(report.outcome().is_failure(), "{how}: {report:?}");
        let expected = if how == "replace" {
            "replaced by another file"
        } else {
            "deleted or renamed"
        };
        assert!(
            report.outcome().to_string().contains(expected),
            "{how}: {report:?}"
        );
        assert!(store.file_was_gone());
        let err = store
            .execute(&Statement::new("INSERT INTO kv (k, v) VALUES ('c', 3)"))
            .unwrap_err();
        assert!(
            matches!(&err, Error::DatabaseGone { path: p, .. } if *p == path),
            "{how}: {err:?}"
        );
        assert!(err.to_string().contains(&path.display().to_string()));
        let group = store.execute_group(&[Statement::new("SELECT 1"), Statement::new("SELECT 2")]);
        assert!(group.iter().all(Result::is_err), "{how}");
        assert!(store.transaction(&[Statement::new("SELECT 1")]).is_err());
        assert!(store.call(|c| c.execute("SELECT 1", [])).is_err());
        assert_eq!(store.durability().durable_commits(), durable, "{how}");
    }
}

/// The negative control: with the file in place, the same checkpoint
/// completes and nothing is refused.
#[test]
fn a_file_in_place_is_not_gone() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    put(&mut store, "a", 1);
    let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
    assert_eq!(*report.outcome(), CheckpointOutcome::Completed);
    assert!(store.check_file().is_ok());
    assert!(!store.file_was_gone());
}

// --- one engine per file -----------------------------------------------------

/// Kind: a second engine on a served file. Its lock fails with the path
/// and this process's id; readers still read; the lock is gone once the
/// holder lets go.
#[test]
fn the_engine_lock_admits_one_engine_and_no_second() {
    let (_dir, path) = temp_db();
    let first = EngineLock::acquire(&path).unwrap();
    let err = EngineLock::acquire(&path).unwrap_err();
    match &err {
        Error::AlreadyServed { path: p, pid, lock } => {
            assert_eq!(p, &path);
            assert_eq!(*pid, Some(std::process::id()));
            assert_eq!(lock, first.path());
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("this process"), "{err}");

    // SQLite's own locks are untouched: a store and a reader work.
    let mut store = store_with_kv(&path);
    put(&mut store, "a", 1);
    let reader = Connection::open(&path).unwrap();
    let n: i64 = reader
        .query_row("SELECT count(*) FROM kv", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);

    drop(first);
    let second = EngineLock::acquire(&path).unwrap();
    drop(second);
}
