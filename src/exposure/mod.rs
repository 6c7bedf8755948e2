//! Exposure: what a power loss could take right now, and the warning when it
//! grows too old.
//!
//! # What exposure means
//!
//! Under `synchronous=NORMAL` SQLite fsyncs the WAL only when a checkpoint
//! copies frames. The durability floor ("durable through") is therefore the
//! last checkpoint that **fully** caught up (`busy = 0` and `checkpointed ==
//! log`): every commit before it survives a power loss, and the commits
//! after it may roll back. [`Durability`](crate::store::Durability) tracks that point in commits;
//! [`ExposureTracker`] adds time:
//!
//! - **exposed commits**: commits since the durable point;
//! - **exposure age**: how long the oldest of them may have waited, an upper
//!   bound: the time since the last moment nothing was exposed (the durable
//!   point moved, or an observation found no exposed commit). It is zero when
//!   nothing is exposed. Its error is at most one observation period.
//!
//! A process crash is not part of this picture: in WAL mode it loses no
//! commit whatever `synchronous` says. Under `synchronous=FULL` every commit
//! is durable at once and exposure stays at zero.
//!
//! # The starvation warning
//!
//! An interval checkpoint that catches up resets the exposure, so in a
//! healthy system the age stays under one interval plus the checkpoint's own
//! time. When it passes [`STARVATION_THRESHOLD_INTERVALS`] intervals, no
//! checkpoint has caught up for that long. The tracker reports it **once per
//! episode** ([`ExposureEvent::Starved`]), with the cause the checkpoints
//! since the durable point show ([`ExposureTracker::note_checkpoint`],
//! [`StarvationCause`]): failing ones (a full disk), busy ones (another
//! connection's lock), partial ones (a reader whose snapshot pins the WAL:
//! checkpoint starvation, SQLite's `wal.html` section 6), or none at all.
//! The episode ends
//! when the age falls back under the threshold ([`ExposureEvent::Recovered`]),
//! which only a caught-up checkpoint (or FULL) can make happen.
//!
//! The tracker is a plain struct fed with instants, so it is tested without
//! any clock:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use walguard::exposure::{ExposureEvent, ExposureTracker};
//!
//! let start = Instant::now();
//! let s = Duration::from_secs;
//! let mut tracker = ExposureTracker::new(s(10), start);
//! // 5 commits, none durable yet, observed 21 s in: past two intervals.
//! let event = tracker.observe_counts(start + s(21), 5, 0, None);
//! assert!(matches!(event, Some(ExposureEvent::Starved { .. })));
//! assert_eq!(tracker.exposure().age(), s(21));
//! // Still starving a second later: no second warning.
//! assert_eq!(tracker.observe_counts(start + s(22), 6, 0, None), None);
//! // A checkpoint caught up at 23 s: the episode ends.
//! let event = tracker.observe_counts(start + s(24), 7, 6, Some(start + s(23)));
//! assert!(matches!(event, Some(ExposureEvent::Recovered { .. })));
//! assert_eq!(tracker.exposure().age(), s(1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod event;
mod tracker;

use std::time::Duration;

pub use event::{ExposureEvent, StarvationCause};
pub use tracker::ExposureTracker;

/// The warning threshold, in checkpoint intervals: exposure older than two
/// intervals means at least one whole interval checkpoint failed to catch up.
pub const STARVATION_THRESHOLD_INTERVALS: u32 = 2;

/// What a power loss under `synchronous=NORMAL` could take at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Exposure {
    age: Duration,
    commits: u64,
    writes: u64,
    durable_commits: u64,
    since_durable: Option<Duration>,
}

impl Exposure {
    /// Upper bound on how long the oldest exposed commit has waited; zero
    /// when nothing is exposed.
    #[must_use]
    pub fn age(&self) -> Duration {
        self.age
    }

    /// Commits made since the last checkpoint that fully caught up.
    #[must_use]
    pub fn commits(&self) -> u64 {
        self.commits
    }

    /// Writes in the exposed commits: with group commit one commit carries
    /// several writes. Equal to [`Exposure::commits`] when the tracker is fed
    /// with [`ExposureTracker::observe_counts`].
    #[must_use]
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// "Durable through": the first this many commits of the session survive
    /// a power loss.
    #[must_use]
    pub fn durable_commits(&self) -> u64 {
        self.durable_commits
    }

    /// Time since the durable point last moved; `None` when it has not moved
    /// since the database was opened.
    #[must_use]
    pub fn since_durable(&self) -> Option<Duration> {
        self.since_durable
    }

    /// Whether nothing is exposed.
    #[must_use]
    pub fn is_clear(&self) -> bool {
        self.commits == 0
    }
}

#[cfg(test)]
mod tests;
