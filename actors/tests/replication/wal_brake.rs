//! The WAL beside Litestream stays near walguard's own bound under
//! sustained load: the WAL brake (`actors/src/db.rs`, "Beside
//! Litestream"). 16 writers send 20,000 writes as fast as the writer takes
//! them, with `checkpoint.size_threshold_frames` 64 (the brake engages at
//! 128 frames). A `file://` replica, a real Litestream.
//!
//! Failure modelled: none; sustained load. Negative control: the brake off
//! (`WALGUARD_TEST_NO_WAL_BRAKE=1`, feature `testing`): Litestream's own
//! PASSIVE checkpoints run beside the writes and the WAL grows past the
//! bound.

use std::path::Path;

use super::{SECRET, child_with};

/// `checkpoint.size_threshold_frames` here.
const THRESHOLD: u64 = 64;

/// The bound asserted: the brake's threshold (2 × `THRESHOLD`) plus what
/// the commits that cross it add before the brake looks (a group of up to
/// 16 small writes, a page split or two).
const BOUND: u64 = 2 * THRESHOLD + 64;

/// The WAL's largest size in frames over the flood, and the writes
/// acknowledged.
fn flood(brake: bool) -> (u64, u64) {
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("engine.db");
    let config = work.path().join("flood.yaml");
    std::fs::write(
        &config,
        format!(
            "database:\n  path: {}\ncheckpoint:\n  size_threshold_frames: {THRESHOLD}\nreplication:\n  mode: litestream\n  url: file://{}\n  sync_period: 500ms\n",
            db.display(),
            work.path().join("replica").display()
        ),
    )
    .unwrap();
    let env: &[(&str, &str)] = if brake {
        &[]
    } else {
        &[("WALGUARD_TEST_NO_WAL_BRAKE", "1")]
    };
    let out = child_with(&config, "flood", SECRET, None, env, None)
        .wait_with_output()
        .unwrap();
    let lines = String::from_utf8_lossy(&out.stdout);
    let peak = lines
        .lines()
        .filter_map(|l| l.strip_prefix("wal "))
        .filter_map(|n| n.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    let acked = lines.lines().filter(|l| l.starts_with("ack ")).count() as u64;
    assert!(
        lines.contains("report writes 20000"),
        "the flood did not finish: {}",
        lines.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
    );
    let _ = Path::new(&db);
    (peak, acked)
}

#[test]
fn the_wal_stays_near_its_bound_beside_litestream_under_sustained_load() {
    super::require_replication_tools();
    let (peak, acked) = flood(true);
    assert_eq!(acked, 20_000);
    assert!(
        peak <= BOUND,
        "the wal reached {peak} frames beside litestream (bound {BOUND})"
    );
    let (without, _) = flood(false);
    assert!(
        without > BOUND,
        "negative control: without the brake the wal should pass {BOUND} frames under this load, reached {without}; the test above proves nothing otherwise"
    );
    eprintln!(
        "wal beside litestream under a flood: at most {peak} frames with the brake, {without} without (bound {BOUND})"
    );
}
