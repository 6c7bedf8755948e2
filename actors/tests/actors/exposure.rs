use std::time::Duration;

use walguard::{CheckpointMode, Settings, Statement};
use walguard_actors::messages::Status;
use walguard_actors::{Placement, WalGuard};

/// The period of the watch in these tests.
const WATCH_PERIOD: Duration = Duration::from_millis(5);

/// Lets the watch look again until its status satisfies `done` (bounded).
/// On the paused clock the sleep passes no real time: the runtime jumps to
/// the watch's next tick.
async fn status_until(guard: &WalGuard, done: impl Fn(&Status) -> bool) -> Status {
    for _ in 0..500 {
        let status = guard.status().await.unwrap();
        if done(&status) {
            return status;
        }
        tokio::time::sleep(WATCH_PERIOD).await;
    }
    panic!("the exposure watch never reached the expected state");
}

/// The watch sees commits become exposed, the WAL grow, and a caught-up
/// checkpoint make everything durable again.
#[actix_rt::test]
async fn the_watch_follows_exposure_and_the_wal() {
    tokio::time::pause();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::for_database(dir.path().join("w.db"));
    // No size-triggered checkpoint: only the manual one below.
    settings.checkpoint.size_threshold_frames = 0;
    settings.database.wal_autocheckpoint = 0;
    let guard = WalGuard::builder(settings)
        .db_placement(Placement::Current)
        .start()
        .unwrap();
    guard.watch_exposure(WATCH_PERIOD);
    let db = guard.db();
    db.execute("CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT)")
        .await
        .unwrap();
    for k in 0..4 {
        db.execute(Statement::new("INSERT INTO kv VALUES (?1, 'x')").bind(k))
            .await
            .unwrap();
    }
    let status = status_until(&guard, |s| s.exposure.is_some_and(|e| e.commits() == 5)).await;
    assert!(status.wal_frames.is_some_and(|f| f > 0), "{status:?}");
    assert!(status.wal_bytes.is_some_and(|b| b > 0), "{status:?}");
    assert!(!status.starving);

    let report = db.checkpoint(CheckpointMode::Passive).await.unwrap();
    assert_eq!(report.outcome().as_str(), "completed");
    let status = status_until(&guard, |s| s.exposure.is_some_and(|e| e.is_clear())).await;
    let exposure = status.exposure.unwrap();
    assert_eq!(exposure.durable_commits(), 5);
    assert_eq!(exposure.age(), Duration::ZERO);

    let report = guard.shutdown().await.unwrap();
    assert_eq!(report.db.writes_acknowledged, 5);
}
