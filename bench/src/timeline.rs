//! Latency over time, in buckets of reply time, for the chart
//! ([`Timeline`]).

use std::time::Duration;

/// One bucket of a [`Timeline`]: the writes answered in it.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct TimelinePoint {
    /// Start of the bucket, since the run started.
    pub at: Duration,
    /// Writes answered in the bucket.
    pub writes: u32,
    /// Median latency of those writes.
    pub p50: Duration,
    /// 99th percentile (nearest rank).
    pub p99: Duration,
    /// The slowest.
    pub max: Duration,
}

/// Write latency over time: each write lands in the bucket of its reply
/// time. A bucket where no reply came has no point (a stall shows as a gap,
/// then a bucket of slow writes). Memory: one bucket's samples plus one
/// point per bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    bucket: Duration,
    points: Vec<TimelinePoint>,
    current: Option<u64>,
    samples: Vec<Duration>,
}

impl Timeline {
    /// An empty timeline with buckets `bucket` wide (at least 1 µs).
    #[must_use]
    pub fn new(bucket: Duration) -> Self {
        Self {
            bucket: bucket.max(Duration::from_micros(1)),
            points: Vec::new(),
            current: None,
            samples: Vec::new(),
        }
    }

    /// Adds a write answered `reply_at` after the start, which took
    /// `latency`. Reply times must not go back by more than a bucket
    /// (they never do on one thread).
    pub fn record(&mut self, reply_at: Duration, latency: Duration) {
        let index = (reply_at.as_nanos() / self.bucket.as_nanos()) as u64;
        match self.current {
            Some(current) if index > current => {
                self.close();
                self.current = Some(index);
            }
            None => self.current = Some(index),
            Some(_) => {}
        }
        self.samples.push(latency);
    }

    /// Closes the last bucket; call once the run is over.
    pub fn finish(&mut self) {
        self.close();
        self.current = None;
    }

    fn close(&mut self) {
        let Some(index) = self.current else { return };
        if self.samples.is_empty() {
            return;
        }
        self.samples.sort_unstable();
        let n = self.samples.len();
        let rank = |p: f64| walguard::stats::nearest_rank(n, p).unwrap_or(n) - 1;
        self.points.push(TimelinePoint {
            at: self.bucket * u32::try_from(index).unwrap_or(u32::MAX),
            writes: u32::try_from(n).unwrap_or(u32::MAX),
            p50: self.samples[rank(50.0)],
            p99: self.samples[rank(99.0)],
            max: self.samples[n - 1],
        });
        self.samples.clear();
    }

    /// The bucket width.
    #[must_use]
    pub fn bucket(&self) -> Duration {
        self.bucket
    }

    /// The closed buckets, in time order.
    #[must_use]
    pub fn points(&self) -> &[TimelinePoint] {
        &self.points
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeline_buckets_by_reply_time_and_skips_silent_buckets() {
        let mut t = Timeline::new(Duration::from_millis(10));
        let ms = Duration::from_millis;
        t.record(ms(1), ms(1));
        t.record(ms(2), ms(3));
        // Nothing answered from 10 ms to 30 ms: a stall.
        t.record(ms(31), ms(25));
        t.finish();
        let points = t.points();
        assert_eq!(points.len(), 2);
        assert_eq!((points[0].at, points[0].writes), (ms(0), 2));
        assert_eq!((points[0].p50, points[0].max), (ms(1), ms(3)));
        assert_eq!((points[1].at, points[1].p99), (ms(30), ms(25)));
    }
}
