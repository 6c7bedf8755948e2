//! `walguard checkpoint PATH`: one checkpoint on a database that is not
//! being served.
//!
//! The file must exist, be an SQLite database and already be in WAL mode:
//! [`walguard::Store::open`] creates missing files and switches the journal
//! mode to WAL, and a maintenance command must do neither.

use std::path::Path;
use std::time::Duration;

use walguard::settings::DatabaseSettings;
use walguard::{CheckpointMode, CheckpointOutcome, CheckpointReason, Store};

use crate::dbfile;
use crate::error::CliError;
use crate::status::{bytes, millis};

/// Runs the checkpoint and prints its result to stdout.
pub(crate) fn run(path: &Path, mode: CheckpointMode, timeout: Duration) -> Result<(), CliError> {
    let header = dbfile::check(path)?;
    if !header.wal {
        return Err(CliError::NotWal {
            path: path.to_path_buf(),
        });
    }
    let wal_path = dbfile::sibling(path, "-wal");
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

    let size = |len: Option<u64>| len.map_or_else(|| "absent".to_owned(), bytes);
    println!(
        "checkpoint {} on {}: {} in {}",
        mode.as_sql(),
        path.display(),
        report.outcome(),
        millis(report.elapsed())
    );
    println!(
        "result row: busy={} log={} checkpointed={}",
        u8::from(report.busy()),
        report.log_frames(),
        report.checkpointed_frames()
    );
    println!(
        "wal: {} before, {} after the checkpoint, {} after close",
        size(wal_before),
        size(wal_after_checkpoint),
        size(wal_after_close)
    );
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
