//! Process tests: the `walguard` command is safe to point at a real
//! database (issue 10). A real file comes out byte-for-byte untouched, a
//! rollback-journal database is never converted, a lock held elsewhere is
//! reported at once, and `inspect` never reads around a writer. The lock
//! holders are connections of this test process: POSIX locks belong to a
//! process, so the `walguard` child sees them as another process's.

use std::time::{Duration, Instant};

use rusqlite::Connection;

#[path = "support/cli.rs"]
mod support;
use support::{bytes_of, files_in, left_with_a_full_wal, sibling, text, walguard};

/// A database that is not walguard's: an `events` table of its own (the
/// name the demo used to write into), an index, 100 rows.
const REAL_SCHEMA: &str = "
    CREATE TABLE events (id INTEGER PRIMARY KEY, key TEXT, kind TEXT, payload TEXT, at_ms INTEGER);
    CREATE INDEX events_by_key ON events (key);
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
    INSERT INTO events (key, kind, payload, at_ms) SELECT 'k' || i, 'placed', '{}', i FROM n;";

/// Bug: `walguard run --db prod.db` added its demo rows to an existing
/// `events` table (5,982 rows became 6,180). Now any database holding
/// anything but the demo's own tables is refused before a single write, and
/// every file of it (database, live `-wal`) is left byte-for-byte as it was.
#[test]
fn run_refuses_a_real_database_and_leaves_it_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    // Closed cleanly: everything in the database file.
    let clean = dir.path().join("prod.db");
    {
        let conn = Connection::open(&clean).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch(REAL_SCHEMA).unwrap();
    }
    // Left with a live WAL: its writer closed without the close checkpoint.
    let live = dir.path().join("live.db");
    left_with_a_full_wal(&live, REAL_SCHEMA);
    assert!(sibling(&live, "-wal").exists());

    // The database and its WAL hold the data: byte-for-byte. The `-shm` is
    // SQLite's shared-memory WAL index, which every reader (the `sqlite3`
    // shell too) updates; it holds no data and is not compared.
    for db in [&clean, &live] {
        let files = files_in(dir.path());
        let before: Vec<_> = ["", "-wal"]
            .iter()
            .map(|s| bytes_of(&sibling(db, s)))
            .collect();
        let started = Instant::now();
        let out = walguard(dir.path())
            .args(["run", "--duration", "2s", "--db"])
            .arg(db)
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "it ran a session"
        );
        for needle in [
            "table events",
            "index events_by_key",
            "walguard_demo_",
            "was not touched",
            "walguard_actors::WalGuard",
            "actors/examples/engine.rs",
        ] {
            assert!(stderr.contains(needle), "{needle:?} not in: {stderr}");
        }
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        let after: Vec<_> = ["", "-wal"]
            .iter()
            .map(|s| bytes_of(&sibling(db, s)))
            .collect();
        assert!(before == after, "{} changed", db.display());
        assert_eq!(files_in(dir.path()), files, "a file was created or removed");
    }
    let rows: i64 = Connection::open(&clean)
        .unwrap()
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 100);
}

/// The remains of a database (a `-wal` without its database file) are not
/// a new database either.
#[test]
fn run_refuses_the_remains_of_another_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gone.db");
    std::fs::write(sibling(&db, "-wal"), b"someone's frames").unwrap();
    let out = walguard(dir.path())
        .args(["run", "--duration", "1s", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("gone.db-wal"), "{stderr}");
    assert!(!db.exists());
}

/// Bug: `run` silently converted a rollback-journal database to WAL and
/// exited 0, where `inspect` and `checkpoint` refuse to. One rule for the
/// whole command: never convert. The file is refused before any write,
/// even when it holds only the demo's own tables.
#[test]
fn run_never_converts_a_rollback_journal_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rollback.db");
    {
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch("CREATE TABLE walguard_demo_events (id INTEGER PRIMARY KEY)")
            .unwrap();
    }
    let before = bytes_of(&db).unwrap();
    assert_eq!(&before[18..20], &[1, 1], "not a rollback-journal header");
    // `run` takes the path as --db, `checkpoint` as an argument.
    for args in [&["run", "--duration", "1s", "--db"][..], &["checkpoint"]] {
        let out = walguard(dir.path()).args(args).arg(&db).output().unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("rollback-journal database")
                && stderr.contains("never converts a database to WAL"),
            "{args:?}: {stderr}"
        );
        assert!(
            bytes_of(&db).unwrap() == before,
            "{args:?} changed the file"
        );
        assert_eq!(files_in(dir.path()), ["rollback.db"], "{args:?}");
    }
}

/// Bug: with another connection holding the write lock, `run --duration 2s`
/// took 7 s, exited 1 with "shutdown did not finish within 5 s", and its
/// last line said `write_errors=0` after a warning with `failed=1`. Now the
/// lock is probed at start: exit 1 at once, naming the holder. Without the
/// lock, the same database (the demo's own, from an earlier run) is reused.
#[test]
fn run_fails_at_once_when_another_process_holds_the_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let first = walguard(dir.path())
        .args(["run", "--duration", "300ms", "--rate", "50", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", text(&first.stderr));

    let holder = Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = Instant::now();
    let out = walguard(dir.path())
        .args(["run", "--duration", "2s", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(took < Duration::from_secs(2), "took {took:?}: {stderr}");
    assert!(stderr.contains("is locked by another"), "{stderr}");
    #[cfg(target_os = "linux")]
    assert!(
        stderr.contains(&format!("(pid {})", std::process::id())),
        "{stderr}"
    );
    assert!(!stderr.contains("session started"), "{stderr}");
    assert!(text(&out.stdout).is_empty());
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);

    let again = walguard(dir.path())
        .args(["run", "--duration", "300ms", "--rate", "50", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again.stderr));
}

/// Bug: `inspect` opened a rollback-journal file `immutable` whenever there
/// was no `-wal`, even with a `-journal` present and a writer holding an
/// exclusive lock, and reported `quick check ok` while `sqlite3` said
/// "database is locked". Now it reads under SQLite's shared lock: a writer
/// is reported, a hot journal nobody holds is reported, and once the writer
/// is gone the report reads under the lock and creates no file.
#[test]
fn inspect_does_not_read_around_a_writer_of_a_rollback_journal_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("journal.db");
    let writer = Connection::open(&db).unwrap();
    writer
        .execute_batch(
            "CREATE TABLE t (x BLOB);
             INSERT INTO t VALUES (randomblob(100000));
             PRAGMA cache_size = 1;
             BEGIN EXCLUSIVE;
             UPDATE t SET x = randomblob(100000);",
        )
        .unwrap();
    assert!(sibling(&db, "-journal").exists());

    let out = walguard(dir.path())
        .arg("inspect")
        .arg(&db)
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(!stdout.contains("quick check"), "{stdout}");
    assert!(stderr.contains("is locked by another"), "{stderr}");

    // The same bytes with nobody holding them: a hot journal, which only a
    // read-write open may roll back.
    let hot = dir.path().join("hot.db");
    std::fs::copy(&db, &hot).unwrap();
    std::fs::copy(sibling(&db, "-journal"), sibling(&hot, "-journal")).unwrap();
    let out = walguard(dir.path())
        .arg("inspect")
        .arg(&hot)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("hot journal"), "{stderr}");
    assert!(sibling(&hot, "-journal").exists());

    writer.execute_batch("ROLLBACK").unwrap();
    drop(writer);
    let files = files_in(dir.path());
    let out = walguard(dir.path())
        .arg("inspect")
        .arg(&db)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("quick check        ok"), "{stdout}");
    assert!(stdout.contains("shared lock"), "{stdout}");
    assert_eq!(files_in(dir.path()), files);
}

/// `run --help` suggested `--db /var/lib/engine/state.db`. It now names no
/// production path, states the rules, and says how to serve a real file.
#[test]
fn run_help_points_at_the_library_not_at_a_production_path() {
    let dir = tempfile::tempdir().unwrap();
    let out = walguard(dir.path())
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = text(&out.stdout);
    assert!(out.status.success());
    assert!(!help.contains("/var/lib"), "{help}");
    for needle in [
        "walguard_demo_",
        "never converted",
        "walguard_actors::WalGuard",
        "actors/examples/engine.rs",
    ] {
        assert!(help.contains(needle), "{needle:?} not in: {help}");
    }
}
