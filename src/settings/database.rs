//! The database file and how the write connection is configured.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    DEFAULT_BUSY_TIMEOUT, DEFAULT_CHECKPOINT_BUSY_TIMEOUT, DEFAULT_DATABASE_PATH,
    DEFAULT_GROUP_COMMIT, DEFAULT_JOURNAL_SIZE_LIMIT_BYTES, DEFAULT_MAILBOX_CAPACITY_MESSAGES,
    DEFAULT_MAX_BATCH_WRITES, DEFAULT_WAL_AUTOCHECKPOINT_PAGES,
};
use super::{Synchronous, duration_serde};

/// The database file and how the write connection is configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct DatabaseSettings {
    /// Path of the database file; created when missing.
    pub path: PathBuf,
    /// `PRAGMA synchronous`. `normal` (the default) fsyncs the WAL only at
    /// checkpoints; `full` fsyncs every commit.
    pub synchronous: Synchronous,
    /// `PRAGMA busy_timeout`: how long a statement waits for a lock.
    #[serde(with = "duration_serde")]
    pub busy_timeout: Duration,
    /// The busy timeout of a blocking checkpoint (FULL, RESTART, TRUNCATE)
    /// run by [`Store::checkpoint`](crate::Store::checkpoint): how long it
    /// may wait on readers and other writers, and so how long it may stall
    /// the writes behind it. PASSIVE never waits.
    #[serde(with = "duration_serde")]
    pub checkpoint_busy_timeout: Duration,
    /// `PRAGMA journal_size_limit` in bytes: the size a reset WAL is trimmed
    /// to. `None` (YAML `~`) keeps no limit.
    pub journal_size_limit: Option<u64>,
    /// `PRAGMA wal_autocheckpoint` in pages; `0` turns SQLite's own
    /// auto-checkpoint off. Ignored when `checkpoint.size_threshold_frames`
    /// is above zero: walguard then sets it to 0 and runs (and measures) the
    /// size-triggered checkpoints itself.
    pub wal_autocheckpoint: u32,
    /// Group commit in `DbActor`: single writes waiting in its mailbox are
    /// committed in one transaction, and each sender is answered once the
    /// COMMIT holding its write returned. A write alone is committed at
    /// once (no timer waits for company). `false` commits every write on
    /// its own.
    pub group_commit: bool,
    /// Most writes one group commit holds (at least 1).
    pub max_batch: usize,
    /// `DbActor`'s mailbox capacity in messages (at least 1). Senders that
    /// use `send` wait while it is full.
    pub mailbox_capacity: usize,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            path: PathBuf::from(DEFAULT_DATABASE_PATH),
            synchronous: Synchronous::Normal,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            checkpoint_busy_timeout: DEFAULT_CHECKPOINT_BUSY_TIMEOUT,
            journal_size_limit: Some(DEFAULT_JOURNAL_SIZE_LIMIT_BYTES),
            wal_autocheckpoint: DEFAULT_WAL_AUTOCHECKPOINT_PAGES,
            group_commit: DEFAULT_GROUP_COMMIT,
            max_batch: DEFAULT_MAX_BATCH_WRITES,
            mailbox_capacity: DEFAULT_MAILBOX_CAPACITY_MESSAGES,
        }
    }
}

impl DatabaseSettings {
    /// Default settings for the database at `path`.
    #[must_use]
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            ..Self::default()
        }
    }
}
