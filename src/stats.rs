//! Checkpoint statistics: the rolling window, its aggregate, and the session
//! counts.
//!
//! # Percentile method
//!
//! Window percentiles are **exact**, by the nearest-rank method: sort the
//! `n` samples ascending; the `p`-th percentile is the sample at 1-based rank
//! `ceil(p / 100 * n)` (rank 1 when that is 0). It is always one of the
//! observed values, never an interpolation: p50 of `[1, 2, 3, 4]` is 2, p95
//! of 20 samples is the 19th. Equivalently, it is the smallest sample `x`
//! such that at least `p` percent of the samples are `<= x`.
//!
//! Beyond the window, whole-session p50/p95 are kept with the `quantiles`
//! crate's CKMS sketch (error bound [`SESSION_QUANTILE_ERROR`]) in constant
//! memory, so a long session keeps a summary of everything, not only the
//! last `metrics.window` samples.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use quantiles::ckms::CKMS;

use crate::checkpoint::{CheckpointOutcome, CheckpointReport};
use crate::settings::duration_ms as ms;
use crate::store::Durability;

/// Relative rank error of the whole-session quantile sketch: 0.1 %.
pub const SESSION_QUANTILE_ERROR: f64 = 0.001;

/// A rolling window of the most recent checkpoint durations. When full, the
/// oldest sample is dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    samples: VecDeque<Duration>,
    capacity: usize,
}

impl Window {
    /// A window of `capacity` samples (at least 1).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            samples: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Adds a sample, dropping the oldest when full.
    pub fn push(&mut self, sample: Duration) {
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    /// Samples held now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether no sample is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The most samples held at once.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The samples, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = Duration> + '_ {
        self.samples.iter().copied()
    }

    /// n, p50, p95 and max over the window (exact, nearest rank).
    #[must_use]
    pub fn aggregate(&self) -> Aggregate {
        let mut sorted: Vec<Duration> = self.samples.iter().copied().collect();
        sorted.sort_unstable();
        Aggregate {
            n: sorted.len(),
            p50: percentile(&sorted, 50.0).unwrap_or_default(),
            p95: percentile(&sorted, 95.0).unwrap_or_default(),
            max: sorted.last().copied().unwrap_or_default(),
        }
    }
}

/// The nearest-rank `p`-th percentile (0 < p <= 100) of ascending `sorted`
/// samples; `None` when empty.
#[must_use]
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    nearest_rank(sorted.len(), p).map(|rank| sorted[rank - 1])
}

/// The nearest-rank definition of the `p`-th percentile (0 < p <= 100) of
/// `n` ascending samples: the 1-based rank ⌈p/100 · n⌉, clamped to
/// `1..=n`; `None` when `n` is 0. It always answers with a sample that was
/// seen (never an interpolation), so a percentile never flatters. Every
/// percentile walguard reports (the window, the benchmark's histogram and
/// timeline) takes its rank from here.
#[must_use]
pub fn nearest_rank(n: usize, p: f64) -> Option<usize> {
    if n == 0 {
        return None;
    }
    let rank = (p / 100.0 * n as f64).ceil() as usize;
    Some(rank.clamp(1, n))
}

/// The aggregate of a window: zero durations when `n` is 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Aggregate {
    n: usize,
    p50: Duration,
    p95: Duration,
    max: Duration,
}

impl Aggregate {
    /// Samples aggregated.
    #[must_use]
    pub fn n(&self) -> usize {
        self.n
    }
    /// Median.
    #[must_use]
    pub fn p50(&self) -> Duration {
        self.p50
    }
    /// 95th percentile.
    #[must_use]
    pub fn p95(&self) -> Duration {
        self.p95
    }
    /// Largest sample.
    #[must_use]
    pub fn max(&self) -> Duration {
        self.max
    }
}

impl fmt::Display for Aggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "n={} p50={:.3}ms p95={:.3}ms max={:.3}ms",
            self.n,
            ms(self.p50),
            ms(self.p95),
            ms(self.max)
        )
    }
}

/// Checkpoints counted over the whole session, by outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SessionCounts {
    /// Checkpoints that ran (every outcome; skipped ticks excluded).
    pub total: u64,
    /// Fully caught up.
    pub completed: u64,
    /// Readers held some frames back.
    pub partial: u64,
    /// SQLite answered busy.
    pub busy: u64,
    /// Failed with an error.
    pub failed: u64,
    /// Interval ticks skipped because a checkpoint was still in flight or
    /// the tick was a catch-up burst.
    pub skipped: u64,
    /// Times the checkpoint actor was restarted after a fault.
    pub restarts: u64,
}

/// What the database side reports at the end of a session.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct DbSummary {
    /// Writes (statements, transactions, closures) acknowledged to senders.
    pub writes_acknowledged: u64,
    /// Writes that returned an error to their sender.
    pub writes_failed: u64,
    /// Durability at the end (before close).
    pub durability: Option<Durability>,
    /// Why closing the connection failed, if it did.
    pub close_error: Option<String>,
    /// The database file was deleted, renamed or replaced, and was not back
    /// at its path at the end of the session
    /// ([`Store::file_is_gone`](crate::Store::file_is_gone)): what was
    /// acknowledged is not where the path leads.
    pub file_gone: bool,
    /// The database file was away from its path during the session
    /// (deleted, renamed or replaced) and the very same file was back at
    /// the end (renamed back): everything acknowledged is in the file at
    /// the path; writes and checkpoints were refused while it was away.
    pub file_returned: bool,
}

/// Session statistics: the window, whole-session quantiles, and counts.
#[derive(Debug, Clone)]
pub struct SessionStats {
    window: Window,
    session: CKMS<f64>,
    counts: SessionCounts,
    last: Option<CheckpointReport>,
    shutdown: Option<CheckpointReport>,
}

impl SessionStats {
    /// Empty statistics with a window of `window` samples.
    #[must_use]
    pub fn new(window: usize) -> Self {
        Self {
            window: Window::new(window),
            session: CKMS::new(SESSION_QUANTILE_ERROR),
            counts: SessionCounts::default(),
            last: None,
            shutdown: None,
        }
    }

    /// Records one checkpoint result.
    pub fn record(&mut self, report: &CheckpointReport) {
        self.counts.total += 1;
        match report.outcome() {
            CheckpointOutcome::Completed => self.counts.completed += 1,
            CheckpointOutcome::Partial => self.counts.partial += 1,
            CheckpointOutcome::Busy => self.counts.busy += 1,
            CheckpointOutcome::Failed { .. } => self.counts.failed += 1,
        }
        self.window.push(report.elapsed());
        self.session.insert(report.elapsed_ms());
        if report.reason() == crate::CheckpointReason::Shutdown {
            self.shutdown = Some(report.clone());
        }
        self.last = Some(report.clone());
    }

    /// Records an interval tick that was skipped.
    pub fn record_skipped(&mut self) {
        self.counts.skipped += 1;
    }

    /// Records a restart of the checkpoint actor.
    pub fn record_restart(&mut self) {
        self.counts.restarts += 1;
    }

    /// The counts so far.
    #[must_use]
    pub fn counts(&self) -> SessionCounts {
        self.counts
    }

    /// The rolling window.
    #[must_use]
    pub fn window(&self) -> &Window {
        &self.window
    }

    /// The most recent checkpoint result.
    #[must_use]
    pub fn last(&self) -> Option<&CheckpointReport> {
        self.last.as_ref()
    }

    /// A report of everything so far.
    #[must_use]
    pub fn report(&self) -> SessionReport {
        let q = |p: f64| self.session.query(p).map(|(_, v)| v);
        SessionReport {
            window: self.window.aggregate(),
            session_p50_ms: q(0.5),
            session_p95_ms: q(0.95),
            counts: self.counts,
            last_checkpoint: self.last.clone(),
            shutdown_checkpoint: self.shutdown.clone(),
            db: DbSummary::default(),
            replication: None,
            migrations: None,
            reads: None,
        }
    }
}

/// The end-of-session report.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SessionReport {
    /// n, p50, p95, max over the rolling window (exact).
    pub window: Aggregate,
    /// Whole-session median checkpoint time in ms (CKMS estimate).
    pub session_p50_ms: Option<f64>,
    /// Whole-session 95th percentile in ms (CKMS estimate).
    pub session_p95_ms: Option<f64>,
    /// Checkpoints by outcome, skipped ticks, restarts.
    pub counts: SessionCounts,
    /// The most recent checkpoint.
    pub last_checkpoint: Option<CheckpointReport>,
    /// The shutdown TRUNCATE, when one ran.
    pub shutdown_checkpoint: Option<CheckpointReport>,
    /// Writes and durability, from the database side.
    pub db: DbSummary,
    /// What the replica holds (`None` with replication off).
    pub replication: Option<crate::replication::Replicated>,
    /// The migrations applied at start (`None`: the engine started without
    /// migrations).
    pub migrations: Option<crate::MigrationReport>,
    /// The read side: reads served, failed, interrupted, read time
    /// (`None` without a read pool).
    pub reads: Option<crate::read::ReadStats>,
}

/// The stable fields of the end-of-session event ([`SessionReport::log`]),
/// in the order they are emitted. Log pipelines may rely on these names;
/// `walguard run --log-format json` repeats them in its summary object.
pub const SESSION_LOG_FIELDS: [&str; 14] = [
    "n",
    "p50_ms",
    "p95_ms",
    "max_ms",
    "total",
    "completed",
    "partial",
    "busy",
    "failed",
    "skipped",
    "restarts",
    "writes",
    "write_errors",
    "shutdown_outcome",
];

impl SessionReport {
    /// Adds the database side's summary.
    #[must_use]
    pub fn with_db(mut self, db: DbSummary) -> Self {
        self.db = db;
        self
    }

    /// Emits the end-of-session `tracing` event (target `walguard::session`)
    /// with the stable fields of [`SESSION_LOG_FIELDS`], the replica's
    /// counts, what the migrations at start did: `schema_version`,
    /// `migrations` (the names applied, or `none`) and `migrations_ms`
    /// (absent when the engine started without migrations), and the read
    /// side's `reads_served`, `reads_failed`, `reads_interrupted`,
    /// `read_n`, `read_p50_ms`, `read_p95_ms`, `read_max_ms` (absent
    /// without a read pool).
    pub fn log(&self) {
        tracing::info!(
            target: "walguard::session",
            n = self.window.n(),
            p50_ms = ms(self.window.p50()),
            p95_ms = ms(self.window.p95()),
            max_ms = ms(self.window.max()),
            total = self.counts.total,
            completed = self.counts.completed,
            partial = self.counts.partial,
            busy = self.counts.busy,
            failed = self.counts.failed,
            skipped = self.counts.skipped,
            restarts = self.counts.restarts,
            writes = self.db.writes_acknowledged,
            write_errors = self.db.writes_failed,
            replicated_commits = self.replication.map(|r| r.commits),
            replicated_writes = self.replication.map(|r| r.writes),
            schema_version = self.migrations.as_ref().map(crate::MigrationReport::to),
            migrations = self.migrations.as_ref().map(crate::MigrationReport::applied_list),
            migrations_ms = self.migrations.as_ref().map(crate::MigrationReport::elapsed_ms),
            reads_served = self.reads.as_ref().map(|r| r.counts().served),
            reads_failed = self.reads.as_ref().map(|r| r.counts().failed),
            reads_interrupted = self.reads.as_ref().map(|r| r.counts().interrupted),
            read_n = self.reads.as_ref().map(|r| r.time().n()),
            read_p50_ms = self.reads.as_ref().map(|r| ms(r.time().p50())),
            read_p95_ms = self.reads.as_ref().map(|r| ms(r.time().p95())),
            read_max_ms = self.reads.as_ref().map(|r| ms(r.time().max())),
            shutdown_outcome = self
                .shutdown_checkpoint
                .as_ref()
                .map_or("none", |r| r.outcome().as_str()),
            "end of session"
        );
    }
}

impl fmt::Display for SessionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        if let Some(m) = &self.migrations {
            writeln!(f, "migrations at start: {m}")?;
        }
        writeln!(
            f,
            "writes acknowledged: {} (errors: {})",
            self.db.writes_acknowledged, self.db.writes_failed
        )?;
        writeln!(
            f,
            "checkpoints: {} (completed {}, partial {}, busy {}, failed {}; skipped ticks {}; restarts {})",
            c.total, c.completed, c.partial, c.busy, c.failed, c.skipped, c.restarts
        )?;
        writeln!(f, "checkpoint time over the window: {}", self.window)?;
        if let Some(reads) = &self.reads {
            writeln!(f, "{reads}")?;
        }
        match &self.shutdown_checkpoint {
            Some(r) if r.outcome().is_failure() => write!(
                f,
                "shutdown truncate: {} (after {:.3}ms)",
                r.outcome(),
                r.elapsed_ms()
            ),
            Some(r) => write!(
                f,
                "shutdown truncate: {} in {:.3}ms",
                r.outcome(),
                r.elapsed_ms()
            ),
            None => write!(f, "shutdown truncate: did not run"),
        }?;
        if let Some(r) = &self.replication {
            write!(f, "\n{r}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn nearest_rank_on_small_sets() {
        let s = [d(1), d(2), d(3), d(4)];
        assert_eq!(percentile(&s, 50.0), Some(d(2)));
        assert_eq!(percentile(&s, 95.0), Some(d(4)));
        assert_eq!(percentile(&[d(7)], 50.0), Some(d(7)));
        assert_eq!(percentile(&[], 50.0), None);
        let twenty: Vec<_> = (1..=20).map(d).collect();
        assert_eq!(percentile(&twenty, 95.0), Some(d(19)));
    }

    #[test]
    fn window_drops_the_oldest() {
        let mut w = Window::new(3);
        for i in 1..=5 {
            w.push(d(i));
        }
        assert_eq!(w.iter().collect::<Vec<_>>(), vec![d(3), d(4), d(5)]);
        assert_eq!(w.aggregate().max(), d(5));
        assert_eq!(Window::new(0).capacity(), 1);
    }
}
