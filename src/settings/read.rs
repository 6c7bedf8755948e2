//! The `read` section: the read side's pool of read-only connections
//! ([`ReadPool`](crate::read::ReadPool)).

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[cfg(doc)]
use super::Settings;
use super::{duration_serde, format_duration, invalid};
#[cfg(doc)]
use crate::error::Error;
use crate::error::Result;

/// Default number of read connections (`read.connections`): 4, so four
/// reads run at once beside the writer.
pub const DEFAULT_READ_CONNECTIONS: usize = 4;

/// The most read connections a pool may hold (`read.connections`): 64.
/// Each is a thread and an open file; past the machine's cores more of
/// them only queue inside SQLite.
pub const MAX_READ_CONNECTIONS: usize = 64;

/// Default bound on the age of a read's snapshot
/// (`read.max_snapshot_age`): 30 s. A read still running past it is
/// interrupted, so no reader of walguard's pins the WAL longer than this
/// (a pinned WAL cannot be checkpointed past the reader, and grows).
pub const DEFAULT_MAX_SNAPSHOT_AGE: Duration = Duration::from_secs(30);

/// The read side: read-only connections beside the single writer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ReadSettings {
    /// Read-only connections, each on its own thread: how many reads run
    /// at once. From 1 to [`MAX_READ_CONNECTIONS`].
    pub connections: usize,
    /// The longest a read may hold its snapshot (its read transaction):
    /// past it the read is interrupted and its caller gets an error naming
    /// this setting. Above zero.
    #[serde(with = "duration_serde")]
    pub max_snapshot_age: Duration,
}

impl Default for ReadSettings {
    fn default() -> Self {
        Self {
            connections: DEFAULT_READ_CONNECTIONS,
            max_snapshot_age: DEFAULT_MAX_SNAPSHOT_AGE,
        }
    }
}

impl ReadSettings {
    /// Checks the section (called by [`Settings::validate`]).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] naming `read.connections` or
    /// `read.max_snapshot_age`.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_READ_CONNECTIONS).contains(&self.connections) {
            return Err(invalid(
                "read.connections",
                &self.connections.to_string(),
                &format!("must be between 1 and {MAX_READ_CONNECTIONS}"),
            ));
        }
        if self.max_snapshot_age.is_zero() {
            return Err(invalid(
                "read.max_snapshot_age",
                &format_duration(self.max_snapshot_age),
                "must be greater than zero",
            ));
        }
        Ok(())
    }
}
