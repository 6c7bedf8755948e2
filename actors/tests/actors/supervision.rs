use std::time::Duration;

use walguard_actors::messages::{GetLoopState, InjectFault};

use crate::common::{insert, settings, start_here};

const MINUTE: Duration = Duration::from_secs(60);

#[actix_rt::test]
async fn a_fault_restarts_the_actor_and_the_interval_resumes_once() {
    tokio::time::pause();
    let dir = tempfile::tempdir().unwrap();
    let guard = start_here(settings(dir.path(), MINUTE)).await;
    guard.start_checkpoint_loop();

    tokio::time::sleep(Duration::from_secs(90)).await; // one tick, at 60 s
    guard
        .checkpoint_actor()
        .send(InjectFault("test".into()))
        .await
        .unwrap();
    // Restarted at 90 s, on the same schedule: ticks at 120, 180, ... 600 s.
    tokio::time::sleep(Duration::from_secs(510) + Duration::from_millis(1)).await;

    let report = guard.report().await.unwrap();
    // A doubled timer would give 18 here; a timer started again from the
    // restart (150, 210, ... 570 s) would give 9: one tick lost.
    assert_eq!(report.counts.total, 1 + 9, "{report:?}");
    assert_eq!(report.counts.restarts, 1);
    let state = guard.checkpoint_actor().send(GetLoopState).await.unwrap();
    assert!(state.enabled && state.armed && !state.in_flight);
    guard.shutdown().await.unwrap();
}

#[actix_rt::test]
async fn counts_add_up_over_a_hundred_faults() {
    tokio::time::pause();
    let dir = tempfile::tempdir().unwrap();
    let guard = start_here(settings(dir.path(), MINUTE)).await;
    guard.start_checkpoint_loop();
    for i in 0..100 {
        guard.db().execute(insert(i)).await.unwrap();
        // Each round: a fault 61 s after the last; the schedule keeps its
        // phase across every restart, so a tick still comes every minute.
        tokio::time::sleep(MINUTE + Duration::from_secs(1)).await;
        guard
            .checkpoint_actor()
            .send(InjectFault(format!("drill {i}")))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
    let report = guard.report().await.unwrap();
    assert_eq!(report.counts.restarts, 100);
    // Ticks at 60, 120, ... 6060 s: 101 of them by 6100 s.
    assert_eq!(report.counts.total, 101, "{report:?}");
    assert_eq!(report.counts.completed, 101);
    assert_eq!(report.counts.skipped, 0);
    guard.shutdown().await.unwrap();
}

/// `DbActor` answering with a failed checkpoint (here the database file was
/// deleted behind its back) is a fault: the checkpoint actor
/// stops, is restarted, and the failure is counted.
#[cfg_attr(
    windows,
    ignore = "deleting an open database is a sharing violation on Windows; the failure is made by deleting the file"
)]
#[actix_rt::test]
async fn a_failed_checkpoint_from_db_actor_restarts_the_checkpoint_actor() {
    tokio::time::pause();
    let dir = tempfile::tempdir().unwrap();
    let guard = start_here(settings(dir.path(), MINUTE)).await;
    // The file is deleted behind its back (switching it out of WAL mode, as
    // this test did, is refused and set back since issue 21).
    std::fs::remove_file(dir.path().join("state.db")).unwrap();
    guard.start_checkpoint_loop();
    tokio::time::sleep(MINUTE + Duration::from_millis(1)).await;

    let report = guard.report().await.unwrap();
    assert_eq!(report.counts.failed, 1, "{report:?}");
    assert_eq!(report.counts.restarts, 1, "{report:?}");
    let state = guard.checkpoint_actor().send(GetLoopState).await.unwrap();
    assert!(
        state.enabled && state.armed,
        "the loop resumed after the restart"
    );
    guard.shutdown().await.unwrap();
}

/// Records when each interval checkpoint's report arrives (on the paused
/// clock, the instant its tick fired: the checkpoint takes no virtual
/// time).
struct TickRecorder(std::rc::Rc<std::cell::RefCell<Vec<tokio::time::Instant>>>);

impl actix::Actor for TickRecorder {
    type Context = actix::Context<Self>;
}

impl actix::Handler<walguard_actors::messages::CheckpointDone> for TickRecorder {
    type Result = ();

    fn handle(&mut self, msg: walguard_actors::messages::CheckpointDone, _: &mut Self::Context) {
        if msg.0.reason() == walguard::CheckpointReason::Interval {
            self.0.borrow_mut().push(tokio::time::Instant::now());
        }
    }
}

/// The instants of the interval ticks of a supervised checkpoint actor
/// (interval 60 s) restarted by a fault at `fault_at` after it started,
/// until `until`; `old_schedule` plants the bug this pins (the loop
/// started again from the first tick after the restart).
async fn ticks_across_a_restart(
    fault_at: Duration,
    until: Duration,
    old_schedule: bool,
) -> (tokio::time::Instant, Vec<tokio::time::Instant>) {
    use actix::{Actor as _, Supervisor};
    use walguard_actors::{CheckpointActor, DbActor, MetricsActor};
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path(), MINUTE);
    let store = walguard::Store::open(&settings.database).unwrap();
    let ticks = std::rc::Rc::default();
    let recorder = TickRecorder(std::rc::Rc::clone(&ticks)).start();
    let db = DbActor::new(store, Some(recorder.recipient())).spawn();
    let metrics = MetricsActor::new(16).start();
    let start = tokio::time::Instant::now();
    let checkpoint = Supervisor::start(move |_| {
        let actor = CheckpointActor::new(db, metrics, MINUTE).enabled(true);
        #[cfg(feature = "testing")]
        let actor = if old_schedule {
            actor.restart_schedule_from_first_tick_for_tests()
        } else {
            actor
        };
        #[cfg(not(feature = "testing"))]
        assert!(!old_schedule, "the old schedule needs feature testing");
        actor
    });
    tokio::time::sleep_until(start + fault_at).await;
    checkpoint.send(InjectFault("test".into())).await.unwrap();
    tokio::time::sleep_until(start + until).await;
    let ticks = ticks.borrow().clone();
    (start, ticks)
}

/// Issue 21 item 8: after a restart, ticks keep the original schedule:
/// tick k fires within the timer wheel's millisecond after `start + k *
/// interval` (tokio rounds a deadline up to its next millisecond), never
/// later, whether the fault comes on a millisecond boundary, off it, or a
/// nanosecond before a tick; the clock starts off the wheel's grid (500
/// µs). Before the fix the loop, registered again from the moment its
/// first tick after the restart fired, ran 1 ms later ever after (180.002
/// s for 180 s). Negative control: the same run with that old
/// re-registration (`restart_schedule_from_first_tick_for_tests`, feature
/// `testing`) has a tick 1 ms or more late.
#[actix_rt::test]
async fn ticks_after_a_restart_keep_the_original_schedule() {
    const WHEEL: Duration = Duration::from_millis(1);
    tokio::time::pause();
    let late = |start: tokio::time::Instant, ticks: &[tokio::time::Instant]| -> Vec<Duration> {
        ticks
            .iter()
            .zip(1u32..)
            .map(|(t, k)| t.saturating_duration_since(start + MINUTE * k))
            .collect()
    };
    let until = Duration::from_secs(301);
    for fault_at in [
        Duration::from_secs(90),
        Duration::from_secs(90) + Duration::from_micros(500),
        Duration::from_secs(119) + Duration::from_nanos(999_999_999),
    ] {
        tokio::time::advance(Duration::from_micros(500)).await;
        let (start, ticks) = ticks_across_a_restart(fault_at, until, false).await;
        assert_eq!(ticks.len(), 5, "fault at {fault_at:?}: {ticks:?}");
        let late = late(start, &ticks);
        eprintln!("fault at {fault_at:?}: late by {late:?}");
        assert!(
            ticks
                .iter()
                .zip(1u32..)
                .all(|(t, k)| *t >= start + MINUTE * k)
                && late.iter().all(|d| *d <= WHEEL),
            "fault at {fault_at:?}: late by {late:?}"
        );
    }
    // The negative control (its hook needs feature `testing`).
    if !cfg!(feature = "testing") {
        return;
    }
    tokio::time::advance(Duration::from_micros(500)).await;
    let (start, ticks) = ticks_across_a_restart(Duration::from_secs(90), until, true).await;
    let late = late(start, &ticks);
    eprintln!("old schedule: late by {late:?}");
    assert!(
        late.iter().any(|d| *d > WHEEL),
        "the old schedule stayed on time: late by {late:?}"
    );
}
