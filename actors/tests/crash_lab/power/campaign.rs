//! The power-loss campaign: many iterations from consecutive seeds, and
//! what they saw ([`Summary`], printed as docs/reliability.md's table).

use std::time::{Duration, Instant};

use walguard::settings::Synchronous;
use walguard::testing::{CutCount, Phase, RestoreMode};

use super::{MAX_REDRAWS, iteration, replay, synchronous_of};

/// What a campaign saw.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    pub(crate) iterations: u64,
    pub(crate) first_seed: u64,
    pub(crate) full: u64,
    pub(crate) in_checkpoint: u64,
    /// Cuts counted on phase 1's own operations.
    pub(crate) aimed_at_phase1: u64,
    /// Cuts while phase 1 held the checkpoint lock.
    pub(crate) in_phase1: u64,
    /// Cuts counted inside a phase 2's own operations.
    pub(crate) aimed_at_phase2: u64,
    /// Cuts inside the writer's checkpoint that finished a phase 1.
    pub(crate) in_phase2: u64,
    /// Cuts drawn again (never reached by the run they were drawn for).
    pub(crate) redraws: u64,
    /// The most redraws one cut needed.
    pub(crate) most_redraws: u32,
    /// Phase 1s with I/O, summed over the dry runs, and the dry runs that
    /// had any.
    pub(crate) dry_phase1s: usize,
    pub(crate) dry_phase2s: usize,
    pub(crate) dry_runs_with_phase1: u64,
    pub(crate) torn_restores: u64,
    pub(crate) torn_writes: usize,
    /// Runs that lost acknowledged writes (allowed above the durable point).
    pub(crate) lost_acked_runs: u64,
    pub(crate) lost_acked_rows: u64,
    pub(crate) corrupt: u64,
    pub(crate) violations: Vec<String>,
    pub(crate) elapsed: Duration,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} power cuts (seeds {}..={}, {} under FULL) in {:.1?}: {} inside a checkpoint \
             ({} inside a phase 1, {} of them aimed there; {} inside a phase 2, {} aimed; \
             dry runs: {} phase 1s in {} runs, {} phase 2s with I/O), {} redrawn (at most {} for one cut), {} torn restores ({} torn writes), {} runs lost {} acknowledged rows \
             above the durable point, {} corrupt, {} violations",
            self.iterations,
            self.first_seed,
            self.first_seed + self.iterations.saturating_sub(1),
            self.full,
            self.elapsed,
            self.in_checkpoint,
            self.in_phase1,
            self.aimed_at_phase1,
            self.in_phase2,
            self.aimed_at_phase2,
            self.dry_phase1s,
            self.dry_runs_with_phase1,
            self.dry_phase2s,
            self.redraws,
            self.most_redraws,
            self.torn_restores,
            self.torn_writes,
            self.lost_acked_runs,
            self.lost_acked_rows,
            self.corrupt,
            self.violations.len(),
        )
    }
}

impl Summary {
    /// The figures as the Markdown table of docs/reliability.md.
    pub(crate) fn table(&self) -> String {
        [
            "| figure | value |".to_owned(),
            "|---|---|".to_owned(),
            format!(
                "| power cuts, seeds {}..={} | **{}**: {} under `normal`, {} under `full` |",
                self.first_seed,
                self.first_seed + self.iterations.saturating_sub(1),
                self.iterations,
                self.iterations - self.full,
                self.full
            ),
            format!("| wall time | {:.0?} |", self.elapsed),
            format!("| cuts inside a checkpoint | {} |", self.in_checkpoint),
            format!(
                "| cuts inside a phase 1 of the two-phase size checkpoint (its lock held) | {}, {} aimed at its own I/O |",
                self.in_phase1, self.aimed_at_phase1
            ),
            format!(
                "| cuts inside a phase 2 (the writer's checkpoint that finished a phase 1) | {}, {} aimed there |",
                self.in_phase2, self.aimed_at_phase2
            ),
            format!(
                "| cuts drawn again, never reached by their run (at most {MAX_REDRAWS} per cut) | {}, at most {} for one cut |",
                self.redraws, self.most_redraws
            ),
            format!(
                "| torn restores | {}, with {} writes torn on a sector boundary |",
                self.torn_restores, self.torn_writes
            ),
            format!(
                "| runs under `normal` that lost acknowledged writes | {}, {} rows in all, every one after the durable point (allowed) |",
                self.lost_acked_runs, self.lost_acked_rows
            ),
            format!("| corrupt databases | **{}** |", self.corrupt),
            format!(
                "| violations: losses beyond the bound (before \"durable through\", or any under `full`), corruption, harness failures | **{}** |",
                self.violations.len()
            ),
        ]
        .join("\n")
    }
}

/// Runs `iterations` iterations from seed `first_seed` on, each under
/// [`synchronous_of`] its seed, unless `synchronous` forces one.
pub(crate) fn campaign(
    first_seed: u64,
    iterations: u64,
    synchronous: Option<Synchronous>,
) -> Summary {
    let start = Instant::now();
    let mut summary = Summary {
        first_seed,
        ..Summary::default()
    };
    for i in 0..iterations {
        let seed = first_seed.wrapping_add(i);
        let sync = synchronous.unwrap_or_else(|| synchronous_of(seed));
        summary.iterations += 1;
        match iteration(seed, sync) {
            Ok(it) => {
                summary.full += u64::from(sync == Synchronous::Full);
                summary.in_checkpoint += u64::from(it.in_checkpoint);
                summary.in_phase1 += u64::from(it.in_phase1);
                summary.in_phase2 += u64::from(it.in_phase2);
                summary.aimed_at_phase1 += u64::from(matches!(
                    it.crash_count,
                    CutCount::InPhase {
                        phase: Phase::One,
                        ..
                    }
                ));
                summary.aimed_at_phase2 += u64::from(matches!(
                    it.crash_count,
                    CutCount::InPhase {
                        phase: Phase::Two,
                        ..
                    }
                ));
                summary.redraws += u64::from(it.redraws);
                summary.most_redraws = summary.most_redraws.max(it.redraws);
                summary.dry_phase1s += it.dry_phase1s;
                summary.dry_phase2s += it.dry_phase2s;
                summary.dry_runs_with_phase1 += u64::from(it.dry_phase1s > 0);
                summary.torn_restores += u64::from(matches!(it.mode, RestoreMode::Torn { .. }));
                summary.torn_writes += it.torn_writes;
                summary.corrupt += u64::from(it.corrupt());
                let lost = it.lost_acked();
                summary.lost_acked_runs += u64::from(lost > 0);
                summary.lost_acked_rows += lost;
                if let Some(v) = it.failure() {
                    summary.violations.push(format!(
                        "{}: {sync:?}, crash at {:?}, op {} (of {} foreground) (in checkpoint: {}, phase 1: \
                         {}, phase 2: {}, redraws: {}), {:?}, sent {} rows, acknowledged {}, \
                         durable {}: {v}",
                        replay(seed, Some(&it.cut)),
                        it.crash_count,
                        it.crash_op,
                        it.total_ops,
                        it.in_checkpoint,
                        it.in_phase1,
                        it.in_phase2,
                        it.redraws,
                        it.mode,
                        it.ledger.issued_rows,
                        it.ledger.acked_rows,
                        it.ledger.required_rows,
                    ));
                }
            }
            Err(e) => summary
                .violations
                .push(format!("{}: {sync:?}: harness: {e}", replay(seed, None))),
        }
    }
    summary.elapsed = start.elapsed();
    summary
}
