//! `litestream restore` of a replica into a new file, and the bounded
//! probe of whether a replica exists.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use walguard::replication::CheckpointHandover;
use walguard::settings::ReplicationSettings;

use super::child::command;
use super::files::Files;
use crate::error::ReplicationError;

/// The config file of a `litestream restore` into `out`
/// ([`restore`]).
pub(crate) fn restore_config(out: &Path) -> PathBuf {
    walguard::files::sibling(out, "-litestream-restore.yml")
}

/// The config file of the probe of `db`'s replica ([`replica_exists`]).
pub(crate) fn probe_config(db: &Path) -> PathBuf {
    walguard::files::sibling(db, "-litestream-probe.yml")
}

/// `litestream restore` of the replica of `files.db` into `out`. With
/// `if_replica_exists`, a missing replica is not an error (nothing is
/// written). Blocking.
///
/// # Errors
///
/// [`ReplicationError::Restore`] when `out` exists (never overwritten), or
/// Litestream fails (its message included).
pub(crate) fn restore(
    binary: &Path,
    files: &Files,
    settings: &ReplicationSettings,
    out: &Path,
    if_replica_exists: bool,
) -> Result<(), ReplicationError> {
    let refuse = |error: String| restore_error(out, error);
    for path in [
        out.to_path_buf(),
        walguard::files::wal_path(out),
        walguard::files::shm_path(out),
    ] {
        if path.exists() {
            return Err(refuse(format!(
                "{} exists; restore never overwrites: move it away or give another --db",
                path.display()
            )));
        }
    }
    // The config goes beside the new file (the old machine's directory
    // may not exist here), and goes away afterwards.
    let restore_files = Files {
        config: restore_config(out),
        ..files.clone()
    };
    // A restore runs no checkpoint: Litestream's defaults will do.
    restore_files.write_config(settings, CheckpointHandover::default())?;
    let result = run_restore(binary, &restore_files, settings, out, if_replica_exists);
    let _ = std::fs::remove_file(&restore_files.config);
    result
}

/// How long the probe of a replica ([`replica_exists`]) may take: 10 s (a
/// wrong or unreachable endpoint makes Litestream's S3 client retry for
/// minutes).
pub(crate) const REPLICA_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the replica of `files.db` holds anything: `litestream ltx
/// -level all` on it, bounded by [`REPLICA_PROBE_TIMEOUT`]. Lists the
/// replica's files, reads none of them.
///
/// # Errors
///
/// [`ReplicationError::ReplicaUnreachable`] naming the setting to check
/// when Litestream fails or does not answer in time;
/// [`ReplicationError::BinaryMissing`] when it cannot be run.
pub(crate) fn replica_exists(
    binary: &Path,
    files: &Files,
    settings: &ReplicationSettings,
) -> Result<bool, ReplicationError> {
    let probe = Files {
        config: probe_config(&files.db),
        ..files.clone()
    };
    probe.write_config(settings, CheckpointHandover::default())?;
    let result = run_probe(binary, &probe, settings);
    let _ = std::fs::remove_file(&probe.config);
    result
}

fn run_probe(
    binary: &Path,
    files: &Files,
    settings: &ReplicationSettings,
) -> Result<bool, ReplicationError> {
    let url = walguard::settings::redact(settings.url.as_deref().unwrap_or_default());
    let mut child = command(binary, settings)
        .args(["ltx", "-level", "all", "-json", "-no-expand-env", "-config"])
        .arg(&files.config)
        .arg(&files.db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ReplicationError::BinaryMissing {
            binary: binary.to_path_buf(),
            error: e.to_string(),
        })?;
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().ok().flatten() {
            break Some(status);
        }
        if started.elapsed() > REPLICA_PROBE_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (stdout, stderr) = (
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    );
    let unreachable = |error: String, blame: &'static str| ReplicationError::ReplicaUnreachable {
        url: url.clone(),
        blame,
        error,
    };
    match status {
        None => Err(unreachable(
            format!(
                "litestream did not list it within {}",
                walguard::settings::format_duration(REPLICA_PROBE_TIMEOUT)
            ),
            if settings.endpoint.is_some() {
                "replication.endpoint"
            } else {
                "replication.url"
            },
        )),
        Some(status) if !status.success() => {
            let last = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no message")
                .to_owned();
            Err(unreachable(
                format!("litestream exited with {status}: {last}"),
                walguard::replication::blame(&last),
            ))
        }
        // A JSON list of the replica's files: `[]` when it holds none.
        Some(_) => Ok(stdout.contains('{')),
    }
}

/// The refusal or failure of a restore into `out`.
fn restore_error(out: &Path, error: String) -> ReplicationError {
    ReplicationError::Restore {
        db: out.to_path_buf(),
        error,
    }
}

fn run_restore(
    binary: &Path,
    files: &Files,
    settings: &ReplicationSettings,
    out: &Path,
    if_replica_exists: bool,
) -> Result<(), ReplicationError> {
    let refuse = |error: String| restore_error(out, error);
    let mut command = command(binary, settings);
    command
        .arg("restore")
        .arg("-config")
        .arg(&files.config)
        .arg("-no-expand-env")
        .arg("-o")
        .arg(out);
    if if_replica_exists {
        command.arg("-if-replica-exists");
    }
    let output = command
        .arg(&files.db)
        .output()
        .map_err(|e| ReplicationError::BinaryMissing {
            binary: binary.to_path_buf(),
            error: e.to_string(),
        })?;
    if !output.status.success() {
        let text = String::from_utf8_lossy(&output.stderr);
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message")
            .to_owned();
        return Err(refuse(format!(
            "litestream exited with {} (check {}): {last}",
            output.status,
            walguard::replication::blame(&last)
        )));
    }
    Ok(())
}
