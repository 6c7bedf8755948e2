//! Process tests of the built `walguard` binary: real runs, real files in
//! temp dirs, real signals. Each test waits on the process or on a line it
//! prints, never on a sleep. One module per command:
//!
//! - `cli/run.rs`: `walguard run`, a session from start to summary (logs,
//!   signals, the summary object, failed writes, metrics);
//! - `cli/run_file.rs`: `walguard run` when its file goes away, or when a
//!   second engine starts on it;
//! - `cli/oneshot.rs`: `walguard inspect` and `walguard checkpoint`;
//! - `cli/options.rs`: what every command shares (settings, flags, help,
//!   errors, colour, log filters).
//!
//! `tests/cli_safety.rs` holds the tests of what the command may do to a
//! database it is pointed at; `tests/cli_bench.rs` those of `walguard bench`.

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

/// JSON lines of a process's stderr.
fn json_lines(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[path = "cli/oneshot.rs"]
mod oneshot;
#[path = "cli/options.rs"]
mod options;
#[path = "cli/run.rs"]
mod run;
#[path = "cli/run_file.rs"]
mod run_file;
