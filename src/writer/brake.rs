//! The WAL brake: the writer's pause while Litestream owns checkpointing.
//!
//! While Litestream owns checkpointing, its PASSIVE checkpoints run beside
//! walguard's writes and, under sustained load, rarely find the moment to
//! start the WAL over (measured: 52,238 frames at about 12,000 writes/s
//! against 1,503 without replication). Once the WAL passes `frames`, the
//! writer stops taking requests and asks for a local sync of Litestream;
//! Litestream then copies the WAL and checkpoints with no writer beside
//! it, which lets the next write start the WAL over. Writes go on when the
//! sync returned ([`Brake::done`]), or after [`BRAKE_MAX_PAUSE`] whatever
//! happened.

use std::time::{Duration, Instant};

/// The longest the WAL brake holds the writes back: 250 ms.
pub const BRAKE_MAX_PAUSE: Duration = Duration::from_millis(250);

/// The WAL size at which the brake engages, as a multiple of
/// `checkpoint.size_threshold_frames` (Litestream's
/// `min-checkpoint-page-count`): 2.
pub const BRAKE_THRESHOLD_FACTOR: u32 = 2;

/// What the writer does at the start of a round ([`super::Writer::braking`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Braking {
    /// Serve the round.
    No,
    /// The brake is on: take no request; its end wakes the writer.
    Waiting,
    /// The brake has just engaged: take no request, ask for the sync, and
    /// wake the writer after [`BRAKE_MAX_PAUSE`].
    Engaged,
}

/// The brake's state.
#[derive(Debug)]
pub(crate) struct Brake {
    frames: u32,
    /// The WAL size that engages the brake next: `frames`, and after a
    /// brake that did not start the WAL over, `frames` more than it was
    /// then (at most one brake per `frames` frames written).
    next_at: u32,
    /// Since when the writer waits, while it does.
    engaged: Option<Instant>,
    /// Brakes engaged in this session.
    count: u64,
}

impl Brake {
    /// A brake at `frames` (`None` for 0: no brake).
    pub(crate) fn new(frames: u32) -> Option<Self> {
        (frames > 0).then_some(Self {
            frames,
            next_at: frames,
            engaged: None,
            count: 0,
        })
    }

    /// Whether the writes wait now, with the WAL at `wal_frames`, at
    /// `now`, while `litestream_owns` checkpointing.
    pub(crate) fn check(
        &mut self,
        wal_frames: u32,
        litestream_owns: bool,
        now: Instant,
    ) -> Braking {
        if let Some(since) = self.engaged {
            if now.saturating_duration_since(since) < BRAKE_MAX_PAUSE {
                return Braking::Waiting;
            }
            self.engaged = None;
            return Braking::No;
        }
        if wal_frames < self.frames {
            // The WAL started over (or never grew): back to the threshold.
            self.next_at = self.frames;
        }
        if !litestream_owns || wal_frames < self.next_at {
            return Braking::No;
        }
        self.next_at = wal_frames.saturating_add(self.frames);
        self.engaged = Some(now);
        self.count += 1;
        Braking::Engaged
    }

    /// The sync returned: whether the brake was on (the writer then has a
    /// round to run).
    pub(crate) fn done(&mut self) -> bool {
        self.engaged.take().is_some()
    }

    /// Lets go at once (the shutdown never waits for the WAL).
    pub(crate) fn release(&mut self) {
        self.engaged = None;
    }

    /// Brakes engaged in this session.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The brake engages past its threshold only while Litestream owns
    /// checkpointing, holds for at most [`BRAKE_MAX_PAUSE`], engages again
    /// only `frames` later, and starts over once the WAL did.
    #[test]
    fn the_brake_engages_once_per_threshold_and_lets_go() {
        let t0 = Instant::now();
        let mut brake = Brake::new(100).unwrap();
        assert_eq!(brake.check(150, false, t0), Braking::No);
        assert_eq!(brake.check(99, true, t0), Braking::No);
        assert_eq!(brake.check(100, true, t0), Braking::Engaged);
        assert_eq!(
            brake.check(100, true, t0 + Duration::from_millis(10)),
            Braking::Waiting
        );
        assert_eq!(brake.check(100, true, t0 + BRAKE_MAX_PAUSE), Braking::No);
        // Not again before 200 frames.
        assert_eq!(brake.check(199, true, t0 + BRAKE_MAX_PAUSE), Braking::No);
        assert_eq!(
            brake.check(200, true, t0 + BRAKE_MAX_PAUSE),
            Braking::Engaged
        );
        assert!(brake.done());
        assert!(!brake.done());
        // The WAL started over: back to 100.
        assert_eq!(brake.check(5, true, t0 + BRAKE_MAX_PAUSE), Braking::No);
        assert_eq!(
            brake.check(100, true, t0 + BRAKE_MAX_PAUSE),
            Braking::Engaged
        );
        assert_eq!(brake.count(), 3);
        assert!(Brake::new(0).is_none());
    }
}
