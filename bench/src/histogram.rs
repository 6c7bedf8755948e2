//! The closed loop's latency histogram: exact nearest-rank percentiles up to
//! 10 ms at 100 ns resolution, in fixed memory ([`Histogram`]).

use std::time::Duration;

/// Latencies in fixed memory (so that a memory measurement measures
/// walguard, not the benchmark): 100 ns buckets up to 10 ms, exact samples
/// above.
#[derive(Debug, Clone)]
pub struct Histogram {
    buckets: Vec<u64>,
    slow_ns: Vec<u64>,
    count: u64,
    max_ns: u64,
}

const BUCKET_NS: u64 = 100;

const BUCKETS: usize = 100_000; // 10 ms
impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram (800 KB of buckets).
    #[must_use]
    pub fn new() -> Self {
        Self {
            buckets: vec![0; BUCKETS],
            slow_ns: Vec::new(),
            count: 0,
            max_ns: 0,
        }
    }

    /// Adds one latency.
    pub fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.count += 1;
        self.max_ns = self.max_ns.max(ns);
        match usize::try_from(ns / BUCKET_NS) {
            Ok(i) if i < BUCKETS => self.buckets[i] += 1,
            _ => self.slow_ns.push(ns),
        }
    }

    /// Latencies recorded.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `p`-th percentile in µs by nearest rank, as `bench/peers`
    /// computes it: the sample at rank ⌈p/100 · n⌉. A bucket answers with
    /// its upper edge (never flatters). 0 when empty.
    pub fn percentile_us(&mut self, p: f64) -> f64 {
        let Some(rank) = walguard::stats::nearest_rank(self.count as usize, p) else {
            return 0.0;
        };
        let rank = rank as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let upper = (i as u64 + 1) * BUCKET_NS;
                return upper.min(self.max_ns) as f64 / 1000.0;
            }
        }
        self.slow_ns.sort_unstable();
        let i = usize::try_from(rank - seen - 1).unwrap_or(0);
        self.slow_ns
            .get(i.min(self.slow_ns.len().saturating_sub(1)))
            .map_or(0.0, |ns| *ns as f64 / 1000.0)
    }

    /// The largest latency in µs.
    #[must_use]
    pub fn max_us(&self) -> f64 {
        self.max_ns as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank_and_never_flatter() {
        let mut h = Histogram::new();
        for us in 1..=100 {
            h.record(Duration::from_micros(us));
        }
        h.record(Duration::from_millis(20));
        assert_eq!(h.count(), 101);
        assert!((h.percentile_us(50.0) - 51.0).abs() < 0.11);
        assert!((h.percentile_us(100.0) - 20_000.0).abs() < 1e-9);
        assert!((h.max_us() - 20_000.0).abs() < 1e-9);
        assert!(Histogram::new().percentile_us(99.0).abs() < f64::EPSILON);
    }
}
