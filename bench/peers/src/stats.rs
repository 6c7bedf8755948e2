//! Run results, the median run, and exact nearest-rank percentiles.

use std::time::Duration;

/// One timed run: wall time of the timed phase and one latency per insert.
#[derive(Debug)]
pub struct Run {
    pub writes: u64,
    pub elapsed: Duration,
    /// Latency of every insert, in nanoseconds (see the README for what each
    /// system's latency measures).
    pub latencies_ns: Vec<u64>,
    /// CPU time of the process's threads during the timed phase ([`cpu_ns`]).
    pub cpu_ns: u64,
}

/// CPU time so far of every live thread of this process, in nanoseconds:
/// the sum of the first field of `/proc/self/task/*/schedstat` (ns
/// resolution, unlike `getrusage` ticks). 0 where that is not readable
/// (not Linux, or schedstats off): then the report's CPU column is 0.
pub fn cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

impl Run {
    pub fn throughput(&self) -> f64 {
        self.writes as f64 / self.elapsed.as_secs_f64()
    }
}

/// Picks the run with the median throughput. With an even number of runs it
/// takes the lower of the two middle runs (the conservative one).
///
/// Returns `None` for no runs.
pub fn median_run(mut runs: Vec<Run>) -> Option<Run> {
    if runs.is_empty() {
        return None;
    }
    runs.sort_by(|a, b| a.throughput().total_cmp(&b.throughput()));
    let mid = (runs.len() - 1) / 2;
    Some(runs.swap_remove(mid))
}

/// Latency summary in microseconds.
// The names are the JSON field names the table script reads.
#[allow(clippy::struct_field_names)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

/// Exact percentiles by sorting every sample; nearest-rank definition: the
/// p-th percentile of n sorted samples is the sample at 1-based rank
/// ceil(p/100 * n).
///
/// Returns `None` for no samples.
pub fn latency(samples_ns: &mut [u64]) -> Option<Latency> {
    if samples_ns.is_empty() {
        return None;
    }
    samples_ns.sort_unstable();
    let us = |ns: u64| ns as f64 / 1000.0;
    Some(Latency {
        p50_us: us(nearest_rank(samples_ns, 50)),
        p99_us: us(nearest_rank(samples_ns, 99)),
        max_us: us(samples_ns[samples_ns.len() - 1]),
    })
}

/// `sorted` must be non-empty and sorted ascending; `percent` in 1..=100.
fn nearest_rank(sorted: &[u64], percent: u64) -> u64 {
    let n = sorted.len() as u64;
    // ceil(percent * n / 100) in integers, at least rank 1.
    let rank = (percent * n).div_ceil(100).max(1);
    sorted[(rank - 1) as usize]
}

#[cfg(test)]
// The expected values are exact in f64 (integers divided by 1000 and back).
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<u64> = (1..=100).rev().map(|x| x * 1000).collect();
        let l = latency(&mut v).unwrap();
        assert_eq!(l.p50_us, 50.0);
        assert_eq!(l.p99_us, 99.0);
        assert_eq!(l.max_us, 100.0);

        let mut one = vec![7000];
        let l = latency(&mut one).unwrap();
        assert_eq!((l.p50_us, l.p99_us, l.max_us), (7.0, 7.0, 7.0));

        // n = 3: p50 rank ceil(1.5) = 2, p99 rank ceil(2.97) = 3.
        let mut three = vec![3000, 1000, 2000];
        let l = latency(&mut three).unwrap();
        assert_eq!((l.p50_us, l.p99_us), (2.0, 3.0));

        assert!(latency(&mut []).is_none());
    }

    #[test]
    fn median_of_runs() {
        let run = |ms| Run {
            writes: 1000,
            elapsed: Duration::from_millis(ms),
            latencies_ns: vec![ms],
            cpu_ns: 0,
        };
        let m = median_run(vec![run(30), run(10), run(20)]).unwrap();
        assert_eq!(m.latencies_ns, vec![20]);
        // Even count: the lower-throughput (slower) middle run.
        let m = median_run(vec![run(10), run(40), run(20), run(30)]).unwrap();
        assert_eq!(m.latencies_ns, vec![30]);
        assert!(median_run(Vec::new()).is_none());
    }
}
