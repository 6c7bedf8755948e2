//! [`CheckpointLog`]: the checkpoints of a run, from their log events.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{FilterFn, Filtered};
use tracing_subscriber::layer::Context;

/// The target of the per-checkpoint event (`CheckpointReport::log`).
const CHECKPOINT_TARGET: &str = "walguard::checkpoint";

/// One checkpoint on a run's timeline.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CheckpointMark {
    /// When it started, since the run started (its log event's arrival
    /// less its elapsed time; may be negative for one that began before
    /// the run, then it is clamped to zero).
    pub at: Duration,
    /// How long it took.
    pub elapsed: Duration,
    /// `interval`, `size`, `shutdown` or `manual`.
    pub reason: String,
    /// `completed`, `partial`, `busy` or `failed`.
    pub outcome: String,
}

#[derive(Debug, Clone)]
struct Seen {
    arrived: Instant,
    elapsed: Duration,
    reason: String,
    outcome: String,
}

/// A `tracing-subscriber` layer that keeps every checkpoint event
/// (target `walguard::checkpoint`) with its arrival time. Clones share one
/// list.
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt as _;
/// use walguard_bench::CheckpointLog;
///
/// let log = CheckpointLog::default();
/// let subscriber = tracing_subscriber::registry().with(log.layer());
/// tracing::subscriber::with_default(subscriber, || {
///     // ... run the system; its checkpoints are kept ...
/// });
/// assert!(log.since(std::time::Instant::now()).is_empty());
/// ```
#[derive(Clone, Default)]
pub struct CheckpointLog {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl fmt::Debug for CheckpointLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointLog")
            .field("events", &self.lock().len())
            .finish()
    }
}

/// The filter of [`CheckpointLog::layer`].
type TargetFilter = FilterFn<fn(&tracing::Metadata<'_>) -> bool>;

impl CheckpointLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Seen>> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// This log as a layer that sees only checkpoint events, whatever the
    /// other layers' filters are (a per-layer filter: it enables nothing
    /// for them).
    #[must_use]
    pub fn layer<S>(&self) -> Filtered<Self, TargetFilter, S>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        let only_checkpoints: fn(&tracing::Metadata<'_>) -> bool =
            |m| m.target() == CHECKPOINT_TARGET;
        self.clone().with_filter(FilterFn::new(only_checkpoints))
    }

    /// Forgets what was seen so far.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The checkpoints that ended after `start`, as marks relative to it.
    #[must_use]
    pub fn since(&self, start: Instant) -> Vec<CheckpointMark> {
        self.lock()
            .iter()
            .filter(|s| s.arrived >= start)
            .map(|s| CheckpointMark {
                at: s.arrived.saturating_duration_since(start + s.elapsed),
                elapsed: s.elapsed,
                reason: s.reason.clone(),
                outcome: s.outcome.clone(),
            })
            .collect()
    }
}

impl<S: tracing::Subscriber> Layer<S> for CheckpointLog {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != CHECKPOINT_TARGET {
            return;
        }
        let arrived = Instant::now();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let (Some(reason), Some(elapsed_ms)) = (fields.reason, fields.elapsed_ms) else {
            return;
        };
        self.lock().push(Seen {
            arrived,
            elapsed: Duration::try_from_secs_f64(elapsed_ms / 1000.0).unwrap_or_default(),
            reason,
            outcome: fields.outcome.unwrap_or_default(),
        });
    }
}

/// The fields of a checkpoint event that a mark needs.
#[derive(Default)]
struct Fields {
    reason: Option<String>,
    outcome: Option<String>,
    elapsed_ms: Option<f64>,
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "elapsed_ms" {
            self.elapsed_ms = Some(value);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "reason" => self.reason = Some(value.to_owned()),
            "outcome" => self.outcome = Some(value.to_owned()),
            _ => {}
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn fmt::Debug) {}
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[test]
    fn keeps_checkpoint_events_with_their_start_and_ignores_the_rest() {
        let log = CheckpointLog::default();
        let start = Instant::now();
        let subscriber = tracing_subscriber::registry().with(log.layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "walguard::db", reason = "size", elapsed_ms = 1.0, "other");
            tracing::info!(
                target: "walguard::checkpoint",
                elapsed_ms = 0.5,
                reason = "interval",
                outcome = "completed",
                "checkpoint"
            );
        });
        let marks = log.since(start);
        assert_eq!(marks.len(), 1, "{marks:?}");
        assert_eq!(marks[0].reason, "interval");
        assert_eq!(marks[0].outcome, "completed");
        assert_eq!(marks[0].elapsed, Duration::from_micros(500));
        log.clear();
        assert!(log.since(start).is_empty());
    }
}
