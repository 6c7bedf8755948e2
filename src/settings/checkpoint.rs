//! The `checkpoint` section: the schedule, the shutdown checkpoint, and
//! where the size-triggered checkpoint copies ([`SizeCheckpoint`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration_serde;
use super::{
    DEFAULT_CHECKPOINT_INTERVAL, DEFAULT_SHUTDOWN_TIMEOUT, DEFAULT_SIZE_CHECKPOINT,
    DEFAULT_SIZE_THRESHOLD_FRAMES,
};

/// The checkpoint schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct CheckpointSettings {
    /// Start the periodic loop when the system starts. Off by default: the
    /// loop is opt-in, so one-shot tools and test fixtures start no timer.
    pub enabled: bool,
    /// Time between two interval (PASSIVE) checkpoints. Must be above zero;
    /// there is no other minimum.
    #[serde(with = "duration_serde")]
    pub interval: Duration,
    /// Hard deadline of the TRUNCATE checkpoint at shutdown.
    #[serde(with = "duration_serde")]
    pub shutdown_timeout: Duration,
    /// WAL size in frames (pages) at which the writer runs a PASSIVE
    /// checkpoint (reason `size`) right after the commit that reached it,
    /// and reports it like every other checkpoint. SQLite's own
    /// auto-checkpoint is turned off on the writer while this is above
    /// zero, so no checkpoint runs unmeasured inside a COMMIT. `0` leaves
    /// size-triggered checkpoints to SQLite (`database.wal_autocheckpoint`).
    pub size_threshold_frames: u32,
    /// Where that checkpoint copies: `two_phase` (default
    /// [`DEFAULT_SIZE_CHECKPOINT`]: a second connection copies while the
    /// writer keeps committing, then the writer copies only the rest) or
    /// `on_writer` (the writer copies everything). See
    /// [`SizeCheckpoint`].
    pub size_checkpoint: SizeCheckpoint,
}

/// Where the size-triggered checkpoint copies the WAL back (setting
/// `checkpoint.size_checkpoint`: `on_writer` or `two_phase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SizeCheckpoint {
    /// One PASSIVE on the writer, between two groups: every write waits
    /// for the whole copy.
    OnWriter,
    /// Two phases: phase 1, a PASSIVE on a second connection on its own
    /// thread, copies while the writer keeps committing; phase 2, a PASSIVE
    /// on the writer between two groups once phase 1 returned, copies only
    /// what was committed meanwhile, so every frame is backfilled and the
    /// next commit restarts the WAL. Only phase 2 moves the durable point.
    /// Should phase 1 still run when the WAL reaches [`BACKSTOP_PERCENT`](crate::store::BACKSTOP_PERCENT)
    /// of the threshold, the writer waits for it. The default
    /// ([`DEFAULT_SIZE_CHECKPOINT`]).
    #[default]
    TwoPhase,
    /// Phase 1 alone, never finished on the writer: the negative control of
    /// the WAL bound (the WAL then grows under a writer that never pauses).
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    #[serde(skip)]
    BackfillOnly,
}

impl Default for CheckpointSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            interval: DEFAULT_CHECKPOINT_INTERVAL,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            size_threshold_frames: DEFAULT_SIZE_THRESHOLD_FRAMES,
            size_checkpoint: DEFAULT_SIZE_CHECKPOINT,
        }
    }
}
