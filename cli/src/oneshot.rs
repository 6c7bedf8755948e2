//! `walguard checkpoint PATH`: one checkpoint on a database, served or not.
//!
//! Beside a running engine (its engine lock is held) only PASSIVE runs: a
//! blocking mode takes SQLite's write lock and holds it while it waits on
//! readers (Litestream holds a read transaction at all times), and every
//! write of the engine waits behind it, past its own `busy_timeout`
//! (measured at 7feb55a: a 5 s TRUNCATE failed 5 of the engine's writes
//! with `database is locked`). A blocking mode there is refused before the
//! file is opened; on a database nobody serves, the command holds the
//! engine lock while it runs, so no engine starts under it.
//!
//! The file must exist, be an SQLite database and already be in WAL mode:
//! [`walguard::Store::open`] creates missing files and switches the journal
//! mode to WAL, and a maintenance command must do neither.

use std::path::Path;

use walguard::settings::DatabaseSettings;
use walguard::{CheckpointMode, CheckpointOutcome, CheckpointReason, CheckpointReport, Store};

use crate::cli::CheckpointArgs;
use crate::dbfile;
use crate::error::CliError;
use crate::status::{bytes, millis, ms};

/// Runs the checkpoint and prints its result to stdout, as text or one JSON
/// object.
pub(crate) fn run(args: &CheckpointArgs) -> Result<(), CliError> {
    let (path, mode, timeout) = (
        args.path.as_path(),
        CheckpointMode::from(args.mode),
        args.timeout,
    );
    let header = dbfile::check(path)?;
    if !header.wal {
        return Err(CliError::NotWal {
            path: path.to_path_buf(),
        });
    }
    // Served by an engine: PASSIVE only (see the module docs).
    let _engine_lock = match walguard::EngineLock::acquire(path) {
        Ok(lock) => Some(lock),
        Err(walguard::Error::AlreadyServed { pid, .. }) => {
            if mode != CheckpointMode::Passive {
                return Err(CliError::ServedBlockingCheckpoint {
                    path: path.to_path_buf(),
                    mode: mode.as_str(),
                    pid,
                });
            }
            None
        }
        Err(e) => return Err(e.into()),
    };
    let wal_path = walguard::files::wal_path(path);
    let wal_before = dbfile::len(&wal_path);

    let mut settings = DatabaseSettings::at(path);
    settings.busy_timeout = timeout;
    let mut store = Store::open(&settings)?;
    let report = match mode {
        // PASSIVE never waits: no deadline needed.
        CheckpointMode::Passive => store.checkpoint(mode, CheckpointReason::Manual),
        _ => store.checkpoint_with_deadline(mode, CheckpointReason::Manual, timeout),
    };
    let wal_after_checkpoint = dbfile::len(&wal_path);
    // Closing the last connection checkpoints again and deletes the WAL when
    // nothing else has the database open.
    store.close().map_err(|(_, e)| e)?;
    let wal_after_close = dbfile::len(&wal_path);

    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "database": path.display().to_string(),
                "mode": mode.as_str(),
                "outcome": report.outcome().as_str(),
                "busy": report.busy(),
                "log_frames": report.log_frames(),
                "checkpointed": report.checkpointed_frames(),
                "elapsed_ms": ms(report.elapsed()),
                "error": match report.outcome() {
                    CheckpointOutcome::Failed { error } => Some(error.as_str()),
                    _ => None,
                },
                "wal_bytes_before": wal_before,
                "wal_bytes_after_checkpoint": wal_after_checkpoint,
                "wal_bytes_after_close": wal_after_close,
            })
        );
    } else {
        print_text(
            path,
            &report,
            [wal_before, wal_after_checkpoint, wal_after_close],
        );
    }
    match report.outcome() {
        CheckpointOutcome::Completed => Ok(()),
        other => Err(CliError::CheckpointIncomplete {
            outcome: match other {
                CheckpointOutcome::Busy => {
                    "busy: another connection holds the database (it is being served?)".to_owned()
                }
                CheckpointOutcome::Partial => {
                    "partial: a reader holds back part of the WAL".to_owned()
                }
                failed => failed.to_string(),
            },
        }),
    }
}

/// The result for people: the outcome, the result row, the WAL sizes
/// (before, after the checkpoint, after close).
fn print_text(path: &Path, report: &CheckpointReport, wal: [Option<u64>; 3]) {
    let size = |len: Option<u64>| len.map_or_else(|| "absent".to_owned(), bytes);
    println!(
        "checkpoint {} on {}: {} in {}",
        report.mode().as_sql(),
        path.display(),
        report.outcome(),
        millis(report.elapsed())
    );
    // SQLite reports 0 and 0 after a TRUNCATE that completed: the WAL it
    // counts in is gone (FACTS.md, "SQLite WAL and durability").
    let reset = report.mode() == CheckpointMode::Truncate
        && report.outcome() == &CheckpointOutcome::Completed;
    println!(
        "result row: busy={} log={} checkpointed={}{}",
        u8::from(report.busy()),
        report.log_frames(),
        report.checkpointed_frames(),
        if reset {
            " (every frame was copied and the WAL reset to 0 bytes, so SQLite counts 0)"
        } else {
            ""
        }
    );
    println!(
        "wal: {} before, {} after the checkpoint, {} after close",
        size(wal[0]),
        size(wal[1]),
        size(wal[2])
    );
}
