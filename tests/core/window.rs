//! Checkpoint statistics: the rolling window, its exact percentiles against a brute-force reference, session counts and CKMS quantiles.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use walguard::stats::SESSION_QUANTILE_ERROR;
use walguard::{CheckpointMode, CheckpointReason, CheckpointReport, SessionStats, Window};

use crate::support::seed;

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

/// The reference percentile: the smallest sample `x` such that at least `p`
/// percent of the samples are `<= x`, found by scanning every candidate and
/// counting (integer arithmetic, no sorting, no ranks).
fn reference_percentile(samples: &[Duration], p: u64) -> Duration {
    let n = samples.len() as u64;
    samples
        .iter()
        .copied()
        .filter(|&x| {
            let at_most = samples.iter().filter(|&&s| s <= x).count() as u64;
            at_most * 100 >= p * n
        })
        .min()
        .expect("no sample")
}

#[test]
fn window_keeps_the_newest_samples() {
    let mut window = Window::new(512);
    for i in 0..600 {
        window.push(us(i));
    }
    assert_eq!(window.len(), 512);
    assert_eq!(window.capacity(), 512);
    let held: Vec<Duration> = window.iter().collect();
    assert_eq!(
        held,
        (88..600).map(us).collect::<Vec<_>>(),
        "the oldest 88 are gone"
    );
    let agg = window.aggregate();
    assert_eq!(agg.n(), 512);
    assert_eq!(agg.max(), us(599));
    // Ranks 256 and 487 of 88..600.
    assert_eq!(agg.p50(), us(88 + 255));
    assert_eq!(agg.p95(), us(88 + 486));
}

#[test]
fn empty_window_aggregates_to_zero() {
    let window = Window::new(8);
    assert!(window.is_empty());
    let agg = window.aggregate();
    assert_eq!(
        (agg.n(), agg.p50(), agg.p95(), agg.max()),
        (0, us(0), us(0), us(0))
    );
}

#[test]
fn aggregate_matches_a_brute_force_reference() {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    for round in 0..300 {
        let capacity = rng.random_range(1..=600);
        let pushed = rng.random_range(1..=1200);
        // Narrow ranges give many ties, wide ones almost none.
        let spread = [3_u64, 50, 1_000_000][rng.random_range(0..3)];
        let mut window = Window::new(capacity);
        let mut all = Vec::with_capacity(pushed);
        for _ in 0..pushed {
            let s = us(rng.random_range(0..spread));
            window.push(s);
            all.push(s);
        }
        let kept = &all[all.len() - pushed.min(capacity)..];
        let agg = window.aggregate();
        let ctx = format!("seed={seed} round={round} capacity={capacity} pushed={pushed}");
        assert_eq!(agg.n(), kept.len(), "{ctx}");
        assert_eq!(agg.p50(), reference_percentile(kept, 50), "p50 {ctx}");
        assert_eq!(agg.p95(), reference_percentile(kept, 95), "p95 {ctx}");
        assert_eq!(agg.max(), *kept.iter().max().unwrap(), "max {ctx}");
    }
}

#[test]
fn aggregate_matches_the_reference_on_every_small_size() {
    // Every n from 1 to 200 over distinct values in shuffled order: any
    // off-by-one in the rank shows up at some n.
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed ^ 0xA5A5);
    for n in 1..=200_u64 {
        let mut values: Vec<u64> = (1..=n).collect();
        for i in (1..values.len()).rev() {
            values.swap(i, rng.random_range(0..=i));
        }
        let mut window = Window::new(n as usize);
        let samples: Vec<Duration> = values.into_iter().map(us).collect();
        for &s in &samples {
            window.push(s);
        }
        let agg = window.aggregate();
        assert_eq!(
            agg.p50(),
            reference_percentile(&samples, 50),
            "seed={seed} n={n}"
        );
        assert_eq!(
            agg.p95(),
            reference_percentile(&samples, 95),
            "seed={seed} n={n}"
        );
    }
}

fn report(row: (bool, i64, i64), elapsed: Duration, reason: CheckpointReason) -> CheckpointReport {
    CheckpointReport::from_row(CheckpointMode::Passive, reason, row, elapsed)
}

#[test]
fn session_counts_by_outcome() {
    let mut stats = SessionStats::new(4);
    assert_eq!(stats.counts().total, 0);
    assert!(stats.last().is_none());
    let interval = CheckpointReason::Interval;
    for _ in 0..3 {
        stats.record(&report((false, 10, 10), us(100), interval));
    }
    stats.record(&report((false, 10, 4), us(200), interval));
    stats.record(&report((false, 10, 4), us(300), interval));
    stats.record(&report((true, 10, 4), us(400), interval));
    let io = std::io::Error::other("boom");
    stats.record(&CheckpointReport::failed(
        CheckpointMode::Passive,
        interval,
        us(500),
        &io,
    ));
    stats.record_skipped();
    stats.record_skipped();
    stats.record_restart();
    let shutdown = CheckpointReport::from_row(
        CheckpointMode::Truncate,
        CheckpointReason::Shutdown,
        (false, 0, 0),
        us(600),
    );
    stats.record(&shutdown);

    let c = stats.counts();
    assert_eq!(
        (
            c.total,
            c.completed,
            c.partial,
            c.busy,
            c.failed,
            c.skipped,
            c.restarts
        ),
        (8, 4, 2, 1, 1, 2, 1),
        "{c:?}"
    );
    assert_eq!(stats.last(), Some(&shutdown));
    // The window holds the last 4 durations.
    assert_eq!(
        stats.window().iter().collect::<Vec<_>>(),
        vec![us(300), us(400), us(500), us(600)]
    );

    let r = stats.report();
    assert_eq!(r.counts, c);
    assert_eq!(r.window.n(), 4);
    assert_eq!(r.window.max(), us(600));
    assert_eq!(r.shutdown_checkpoint.as_ref(), Some(&shutdown));
    assert_eq!(r.last_checkpoint.as_ref(), Some(&shutdown));
    let text = r.to_string();
    assert!(
        text.contains("completed 4, partial 2, busy 1, failed 1; skipped ticks 2; restarts 1"),
        "{text}"
    );
}

/// Whether `value` sits within `allowed` ranks of rank `target` (1-based)
/// among the ascending `sorted` samples. Ties give `value` a range of ranks.
fn within_rank(sorted: &[f64], value: f64, target: f64, allowed: f64) -> bool {
    let below = sorted.partition_point(|&s| s < value);
    let through = sorted.partition_point(|&s| s <= value);
    if through == below {
        return false; // not one of the samples
    }
    let (below, through) = (below as f64, through as f64);
    // Ranks below+1 ..= through hold `value`.
    let distance = if target < below + 1.0 {
        below + 1.0 - target
    } else if target > through {
        target - through
    } else {
        0.0
    };
    distance <= allowed
}

#[test]
fn session_quantiles_are_within_the_documented_error() {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x00C0_FFEE);
    let mut stats = SessionStats::new(512);
    let mut exact = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        // Mostly fast checkpoints with a long tail, in whole microseconds.
        let micros = if rng.random_bool(0.9) {
            rng.random_range(50..5_000)
        } else {
            rng.random_range(5_000..2_000_000)
        };
        let r = report((false, 1, 1), us(micros), CheckpointReason::Interval);
        stats.record(&r);
        // The sketch holds what the report logs, so compare against that.
        exact.push(r.elapsed_ms());
    }
    exact.sort_by(f64::total_cmp);
    let n = exact.len() as f64;
    let r = stats.report();
    // Rank error of at most SESSION_QUANTILE_ERROR * n, plus one for rounding.
    let allowed = SESSION_QUANTILE_ERROR * n + 1.0;
    for (q, got) in [(0.5, r.session_p50_ms), (0.95, r.session_p95_ms)] {
        let got = got.expect("10k samples give a quantile");
        let target = q * n;
        let exact_value = exact[(target as usize).saturating_sub(1)];
        assert!(
            within_rank(&exact, got, target, allowed),
            "seed={seed} q={q}: CKMS says {got} ms, exact is {exact_value} ms (allowed {allowed} ranks)"
        );
    }
    assert_eq!(r.window.n(), 512);
}
