//! Process tests of the built `walguard` binary: real runs, real files in
//! temp dirs, real signals. Each test waits on the process or on a line it
//! prints, never on a sleep; the two `run` tests take about 4 s of wall
//! time between them.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "support/cli.rs"]
mod support;
use support::{text, walguard};

fn wal_of(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    name.into()
}

/// The `-wal` file is absent or empty.
fn wal_is_empty(db: &Path) -> bool {
    std::fs::metadata(wal_of(db)).map_or(true, |m| m.len() == 0)
}

fn integrity_and_events(db: &Path) -> (String, i64) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    let events: i64 = conn
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    (integrity, events)
}

fn has_fields(event: &Value, fields: &[&str]) -> bool {
    fields.iter().all(|f| event.get(*f).is_some())
}

/// The main job, as CI runs it: JSON logs, four or more checkpoints, one
/// end-of-session event, and a database that is complete and clean after.
#[test]
fn run_with_json_logs_checkpoints_and_leaves_a_clean_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let out = walguard(dir.path())
        .args([
            "run",
            "--duration",
            "3s",
            "--interval",
            "500ms",
            "--log-format",
            "json",
        ])
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "exit {:?}\n{stderr}", out.status);

    let events: Vec<Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let target = |e: &Value, t: &str| e["target"] == t;
    let checkpoints: Vec<&Value> = events
        .iter()
        .filter(|e| target(e, "walguard::checkpoint") && e["message"] == "checkpoint")
        .collect();
    assert!(
        checkpoints.len() >= 4,
        "{} checkpoint events\n{stderr}",
        checkpoints.len()
    );
    for c in &checkpoints {
        assert!(
            has_fields(
                c,
                &[
                    "mode",
                    "busy",
                    "log_frames",
                    "checkpointed",
                    "elapsed_ms",
                    "reason",
                    "outcome"
                ]
            ),
            "{c}"
        );
        assert!(c["elapsed_ms"].is_number() && c["busy"].is_boolean(), "{c}");
    }
    assert!(
        checkpoints.iter().any(|c| c["mode"] == "truncate"
            && c["reason"] == "shutdown"
            && c["outcome"] == "completed"),
        "{stderr}"
    );
    let sessions: Vec<&Value> = events
        .iter()
        .filter(|e| target(e, "walguard::session"))
        .collect();
    assert_eq!(sessions.len(), 1, "{stderr}");
    let session = sessions[0];
    assert!(
        has_fields(
            session,
            &[
                "n",
                "p50_ms",
                "p95_ms",
                "max_ms",
                "completed",
                "partial",
                "busy",
                "failed",
                "writes"
            ]
        ),
        "{session}"
    );

    // stdout: the summary, one JSON object, agreeing with the event.
    let summary: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(summary["writes"], session["writes"]);
    assert_eq!(summary["exposed_commits"], 0);
    assert_eq!(summary["stopped_by"], "duration");

    assert!(wal_is_empty(&db), "WAL left behind");
    let (integrity, rows) = integrity_and_events(&db);
    assert_eq!(integrity, "ok");
    let writes = session["writes"].as_i64().unwrap();
    assert!(writes > 0);
    // One event row per acknowledged write.
    assert_eq!(rows, writes);
}

/// SIGTERM mid-run: the clean shutdown, the summary, exit 0, within 5 s.
#[cfg(unix)]
#[test]
fn sigterm_stops_cleanly_within_five_seconds_with_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let mut child = walguard(dir.path())
        .args(["run", "--interval", "200ms"])
        .arg("--db")
        .arg(&db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Wait for the first interval checkpoint: the session is live.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "exited early:\n{seen}"
        );
        seen.push_str(&line);
        if line.contains("walguard::checkpoint") && line.contains("interval") {
            break;
        }
    }
    let rest = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
        rest
    });

    let sent = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    let took = sent.elapsed();
    let Output { stdout, .. } = child.wait_with_output().unwrap();
    let stdout = text(&stdout);
    let stderr = format!("{seen}{}", rest.join().unwrap());

    assert!(status.success(), "exit {status:?}\n{stderr}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(stdout.contains("stopped by sigterm"), "{stdout}");
    assert!(stdout.contains("writes acknowledged:"), "{stdout}");
    assert!(stdout.contains("shutdown truncate: completed"), "{stdout}");
    assert!(stderr.contains("end of session"), "{stderr}");
    assert!(wal_is_empty(&db));
    assert_eq!(integrity_and_events(&db).0, "ok");
}

/// Bad settings files: exit 2, one line naming the key, nothing created.
#[test]
fn bad_settings_exit_2_naming_the_key() {
    let cases = [
        ("checkpoint:\n  interval: 0s\n", "checkpoint.interval"),
        ("checkpoint:\n  intervall: 1s\n", "intervall"),
        ("database:\n  busy_timeout: [5]\n", "database.busy_timeout"),
        ("metrics:\n  window: lots\n", "metrics.window"),
    ];
    for (yaml, key) in cases {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.yaml");
        std::fs::write(&file, yaml).unwrap();
        let out = walguard(dir.path())
            .args(["run", "--duration", "1s", "--db", "never.db", "--config"])
            .arg(&file)
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{yaml}\n{stderr}");
        assert!(stderr.contains(key), "{key} not named in: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!dir.path().join("never.db").exists());
    }
}

/// A bad flag value is a usage error too.
#[test]
fn bad_flags_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["run", "--interval", "5"][..],
        &["run", "--interval", "0s"],
        &["run", "--log-format", "xml"],
        &["checkpoint", "x.db", "--mode", "fast"],
        &["frobnicate"],
    ] {
        let out = walguard(dir.path()).args(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// `inspect` on a missing path: exit 1, and the file is not created; on a
/// file that is not a database: exit 1 too.
#[test]
fn inspect_refuses_missing_and_foreign_files_without_creating_any() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let out = walguard(dir.path())
        .arg("inspect")
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
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
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not an SQLite database"));

    let out = walguard(dir.path())
        .arg("checkpoint")
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!missing.exists());
}

/// A database left with a full WAL (its writer closed without the
/// close-time checkpoint): `checkpoint --mode truncate` empties the WAL and
/// keeps every row; `inspect` reports it and changes nothing.
#[test]
fn checkpoint_truncate_empties_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("left.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn.execute_batch("CREATE TABLE events (id INTEGER PRIMARY KEY, body TEXT)")
            .unwrap();
        for i in 0..200 {
            conn.execute(
                "INSERT INTO events (body) VALUES (?1)",
                [format!("event {i}")],
            )
            .unwrap();
        }
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .unwrap();
    }
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

/// Every subcommand's help has examples, and exits 0.
#[test]
fn help_shows_examples() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["run", "inspect", "checkpoint"] {
        let out = walguard(dir.path()).args([sub, "--help"]).output().unwrap();
        assert!(out.status.success());
        assert!(text(&out.stdout).contains("Examples:"), "{sub}");
    }
}

/// `--metrics-addr` serves the documented metric names over HTTP while the
/// session runs.
#[test]
fn metrics_addr_serves_the_documented_names() {
    use std::io::{Read as _, Write as _};

    let dir = tempfile::tempdir().unwrap();
    // A free port: bind to 0, read it back, let it go.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut child = walguard(dir.path())
        .args([
            "run",
            "--duration",
            "2s",
            "--interval",
            "200ms",
            "--db",
            "m.db",
        ])
        .args(["--metrics-addr", &addr.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    // Two interval checkpoints: the exposure watch has looked by then.
    let mut checkpoints = 0;
    while checkpoints < 2 {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "exited early:\n{seen}"
        );
        seen.push_str(&line);
        if line.contains("walguard::checkpoint") {
            checkpoints += 1;
        }
    }
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    conn.read_to_string(&mut body).unwrap();
    let _ = std::io::Read::read_to_string(&mut stderr, &mut seen);
    assert!(child.wait().unwrap().success(), "{seen}");

    for name in [
        "walguard_checkpoints_total{mode=\"passive\",outcome=\"completed\"}",
        "walguard_checkpoint_duration_seconds_bucket",
        "walguard_writes_total",
        "walguard_wal_frames",
        "walguard_wal_bytes",
        "walguard_exposure_seconds",
        "walguard_exposed_commits",
    ] {
        assert!(body.contains(name), "{name} missing from:\n{body}");
    }
}
