//! The exposure beside Litestream: Litestream checkpoints on walguard's
//! interval, so the oldest exposed commit stays young and the starvation
//! warning stays quiet.

use super::*;

/// The oldest exposed commit's age, over a run of mode `exposure`, and
/// whether the starvation warning fired.
fn exposure_run(
    s3: &S3,
    name: &str,
    checkpoint_yaml: &str,
    outside: bool,
) -> (u128, bool, Vec<String>) {
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("engine.db");
    let config = config(work.path(), &db, &s3.endpoint(), name, "local");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(checkpoint_yaml);
    // An outside Litestream, on its own default config: walguard hands it
    // nothing.
    let _outside = outside.then(|| {
        let socket = work.path().join("outside.sock");
        Connection::open(&db)
            .unwrap()
            .execute_batch(
                "PRAGMA journal_mode=WAL; CREATE TABLE t (seq INTEGER PRIMARY KEY, pad BLOB);
                 CREATE TABLE t2 (seq INTEGER PRIMARY KEY, pad BLOB)",
            )
            .unwrap();
        text = text.replacen(
            "replication:\n",
            &format!("replication:\n  socket: {}\n", socket.display()),
            1,
        );
        OutsideLitestream::start(work.path(), &db, &socket, s3, name)
    });
    std::fs::write(&config, text).unwrap();
    let lines = run_child(&config, "exposure", SECRET, None);
    let ages: Vec<u128> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("exposure "))
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect();
    assert!(ages.len() > 20, "the watch was not seen: {lines:?}");
    let starving = lines
        .iter()
        .any(|l| l.starts_with("exposure ") && l.ends_with(" 1"));
    assert!(
        lines
            .iter()
            .any(|l| l == "report writes 500 replicated 500"),
        "{lines:?}"
    );
    (ages.into_iter().max().unwrap_or(0), starving, lines)
}

/// Bug: beside Litestream, walguard warned "no checkpoint has caught up"
/// whenever `checkpoint.interval` was short next to Litestream's own
/// one-minute checkpoint rhythm, though nothing was wrong. Handing the
/// checkpoints to Litestream now hands it walguard's policy too
/// (`checkpoint-interval`, `min-checkpoint-page-count`), so the exposure to
/// a power loss keeps its bound of about one interval, and the warning
/// stays a true alarm. The negative control runs the same writes beside a
/// Litestream on its own default config (an outside one, given by its
/// socket), to which walguard hands nothing: it leaves the WAL alone for
/// the whole run (its own interval is one minute), and the exposure passes
/// two intervals.
#[test]
fn litestream_checkpoints_on_walguards_interval() {
    require_replication_tools();
    let s3 = S3::start();
    // 500 writes at 200/s: 2.5 s, five intervals; about 500 frames, under
    // the size threshold, so only the interval can checkpoint.
    let handed = "checkpoint:\n  enabled: true\n  interval: 500ms\n  size_threshold_frames: 5000\n";
    let (handed_age, starving, lines) = exposure_run(&s3, "handed", handed, false);
    assert!(!starving, "starvation reported: {lines:?}");
    assert!(
        handed_age < 1000,
        "exposure reached {handed_age} ms, past two intervals (1000 ms): {lines:?}"
    );

    let (max_age, starving, lines) = exposure_run(&s3, "not-handed", handed, true);
    assert!(
        starving && max_age >= 1000,
        "negative control: with no interval handed over, Litestream (1 min) \
         should have left the exposure past two intervals: {max_age} ms, {lines:?}"
    );
    println!("exposure at most {handed_age} ms handed over, {max_age} ms not handed over");
}
