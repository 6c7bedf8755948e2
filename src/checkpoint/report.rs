//! What every checkpoint produces ([`CheckpointReport`]), and the event it
//! logs ([`LOG_FIELDS`]).

use std::time::Duration;

use rusqlite::ErrorCode;

use super::{CheckpointMode, CheckpointOutcome, CheckpointReason};
use crate::error::error_chain;

/// The result of one checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointReport {
    mode: CheckpointMode,
    reason: CheckpointReason,
    busy: bool,
    log_frames: i64,
    checkpointed_frames: i64,
    elapsed: Duration,
    outcome: CheckpointOutcome,
    io_error: bool,
    /// Phase 1 of a two-phase size checkpoint, when this report is its
    /// phase 2.
    backfill: Option<Box<CheckpointReport>>,
}

impl CheckpointReport {
    /// Builds a report from its parts; the outcome is derived from the row.
    #[must_use]
    pub fn from_row(
        mode: CheckpointMode,
        reason: CheckpointReason,
        (busy, log_frames, checkpointed_frames): (bool, i64, i64),
        elapsed: Duration,
    ) -> Self {
        Self {
            mode,
            reason,
            busy,
            log_frames,
            checkpointed_frames,
            elapsed,
            outcome: CheckpointOutcome::classify(busy, log_frames, checkpointed_frames),
            io_error: false,
            backfill: None,
        }
    }

    /// A report for a checkpoint that failed with `error`.
    #[must_use]
    pub fn failed(
        mode: CheckpointMode,
        reason: CheckpointReason,
        elapsed: Duration,
        error: &dyn std::error::Error,
    ) -> Self {
        Self {
            mode,
            reason,
            busy: false,
            log_frames: -1,
            checkpointed_frames: -1,
            elapsed,
            outcome: CheckpointOutcome::Failed {
                error: error_chain(error),
            },
            io_error: false,
            backfill: None,
        }
    }

    /// The mode that ran.
    #[must_use]
    pub fn mode(&self) -> CheckpointMode {
        self.mode
    }
    /// Why it ran.
    #[must_use]
    pub fn reason(&self) -> CheckpointReason {
        self.reason
    }
    /// Whether SQLite reported `SQLITE_BUSY`.
    #[must_use]
    pub fn busy(&self) -> bool {
        self.busy
    }
    /// Frames in the WAL (`-1` when unknown: failed, or not in WAL mode).
    #[must_use]
    pub fn log_frames(&self) -> i64 {
        self.log_frames
    }
    /// Frames of this WAL copied back to the database, cumulative.
    #[must_use]
    pub fn checkpointed_frames(&self) -> i64 {
        self.checkpointed_frames
    }
    /// Wall time spent in the `PRAGMA`. For the phase 2 of a two-phase size
    /// checkpoint, the writer's whole stall: any wait for phase 1 at the
    /// backstop (see [`CheckpointReport::backfill`]) plus its own `PRAGMA`.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }
    /// [`CheckpointReport::elapsed`] in milliseconds, as logged.
    #[must_use]
    pub fn elapsed_ms(&self) -> f64 {
        crate::settings::duration_ms(self.elapsed)
    }
    /// How it ended.
    #[must_use]
    pub fn outcome(&self) -> &CheckpointOutcome {
        &self.outcome
    }
    /// Whether the checkpoint failed on an I/O error (`SQLITE_IOERR_*`,
    /// e.g. a failed `fsync`, or `SQLITE_FULL`). The store then reopens its
    /// connection: see "Failed fsync" in the
    /// [checkpoint policy](crate::checkpoint).
    #[must_use]
    pub fn io_error(&self) -> bool {
        self.io_error
    }

    /// Phase 1 of a two-phase size checkpoint (reason
    /// [`CheckpointReason::Backfill`], run on a second connection), when
    /// this report is its phase 2 (reason [`CheckpointReason::Size`]).
    /// Each phase is one checkpoint with its own measurements; only phase
    /// 2 can move the durable point.
    #[must_use]
    pub fn backfill(&self) -> Option<&CheckpointReport> {
        self.backfill.as_deref()
    }

    /// This report as the phase 2 of `backfill`, the writer having waited
    /// `waited` for phase 1 before its own `PRAGMA`.
    pub(crate) fn with_backfill(mut self, backfill: CheckpointReport, waited: Duration) -> Self {
        self.elapsed += waited;
        self.backfill = Some(Box::new(backfill));
        self
    }

    /// Marks a failed report as an I/O error (`SQLITE_IOERR_*`,
    /// `SQLITE_FULL`) when `error` is one.
    pub(crate) fn mark_io_error(&mut self, error: &rusqlite::Error) {
        self.io_error = matches!(
            error.sqlite_error_code(),
            Some(ErrorCode::SystemIoFailure | ErrorCode::DiskFull)
        );
    }

    /// Emits the per-checkpoint `tracing` event (target
    /// `walguard::checkpoint`) with the stable fields of [`LOG_FIELDS`].
    /// Busy and partial are `info` (expected under load), failed is `warn`.
    pub fn log(&self) {
        macro_rules! event {
            ($level:expr, $($extra:tt)*) => {
                tracing::event!(
                    target: "walguard::checkpoint",
                    $level,
                    mode = self.mode.as_str(),
                    busy = self.busy,
                    log_frames = self.log_frames,
                    checkpointed = self.checkpointed_frames,
                    elapsed_ms = self.elapsed_ms(),
                    reason = self.reason.as_str(),
                    outcome = self.outcome.as_str(),
                    $($extra)*
                )
            };
        }
        if let CheckpointOutcome::Failed { error } = &self.outcome {
            event!(
                tracing::Level::WARN,
                error = error.as_str(),
                "checkpoint failed"
            );
        } else {
            event!(tracing::Level::INFO, "checkpoint");
        }
    }
}

/// The stable fields of the per-checkpoint event ([`CheckpointReport::log`]),
/// in the order they are emitted; a failed checkpoint adds `error`. Log
/// pipelines and dashboards may rely on these names.
pub const LOG_FIELDS: [&str; 7] = [
    "mode",
    "busy",
    "log_frames",
    "checkpointed",
    "elapsed_ms",
    "reason",
    "outcome",
];
