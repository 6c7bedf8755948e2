//! What the tracker reports: a starvation episode's start, with its cause,
//! and its end.

use std::fmt;
use std::time::Duration;

use super::Exposure;
use crate::settings::duration_s;

/// Why no checkpoint has caught up, from the checkpoints seen since the
/// durable point last moved ([`ExposureTracker::note_checkpoint`](super::ExposureTracker::note_checkpoint)). The
/// most serious seen wins: failing, then busy, then partial.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StarvationCause {
    /// No checkpoint ran at all (is the checkpoint loop started?).
    NoCheckpoint,
    /// Checkpoints fail (a full disk, an I/O error, a file gone).
    Failing {
        /// The last failure, rendered with its causes.
        error: String,
    },
    /// Checkpoints come back busy: another connection holds SQLite's
    /// checkpointer or write lock (Litestream, a backup, a long writer).
    Busy,
    /// Checkpoints come back partial: a reader's snapshot pins the WAL
    /// (checkpoint starvation, SQLite's `wal.html` section 6).
    ReaderPinning,
}

impl fmt::Display for StarvationCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoCheckpoint => f.write_str("no checkpoint has run (is the checkpoint loop started?)"),
            Self::Failing { error } => write!(f, "checkpoints are failing: {error}"),
            Self::Busy => f.write_str(
                "checkpoints come back busy: another connection holds a checkpoint or write lock",
            ),
            Self::ReaderPinning => f.write_str(
                "checkpoints come back partial: a reader is pinning the WAL (checkpoint starvation)",
            ),
        }
    }
}

/// A change the tracker reports: the start and the end of a starvation
/// episode.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExposureEvent {
    /// Exposure just passed the threshold; reported once per episode, with
    /// its cause.
    Starved {
        /// The exposure now.
        exposure: Exposure,
        /// Why no checkpoint caught up.
        cause: StarvationCause,
    },
    /// Exposure fell back under the threshold: a checkpoint caught up.
    Recovered {
        /// The exposure now.
        exposure: Exposure,
        /// How long the episode lasted, from the warning to now.
        lasted: Duration,
    },
}

impl ExposureEvent {
    /// Emits the event on target `walguard::exposure`: `warn` for
    /// [`ExposureEvent::Starved`] (fields `exposure_s`, `exposed_commits`,
    /// `exposed_writes`, `durable_commits`, `threshold_s`, `cause`), `info` for
    /// [`ExposureEvent::Recovered`] (`exposure_s`, `exposed_commits`,
    /// `lasted_s`).
    pub fn log(&self, threshold: Duration) {
        match self {
            Self::Starved { exposure: e, cause } => tracing::warn!(
                target: "walguard::exposure",
                exposure_s = duration_s(e.age),
                exposed_commits = e.commits,
                exposed_writes = e.writes,
                durable_commits = e.durable_commits,
                threshold_s = duration_s(threshold),
                cause = %cause,
                "exposure passed two checkpoint intervals: no checkpoint has caught up ({cause}); \
                 a power loss now could roll back these commits"
            ),
            Self::Recovered { exposure, lasted } => tracing::info!(
                target: "walguard::exposure",
                exposure_s = duration_s(exposure.age),
                exposed_commits = exposure.commits,
                lasted_s = duration_s(*lasted),
                "exposure back under two checkpoint intervals: a checkpoint caught up"
            ),
        }
    }
}
