//! The one-shot commands `walguard inspect` and `walguard checkpoint`:
//! what they refuse, what they print, and beside a served database.

use super::*;

/// `inspect` on a missing path: exit 2 (a refused path), and the file is
/// not created; on a file that is not a database: exit 2 too.
#[test]
fn inspect_refuses_missing_and_foreign_files_without_creating_any() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let out = walguard(dir.path())
        .arg("inspect")
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no such file"),
        "{}",
        text(&out.stderr)
    );
    assert!(!missing.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    let notes = dir.path().join("notes.txt");
    std::fs::write(
        &notes,
        "these are not the pages you are looking for\n".repeat(10),
    )
    .unwrap();
    let out = walguard(dir.path())
        .arg("inspect")
        .arg(&notes)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not an SQLite database"));

    let out = walguard(dir.path())
        .arg("checkpoint")
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!missing.exists());
}

/// A database left with a full WAL (its writer closed without the
/// close-time checkpoint): `checkpoint --mode truncate` empties the WAL and
/// keeps every row; `inspect` reports it and changes nothing.
#[test]
fn checkpoint_truncate_empties_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("left.db");
    left_with_a_full_wal(
        &db,
        "CREATE TABLE events (id INTEGER PRIMARY KEY, body TEXT);
         WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 199)
         INSERT INTO events (body) SELECT 'event ' || i FROM n;",
    );
    let wal_before = std::fs::metadata(wal_of(&db)).unwrap().len();
    assert!(wal_before > 0);

    let inspected = walguard(dir.path())
        .arg("inspect")
        .arg(&db)
        .output()
        .unwrap();
    assert!(inspected.status.success(), "{}", text(&inspected.stderr));
    let report = text(&inspected.stdout);
    assert!(report.contains("quick check        ok"), "{report}");
    assert!(report.contains("events (200 rows)"), "{report}");
    assert_eq!(std::fs::metadata(wal_of(&db)).unwrap().len(), wal_before);

    let out = walguard(dir.path())
        .arg("checkpoint")
        .arg(&db)
        .args(["--mode", "truncate", "--timeout", "2s"])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("checkpoint TRUNCATE"), "{stdout}");
    assert!(stdout.contains("completed"), "{stdout}");
    assert!(stdout.contains("busy=0 log=0 checkpointed=0"), "{stdout}");
    assert!(wal_is_empty(&db));
    let (integrity, rows) = {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .unwrap();
        (integrity, rows)
    };
    assert_eq!((integrity.as_str(), rows), ("ok", 200));
}

/// `inspect --json` and `checkpoint --json`: one JSON object each, with the
/// facts of the text report.
#[test]
fn inspect_and_checkpoint_print_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("j.db");
    left_with_a_full_wal(
        &db,
        "CREATE TABLE t (x); INSERT INTO t VALUES (1), (2), (3);",
    );
    let out = walguard(dir.path())
        .args(["inspect", "--json"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(report["journal_mode"], "wal");
    assert_eq!(report["quick_check"], "ok");
    assert_eq!(report["page_size"], 4096);
    assert_eq!(report["tables"][0]["name"], "t");
    assert_eq!(report["tables"][0]["rows"], 3);
    assert!(report["wal"]["frames"].as_i64().unwrap() > 0, "{report}");

    let out = walguard(dir.path())
        .args(["checkpoint", "--json", "--mode", "truncate"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let result: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(result["mode"], "truncate");
    assert_eq!(result["outcome"], "completed");
    assert_eq!(result["busy"], false);
    assert_eq!(result["log_frames"], 0);
    assert!(result["wal_bytes_before"].as_u64().unwrap() > 0, "{result}");
    assert!(result["elapsed_ms"].is_number(), "{result}");
}

/// A failed `inspect --json` or `checkpoint --json` still prints one JSON
/// object on stdout, naming the database and the reason, with the exit code
/// it exits with; the same line goes to stderr for people. A checkpoint that
/// ran and ended busy prints its own result once, not a second object.
#[test]
fn a_failed_json_command_still_answers_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let not_db = dir.path().join("notes.txt");
    std::fs::write(&not_db, "plain text, not a database\n".repeat(200)).unwrap();
    let missing = dir.path().join("missing.db");
    for (args, path, reason) in [
        (
            ["inspect", "--json"].as_slice(),
            &not_db,
            "not an SQLite database",
        ),
        (
            ["checkpoint", "--json"].as_slice(),
            &not_db,
            "not an SQLite database",
        ),
        (["inspect", "--json"].as_slice(), &missing, "missing.db"),
        (["checkpoint", "--json"].as_slice(), &missing, "missing.db"),
    ] {
        let out = walguard(dir.path()).args(args).arg(path).output().unwrap();
        let stdout = text(&out.stdout);
        let answer: Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("{args:?} {}: {e}: {stdout:?}", path.display()));
        let code = out.status.code().unwrap();
        assert_ne!(code, 0, "{args:?}: {answer}");
        assert_eq!(answer["exit_code"], code, "{args:?}: {answer}");
        assert_eq!(answer["database"], path.display().to_string(), "{answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(reason), "{args:?}: {error}");
        assert!(text(&out.stderr).contains(error), "{}", text(&out.stderr));
    }
    assert!(
        !missing.exists(),
        "a failed one-shot command created the file"
    );

    // A checkpoint that ran and could not complete: its own answer only.
    let db = dir.path().join("held.db");
    left_with_a_full_wal(&db, "CREATE TABLE t (x); INSERT INTO t VALUES (1);");
    let reader = rusqlite::Connection::open(&db).unwrap();
    reader.execute_batch("BEGIN; SELECT * FROM t;").unwrap();
    let out = walguard(dir.path())
        .args([
            "checkpoint",
            "--json",
            "--mode",
            "truncate",
            "--timeout",
            "100ms",
        ])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.trim().lines().count(), 1, "{stdout}");
    let result: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(result["outcome"], "busy", "{result}");
    drop(reader);
}

/// Issue 21, kind: walguard's own tool fails the engine it sits beside.
/// With a reader holding a snapshot (as Litestream always does), `walguard
/// checkpoint` in its default mode (TRUNCATE), and in `full` and `restart`,
/// against a served database is refused at once, naming `--mode passive`;
/// `--mode passive` runs; the engine loses no write and exits 0. (No
/// negative control of the harm itself: here a 5 s TRUNCATE from another
/// connection ended busy without failing a write of the engine, so this
/// test proves the refusal, not the harm the issue measured.)
#[test]
fn checkpoint_beside_a_served_database_is_passive_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let mut child = walguard(dir.path())
        .args(["run", "--duration", "3s", "--interval", "500ms"])
        .arg("--db")
        .arg(&db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut stderr, _) = live_session(&mut child);
    let reader = rusqlite::Connection::open(&db).unwrap();
    reader
        .execute_batch("BEGIN; SELECT count(*) FROM sqlite_master;")
        .unwrap();
    for mode in [None, Some("full"), Some("restart"), Some("truncate")] {
        let started = std::time::Instant::now();
        // Refused at once, not after waiting on the reader: with a
        // minute's timeout, a checkpoint that waited cannot end under half
        // of it, and a refusal is far below that however loaded the
        // machine (a bound load cannot cross).
        let mut cmd = walguard(dir.path());
        cmd.arg("checkpoint").arg(&db).args(["--timeout", "60s"]);
        if let Some(mode) = mode {
            cmd.args(["--mode", mode]);
        }
        let refused = cmd.output().unwrap();
        let said = text(&refused.stderr);
        assert_eq!(refused.status.code(), Some(1), "{mode:?}: {said}");
        assert!(said.contains("served by a walguard engine"), "{said}");
        assert!(said.contains("--mode passive"), "{said}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{mode:?} waited {:?}",
            started.elapsed()
        );
    }
    let passive = walguard(dir.path())
        .args(["checkpoint", "--mode", "passive"])
        .arg(&db)
        .output()
        .unwrap();
    // Partial or busy beside the reader and the engine: it ran.
    assert!(
        text(&passive.stdout).contains("checkpoint PASSIVE"),
        "{}{}",
        text(&passive.stdout),
        text(&passive.stderr)
    );
    reader.execute_batch("COMMIT").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    let stdout = text(&child.wait_with_output().unwrap().stdout);
    assert_eq!(status.code(), Some(0), "{stdout}\n{rest}");
    assert!(stdout.contains("(errors: 0)"), "{stdout}");
    // Control: on a database nobody serves, the default TRUNCATE runs.
    let out = walguard(dir.path())
        .arg("checkpoint")
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("checkpoint TRUNCATE"));
}
