//! Litestream processes on this machine, found through `/proc` (Linux):
//! the one holding a database open, those left behind by a walguard that
//! did not stop, and how they are stopped.

use std::path::Path;
#[cfg(target_os = "linux")]
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::files::ORPHAN_STOP_TIMEOUT;

/// Stops every `litestream` (other than this process) with `arg` among its
/// arguments (SIGTERM, then SIGKILL after [`ORPHAN_STOP_TIMEOUT`]); the
/// pids stopped. See [`Files::stop_orphans`].
pub(crate) fn stop_litestreams_with_arg(arg: &Path) -> Vec<u32> {
    let orphans = litestreams_with_arg(arg);
    for &pid in &orphans {
        tracing::warn!(
            target: "walguard::replication",
            pid,
            config = %arg.display(),
            "a litestream left by a walguard that did not stop still runs for this database; replacing it"
        );
        signal(pid, "-TERM");
        let started = Instant::now();
        while process_exists(pid) && started.elapsed() < ORPHAN_STOP_TIMEOUT {
            std::thread::sleep(Duration::from_millis(20));
        }
        if process_exists(pid) {
            signal(pid, "-KILL");
            let started = Instant::now();
            while process_exists(pid) && started.elapsed() < ORPHAN_STOP_TIMEOUT {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    orphans
}

/// Sends `signal` (`-TERM`, `-KILL`) to `pid` with the system's `kill`.
fn signal(pid: u32, signal: &str) {
    let _ = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Whether `pid` still runs (a zombie counts as gone).
fn process_exists(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(") ")
            .next()
            .is_some_and(|rest| rest.starts_with('Z'))
    })
}

/// The `litestream` processes other than this one (a command name that
/// starts with `litestream`): their pids and `/proc` directories.
#[cfg(target_os = "linux")]
fn litestream_processes() -> Vec<(u32, PathBuf)> {
    let own = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            (pid != own && comm.trim_end().starts_with("litestream")).then(|| (pid, entry.path()))
        })
        .collect()
}

/// The `litestream` processes (other than this one) with `arg` among their
/// arguments.
#[cfg(target_os = "linux")]
fn litestreams_with_arg(arg: &Path) -> Vec<u32> {
    let wanted = arg.as_os_str().as_encoded_bytes();
    litestream_processes()
        .into_iter()
        .filter_map(|(pid, dir)| {
            let cmdline = std::fs::read(dir.join("cmdline")).ok()?;
            cmdline
                .split(|b| *b == 0)
                .any(|a| a == wanted)
                .then_some(pid)
        })
        .collect()
}

#[cfg(not(target_os = "linux"))]
fn litestreams_with_arg(_arg: &Path) -> Vec<u32> {
    Vec::new()
}

/// The process id of a `litestream` (a process whose command name starts
/// with `litestream`) that holds `db` or its WAL open, other than this
/// process: Litestream keeps a read transaction on the database it
/// replicates at all times. Reads `/proc/PID/comm` and `/proc/PID/fd`;
/// processes it may not look into are passed over.
#[cfg(target_os = "linux")]
#[must_use]
pub fn litestream_holding(db: &Path) -> Option<u32> {
    let targets: Vec<PathBuf> = [db.to_path_buf(), walguard::files::wal_path(db)]
        .iter()
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .collect();
    if targets.is_empty() {
        return None;
    }
    litestream_processes().into_iter().find_map(|(pid, dir)| {
        std::fs::read_dir(dir.join("fd"))
            .ok()?
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .any(|target| targets.contains(&target))
            .then_some(pid)
    })
}

/// Elsewhere there is no `/proc` to look into: only the socket is checked.
#[cfg(not(target_os = "linux"))]
#[must_use]
pub fn litestream_holding(_db: &Path) -> Option<u32> {
    None
}
