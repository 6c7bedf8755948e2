//! The database file and how the write connection is configured.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use super::duration_serde;
use super::{
    DEFAULT_BUSY_TIMEOUT, DEFAULT_CHECKPOINT_BUSY_TIMEOUT, DEFAULT_DATABASE_PATH,
    DEFAULT_GROUP_COMMIT, DEFAULT_JOURNAL_SIZE_LIMIT_BYTES, DEFAULT_MAILBOX_CAPACITY_MESSAGES,
    DEFAULT_MAX_BATCH_WRITES, DEFAULT_WAL_AUTOCHECKPOINT_PAGES,
};

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

/// `PRAGMA synchronous` values that make sense in WAL mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Synchronous {
    /// No fsync at all. A power loss can corrupt the database. For tests.
    Off,
    /// Fsync the WAL at checkpoints only: a power loss may roll back commits
    /// made since the last completed checkpoint; the database stays
    /// consistent. A process crash loses nothing.
    Normal,
    /// Fsync the WAL at every commit: nothing acknowledged is lost.
    Full,
    /// Like `Full`, and also fsync the directory after unlinking a journal.
    Extra,
}

impl Synchronous {
    /// Every level with its name, as SQLite spells it, and the number
    /// `PRAGMA synchronous` reports (`sqlite3_pragma`, `PAGER_SYNCHRONOUS_*`
    /// less one): the one table the methods below read.
    const LEVELS: [(Self, &'static str, i64); 4] = [
        (Self::Off, "OFF", 0),
        (Self::Normal, "NORMAL", 1),
        (Self::Full, "FULL", 2),
        (Self::Extra, "EXTRA", 3),
    ];

    fn entry(self) -> (Self, &'static str, i64) {
        // Every variant has its row, so the fallback is never taken.
        Self::LEVELS
            .into_iter()
            .find(|(level, _, _)| *level == self)
            .unwrap_or(Self::LEVELS[1])
    }

    /// The pragma value, as SQLite spells it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.entry().1
    }

    /// The numeric value `PRAGMA synchronous` reports back.
    #[must_use]
    pub fn level(self) -> i64 {
        self.entry().2
    }

    /// The level `PRAGMA synchronous` reported as a number; `None` for a
    /// number SQLite does not define.
    #[must_use]
    pub fn from_level(level: i64) -> Option<Self> {
        Self::LEVELS
            .into_iter()
            .find(|(_, _, n)| *n == level)
            .map(|(s, _, _)| s)
    }
}

impl FromStr for Synchronous {
    type Err = String;

    /// Case-insensitive: `normal`, `NORMAL` and `Normal` are the same value.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::LEVELS
            .into_iter()
            .find(|(_, name, _)| name.eq_ignore_ascii_case(s))
            .map(|(level, _, _)| level)
            .ok_or_else(|| {
                format!("unknown synchronous value {s:?}, expected off, normal, full or extra")
            })
    }
}

impl<'de> Deserialize<'de> for Synchronous {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Synchronous {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str().to_ascii_lowercase())
    }
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
