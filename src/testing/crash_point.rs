//! Where a power-loss campaign cuts the power, drawn from a seed: the one
//! rule both crates' campaigns use (`tests/power_loss.rs`,
//! `actors/tests/crash_lab/power.rs`).

use std::ops::RangeInclusive;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::RestoreMode;

/// One cut in this many is aimed inside a checkpoint (when the dry run saw
/// any): 3.
pub const IN_CHECKPOINT_ONE_IN: u32 = 3;

/// A cut drawn from a seed: the I/O operation at which the power goes, and
/// how the durable images come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CrashPoint {
    /// The 1-based I/O operation at which
    /// [`PowerLossVfs::crash_at`](crate::testing::PowerLossVfs::crash_at)
    /// cuts the power.
    pub op: u64,
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
        Self { op, mode }
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
}
