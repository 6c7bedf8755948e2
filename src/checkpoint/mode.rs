//! What a checkpoint is asked to do ([`CheckpointMode`]) and why it runs
//! ([`CheckpointReason`]).

use std::fmt;
use std::str::FromStr;

/// A `PRAGMA wal_checkpoint` mode.
///
/// SQLite silently runs PASSIVE for a mode string it does not know, so modes
/// are an enum and parsing rejects anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CheckpointMode {
    /// Copy what can be copied without waiting for anyone.
    Passive,
    /// Wait (busy handler) for writers, then copy everything readers allow.
    Full,
    /// Like `Full`, then wait for readers so the next writer restarts the WAL.
    Restart,
    /// Like `Restart`, then truncate the WAL file to zero bytes.
    Truncate,
}

impl CheckpointMode {
    /// The mode as SQLite spells it, e.g. `PASSIVE`.
    #[must_use]
    pub fn as_sql(self) -> &'static str {
        match self {
            Self::Passive => "PASSIVE",
            Self::Full => "FULL",
            Self::Restart => "RESTART",
            Self::Truncate => "TRUNCATE",
        }
    }

    /// The mode in lowercase, as logged: `passive`, `full`, ...
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passive => "passive",
            Self::Full => "full",
            Self::Restart => "restart",
            Self::Truncate => "truncate",
        }
    }
}

impl fmt::Display for CheckpointMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for an unknown checkpoint mode string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown checkpoint mode {0:?}, expected passive, full, restart or truncate")]
pub struct UnknownMode(pub String);

impl FromStr for CheckpointMode {
    type Err = UnknownMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "passive" => Ok(Self::Passive),
            "full" => Ok(Self::Full),
            "restart" => Ok(Self::Restart),
            "truncate" => Ok(Self::Truncate),
            _ => Err(UnknownMode(s.to_owned())),
        }
    }
}

/// Why a checkpoint ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CheckpointReason {
    /// The periodic loop.
    Interval,
    /// The clean-shutdown TRUNCATE.
    Shutdown,
    /// Requested explicitly (API or command line).
    Manual,
    /// The WAL grew past a frame threshold: the checkpoint on the writer
    /// (with the two-phase size checkpoint, its phase 2).
    Size,
    /// Phase 1 of a two-phase size checkpoint: a PASSIVE on a second
    /// connection, on its own thread, while the writer keeps committing
    /// (see `docs/design.md`, "Two-phase size checkpoint"). It moves no
    /// durable point; the phase 2 that follows does.
    Backfill,
    /// The TRUNCATE after the schema migrations applied at start
    /// ([`Store::migrate`](crate::Store::migrate)).
    Migration,
}

impl CheckpointReason {
    /// The reason as logged: `interval`, `shutdown`, `manual`, `size`,
    /// `backfill`, `migration`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Interval => "interval",
            Self::Shutdown => "shutdown",
            Self::Manual => "manual",
            Self::Size => "size",
            Self::Backfill => "backfill",
            Self::Migration => "migration",
        }
    }
}

impl fmt::Display for CheckpointReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_strictly() {
        assert_eq!("TRUNCATE".parse(), Ok(CheckpointMode::Truncate));
        assert_eq!("passive".parse(), Ok(CheckpointMode::Passive));
        assert!("fast".parse::<CheckpointMode>().is_err());
    }
}
