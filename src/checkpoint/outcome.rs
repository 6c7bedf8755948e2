//! How a checkpoint ended ([`CheckpointOutcome`]), classified from the row
//! SQLite returns.

use std::fmt;

/// How a checkpoint ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckpointOutcome {
    /// Not busy and every WAL frame is in the database file
    /// (`checkpointed == log`). Every commit before it is durable.
    Completed,
    /// Not busy, but readers kept some frames from being copied
    /// (`checkpointed < log`). Normal under load; retried next time.
    Partial,
    /// SQLite answered `SQLITE_BUSY` (only the waiting modes can): it gave up
    /// waiting for a lock. Normal when readers are active.
    Busy,
    /// The checkpoint failed (I/O error, interrupted, connection closed...).
    Failed {
        /// The error, rendered with its causes.
        error: String,
    },
}

impl CheckpointOutcome {
    /// The outcome as logged: `completed`, `partial`, `busy`, `failed`.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Partial => "partial",
            Self::Busy => "busy",
            Self::Failed { .. } => "failed",
        }
    }

    /// Whether this outcome is an error (only [`CheckpointOutcome::Failed`]).
    #[must_use]
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Failed { .. })
    }

    /// Classifies a `(busy, log, checkpointed)` row of `PRAGMA
    /// wal_checkpoint`, for every row SQLite can return (`OP_Checkpoint`
    /// and `sqlite3Checkpoint` in the amalgamation), `busy` first:
    ///
    /// | row | when | outcome |
    /// |---|---|---|
    /// | `(1, -1, -1)` | another connection holds the checkpointer lock (someone else's checkpoint is running): SQLite gave up before reading the WAL | [`Busy`](Self::Busy) |
    /// | `(1, log, ckpt)` | a waiting mode gave up on its busy handler and fell back to a partial copy | [`Busy`](Self::Busy) |
    /// | `(0, -1, -1)` | the database is not in WAL mode | [`Failed`](Self::Failed) |
    /// | `(0, log, log)` | every frame is in the database file (`log` may be 0) | [`Completed`](Self::Completed) |
    /// | `(0, log, ckpt)`, `ckpt < log` | readers kept frames from being copied | [`Partial`](Self::Partial) |
    /// | anything else | not a row SQLite produces | [`Failed`](Self::Failed) |
    ///
    /// An SQLite error (`SQLITE_LOCKED` inside a transaction, an I/O error,
    /// an interrupt) is not a row: [`run`](super::run) reports it as failed.
    #[must_use]
    pub fn classify(busy: bool, log_frames: i64, checkpointed_frames: i64) -> Self {
        match (busy, log_frames, checkpointed_frames) {
            (true, -1, -1) => Self::Busy,
            (true, log, ckpt) if log >= 0 && (0..=log).contains(&ckpt) => Self::Busy,
            (false, -1, -1) => Self::Failed {
                error: "database is not in WAL mode (wal_checkpoint returned -1)".to_owned(),
            },
            (false, log, ckpt) if log >= 0 && ckpt == log => Self::Completed,
            (false, log, ckpt) if log >= 0 && (0..log).contains(&ckpt) => Self::Partial,
            (busy, log, ckpt) => Self::Failed {
                error: format!(
                    "wal_checkpoint returned a row sqlite does not produce: ({}, {log}, {ckpt})",
                    i32::from(busy)
                ),
            },
        }
    }
}

impl fmt::Display for CheckpointOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed { error } => write!(f, "failed: {error}"),
            other => f.write_str(other.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row shape SQLite's `OP_Checkpoint` can produce, and a few it
    /// cannot, with the outcome walguard gives it.
    #[test]
    fn classify_covers_every_row_sqlite_can_return() {
        use CheckpointOutcome::{Busy, Completed, Partial};
        let failed = |o: &CheckpointOutcome| o.is_failure();
        let table: [((bool, i64, i64), Option<CheckpointOutcome>); 12] = [
            // Someone else's checkpoint holds the checkpointer lock.
            ((true, -1, -1), Some(Busy)),
            // A waiting mode gave up: partial copy, or nothing copied.
            ((true, 10, 4), Some(Busy)),
            ((true, 10, 0), Some(Busy)),
            ((true, 10, 10), Some(Busy)),
            ((true, 0, 0), Some(Busy)),
            ((false, 10, 10), Some(Completed)),
            ((false, 0, 0), Some(Completed)),
            ((false, 10, 4), Some(Partial)),
            ((false, 10, 0), Some(Partial)),
            // Not in WAL mode.
            ((false, -1, -1), None),
            // Rows SQLite never produces.
            ((false, 4, 10), None),
            ((true, -1, 3), None),
        ];
        for ((busy, log, ckpt), expected) in table {
            let got = CheckpointOutcome::classify(busy, log, ckpt);
            match expected {
                Some(outcome) => assert_eq!(got, outcome, "row ({busy}, {log}, {ckpt})"),
                None => assert!(failed(&got), "row ({busy}, {log}, {ckpt}): {got:?}"),
            }
        }
        assert!(
            CheckpointOutcome::classify(false, -1, -1)
                .to_string()
                .contains("not in WAL mode")
        );
    }
}
