use std::time::Duration;

use walguard_actors::messages::{GetLoopState, StartLoop};
use walguard_actors::{Placement, WalGuard};

use crate::common::{create_table, insert, settings, start_here};

const MINUTE: Duration = Duration::from_secs(60);

#[actix_rt::test]
async fn ten_virtual_minutes_give_exactly_ten_passive_checkpoints() {
    tokio::time::pause();
    let dir = tempfile::tempdir().unwrap();
    let guard = start_here(settings(dir.path(), MINUTE)).await;
    guard.start_checkpoint_loop();

    let wall = std::time::Instant::now();
    for i in 0..10 {
        guard.db().execute(insert(i)).await.unwrap();
        tokio::time::sleep(MINUTE).await;
    }
    // Ticks land at 60 s, 120 s, ... 600 s; step just past the last one.
    tokio::time::sleep(Duration::from_millis(1)).await;
    let report = guard.report().await.unwrap();

    assert_eq!(report.counts.total, 10, "{report:?}");
    assert_eq!(report.counts.completed, 10);
    assert_eq!(report.counts.skipped, 0);
    let last = report.last_checkpoint.expect("a checkpoint ran");
    assert_eq!(last.mode(), walguard::CheckpointMode::Passive);
    assert_eq!(last.reason(), walguard::CheckpointReason::Interval);
    // A hang guard, not a speed test: ten real minutes would be 600 s.
    assert!(
        wall.elapsed() < Duration::from_secs(30),
        "{:?}",
        wall.elapsed()
    );
    guard.shutdown().await.unwrap();
}

#[actix_rt::test]
async fn building_the_system_starts_no_timer() {
    tokio::time::pause();
    let dir = tempfile::tempdir().unwrap();
    let guard = start_here(settings(dir.path(), MINUTE)).await;
    tokio::time::sleep(10 * MINUTE).await;
    let state = guard.checkpoint_actor().send(GetLoopState).await.unwrap();
    assert!(!state.enabled && !state.armed);
    assert_eq!(guard.report().await.unwrap().counts.total, 0);

    guard.start_checkpoint_loop();
    guard.start_checkpoint_loop(); // idempotent: still one timer
    tokio::time::sleep(2 * MINUTE + Duration::from_millis(1)).await;
    assert_eq!(guard.report().await.unwrap().counts.total, 2);
    guard.shutdown().await.unwrap();
}

#[actix_rt::test]
async fn checkpoint_enabled_setting_starts_the_loop() {
    tokio::time::pause();
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), Duration::from_secs(5));
    s.checkpoint.enabled = true;
    let guard = start_here(s).await;
    tokio::time::sleep(Duration::from_secs(30) + Duration::from_millis(1)).await;
    assert_eq!(guard.report().await.unwrap().counts.total, 6);
    guard.shutdown().await.unwrap();
}

/// A stall (the runtime did not run for five intervals: a suspended
/// machine, a blocked thread) makes `run_interval` fire the missed ticks
/// back to back. Exactly one checkpoint runs; the rest are skipped.
#[actix_rt::test]
async fn a_stalled_clock_gives_no_burst_of_checkpoints() {
    tokio::time::pause();
    let dir = tempfile::tempdir().unwrap();
    let guard = start_here(settings(dir.path(), MINUTE)).await;
    // Await the start, so the timer is armed before the clock jumps.
    guard.checkpoint_actor().send(StartLoop).await.unwrap();

    tokio::time::advance(5 * MINUTE).await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    let report = guard.report().await.unwrap();
    assert_eq!(report.counts.total, 1, "{report:?}");
    assert_eq!(report.counts.skipped, 4, "{report:?}");

    // The schedule goes on normally afterwards.
    tokio::time::sleep(MINUTE).await;
    let report = guard.report().await.unwrap();
    assert_eq!(report.counts.total, 2, "{report:?}");
    guard.shutdown().await.unwrap();
}

/// A checkpoint that takes longer than an interval (here `DbActor` is
/// blocked on its own thread) is never overlapped: the ticks that find it in
/// flight are skipped, not queued behind it.
#[actix_rt::test]
async fn a_checkpoint_in_flight_is_never_overlapped_or_queued() {
    tokio::time::pause();
    let dir = tempfile::tempdir().unwrap();
    let guard = WalGuard::builder(settings(dir.path(), MINUTE))
        .db_placement(Placement::OwnArbiter)
        .start()
        .unwrap();
    create_table(&guard).await;
    guard.start_checkpoint_loop();

    // Block DbActor until we open the gate.
    let (gate, wait) = std::sync::mpsc::channel::<()>();
    let db = guard.db().clone();
    let blocked = actix_rt::spawn(async move {
        db.call(move |_| {
            let _ = wait.recv();
            Ok(())
        })
        .await
    });

    // Ticks at 60..300 s: the first sends a checkpoint (queued behind the
    // blocked call), the other four find it in flight.
    tokio::time::sleep(5 * MINUTE + Duration::from_secs(30)).await;
    let state = guard.checkpoint_actor().send(GetLoopState).await.unwrap();
    assert!(state.in_flight);
    guard.stop_checkpoint_loop();
    let _ = guard.checkpoint_actor().send(GetLoopState).await.unwrap();

    gate.send(()).unwrap();
    blocked.await.unwrap().unwrap();
    let _ = guard.db().durability().await.unwrap(); // behind the checkpoint
    let report = guard.report().await.unwrap();
    assert_eq!(report.counts.total, 1, "{report:?}");
    assert_eq!(report.counts.skipped, 4, "{report:?}");
    guard.shutdown().await.unwrap();
}
