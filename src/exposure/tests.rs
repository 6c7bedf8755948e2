//! The tracker's unit tests: exposure, starvation episodes and their causes.

use std::time::Instant;

use super::*;
use crate::checkpoint::CheckpointReport;

fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Healthy: a checkpoint catches up every interval, so the age never
/// passes one interval plus the observation period, and nothing warns.
#[test]
fn healthy_checkpoints_keep_exposure_under_one_interval() {
    let t0 = Instant::now();
    let mut tracker = ExposureTracker::new(s(10), t0);
    let mut commits = 0;
    let mut durable = (0, None);
    for second in 1..=120u64 {
        commits += 5;
        if second % 10 == 0 {
            // The checkpoint made everything before it durable.
            durable = (commits, Some(t0 + s(second)));
            commits += 1;
        }
        let event = tracker.observe_counts(t0 + s(second), commits, durable.0, durable.1);
        assert_eq!(event, None, "at {second}s");
        assert!(tracker.exposure().age() <= s(10), "at {second}s");
    }
    assert_eq!(tracker.episodes(), 0);
}

/// Nothing written: nothing exposed, however old the last checkpoint.
#[test]
fn idle_store_is_never_exposed() {
    let t0 = Instant::now();
    let mut tracker = ExposureTracker::new(s(1), t0);
    assert_eq!(tracker.observe_counts(t0 + s(3600), 0, 0, None), None);
    assert!(tracker.exposure().is_clear());
    assert_eq!(tracker.exposure().age(), Duration::ZERO);
}

/// The age counts from the last observation that found nothing exposed,
/// not from an old durable point: one write after a long idle spell must
/// not look like starvation.
#[test]
fn age_counts_from_the_last_clean_observation() {
    let t0 = Instant::now();
    let mut tracker = ExposureTracker::new(s(10), t0);
    tracker.observe_counts(t0 + s(100), 3, 3, Some(t0 + s(5)));
    assert_eq!(tracker.exposure().age(), Duration::ZERO);
    // One commit, seen one second later.
    assert_eq!(
        tracker.observe_counts(t0 + s(101), 4, 3, Some(t0 + s(5))),
        None
    );
    assert_eq!(tracker.exposure().age(), s(1));
    assert_eq!(tracker.exposure().commits(), 1);
    assert_eq!(tracker.exposure().durable_commits(), 3);
    assert_eq!(tracker.exposure().since_durable(), Some(s(96)));
}

/// A reader pins the WAL: partial checkpoints never move the durable
/// point. One warning when the age passes two intervals, none after, one
/// recovery when a checkpoint catches up, and a second episode warns
/// again.
#[test]
fn starvation_warns_once_per_episode() {
    let t0 = Instant::now();
    let mut tracker = ExposureTracker::new(ms(500), t0);
    let mut events = Vec::new();
    let mut commits = 0;
    let mut durable = (0, None);
    for tick in 1..=60u64 {
        let now = t0 + ms(100 * tick);
        commits += 2;
        // The reader lets go at tick 30: the next checkpoint catches up.
        if tick == 31 {
            durable = (commits - 1, Some(t0 + ms(100 * tick - 10)));
        }
        if let Some(e) = tracker.observe_counts(now, commits, durable.0, durable.1) {
            events.push((tick, e));
        }
    }
    let ticks: Vec<u64> = events.iter().map(|(t, _)| *t).collect();
    // Past 1 s at tick 11; recovered at 31; starving again once 1 s has
    // passed since the new clean point (3.09 s), i.e. at tick 41.
    assert_eq!(ticks, vec![11, 31, 41]);
    assert!(
        matches!(events[0].1, ExposureEvent::Starved { exposure: e, .. } if e.commits() == 22 && e.age() == ms(1100))
    );
    assert!(matches!(events[1].1, ExposureEvent::Recovered { lasted, .. } if lasted == s(2)));
    assert!(matches!(events[2].1, ExposureEvent::Starved { .. }));
    assert_eq!(tracker.episodes(), 2);
    assert!(tracker.is_starving());
}

/// The warning names what the checkpoints since the durable point
/// show: a failure (a full disk) wins over busy, busy over partial;
/// with none seen it says no checkpoint ran. A completed checkpoint
/// starts over.
#[test]
fn starvation_names_its_cause() {
    use crate::{CheckpointMode, CheckpointReason};
    let report = |row: (bool, i64, i64)| {
        CheckpointReport::from_row(
            CheckpointMode::Passive,
            CheckpointReason::Interval,
            row,
            ms(1),
        )
    };
    let full = std::io::Error::other("database or disk is full");
    let failed = CheckpointReport::failed(
        CheckpointMode::Passive,
        CheckpointReason::Interval,
        ms(1),
        &full,
    );
    let t0 = Instant::now();
    let starve = |notes: &[&CheckpointReport]| {
        let mut tracker = ExposureTracker::new(ms(500), t0);
        for note in notes {
            tracker.note_checkpoint(note);
        }
        match tracker.observe_counts(t0 + s(2), 5, 0, None) {
            Some(ExposureEvent::Starved { cause, .. }) => cause,
            other => panic!("{other:?}"),
        }
    };
    let partial = report((false, 10, 4));
    let busy = report((true, -1, -1));
    let completed = report((false, 10, 10));
    assert_eq!(starve(&[]), StarvationCause::NoCheckpoint);
    assert_eq!(
        starve(&[&partial, &partial]),
        StarvationCause::ReaderPinning
    );
    assert_eq!(starve(&[&partial, &busy, &busy]), StarvationCause::Busy);
    let cause = starve(&[&partial, &failed, &busy]);
    assert!(
        matches!(&cause, StarvationCause::Failing { error } if error.contains("disk is full")),
        "{cause:?}"
    );
    assert!(!cause.to_string().contains("pinning"), "{cause}");
    assert_eq!(
        starve(&[&failed, &completed, &partial]),
        StarvationCause::ReaderPinning
    );
}

/// Exactly at the threshold is not past it.
#[test]
fn threshold_is_exclusive() {
    let t0 = Instant::now();
    let mut tracker = ExposureTracker::new(s(1), t0);
    assert_eq!(tracker.threshold(), s(2));
    assert_eq!(tracker.observe_counts(t0 + s(2), 1, 0, None), None);
    assert!(
        tracker
            .observe_counts(t0 + s(2) + ms(1), 1, 0, None)
            .is_some()
    );
}

/// Under `synchronous=FULL` every commit is durable at once.
#[test]
fn full_sync_is_never_exposed() {
    let t0 = Instant::now();
    let mut tracker = ExposureTracker::new(s(1), t0);
    for second in 1..=10 {
        let now = t0 + s(second);
        assert_eq!(tracker.observe_counts(now, second, second, Some(now)), None);
        assert!(tracker.exposure().is_clear());
    }
}

/// A durable point stamped after the observation instant (clocks read in
/// a different order) never makes the age negative or the clean point
/// jump ahead of now.
#[test]
fn durable_point_after_now_is_clamped() {
    let t0 = Instant::now();
    let mut tracker = ExposureTracker::new(s(1), t0);
    tracker.observe_counts(t0 + s(1), 5, 2, Some(t0 + s(2)));
    assert_eq!(tracker.exposure().age(), Duration::ZERO);
    assert_eq!(tracker.exposure().since_durable(), Some(Duration::ZERO));
    tracker.observe_counts(t0 + s(3), 6, 2, Some(t0 + s(2)));
    assert_eq!(tracker.exposure().age(), s(1));
}
