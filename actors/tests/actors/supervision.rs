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
