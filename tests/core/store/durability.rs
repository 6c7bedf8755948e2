//! The durable point under `normal` and `full`, and the close that
//! checkpoints and removes the WAL.

use super::*;

#[test]
fn durability_under_normal_moves_only_on_a_completed_checkpoint() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    put(&mut store, "a", 1);
    put(&mut store, "b", 2);
    let d = store.durability();
    assert_eq!(
        (d.commits(), d.durable_commits(), d.exposed_commits()),
        (3, 0, 3)
    );
    assert_eq!(d.durable_at(), None);

    let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Interval);
    assert_eq!(
        *report.outcome(),
        CheckpointOutcome::Completed,
        "{report:?}"
    );
    let d = store.durability();
    assert_eq!(
        (d.commits(), d.durable_commits(), d.exposed_commits()),
        (3, 3, 0)
    );
    let durable_at = d
        .durable_at()
        .expect("a completed checkpoint sets durable_at");

    // A reader pins its snapshot; later commits cannot all be copied back.
    let reader = pin_reader(&path);
    put(&mut store, "c", 3);
    put(&mut store, "d", 4);
    let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Interval);
    assert_eq!(*report.outcome(), CheckpointOutcome::Partial, "{report:?}");
    assert!(!report.busy(), "PASSIVE never reports busy: {report:?}");
    assert!(
        report.checkpointed_frames() < report.log_frames(),
        "{report:?}"
    );
    let d = store.durability();
    assert_eq!(
        (d.commits(), d.durable_commits(), d.exposed_commits()),
        (5, 3, 2)
    );
    assert_eq!(
        d.durable_at(),
        Some(durable_at),
        "a partial checkpoint moves nothing"
    );

    // The reader ends: the next PASSIVE catches up.
    drop(reader);
    let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Interval);
    assert_eq!(
        *report.outcome(),
        CheckpointOutcome::Completed,
        "{report:?}"
    );
    let d = store.durability();
    assert_eq!(
        (d.commits(), d.durable_commits(), d.exposed_commits()),
        (5, 5, 0)
    );
    assert!(d.durable_at().unwrap() >= durable_at);
}

#[test]
fn durability_under_full_never_exposes_a_commit() {
    let (_dir, path) = temp_db();
    let mut settings = DatabaseSettings::at(&path);
    settings.synchronous = Synchronous::Full;
    let mut store = store_with_kv_using(&settings);
    let d = store.durability();
    assert_eq!((d.commits(), d.exposed_commits()), (1, 0));
    assert!(d.durable_at().is_some());

    let reader = pin_reader(&path);
    for i in 0..5 {
        put(&mut store, &format!("k{i}"), i);
        assert_eq!(store.durability().exposed_commits(), 0);
    }
    store
        .transaction(&[Statement::new("UPDATE kv SET v = v + 1")])
        .unwrap();
    store
        .call(|c| c.execute("DELETE FROM kv WHERE k = 'k0'", []))
        .unwrap();
    let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Interval);
    assert_eq!(*report.outcome(), CheckpointOutcome::Partial, "{report:?}");
    let d = store.durability();
    assert_eq!(
        (d.commits(), d.durable_commits(), d.exposed_commits()),
        (8, 8, 0)
    );
    drop(reader);
}

#[test]
fn close_checkpoints_and_removes_the_wal() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    for i in 0..200 {
        put(&mut store, &format!("k{i:03}"), i);
    }
    let wal = wal_path(&path);
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 0,
        "the rows sit in the WAL"
    );
    store.close().map_err(|(_, e)| e).unwrap();
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "the -wal file must be gone or empty after close"
    );

    let conn = Connection::open(&path).unwrap();
    assert_eq!(integrity(&conn), "ok");
    let (n, sum): (i64, i64) = conn
        .query_row("SELECT count(*), sum(v) FROM kv", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((n, sum), (200, (0..200).sum()));
}
