//! Process tests of the built `walguard` binary: real runs, real files in
//! temp dirs, real signals. Each test waits on the process or on a line it
//! prints, never on a sleep. `tests/cli_safety.rs` holds the tests of what
//! the command may do to a database it is pointed at.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
#[cfg(unix)]
use std::process::Command;
use std::process::{Output, Stdio};
#[cfg(unix)]
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "support/cli.rs"]
mod support;
#[cfg(unix)]
#[path = "../../actors/tests/support/tools.rs"]
#[allow(dead_code)] // This binary uses `require` alone.
mod tools;
use support::{left_with_a_full_wal, sibling, text, walguard};

fn wal_of(db: &Path) -> PathBuf {
    sibling(db, "-wal")
}

/// Waits for the first interval checkpoint on `child`'s stderr (the session
/// is live); the rest of stderr, and what was read so far.
fn live_session(child: &mut std::process::Child) -> (BufReader<std::process::ChildStderr>, String) {
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
            return (stderr, seen);
        }
    }
}

/// The stable fields of the `walguard::session` event, which the summary
/// object repeats with the same values (their one home is the core).
const SESSION_FIELDS: [&str; 14] = walguard::stats::SESSION_LOG_FIELDS;

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
        .query_row("SELECT count(*) FROM walguard_demo_events", [], |r| {
            r.get(0)
        })
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
        assert!(has_fields(c, &walguard::checkpoint::LOG_FIELDS), "{c}");
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
    assert!(has_fields(session, &SESSION_FIELDS), "{session}");

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

    let (mut stderr, seen) = live_session(&mut child);
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
        // The reason label tells scheduled checkpoints from size-triggered
        // ones (they had no reason label before).
        "walguard_checkpoints_total{mode=\"passive\",outcome=\"completed\",reason=\"interval\"}",
        "walguard_checkpoint_duration_seconds_bucket{mode=\"passive\",reason=\"interval\",",
        "walguard_writes_total",
        "walguard_wal_frames",
        "walguard_wal_bytes",
        "walguard_exposure_seconds",
        "walguard_exposed_commits",
    ] {
        assert!(body.contains(name), "{name} missing from:\n{body}");
    }
}

/// JSON lines of a process's stderr.
fn json_lines(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// Whether `text` holds an ANSI SGR sequence (a colour or a style), as
/// opposed to the cursor controls of the status line.
fn has_sgr(text: &str) -> bool {
    text.split("\x1b[").skip(1).any(|rest| {
        let code: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == ';')
            .collect();
        rest[code.len()..].starts_with('m')
    })
}

/// Bug: every SQLite error printed its cause twice: `file is not a
/// database: Error code 26: file is not a database`. One renderer walks the
/// chain and says each thing once.
#[test]
fn errors_say_each_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("garbled.db");
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend((0..4080u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    bytes[18] = 2;
    bytes[19] = 2;
    std::fs::write(&db, bytes).unwrap();
    let out = walguard(dir.path())
        .arg("inspect")
        .arg(&db)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(
        stderr.matches("file is not a database").count(),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains("Error code"), "{stderr}");
}

/// Bug: ANSI escapes were forced on whenever stderr was a terminal, and
/// `NO_COLOR` was ignored. `--color auto|always|never` decides, and under
/// `auto` a set `NO_COLOR` means none.
#[test]
fn color_follows_the_flag_and_no_color() {
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let out = walguard(dir.path())
            .args(["run", "--duration", "200ms", "--rate", "0", "--db", "c.db"])
            .args(extra)
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert!(out.status.success(), "{extra:?}: {stderr}");
        stderr
    };
    assert!(has_sgr(&run(&["--color", "always"])));
    assert!(!has_sgr(&run(&["--color", "never"])));
    assert!(!has_sgr(&run(&[])), "piped stderr is not a terminal");
    let out = walguard(dir.path())
        .args(["inspect", "c.db", "--color", "sometimes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// On a terminal (a pseudo-terminal from `script`; without it the test fails): the
/// status line says `exposed N commits (oldest X s)`, a count and an age
/// (it read like a rate: `230 commits/1.1s`), and `NO_COLOR` turns the
/// colours off while the status line still draws.
#[cfg(unix)]
#[test]
fn on_a_terminal_no_color_is_honoured_and_the_exposure_is_a_count_and_an_age() {
    let script = Path::new("/usr/bin/script");
    tools::require(
        script.exists(),
        "/usr/bin/script (a terminal for the command)",
        "apt-get install bsdutils (util-linux's `script`)",
    );
    let dir = tempfile::tempdir().unwrap();
    let bin = std::env::var("WALGUARD_TEST_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_walguard").to_owned());
    let session = |no_color: bool| {
        // `script -e` runs the command on a new pseudo-terminal, copies
        // what it prints to stdout, and exits with its code.
        let mut cmd_line = std::process::Command::new(script);
        cmd_line
            .current_dir(dir.path())
            .args(["-qec"])
            .arg(format!(
                "'{bin}' run --duration 2500ms --interval 10s --db t.db"
            ))
            .arg("/dev/null")
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR");
        if no_color {
            cmd_line.env("NO_COLOR", "1");
        }
        let out = cmd_line.output().unwrap();
        let screen = text(&out.stdout);
        assert!(out.status.success(), "{screen}{}", text(&out.stderr));
        screen
    };
    let plain = session(true);
    assert!(!has_sgr(&plain), "{plain:?}");
    assert!(plain.contains("writes/s"), "no status line: {plain:?}");
    assert!(plain.contains(" commits (oldest "), "{plain:?}");
    assert!(!plain.contains("commits/"), "{plain:?}");
    let coloured = session(false);
    assert!(has_sgr(&coloured), "{coloured:?}");
}

/// Bug: the summary object printed `"p50_ms":6.1318589999999995` where the
/// `walguard::session` line printed `6.131`. One rule (milliseconds to the
/// microsecond), so every field they share is equal.
#[test]
fn the_summary_object_and_the_session_event_agree() {
    let dir = tempfile::tempdir().unwrap();
    let out = walguard(dir.path())
        .args([
            "run",
            "--duration",
            "1500ms",
            "--interval",
            "200ms",
            "--log-format",
            "json",
            "--db",
            "j.db",
        ])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let events = json_lines(&stderr);
    let session = events
        .iter()
        .find(|e| e["target"] == "walguard::session")
        .unwrap_or_else(|| panic!("no session event: {stderr}"));
    let summary: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert!(session["n"].as_u64().unwrap() > 0, "{session}");
    for field in SESSION_FIELDS {
        assert_eq!(
            summary[field], session[field],
            "{field}: {summary} vs {session}"
        );
    }
    for field in ["p50_ms", "p95_ms", "max_ms", "shutdown_ms", "elapsed_s"] {
        let value = summary[field].to_string();
        let decimals = value.split_once('.').map_or(0, |(_, d)| d.len());
        assert!(decimals <= 3, "{field} has more than 3 decimals: {value}");
    }
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

/// `--log-level` filters the log lines of every subcommand, wins over
/// `RUST_LOG`, and is checked like `log.level`.
#[test]
fn log_level_filters_and_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let out = walguard(dir.path())
        .args(["run", "--duration", "200ms", "--rate", "0", "--db", "l.db"])
        .args(["--log-level", "warn"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("INFO"), "{stderr}");
    assert!(text(&out.stdout).contains("writes acknowledged"));

    let out = walguard(dir.path())
        .args(["run", "--duration", "200ms", "--rate", "0", "--db", "l.db"])
        .args(["--log-level", "info"])
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(text(&out.stderr).contains("INFO"), "{}", text(&out.stderr));

    let out = walguard(dir.path())
        .args(["inspect", "l.db", "--log-level", "inof"])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--log-level") && stderr.contains("inof"),
        "{stderr}"
    );
}

/// Bug (issue 9, item 8): a full disk gave exit 0 after 49,722 failed
/// writes. The rule: `run` exits 1 when any write failed (every demo write
/// is valid, so a failure means the database or the disk refused it), after
/// the summary, and every count the summary, the session event and the
/// error line give agrees. The failure here is a trigger on the demo's own
/// table that refuses every insert, as a full disk would.
#[test]
fn run_exits_1_when_writes_fail_and_every_count_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("full.db");
    {
        // The demo's events table, as `walguard run` creates it, with a
        // trigger of the demo's own (the `walguard_demo_` prefix) that
        // refuses every insert.
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch(
            "CREATE TABLE walguard_demo_events (
                 id INTEGER PRIMARY KEY, key TEXT NOT NULL, kind TEXT NOT NULL,
                 payload TEXT NOT NULL, at_ms INTEGER NOT NULL);
             CREATE TRIGGER walguard_demo_disk_full BEFORE INSERT ON walguard_demo_events
             BEGIN SELECT RAISE(ABORT, 'database or disk is full (simulated)'); END;",
        )
        .unwrap();
    }

    let out = walguard(dir.path())
        .args(["run", "--duration", "1s", "--log-format", "json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let error_line = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(error_line.starts_with("walguard: error: "), "{stderr}");
    let summary: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    let failed = summary["write_errors"].as_u64().unwrap();
    assert!(failed > 0, "{summary}");
    assert_eq!(summary["writes"], 0, "{summary}");
    assert!(
        error_line.contains(&format!("{failed} of {failed} writes failed")),
        "{error_line}"
    );
    let events: Vec<Value> = stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let session = events
        .iter()
        .find(|e| e["target"] == "walguard::session")
        .unwrap();
    assert_eq!(session["write_errors"], failed, "{session}");
    let warnings: Vec<&Value> = events
        .iter()
        .filter(|e| e["target"] == "walguard::engine")
        .collect();
    assert!(!warnings.is_empty(), "{stderr}");
    for w in warnings {
        assert!(w["failed"].as_u64().unwrap() <= failed, "{w}");
        let error = w["error"].as_str().unwrap();
        assert_eq!(error.matches("(simulated)").count(), 1, "{error}");
    }
}

/// Issue "neighbours", a file that is gone: the database is deleted while
/// `run` serves it. The command logs it at ERROR, claims nothing durable,
/// and exits 1 (it used to say "durable through: all commits" and exit 0).
#[test]
fn a_database_deleted_during_run_is_never_durable_and_exits_1() {
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
    std::fs::remove_file(&db).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    let Output { stdout, .. } = child.wait_with_output().unwrap();
    let stdout = text(&stdout);
    assert_eq!(status.code(), Some(1), "{stdout}\n{rest}");
    assert!(
        rest.lines()
            .any(|l| l.contains("ERROR") && l.contains("deleted or renamed")),
        "{rest}"
    );
    assert!(stdout.contains("durable through: nothing"), "{stdout}");
    assert!(!stdout.contains("nothing exposed"), "{stdout}");
    assert!(
        rest.contains("was deleted, renamed or replaced during the session"),
        "{rest}"
    );
}

/// A newcomer's finding: under `synchronous=off` nothing is ever fsynced,
/// so the summary must not say "nothing exposed to a power loss"; it warns
/// at start and claims nothing durable (a sibling of the gone file: a
/// durability claim the settings cannot back).
#[test]
fn synchronous_off_claims_nothing_durable() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let out = walguard(dir.path())
        .args(["run", "--duration", "1s", "--interval", "200ms"])
        .arg("--db")
        .arg(&db)
        .env("WALGUARD__DATABASE__SYNCHRONOUS", "off")
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("durable through: nothing against a power loss"),
        "{stdout}"
    );
    assert!(!stdout.contains("nothing exposed"), "{stdout}");
    assert!(stderr.contains("synchronous=off"), "{stderr}");
    // The negative control: the default (normal) still claims what it can.
    let normal = walguard(dir.path())
        .args(["run", "--duration", "1s", "--interval", "200ms"])
        .arg("--db")
        .arg(&db)
        .output()
        .unwrap();
    assert!(text(&normal.stdout).contains("durable through: "));
    assert!(!text(&normal.stdout).contains("nothing against a power loss"));
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
        let mut cmd = walguard(dir.path());
        cmd.arg("checkpoint").arg(&db);
        if let Some(mode) = mode {
            cmd.args(["--mode", mode]);
        }
        let refused = cmd.output().unwrap();
        let said = text(&refused.stderr);
        assert_eq!(refused.status.code(), Some(1), "{mode:?}: {said}");
        assert!(said.contains("served by a walguard engine"), "{said}");
        assert!(said.contains("--mode passive"), "{said}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{mode:?} waited"
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

/// One race of two `walguard run` started at once on the new path
/// `dir/race-N.db`: the exit code and stderr of each.
fn two_runs_at_once(dir: &Path, n: usize, lock_last: bool) -> [(Option<i32>, String); 2] {
    let db = dir.join(format!("race-{n}.db"));
    let spawn = || {
        let mut cmd = walguard(dir);
        cmd.args(["run", "--duration", "1s", "--interval", "200ms"])
            .arg("--db")
            .arg(&db)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if lock_last {
            cmd.env("WALGUARD_TEST_LOCK_LAST", "1");
        }
        cmd.spawn().unwrap()
    };
    let (first, second) = (spawn(), spawn());
    [first, second].map(|child| {
        let out = child.wait_with_output().unwrap();
        (out.status.code(), text(&out.stderr))
    })
}

/// Issue 21, kind: two engines started at once on a file neither has made
/// yet. `run` takes the engine lock before it touches the file, so in each
/// of 20 races one run serves (exit 0) and the other says the database "is
/// served by another engine" (exit 1), never "the file is empty" or
/// "cannot set `journal_mode` … locked". Negative control
/// (`WALGUARD_TEST_LOCK_LAST=1`, feature `testing`: the lock taken at
/// start, after the file was prepared, as before): in the same 20 races at
/// least one loser says something else (measured at 7feb55a: 14 of 20).
#[test]
fn two_runs_at_once_on_a_new_path_the_loser_hears_served_by_another_engine() {
    const RACES: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    for n in 0..RACES {
        let outcomes = two_runs_at_once(dir.path(), n, false);
        let winners = outcomes.iter().filter(|(code, _)| *code == Some(0)).count();
        assert_eq!(winners, 1, "race {n}: {outcomes:#?}");
        let (code, said) = outcomes.iter().find(|(code, _)| *code != Some(0)).unwrap();
        assert_eq!(*code, Some(1), "race {n}: {said}");
        assert!(
            said.contains("is served by another engine"),
            "race {n}: {said}"
        );
        assert!(said.contains("-walguard.lock"), "race {n}: {said}");
    }
    // The negative control (its hook needs feature `testing`).
    if !cfg!(feature = "testing") {
        return;
    }
    let mut other_messages = Vec::new();
    for n in RACES..2 * RACES {
        for (code, said) in two_runs_at_once(dir.path(), n, true) {
            if code != Some(0) && !said.contains("is served by another engine") {
                other_messages.push(said);
            }
        }
    }
    eprintln!(
        "negative control: {} of {RACES} losers said something else",
        other_messages.len()
    );
    assert!(
        !other_messages.is_empty(),
        "with the lock taken last, every loser still heard the lock: the race was not run"
    );
}

/// Reads `stderr` until a line containing `needle`; everything read.
fn read_until(stderr: &mut BufReader<std::process::ChildStderr>, needle: &str) -> String {
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "no line with {needle:?}:\n{seen}"
        );
        seen.push_str(&line);
        if line.contains(needle) {
            return seen;
        }
    }
}

/// A `run` (JSON logs) whose database is renamed away, found gone by a
/// checkpoint, then put back by `put_back` (from the renamed path to the
/// database path): the exit code, the summary object, stderr.
fn run_with_the_file_away(
    put_back: fn(&Path, &Path),
) -> (Option<i32>, Value, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let away = dir.path().join("away.db");
    let mut child = walguard(dir.path())
        .args(["run", "--duration", "3s", "--interval", "200ms"])
        .args(["--log-format", "json", "--rate", "200"])
        .arg("--db")
        .arg(&db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut stderr, mut seen) = live_session(&mut child);
    std::fs::rename(&db, &away).unwrap();
    seen.push_str(&read_until(&mut stderr, "deleted or renamed"));
    put_back(&away, &db);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    seen.push_str(&rest);
    let out = child.wait_with_output().unwrap();
    let summary: Value = serde_json::from_str(text(&out.stdout).trim())
        .unwrap_or_else(|e| panic!("{e}: {}\n{seen}", text(&out.stdout)));
    (out.status.code(), summary, seen, dir)
}

/// Issue 21 item 7, kind: a database file renamed away and back during
/// `run`. The checkpoint that finds it gone refuses writes (they fail, and
/// `run` exits 1 saying how many), the very same file comes back, writes
/// and checkpoints resume (`is back at its path`), and the summary says
/// what happened: not gone (`file_gone: false`, `file_returned: true`),
/// durable figures as the exposure watch keeps them (commits = durable +
/// exposed, nothing exposed after the shutdown TRUNCATE), and every
/// acknowledged write is in the file at the path, integrity ok. Negative
/// control, the sibling kind: a copy put back in its place (another file)
/// is still gone: `durable through: nothing`, exit 1 naming the file.
#[test]
fn a_database_renamed_away_and_back_is_reported_as_back_with_every_write() {
    let (code, summary, stderr, dir) = run_with_the_file_away(|away, db| {
        std::fs::rename(away, db).unwrap();
    });
    let db = dir.path().join("state.db");
    assert!(stderr.contains("is back at its path"), "{stderr}");
    assert_eq!(summary["file_gone"], false, "{summary}");
    assert_eq!(summary["file_returned"], true, "{summary}");
    let (commits, durable, exposed) = (
        summary["commits"].as_u64().unwrap(),
        summary["durable_commits"].as_u64().unwrap(),
        summary["exposed_commits"].as_u64().unwrap(),
    );
    assert_eq!(commits, durable + exposed, "{summary}");
    assert_eq!(summary["shutdown_outcome"], "completed", "{summary}");
    assert_eq!(exposed, 0, "{summary}");
    let writes = summary["writes"].as_i64().unwrap();
    let errors = summary["write_errors"].as_u64().unwrap();
    assert!(writes > 0, "{summary}");
    // Refused while away: the exit code says so, and only that.
    if errors > 0 {
        assert_eq!(code, Some(1), "{summary}\n{stderr}");
        assert!(stderr.contains("writes failed"), "{stderr}");
    } else {
        assert_eq!(code, Some(0), "{summary}\n{stderr}");
    }
    assert!(!stderr.contains("are not at that path"), "{stderr}");
    let (integrity, events) = integrity_and_events(&db);
    assert_eq!(integrity, "ok");
    assert_eq!(events, writes, "every acknowledged write is in the file");

    // The negative control: another file put back.
    let (code, summary, stderr, _) = run_with_the_file_away(|away, db| {
        std::fs::copy(away, db).unwrap();
    });
    assert_eq!(code, Some(1), "{summary}\n{stderr}");
    assert_eq!(summary["file_gone"], true, "{summary}");
    assert_eq!(summary["file_returned"], false, "{summary}");
    assert_eq!(summary["durable_commits"], 0, "{summary}");
    assert!(stderr.contains("are not at that path"), "{stderr}");
}
