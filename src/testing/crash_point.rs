//! Where a power-loss campaign cuts the power, drawn from a seed: the one
//! rule both crates' campaigns use (`tests/power_loss/`,
//! `actors/tests/crash_lab/power.rs`).

use std::ops::RangeInclusive;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{CutCount, Lane, Phase, PhaseSpan, RestoreMode};

/// One cut in this many is aimed inside a checkpoint (when the dry run saw
/// any): 3.
pub const IN_CHECKPOINT_ONE_IN: u32 = 3;

/// With [`CrashPoint::draw_by_lane`], one cut in this many is aimed inside
/// a phase 1 of the two-phase size checkpoint, and one in this many inside
/// a phase 2 (when the dry run saw any): 4.
pub const IN_PHASE_ONE_IN: u32 = 4;

/// A cut drawn from a seed: the I/O operation at which the power goes, and
/// how the durable images come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CrashPoint {
    /// The 1-based I/O operation at which the power goes, counted as
    /// `count` says.
    pub op: u64,
    /// What `op` counts: every operation (as
    /// [`PowerLossVfs::crash_at`](crate::testing::PowerLossVfs::crash_at)),
    /// one lane's, or one checkpoint's of a phase.
    /// [`PowerLossVfs::arm`](crate::testing::PowerLossVfs::arm) arms any.
    pub count: CutCount,
    /// Exact images, or the torn model, half the time each.
    pub mode: RestoreMode,
}

impl CrashPoint {
    /// The cut at operation `op` (1-based) counted as `count`, restored as
    /// `mode`: one named outright, as a replay names the cut it repeats.
    #[must_use]
    pub fn new(op: u64, count: CutCount, mode: RestoreMode) -> Self {
        Self { op, count, mode }
    }

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
        Self {
            op,
            count: CutCount::All,
            mode: draw_mode(&mut rng),
        }
    }

    /// Draws the cut of `seed` for a workload with the two-phase size
    /// checkpoint, whose dry run took `setup_ops` foreground operations of
    /// setup and `foreground_ops` in all, with the foreground's checkpoints
    /// at `foreground_checkpoints` (from
    /// [`PowerLossVfs::checkpoint_op_ranges_on`](crate::testing::PowerLossVfs::checkpoint_op_ranges_on))
    /// and the checkpoints of each phase at `phase_one` and `phase_two`
    /// (from [`PowerLossVfs::phase_spans`](crate::testing::PowerLossVfs::phase_spans)).
    ///
    /// One cut in [`IN_PHASE_ONE_IN`] is aimed at an operation of a phase
    /// 1 and one in [`IN_PHASE_ONE_IN`] at an operation of a phase 2, each
    /// counted inside its checkpoint ([`CutCount::InPhase`]), so it lands
    /// there whatever the two lanes did before. The others are drawn as
    /// [`Self::draw`] draws them, over the foreground's operations
    /// ([`CutCount::Lane`]), so they land at that foreground operation
    /// whatever phase 1 is doing then. The same seed gives the same cut.
    #[must_use]
    pub fn draw_by_lane(
        seed: u64,
        setup_ops: u64,
        foreground_ops: u64,
        foreground_checkpoints: &[RangeInclusive<u64>],
        phase_one: &[PhaseSpan],
        phase_two: &[PhaseSpan],
    ) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let aimed = match rng.random_range(0..IN_PHASE_ONE_IN) {
            0 if !phase_one.is_empty() => Some((Phase::One, phase_one)),
            1 if !phase_two.is_empty() => Some((Phase::Two, phase_two)),
            _ => None,
        };
        if let Some((phase, spans)) = aimed {
            let span = spans[rng.random_range(0..spans.len())];
            return Self {
                op: rng.random_range(1..=span.ops.max(1)),
                count: CutCount::InPhase {
                    phase,
                    nth: span.nth,
                },
                mode: draw_mode(&mut rng),
            };
        }
        Self {
            count: CutCount::Lane(Lane::Foreground),
            ..Self::draw(
                rng.random(),
                setup_ops,
                foreground_ops,
                foreground_checkpoints,
            )
        }
    }
}

/// Exact images, or the torn model, half the time each.
fn draw_mode(rng: &mut StdRng) -> RestoreMode {
    if rng.random_bool(0.5) {
        RestoreMode::Exact
    } else {
        RestoreMode::Torn { seed: rng.random() }
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
    fn draws_by_lane_aim_a_quarter_inside_each_phase() {
        let foreground = [40..=50];
        let one = [PhaseSpan { nth: 0, ops: 7 }, PhaseSpan { nth: 2, ops: 11 }];
        let two = [PhaseSpan { nth: 1, ops: 3 }];
        let mut per_phase = [0; 2];
        for seed in 0..400 {
            let cut = CrashPoint::draw_by_lane(seed, 10, 100, &foreground, &one, &two);
            assert_eq!(
                cut,
                CrashPoint::draw_by_lane(seed, 10, 100, &foreground, &one, &two)
            );
            match cut.count {
                CutCount::InPhase { phase, nth } => {
                    per_phase[phase.index()] += 1;
                    let spans: &[PhaseSpan] = if phase == Phase::One { &one } else { &two };
                    let span = spans.iter().find(|s| s.nth == nth).expect("a span");
                    assert!((1..=span.ops).contains(&cut.op), "{cut:?}");
                }
                CutCount::Lane(Lane::Foreground) => {
                    assert!((11..=100).contains(&cut.op), "{cut:?}");
                }
                other => panic!("{other:?}"),
            }
        }
        for n in per_phase {
            assert!((60..=140).contains(&n), "{per_phase:?}");
        }
        // No phase in the dry run: every cut on the foreground.
        let cut = CrashPoint::draw_by_lane(7, 10, 100, &foreground, &[], &[]);
        assert_eq!(cut.count, CutCount::Lane(Lane::Foreground));
    }
}
