//! `Store` on real files: opening and its failures, writes and their failures, reads, closures, durability accounting, close.

use std::time::{Duration, Instant};

use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode};
use walguard::settings::{DatabaseSettings, Synchronous};
use walguard::{
    CheckpointMode, CheckpointOutcome, CheckpointReason, Error, Settings, Statement, Store,
};

use crate::support::{
    chain, count, integrity, pin_reader, put, sqlite_cause, store_with_kv, store_with_kv_using,
    temp_db, wal_path,
};

#[test]
fn open_creates_the_file_in_wal_mode() {
    let (_dir, path) = temp_db();
    assert!(!path.exists());
    let mut store = store_with_kv(&path);
    put(&mut store, "a", 1);
    assert!(path.is_file(), "open must create {}", path.display());
    assert_eq!(store.path(), path.as_path());

    // A second connection sees the persistent journal mode.
    let other = Connection::open(&path).unwrap();
    let mode: String = other
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    assert!(
        wal_path(&path).is_file(),
        "a committed write lives in the -wal file"
    );
}

/// Set in the environment of [`private_files_child`]: the directory to
/// create its files in.
#[cfg(unix)]
const PRIVATE_FILES_CHILD_DIR: &str = "WALGUARD_PRIVATE_FILES_CHILD_DIR";

/// New database files are `0600`: the database, and the `-wal` and `-shm`
/// files SQLite creates beside it, under a permissive umask (022) that
/// would give a plain new file `0644`. The umask is process-wide, so the
/// check runs in a child process (this test binary again, run by `sh` after
/// `umask 022`), never in the test process, where it would change the
/// modes of the files other tests create meanwhile.
#[cfg(unix)]
#[test]
fn open_creates_files_readable_by_the_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new("sh")
        .args([
            "-c",
            r#"umask 022 && exec "$0" --exact store::private_files_child --ignored --nocapture --test-threads=1"#,
        ])
        .arg(std::env::current_exe().unwrap())
        .env(PRIVATE_FILES_CHILD_DIR, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("private files: checked"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The child process of the test above; does nothing unless its parent set
/// the environment.
#[cfg(unix)]
#[test]
#[ignore = "the child process of open_creates_files_readable_by_the_owner_only"]
fn private_files_child() {
    use std::os::unix::fs::PermissionsExt;

    let Some(dir) = std::env::var_os(PRIVATE_FILES_CHILD_DIR) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let mode =
        |file: &std::path::Path| std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
    // The umask is permissive: without walguard, a new file is readable by
    // everyone, so the check below can fail.
    let plain = dir.join("plain");
    std::fs::write(&plain, b"x").unwrap();
    assert_eq!(mode(&plain), 0o644, "the umask is not 022");

    let path = dir.join("state.db");
    let mut store = store_with_kv(&path);
    put(&mut store, "a", 1);
    let shm = std::path::PathBuf::from(format!("{}-shm", path.display()));
    for file in [path.clone(), wal_path(&path), shm] {
        assert_eq!(
            mode(&file),
            0o600,
            "{} has mode {:o}",
            file.display(),
            mode(&file)
        );
    }
    println!("private files: checked");
}

fn pragma_i64(store: &mut Store, name: &str) -> i64 {
    store
        .call(|c| c.pragma_query_value(None, name, |r| r.get(0)))
        .unwrap()
}

#[test]
fn open_applies_the_configured_pragmas() {
    let (_dir, path) = temp_db();
    let mut settings = DatabaseSettings::at(&path);
    settings.busy_timeout = Duration::from_millis(1234);
    settings.synchronous = Synchronous::Full;
    settings.journal_size_limit = Some(1 << 20);
    settings.wal_autocheckpoint = 0;
    let mut store = Store::open(&settings).unwrap();
    assert_eq!(pragma_i64(&mut store, "busy_timeout"), 1234);
    assert_eq!(pragma_i64(&mut store, "synchronous"), 2);
    assert_eq!(pragma_i64(&mut store, "journal_size_limit"), 1 << 20);
    assert_eq!(pragma_i64(&mut store, "wal_autocheckpoint"), 0);
    store.close().map_err(|(_, e)| e).unwrap();

    // Other values, on the same file: nothing sticks from the first open.
    let mut settings = DatabaseSettings::at(&path);
    settings.busy_timeout = Duration::from_secs(7);
    settings.synchronous = Synchronous::Normal;
    settings.journal_size_limit = None;
    settings.wal_autocheckpoint = 250;
    let mut store = Store::open(&settings).unwrap();
    assert_eq!(pragma_i64(&mut store, "busy_timeout"), 7000);
    assert_eq!(pragma_i64(&mut store, "synchronous"), 1);
    assert_eq!(pragma_i64(&mut store, "journal_size_limit"), -1);
    // The store's WAL hook holds the slot SQLite's auto-checkpoint uses and
    // runs SQLite's rule itself (store/wal_watch.rs tests the 250 frames).
    assert_eq!(pragma_i64(&mut store, "wal_autocheckpoint"), 0);
}

#[test]
fn open_in_a_missing_directory_names_the_path() {
    let (dir, _) = temp_db();
    let path = dir.path().join("no-such-dir").join("state.db");
    let err = Store::open(&DatabaseSettings::at(&path)).unwrap_err();
    assert!(
        matches!(&err, Error::MissingDirectory { path: p, directory } if *p == path && directory == path.parent().unwrap()),
        "expected Error::MissingDirectory, got {err:?}"
    );
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert!(
        !path.parent().unwrap().exists(),
        "open must not create directories"
    );
}

#[test]
fn open_on_a_file_that_is_not_a_database_names_the_path() {
    let (_dir, path) = temp_db();
    let junk: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &junk).unwrap();
    let err = Store::open(&DatabaseSettings::at(&path)).unwrap_err();
    assert!(
        matches!(&err, Error::NotADatabase { path: p, .. } if *p == path),
        "expected Error::NotADatabase, got {err:?}"
    );
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        junk,
        "the file must be left alone"
    );
}

/// Another connection holds the file in `locking_mode=EXCLUSIVE` after a
/// write: opening must fail with the path named, after the busy timeout
/// and well before twice it (it waits, and only once).
fn assert_open_fails_while_locked(wal_first: bool) {
    let (_dir, path) = temp_db();
    let holder = Connection::open(&path).unwrap();
    if wal_first {
        holder.pragma_update(None, "journal_mode", "WAL").unwrap();
    }
    holder
        .execute_batch(
            "PRAGMA locking_mode=EXCLUSIVE; CREATE TABLE t (x); INSERT INTO t VALUES (1);",
        )
        .unwrap();

    let mut settings = DatabaseSettings::at(&path);
    settings.busy_timeout = Duration::from_millis(500);
    let start = Instant::now();
    let err = Store::open(&settings).unwrap_err();
    let elapsed = start.elapsed();
    assert!(
        elapsed >= settings.busy_timeout,
        "open gave up after {elapsed:?}, before the busy timeout"
    );
    // Only a hang guard above: a loaded machine can stretch the wait past
    // any tight bound. The exact timeout is read back below.
    assert!(
        elapsed < 20 * settings.busy_timeout,
        "open took {elapsed:?}: it hung"
    );
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "the error must name the path: {}",
        chain(&err)
    );
    assert_eq!(
        sqlite_cause(&err).and_then(rusqlite::Error::sqlite_error_code),
        Some(ErrorCode::DatabaseBusy),
        "{}",
        chain(&err)
    );
    drop(holder);
    // Once the holder is gone the same settings open fine, with exactly
    // the busy timeout asked for (no clock involved).
    let mut store = Store::open(&settings).unwrap();
    let busy_timeout_ms = store
        .call(|c| c.query_row("PRAGMA busy_timeout", [], |r| r.get::<_, i64>(0)))
        .unwrap();
    assert_eq!(busy_timeout_ms, 500);
}

#[test]
fn open_on_an_exclusively_locked_database_fails_within_the_busy_timeout() {
    assert_open_fails_while_locked(false);
}

#[test]
fn open_on_an_exclusively_locked_wal_database_fails_within_the_busy_timeout() {
    assert_open_fails_while_locked(true);
}

#[test]
fn memory_database_is_rejected() {
    let err = Settings::for_database(":memory:").validate().unwrap_err();
    assert!(
        matches!(&err, Error::InvalidSetting { key, value, .. } if key == "database.path" && value == ":memory:"),
        "{err:?}"
    );
    assert!(chain(&err).contains("database.path"), "{err}");

    // Store::open does not validate, but SQLite reports the journal mode back.
    let err = Store::open(&DatabaseSettings::at(":memory:")).unwrap_err();
    assert!(
        matches!(&err, Error::NotWal { mode, .. } if mode == "memory"),
        "{err:?}"
    );
    // Regression: open used to create a stray file called `:memory:` in the
    // working directory before SQLite opened the in-memory database.
    assert!(
        !std::path::Path::new(":memory:").exists(),
        "Store::open created a file named :memory: in the working directory"
    );
}

#[test]
fn failed_writes_name_the_sql_and_the_store_keeps_writing() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    put(&mut store, "taken", 1);

    let cases = [
        (
            "bad SQL",
            Statement::new("INSERT INTO kv VALUS ('x', 1)"),
            None,
        ),
        (
            "constraint violation",
            Statement::new("INSERT INTO kv (k, v) VALUES (?1, ?2)")
                .bind("taken")
                .bind(2),
            Some(ErrorCode::ConstraintViolation),
        ),
        (
            "not null violation",
            Statement::new("INSERT INTO kv (k, v) VALUES (?1, NULL)").bind("null"),
            Some(ErrorCode::ConstraintViolation),
        ),
        (
            "too few parameters",
            Statement::new("INSERT INTO kv (k, v) VALUES (?1, ?2)").bind("few"),
            None,
        ),
        (
            "too many parameters",
            Statement::new("INSERT INTO kv (k, v) VALUES (?1, ?2)")
                .bind("many")
                .bind(1)
                .bind(2),
            None,
        ),
    ];
    for (i, (what, stmt, code)) in cases.iter().enumerate() {
        let commits = store.durability().commits();
        let err = store.execute(stmt).unwrap_err();
        match &err {
            Error::Statement { sql, .. } => assert_eq!(sql, stmt.sql(), "{what}"),
            other => panic!("{what}: expected Error::Statement, got {other:?}"),
        }
        assert!(err.to_string().contains(stmt.sql()), "{what}: {err}");
        if let Some(code) = code {
            assert_eq!(
                sqlite_cause(&err).and_then(rusqlite::Error::sqlite_error_code),
                Some(*code),
                "{what}: {}",
                chain(&err)
            );
        }
        assert_eq!(
            store.durability().commits(),
            commits,
            "{what}: a failed write is no commit"
        );
        assert_eq!(
            count(&store, "kv"),
            1 + i as i64,
            "{what}: nothing was written"
        );

        // The next write goes through.
        put(&mut store, &format!("after-{i}"), 1);
        assert_eq!(store.durability().commits(), commits + 1, "{what}");
        assert_eq!(count(&store, "kv"), 2 + i as i64, "{what}");
    }
}

/// A `BEGIN` sent as a single statement used to leave a transaction open,
/// and every later checkpoint then failed with `SQLITE_LOCKED`.
#[test]
fn a_single_statement_may_not_leave_a_transaction_open() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    for sql in ["BEGIN", "BEGIN IMMEDIATE", "SAVEPOINT s1"] {
        let err = store.execute(&Statement::new(sql)).unwrap_err();
        assert!(
            matches!(&err, Error::LeftTransactionOpen { what } if what.contains(sql)),
            "{err:?}"
        );
        assert!(
            chain(&err).contains("left a transaction open"),
            "{}",
            chain(&err)
        );
    }
    put(&mut store, "after", 1);
    let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
    assert_eq!(
        *report.outcome(),
        CheckpointOutcome::Completed,
        "{report:?}"
    );
    assert_eq!(count(&store, "kv"), 1);
}

#[test]
fn transaction_commits_every_statement_at_once() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    let commits = store.durability().commits();
    let changed = store
        .transaction(&[
            Statement::new("INSERT INTO kv (k, v) VALUES ('a', 1)"),
            Statement::new("INSERT INTO kv (k, v) VALUES ('b', 2)"),
            Statement::new("UPDATE kv SET v = v + 10"),
        ])
        .unwrap();
    assert_eq!(changed, vec![1, 1, 2]);
    assert_eq!(count(&store, "kv"), 2);
    assert_eq!(
        store.durability().commits(),
        commits + 1,
        "one batch is one commit"
    );
}

#[test]
fn transaction_with_a_failing_statement_rolls_back_all_of_it() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    put(&mut store, "taken", 1);
    let commits = store.durability().commits();

    let batch = [
        Statement::new("INSERT INTO kv (k, v) VALUES (?1, ?2)")
            .bind("first")
            .bind(1),
        Statement::new("UPDATE kv SET v = 99"),
        Statement::new("INSERT INTO kv (k, v) VALUES (?1, ?2)")
            .bind("taken")
            .bind(2),
        Statement::new("INSERT INTO kv (k, v) VALUES (?1, ?2)")
            .bind("last")
            .bind(3),
    ];
    let err = store.transaction(&batch).unwrap_err();
    match &err {
        Error::Transaction { index, sql, .. } => {
            assert_eq!(*index, 2);
            assert_eq!(sql, batch[2].sql());
        }
        other => panic!("expected Error::Transaction, got {other:?}"),
    }
    let shown = err.to_string();
    assert!(shown.contains("statement 2"), "{shown}");
    assert!(shown.contains(batch[2].sql()), "{shown}");
    assert_eq!(
        sqlite_cause(&err).and_then(rusqlite::Error::sqlite_error_code),
        Some(ErrorCode::ConstraintViolation)
    );

    // Nothing of the batch survived: not the insert, not the update.
    let rows = store
        .query(&Statement::new("SELECT k, v FROM kv ORDER BY k"))
        .unwrap();
    assert_eq!(
        rows.rows(),
        &[vec![Value::Text("taken".into()), Value::Integer(1)]]
    );
    assert_eq!(store.durability().commits(), commits);
    // And the store is out of the transaction: the next batch commits.
    store
        .transaction(&[Statement::new("INSERT INTO kv (k, v) VALUES ('next', 4)")])
        .unwrap();
    assert_eq!(count(&store, "kv"), 2);
    assert_eq!(store.durability().commits(), commits + 1);
}

#[test]
fn query_returns_columns_and_rows() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    put(&mut store, "b", 2);
    put(&mut store, "a", 1);
    let commits = store.durability().commits();
    let rows = store
        .query(
            &Statement::new(
                "SELECT k AS key, v * ?1 AS doubled, NULL AS absent FROM kv ORDER BY k",
            )
            .bind(2),
        )
        .unwrap();
    assert_eq!(rows.columns(), ["key", "doubled", "absent"]);
    assert_eq!(rows.len(), 2);
    assert!(!rows.is_empty());
    assert_eq!(
        rows.rows(),
        &[
            vec![Value::Text("a".into()), Value::Integer(2), Value::Null],
            vec![Value::Text("b".into()), Value::Integer(4), Value::Null],
        ]
    );
    let empty = store
        .query(&Statement::new("SELECT k FROM kv WHERE v > 100"))
        .unwrap();
    assert_eq!(empty.columns(), ["k"]);
    assert!(empty.is_empty());
    let err = store
        .query(&Statement::new("SELECT nope FROM kv"))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Statement { sql, .. } if sql == "SELECT nope FROM kv"),
        "{err:?}"
    );
    assert_eq!(
        store.durability().commits(),
        commits,
        "reads are no commits"
    );
}

#[test]
fn call_runs_a_closure_on_the_write_connection() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    let commits = store.durability().commits();

    let inserted = store
        .call(|c| {
            let tx = c.transaction()?;
            for i in 0..3 {
                tx.execute(
                    "INSERT INTO kv (k, v) VALUES (?1, ?2)",
                    (format!("k{i}"), i),
                )?;
            }
            tx.commit()?;
            Ok(3)
        })
        .unwrap();
    assert_eq!(inserted, 3);
    assert_eq!(count(&store, "kv"), 3);
    assert_eq!(store.durability().commits(), commits + 1);

    // A read-only closure is no commit.
    let n: i64 = store
        .call(|c| c.query_row("SELECT sum(v) FROM kv", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(store.durability().commits(), commits + 1);

    // A closure's own error comes back as Error::Call.
    let err = store
        .call(|c| c.execute("INSERT INTO nope VALUES (1)", []))
        .unwrap_err();
    assert!(matches!(err, Error::Call { .. }), "{err:?}");
    assert!(chain(&err).contains("nope"), "{}", chain(&err));
}

#[test]
fn call_leaving_a_transaction_open_is_an_error_and_is_rolled_back() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    put(&mut store, "kept", 1);
    let commits = store.durability().commits();

    let err = store
        .call(|c| {
            c.execute_batch("BEGIN; INSERT INTO kv (k, v) VALUES ('lost', 2);")?;
            Ok(())
        })
        .unwrap_err();
    assert!(
        matches!(&err, Error::LeftTransactionOpen { what } if what == "closure"),
        "{err:?}"
    );
    assert!(chain(&err).contains("transaction open"), "{}", chain(&err));
    assert!(
        store.call(|c| Ok(c.is_autocommit())).unwrap(),
        "the transaction must be closed"
    );
    assert_eq!(
        count(&store, "kv"),
        1,
        "the open transaction was rolled back"
    );
    assert_eq!(store.durability().commits(), commits);

    // The store goes on: a write and a checkpoint work.
    put(&mut store, "next", 3);
    let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
    assert_eq!(
        *report.outcome(),
        CheckpointOutcome::Completed,
        "{report:?}"
    );
}

#[test]
fn full_disk_is_a_clear_error_and_the_store_keeps_serving() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    store
        .execute(&Statement::new(
            "CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB)",
        ))
        .unwrap();
    put(&mut store, "before", 1);
    let pages: i64 = store
        .call(|c| c.pragma_query_value(None, "page_count", |r| r.get(0)))
        .unwrap();
    let limit = pages + 16;
    let set: i64 = store
        .call(|c| {
            c.query_row(&format!("PRAGMA max_page_count = {limit}"), [], |r| {
                r.get(0)
            })
        })
        .unwrap();
    assert_eq!(set, limit);

    let insert = Statement::new("INSERT INTO blobs (body) VALUES (zeroblob(32768))");
    let mut stored = 0;
    let err = loop {
        match store.execute(&insert) {
            Ok(_) => stored += 1,
            Err(e) => break e,
        }
        assert!(stored < 100, "max_page_count did not stop the writes");
    };
    assert!(
        matches!(&err, Error::Statement { sql, .. } if sql == insert.sql()),
        "{err:?}"
    );
    assert_eq!(
        sqlite_cause(&err).and_then(rusqlite::Error::sqlite_error_code),
        Some(ErrorCode::DiskFull),
        "{}",
        chain(&err)
    );
    assert!(chain(&err).contains("full"), "{}", chain(&err));

    // Reads go on, and nothing half-written is visible.
    assert_eq!(count(&store, "blobs"), stored);
    assert_eq!(count(&store, "kv"), 1);
    let ok = store
        .query(&Statement::new("PRAGMA integrity_check"))
        .unwrap();
    assert_eq!(ok.rows(), &[vec![Value::Text("ok".into())]]);
    // A small write that fits still goes through, and the file checks out.
    store.execute(&Statement::new("DELETE FROM blobs")).unwrap();
    put(&mut store, "after", 2);
    store.close().map_err(|(_, e)| e).unwrap();
    let conn = Connection::open(&path).unwrap();
    assert_eq!(integrity(&conn), "ok");
    let n: i64 = conn
        .query_row("SELECT count(*) FROM kv", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
}

#[test]
fn durability_under_normal_moves_only_on_a_completed_checkpoint() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    put(&mut store, "a", 1);
    put(&mut store, "b", 2);
    let d = store.durability();
    assert_eq!(
        (d.commits(), d.durable_commits(), d.exposed_commits()),
        (3, 0, 3)
    );
    assert_eq!(d.durable_at(), None);

    let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Interval);
    assert_eq!(
        *report.outcome(),
        CheckpointOutcome::Completed,
        "{report:?}"
    );
    let d = store.durability();
    assert_eq!(
        (d.commits(), d.durable_commits(), d.exposed_commits()),
        (3, 3, 0)
    );
    let durable_at = d
        .durable_at()
        .expect("a completed checkpoint sets durable_at");

    // A reader pins its snapshot; later commits cannot all be copied back.
    let reader = pin_reader(&path);
    put(&mut store, "c", 3);
    put(&mut store, "d", 4);
    let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Interval);
    assert_eq!(*report.outcome(), CheckpointOutcome::Partial, "{report:?}");
    assert!(!report.busy(), "PASSIVE never reports busy: {report:?}");
    assert!(
        report.checkpointed_frames() < report.log_frames(),
        "{report:?}"
    );
    let d = store.durability();
    assert_eq!(
        (d.commits(), d.durable_commits(), d.exposed_commits()),
        (5, 3, 2)
    );
    assert_eq!(
        d.durable_at(),
        Some(durable_at),
        "a partial checkpoint moves nothing"
    );

    // The reader ends: the next PASSIVE catches up.
    drop(reader);
    let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Interval);
    assert_eq!(
        *report.outcome(),
        CheckpointOutcome::Completed,
        "{report:?}"
    );
    let d = store.durability();
    assert_eq!(
        (d.commits(), d.durable_commits(), d.exposed_commits()),
        (5, 5, 0)
    );
    assert!(d.durable_at().unwrap() >= durable_at);
}

#[test]
fn durability_under_full_never_exposes_a_commit() {
    let (_dir, path) = temp_db();
    let mut settings = DatabaseSettings::at(&path);
    settings.synchronous = Synchronous::Full;
    let mut store = store_with_kv_using(&settings);
    let d = store.durability();
    assert_eq!((d.commits(), d.exposed_commits()), (1, 0));
    assert!(d.durable_at().is_some());

    let reader = pin_reader(&path);
    for i in 0..5 {
        put(&mut store, &format!("k{i}"), i);
        assert_eq!(store.durability().exposed_commits(), 0);
    }
    store
        .transaction(&[Statement::new("UPDATE kv SET v = v + 1")])
        .unwrap();
    store
        .call(|c| c.execute("DELETE FROM kv WHERE k = 'k0'", []))
        .unwrap();
    let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Interval);
    assert_eq!(*report.outcome(), CheckpointOutcome::Partial, "{report:?}");
    let d = store.durability();
    assert_eq!(
        (d.commits(), d.durable_commits(), d.exposed_commits()),
        (8, 8, 0)
    );
    drop(reader);
}

#[test]
fn close_checkpoints_and_removes_the_wal() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    for i in 0..200 {
        put(&mut store, &format!("k{i:03}"), i);
    }
    let wal = wal_path(&path);
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 0,
        "the rows sit in the WAL"
    );
    store.close().map_err(|(_, e)| e).unwrap();
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "the -wal file must be gone or empty after close"
    );

    let conn = Connection::open(&path).unwrap();
    assert_eq!(integrity(&conn), "ok");
    let (n, sum): (i64, i64) = conn
        .query_row("SELECT count(*), sum(v) FROM kv", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((n, sum), (200, (0..200).sum()));
}
