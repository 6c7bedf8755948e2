//! Exposure: what a power loss could take right now, and the warning when it
//! grows too old.
//!
//! # What exposure means
//!
//! Under `synchronous=NORMAL` SQLite fsyncs the WAL only when a checkpoint
//! copies frames. The durability floor ("durable through") is therefore the
//! last checkpoint that **fully** caught up (`busy = 0` and `checkpointed ==
//! log`): every commit before it survives a power loss, and the commits
//! after it may roll back. [`Durability`] tracks that point in commits;
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

use std::fmt;
use std::time::{Duration, Instant};

use crate::checkpoint::{CheckpointOutcome, CheckpointReport};
use crate::store::Durability;

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

/// Why no checkpoint has caught up, from the checkpoints seen since the
/// durable point last moved ([`ExposureTracker::note_checkpoint`]). The
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
                exposure_s = e.age.as_secs_f64(),
                exposed_commits = e.commits,
                exposed_writes = e.writes,
                durable_commits = e.durable_commits,
                threshold_s = threshold.as_secs_f64(),
                cause = %cause,
                "exposure passed two checkpoint intervals: no checkpoint has caught up ({cause}); \
                 a power loss now could roll back these commits"
            ),
            Self::Recovered { exposure, lasted } => tracing::info!(
                target: "walguard::exposure",
                exposure_s = exposure.age.as_secs_f64(),
                exposed_commits = exposure.commits,
                lasted_s = lasted.as_secs_f64(),
                "exposure back under two checkpoint intervals: a checkpoint caught up"
            ),
        }
    }
}

/// Follows the exposure over time and reports starvation episodes.
///
/// Feed it with [`ExposureTracker::observe`] (from a store's
/// [`Durability`]) at a steady period, e.g. once a second; a shorter period
/// makes the age bound tighter.
#[derive(Debug, Clone)]
pub struct ExposureTracker {
    interval: Duration,
    clean_at: Instant,
    warned_at: Option<Instant>,
    episodes: u64,
    current: Exposure,
    /// Checkpoints seen since the durable point last moved.
    seen: Seen,
}

/// How the checkpoints since the durable point last moved ended.
#[derive(Debug, Clone, Default)]
struct Seen {
    partial: u64,
    busy: u64,
    failure: Option<String>,
}

impl ExposureTracker {
    /// A tracker for a checkpoint `interval`, started at `now` (when the
    /// store opened: nothing is exposed then).
    #[must_use]
    pub fn new(interval: Duration, now: Instant) -> Self {
        Self {
            interval,
            clean_at: now,
            warned_at: None,
            episodes: 0,
            current: Exposure::default(),
            seen: Seen::default(),
        }
    }

    /// Notes how a checkpoint ended (any checkpoint: interval, size,
    /// manual), for the cause a starvation warning names. A completed one
    /// starts the count over.
    pub fn note_checkpoint(&mut self, report: &CheckpointReport) {
        match report.outcome() {
            CheckpointOutcome::Completed => self.seen = Seen::default(),
            CheckpointOutcome::Partial => self.seen.partial += 1,
            CheckpointOutcome::Busy => self.seen.busy += 1,
            CheckpointOutcome::Failed { error } => self.seen.failure = Some(error.clone()),
        }
    }

    /// Why no checkpoint has caught up, from what
    /// [`ExposureTracker::note_checkpoint`] saw.
    #[must_use]
    pub fn cause(&self) -> StarvationCause {
        let seen = &self.seen;
        if let Some(error) = &seen.failure {
            StarvationCause::Failing {
                error: error.clone(),
            }
        } else if seen.busy > 0 && seen.busy >= seen.partial {
            StarvationCause::Busy
        } else if seen.partial > 0 {
            StarvationCause::ReaderPinning
        } else {
            StarvationCause::NoCheckpoint
        }
    }

    /// The age past which starvation is reported:
    /// [`STARVATION_THRESHOLD_INTERVALS`] intervals.
    #[must_use]
    pub fn threshold(&self) -> Duration {
        self.interval * STARVATION_THRESHOLD_INTERVALS
    }

    /// The exposure at the last observation.
    #[must_use]
    pub fn exposure(&self) -> Exposure {
        self.current
    }

    /// Whether a starvation episode is going on.
    #[must_use]
    pub fn is_starving(&self) -> bool {
        self.warned_at.is_some()
    }

    /// Starvation episodes so far (each warned once).
    #[must_use]
    pub fn episodes(&self) -> u64 {
        self.episodes
    }

    /// Observes a store's durability at `now`.
    pub fn observe(&mut self, now: Instant, durability: &Durability) -> Option<ExposureEvent> {
        let event = self.observe_counts(
            now,
            durability.commits(),
            durability.durable_commits(),
            durability.durable_at(),
        );
        self.current.writes = durability.exposed_writes();
        match event {
            Some(ExposureEvent::Starved { cause, .. }) => Some(ExposureEvent::Starved {
                exposure: self.current,
                cause,
            }),
            Some(ExposureEvent::Recovered { lasted, .. }) => Some(ExposureEvent::Recovered {
                exposure: self.current,
                lasted,
            }),
            None => None,
        }
    }

    /// Observes the parts of a [`Durability`]: `commits` so far, the first
    /// `durable_commits` of them durable, the durable point last moved at
    /// `durable_at`. Returns the start or end of a starvation episode.
    pub fn observe_counts(
        &mut self,
        now: Instant,
        commits: u64,
        durable_commits: u64,
        durable_at: Option<Instant>,
    ) -> Option<ExposureEvent> {
        let exposed = commits.saturating_sub(durable_commits);
        // Every exposed commit came after the durable point moved: the store
        // moves it to cover all commits made before the checkpoint started,
        // and no commit runs during a checkpoint (same connection).
        if let Some(at) = durable_at
            && at > self.clean_at
        {
            self.clean_at = at.min(now);
        }
        if exposed == 0 {
            self.clean_at = now;
        }
        self.current = Exposure {
            age: now.saturating_duration_since(self.clean_at),
            commits: exposed,
            writes: exposed,
            durable_commits,
            since_durable: durable_at.map(|at| now.saturating_duration_since(at)),
        };
        let threshold = self.threshold();
        match self.warned_at {
            None if self.current.age > threshold => {
                self.warned_at = Some(now);
                self.episodes += 1;
                Some(ExposureEvent::Starved {
                    exposure: self.current,
                    cause: self.cause(),
                })
            }
            Some(warned) if self.current.age <= threshold => {
                self.warned_at = None;
                Some(ExposureEvent::Recovered {
                    exposure: self.current,
                    lasted: now.saturating_duration_since(warned),
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Healthy: a checkpoint catches up every interval, so the age never
    /// passes one interval plus the observation period, and nothing warns.
    #[test]
    fn healthy_checkpoints_keep_exposure_under_one_interval() {
        let t0 = Instant::now();
        let mut tracker = ExposureTracker::new(s(10), t0);
        let mut commits = 0;
        let mut durable = (0, None);
        for second in 1..=120u64 {
            commits += 5;
            if second % 10 == 0 {
                // The checkpoint made everything before it durable.
                durable = (commits, Some(t0 + s(second)));
                commits += 1;
            }
            let event = tracker.observe_counts(t0 + s(second), commits, durable.0, durable.1);
            assert_eq!(event, None, "at {second}s");
            assert!(tracker.exposure().age() <= s(10), "at {second}s");
        }
        assert_eq!(tracker.episodes(), 0);
    }

    /// Nothing written: nothing exposed, however old the last checkpoint.
    #[test]
    fn idle_store_is_never_exposed() {
        let t0 = Instant::now();
        let mut tracker = ExposureTracker::new(s(1), t0);
        assert_eq!(tracker.observe_counts(t0 + s(3600), 0, 0, None), None);
        assert!(tracker.exposure().is_clear());
        assert_eq!(tracker.exposure().age(), Duration::ZERO);
    }

    /// The age counts from the last observation that found nothing exposed,
    /// not from an old durable point: one write after a long idle spell must
    /// not look like starvation.
    #[test]
    fn age_counts_from_the_last_clean_observation() {
        let t0 = Instant::now();
        let mut tracker = ExposureTracker::new(s(10), t0);
        tracker.observe_counts(t0 + s(100), 3, 3, Some(t0 + s(5)));
        assert_eq!(tracker.exposure().age(), Duration::ZERO);
        // One commit, seen one second later.
        assert_eq!(
            tracker.observe_counts(t0 + s(101), 4, 3, Some(t0 + s(5))),
            None
        );
        assert_eq!(tracker.exposure().age(), s(1));
        assert_eq!(tracker.exposure().commits(), 1);
        assert_eq!(tracker.exposure().durable_commits(), 3);
        assert_eq!(tracker.exposure().since_durable(), Some(s(96)));
    }

    /// A reader pins the WAL: partial checkpoints never move the durable
    /// point. One warning when the age passes two intervals, none after, one
    /// recovery when a checkpoint catches up, and a second episode warns
    /// again.
    #[test]
    fn starvation_warns_once_per_episode() {
        let t0 = Instant::now();
        let mut tracker = ExposureTracker::new(ms(500), t0);
        let mut events = Vec::new();
        let mut commits = 0;
        let mut durable = (0, None);
        for tick in 1..=60u64 {
            let now = t0 + ms(100 * tick);
            commits += 2;
            // The reader lets go at tick 30: the next checkpoint catches up.
            if tick == 31 {
                durable = (commits - 1, Some(t0 + ms(100 * tick - 10)));
            }
            if let Some(e) = tracker.observe_counts(now, commits, durable.0, durable.1) {
                events.push((tick, e));
            }
        }
        let ticks: Vec<u64> = events.iter().map(|(t, _)| *t).collect();
        // Past 1 s at tick 11; recovered at 31; starving again once 1 s has
        // passed since the new clean point (3.09 s), i.e. at tick 41.
        assert_eq!(ticks, vec![11, 31, 41]);
        assert!(
            matches!(events[0].1, ExposureEvent::Starved { exposure: e, .. } if e.commits() == 22 && e.age() == ms(1100))
        );
        assert!(matches!(events[1].1, ExposureEvent::Recovered { lasted, .. } if lasted == s(2)));
        assert!(matches!(events[2].1, ExposureEvent::Starved { .. }));
        assert_eq!(tracker.episodes(), 2);
        assert!(tracker.is_starving());
    }

    /// The warning names what the checkpoints since the durable point
    /// show: a failure (a full disk) wins over busy, busy over partial;
    /// with none seen it says no checkpoint ran. A completed checkpoint
    /// starts over.
    #[test]
    fn starvation_names_its_cause() {
        use crate::{CheckpointMode, CheckpointReason};
        let report = |row: (bool, i64, i64)| {
            CheckpointReport::from_row(
                CheckpointMode::Passive,
                CheckpointReason::Interval,
                row,
                ms(1),
            )
        };
        let full = std::io::Error::other("database or disk is full");
        let failed = CheckpointReport::failed(
            CheckpointMode::Passive,
            CheckpointReason::Interval,
            ms(1),
            &full,
        );
        let t0 = Instant::now();
        let starve = |notes: &[&CheckpointReport]| {
            let mut tracker = ExposureTracker::new(ms(500), t0);
            for note in notes {
                tracker.note_checkpoint(note);
            }
            match tracker.observe_counts(t0 + s(2), 5, 0, None) {
                Some(ExposureEvent::Starved { cause, .. }) => cause,
                other => panic!("{other:?}"),
            }
        };
        let partial = report((false, 10, 4));
        let busy = report((true, -1, -1));
        let completed = report((false, 10, 10));
        assert_eq!(starve(&[]), StarvationCause::NoCheckpoint);
        assert_eq!(
            starve(&[&partial, &partial]),
            StarvationCause::ReaderPinning
        );
        assert_eq!(starve(&[&partial, &busy, &busy]), StarvationCause::Busy);
        let cause = starve(&[&partial, &failed, &busy]);
        assert!(
            matches!(&cause, StarvationCause::Failing { error } if error.contains("disk is full")),
            "{cause:?}"
        );
        assert!(!cause.to_string().contains("pinning"), "{cause}");
        assert_eq!(
            starve(&[&failed, &completed, &partial]),
            StarvationCause::ReaderPinning
        );
    }

    /// Exactly at the threshold is not past it.
    #[test]
    fn threshold_is_exclusive() {
        let t0 = Instant::now();
        let mut tracker = ExposureTracker::new(s(1), t0);
        assert_eq!(tracker.threshold(), s(2));
        assert_eq!(tracker.observe_counts(t0 + s(2), 1, 0, None), None);
        assert!(
            tracker
                .observe_counts(t0 + s(2) + ms(1), 1, 0, None)
                .is_some()
        );
    }

    /// Under `synchronous=FULL` every commit is durable at once.
    #[test]
    fn full_sync_is_never_exposed() {
        let t0 = Instant::now();
        let mut tracker = ExposureTracker::new(s(1), t0);
        for second in 1..=10 {
            let now = t0 + s(second);
            assert_eq!(tracker.observe_counts(now, second, second, Some(now)), None);
            assert!(tracker.exposure().is_clear());
        }
    }

    /// A durable point stamped after the observation instant (clocks read in
    /// a different order) never makes the age negative or the clean point
    /// jump ahead of now.
    #[test]
    fn durable_point_after_now_is_clamped() {
        let t0 = Instant::now();
        let mut tracker = ExposureTracker::new(s(1), t0);
        tracker.observe_counts(t0 + s(1), 5, 2, Some(t0 + s(2)));
        assert_eq!(tracker.exposure().age(), Duration::ZERO);
        assert_eq!(tracker.exposure().since_durable(), Some(Duration::ZERO));
        tracker.observe_counts(t0 + s(3), 6, 2, Some(t0 + s(2)));
        assert_eq!(tracker.exposure().age(), s(1));
    }
}
