//! [`ExposureTracker`]: the exposure over time, and the starvation
//! episodes it reports.

use std::time::{Duration, Instant};

use super::{Exposure, ExposureEvent, STARVATION_THRESHOLD_INTERVALS, StarvationCause};
use crate::checkpoint::{CheckpointOutcome, CheckpointReport};
use crate::store::Durability;

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
