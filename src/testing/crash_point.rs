//! Where a power-loss campaign cuts the power, drawn from a seed: the one
//! rule both crates' campaigns use (`tests/power_loss.rs`,
//! `actors/tests/crash_lab/power.rs`).

use std::ops::RangeInclusive;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{Lane, RestoreMode};

/// One cut in this many is aimed inside a checkpoint (when the dry run saw
/// any): 3.
pub const IN_CHECKPOINT_ONE_IN: u32 = 3;

/// With [`CrashPoint::draw_by_lane`], one cut in this many is aimed at an
/// operation of phase 1 of the two-phase size checkpoint, and one in this
/// many inside the writer's checkpoint that finishes a phase 1 (when the dry
/// run saw any): 4.
pub const BACKFILL_ONE_IN: u32 = 4;

/// A cut drawn from a seed: the I/O operation at which the power goes, and
/// how the durable images come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CrashPoint {
    /// The 1-based I/O operation at which
    /// [`PowerLossVfs::crash_at`](crate::testing::PowerLossVfs::crash_at)
    /// cuts the power.
    pub op: u64,
    /// Which operations `op` counts: every lane's (`None`, as
    /// [`PowerLossVfs::crash_at`](crate::testing::PowerLossVfs::crash_at)),
    /// or one lane's ([`PowerLossVfs::crash_at_on`](crate::testing::PowerLossVfs::crash_at_on)).
    /// [`PowerLossVfs::arm`](crate::testing::PowerLossVfs::arm) arms either.
    pub lane: Option<Lane>,
    /// Exact images, or the torn model, half the time each.
    pub mode: RestoreMode,
}

impl CrashPoint {
    /// Draws the cut of `seed` for a workload whose dry run took
    /// `setup_ops` operations of setup and `total_ops` in all, with its
    /// checkpoints at `checkpoints` (operation ranges, from
    /// [`PowerLossVfs::checkpoint_op_ranges`](crate::testing::PowerLossVfs::checkpoint_op_ranges)).
    /// One cut in [`IN_CHECKPOINT_ONE_IN`] lands inside a checkpoint; the
    /// others anywhere after the setup. The same seed gives the same cut.
    #[must_use]
    pub fn draw(
        seed: u64,
        setup_ops: u64,
        total_ops: u64,
        checkpoints: &[RangeInclusive<u64>],
    ) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let op = if !checkpoints.is_empty() && rng.random_ratio(1, IN_CHECKPOINT_ONE_IN) {
            let range = &checkpoints[rng.random_range(0..checkpoints.len())];
            rng.random_range(range.clone())
        } else {
            rng.random_range(setup_ops + 1..=total_ops.max(setup_ops + 1))
        };
        let mode = if rng.random_bool(0.5) {
            RestoreMode::Exact
        } else {
            RestoreMode::Torn { seed: rng.random() }
        };
        Self {
            op,
            lane: None,
            mode,
        }
    }

    /// Draws the cut of `seed` counted per lane, for a workload whose dry
    /// run took `setup_ops` foreground operations of setup and
    /// `foreground_ops` in all, with the foreground's checkpoints at
    /// `foreground_checkpoints`, those of them that finished a phase 1 at
    /// `finishing_checkpoints`, and phase 1's at `backfill_checkpoints`
    /// (from [`PowerLossVfs::checkpoint_op_ranges_on`](crate::testing::PowerLossVfs::checkpoint_op_ranges_on)
    /// and [`PowerLossVfs::finishing_checkpoint_op_ranges`](crate::testing::PowerLossVfs::finishing_checkpoint_op_ranges)).
    ///
    /// When phase 1 ran, one cut in [`BACKFILL_ONE_IN`] lands on an
    /// operation of a phase 1, counted in phase 1's own operations, and one
    /// in [`BACKFILL_ONE_IN`] inside a finishing checkpoint (phase 2),
    /// counted on the foreground. The others are drawn as [`Self::draw`]
    /// draws them, over the foreground's operations, so they land at that
    /// foreground operation whatever phase 1 is doing then. The same seed
    /// gives the same cut.
    #[must_use]
    pub fn draw_by_lane(
        seed: u64,
        setup_ops: u64,
        foreground_ops: u64,
        foreground_checkpoints: &[RangeInclusive<u64>],
        finishing_checkpoints: &[RangeInclusive<u64>],
        backfill_checkpoints: &[RangeInclusive<u64>],
    ) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let aimed = match rng.random_range(0..BACKFILL_ONE_IN) {
            0 if !backfill_checkpoints.is_empty() => Some((Lane::Backfill, backfill_checkpoints)),
            1 if !finishing_checkpoints.is_empty() => {
                Some((Lane::Foreground, finishing_checkpoints))
            }
            _ => None,
        };
        if let Some((lane, ranges)) = aimed {
            let range = &ranges[rng.random_range(0..ranges.len())];
            let op = rng.random_range(range.clone());
            let mode = if rng.random_bool(0.5) {
                RestoreMode::Exact
            } else {
                RestoreMode::Torn { seed: rng.random() }
            };
            return Self {
                op,
                lane: Some(lane),
                mode,
            };
        }
        Self {
            lane: Some(Lane::Foreground),
            ..Self::draw(rng.random(), setup_ops, foreground_ops, foreground_checkpoints)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_draws_the_same_cut_within_bounds() {
        let checkpoints = [40..=50, 70..=72];
        let mut in_checkpoint = 0;
        for seed in 0..300 {
            let cut = CrashPoint::draw(seed, 10, 100, &checkpoints);
            assert_eq!(cut, CrashPoint::draw(seed, 10, 100, &checkpoints));
            assert!((11..=100).contains(&cut.op), "{cut:?}");
            in_checkpoint += u32::from(checkpoints.iter().any(|r| r.contains(&cut.op)));
        }
        // About a third aimed, plus the ones that land there by chance.
        assert!((80..=200).contains(&in_checkpoint), "{in_checkpoint}");
    }

    #[test]
    fn draws_by_lane_aim_a_quarter_at_phase_one() {
        let (foreground, finishing, backfill) = ([40..=50, 80..=84], [80..=84], [3..=9, 20..=30]);
        let (mut on_backfill, mut in_finishing) = (0, 0);
        for seed in 0..400 {
            let cut = CrashPoint::draw_by_lane(seed, 10, 100, &foreground, &finishing, &backfill);
            assert_eq!(
                cut,
                CrashPoint::draw_by_lane(seed, 10, 100, &foreground, &finishing, &backfill)
            );
            match cut.lane {
                Some(Lane::Backfill) => {
                    on_backfill += 1;
                    assert!(backfill.iter().any(|r| r.contains(&cut.op)), "{cut:?}");
                }
                Some(Lane::Foreground) => {
                    assert!((11..=100).contains(&cut.op), "{cut:?}");
                    in_finishing += u32::from(finishing[0].contains(&cut.op));
                }
                None => panic!("{cut:?}"),
            }
        }
        assert!((60..=140).contains(&on_backfill), "{on_backfill}");
        // A quarter aimed, plus some of the checkpoint draws.
        assert!((80..=200).contains(&in_finishing), "{in_finishing}");
        // No phase 1 in the dry run: every cut on the foreground.
        let cut = CrashPoint::draw_by_lane(7, 10, 100, &foreground, &[], &[]);
        assert_eq!(cut.lane, Some(Lane::Foreground));
    }
}
