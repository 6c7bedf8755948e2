//! What a run does ([`Workload`], [`Until`]) and how far it got
//! ([`Progress`]).

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

/// When a closed loop stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// After this many writes (ids `0..n`).
    Writes(u64),
    /// When a writer finds this much time gone since the start.
    Deadline(Duration),
}

/// One configuration of the closed loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Workload {
    /// Writers, each awaiting its reply before its next insert.
    pub in_flight: usize,
    /// When to stop.
    pub until: Until,
    /// Keep a [`Timeline`](crate::Timeline) with buckets this wide (`None`: do not).
    pub timeline: Option<Duration>,
}

impl Workload {
    /// `in_flight` writers (at least 1) until `until`, no timeline.
    #[must_use]
    pub fn new(in_flight: usize, until: Until) -> Self {
        Self {
            in_flight: in_flight.max(1),
            until,
            timeline: None,
        }
    }

    /// Keeps the latency over time in buckets `bucket` wide (at least 1 ms).
    #[must_use]
    pub fn timeline(mut self, bucket: Duration) -> Self {
        self.timeline = Some(bucket.max(Duration::from_millis(1)));
        self
    }
}

/// Writes acknowledged so far in the running loop: a cheap shared counter
/// for a progress display on the same thread.
#[derive(Debug, Clone, Default)]
pub struct Progress(Rc<Cell<u64>>);

impl Progress {
    /// Writes acknowledged since the loop started.
    #[must_use]
    pub fn writes(&self) -> u64 {
        self.0.get()
    }

    pub(crate) fn reset(&self) {
        self.0.set(0);
    }

    pub(crate) fn add(&self) {
        self.0.set(self.0.get() + 1);
    }
}
