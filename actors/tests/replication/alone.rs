//! Litestream killed alone (SIGKILL of the Litestream walguard supervises,
//! walguard left running), then a machine loss.
//!
//! Failure modelled: a **crash of Litestream** (OOM kill, a bug), then
//! later a **machine loss**. The outage is held open for a known time by
//! a gate: `replication.litestream_binary` is a wrapper script that runs
//! the real `litestream` unless a gate file exists; while it does, a
//! start hangs for `HANG` without opening its socket, then fails, so
//! walguard's restarts fail (and back off) while the test keeps the gate,
//! and a restart that waited for the socket would block the actor system.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{
    KEY, RATE_PER_S, Running, S3, SECRET, SYNC_PERIOD, check_loss, child_with, restore, sigkill,
};

/// `checkpoint.size_threshold_frames` here: while walguard owns
/// checkpointing, the WAL stays within about this many frames.
const SIZE_THRESHOLD_FRAMES: u64 = 64;

/// What the WAL may hold beyond the threshold while walguard owns
/// checkpointing: the commit that crossed it (a page split writes a few
/// frames) and the watch's sampling.
const WAL_SLACK_FRAMES: u64 = 64;

/// How long the test keeps the gate up: past the first restart (1 s
/// after the kill), which hangs for `HANG_S` and fails; the next one, 2 s
/// later, finds the gate gone.
const OUTAGE: Duration = Duration::from_millis(3500);

/// How long a start hangs (no control socket) while the gate is up.
const HANG_S: u32 = 2;

/// The longest the child may go without printing while its Litestream
/// restarts: it prints every 20 ms from the system arbiter, where the
/// replication actor runs, so a restart that blocked the arbiter until
/// the socket opened (or `HANG_S` passed) would show here.
const MAX_QUIET: Duration = Duration::from_secs(1);

/// `replication.max_lag` here: above the lag of normal running (about one
/// `SYNC_PERIOD` plus a sync), well under the outage.
const MAX_LAG_MS: u64 = 1500;

fn wrapper(dir: &Path, gate: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join("litestream-gated");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nif [ \"$1\" = replicate ] && [ -e '{}' ]; then sleep {HANG_S}; echo 'kept down by the test' >&2; exit 1; fi\nexec litestream \"$@\"\n",
            gate.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
// One scenario, read top to bottom: kill, outage, return, machine loss.
#[allow(clippy::too_many_lines)]
fn litestream_killed_alone_walguard_serves_bounds_the_wal_and_replication_resumes() {
    super::require_replication_tools();
    let s3 = S3::start();
    let work = tempfile::tempdir().unwrap();
    let machine = work.path().join("machine");
    std::fs::create_dir(&machine).unwrap();
    let db = machine.join("engine.db");
    let gate = work.path().join("litestream-down");
    let binary = wrapper(work.path(), &gate);
    let config = work.path().join("alone.yaml");
    std::fs::write(
        &config,
        format!(
            "database:\n  path: {}\ncheckpoint:\n  interval: 250ms\n  size_threshold_frames: {SIZE_THRESHOLD_FRAMES}\nreplication:\n  mode: litestream\n  url: s3://bucket/alone\n  endpoint: {}\n  sync_period: {}ms\n  max_lag: {MAX_LAG_MS}ms\n  litestream_binary: {}\n",
            db.display(),
            s3.endpoint(),
            SYNC_PERIOD.as_millis(),
            binary.display()
        ),
    )
    .unwrap();
    let log = work.path().join("child.log");
    let mut run = Running::new(child_with(
        &config,
        "alone",
        SECRET,
        None,
        &[("AWS_ACCESS_KEY_ID", KEY)],
        Some(&log),
    ));

    // Replicating, Litestream owning the checkpoints.
    run.until(Duration::from_secs(20), "replication", |r| {
        r.ls_pid.is_some() && r.owner.as_deref() == Some("litestream") && r.replicated >= 100
    });
    let first = run.ls_pid.unwrap();

    // Litestream dies alone, and stays down for OUTAGE.
    std::fs::write(&gate, "").unwrap();
    sigkill(first);
    let killed = Instant::now();
    run.reset_quiet();
    let acked_at_kill = run.last_acked();
    run.until(
        Duration::from_secs(5),
        "walguard to take checkpoints back",
        |r| r.owner.as_deref() == Some("walguard"),
    );
    let mut wal_max = 0;
    // From walguard's first checkpoint of the outage (the WAL starts over)
    // on, the WAL stays within the size threshold.
    let (mut previous, mut restarted) = (None, false);
    let mut track = |wal: Option<u64>, max: &mut u64| {
        if let Some(frames) = wal {
            restarted |= previous.is_some_and(|p| frames < p);
            previous = Some(frames);
            if restarted {
                *max = (*max).max(frames);
            }
        }
    };
    run.until(OUTAGE + Duration::from_secs(1), "the outage", |r| {
        track(r.wal, &mut wal_max);
        killed.elapsed() >= OUTAGE
    });
    std::fs::remove_file(&gate).unwrap();
    let acked_at_return = run.last_acked();

    // Litestream returns: walguard restarts it, hands the checkpoints
    // back, and the replicated point moves past the outage.
    run.until(Duration::from_secs(15), "replication to resume", |r| {
        if r.owner.as_deref() == Some("walguard") {
            track(r.wal, &mut wal_max);
        }
        r.ls_pid.is_some_and(|p| p != first)
            && r.owner.as_deref() == Some("litestream")
            && r.replicated > acked_at_return
    });
    assert!(
        run.max_quiet < MAX_QUIET,
        "the child went quiet for {:?} while its Litestream restarted: the restart blocked the system arbiter",
        run.max_quiet
    );
    let served = acked_at_return - acked_at_kill;
    assert!(
        served as f64 >= RATE_PER_S as f64 * OUTAGE.as_secs_f64() * 0.5,
        "walguard served only {served} writes during a {OUTAGE:?} outage"
    );
    assert!(run.failed.is_empty(), "writes failed: {:?}", run.failed);
    assert!(
        restarted,
        "walguard's checkpoints never started the WAL over"
    );
    let wal_bound = SIZE_THRESHOLD_FRAMES + WAL_SLACK_FRAMES;
    assert!(
        wal_max <= wal_bound,
        "the WAL reached {wal_max} frames while walguard owned checkpointing (bound {wal_bound})"
    );
    // The harness can fail: without walguard's checkpoints the outage's
    // commits (a frame each at least) would have passed the bound twice.
    assert!(
        served > 2 * wal_bound,
        "the outage wrote too little ({served} commits) to test the WAL bound"
    );

    // A later machine loss still keeps its bound.
    let later = run.last_acked();
    run.until(Duration::from_secs(10), "more replication", |r| {
        r.replicated > later
    });
    run.lose_machine();
    std::fs::rename(&machine, work.path().join("lost")).unwrap();
    let out = work.path().join("restored.db");
    restore(&config, &out);
    let lost = check_loss(&run, &out);

    // The switches and the lag episode, as logged.
    let text = std::fs::read_to_string(&log).unwrap();
    let count = |needle: &str| text.matches(needle).count();
    for needle in [
        "walguard takes checkpointing back (litestream exited)",
        "litestream restarted",
        "litestream owns checkpointing now (it answers its syncs)",
        "the replica caught up",
    ] {
        assert!(
            count(needle) >= 1,
            "{needle:?} not logged:\n{}",
            replication_lines(&text)
        );
    }
    assert_eq!(
        count("the replica lags more than replication.max_lag"),
        1,
        "one lag warning for the one episode:\n{}",
        replication_lines(&text)
    );
    assert!(!text.contains(SECRET), "the log shows the secret");
    eprintln!(
        "litestream killed alone: {served} writes served during {OUTAGE:?} of gate, the child quiet at most {:?} through the restarts, WAL at most {wal_max} frames (bound {wal_bound}); later machine loss lost {lost} writes",
        run.max_quiet
    );
}

/// The lines of the replication log targets, for a failure message.
fn replication_lines(log: &str) -> String {
    log.lines()
        .filter(|l| l.contains("walguard::replication"))
        .collect::<Vec<_>>()
        .join("\n")
}
