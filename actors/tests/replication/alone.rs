//! Litestream killed alone (SIGKILL of the Litestream walguard supervises,
//! walguard left running), then a machine loss.
//!
//! Failure modelled: a **crash of Litestream** (OOM kill, a bug), then
//! later a **machine loss**. The outage is held open for a seeded time by
//! a gate: `replication.litestream_binary` is a wrapper script that runs
//! the real `litestream` unless a gate file exists; while it does, a
//! start hangs for `HANG_S` without opening its socket, then fails, so
//! walguard's restarts fail (and back off) while the test keeps the gate,
//! and a restart that waited for the socket would block the actor system.
//!
//! The claim: a restore is a transaction-consistent prefix of the
//! acknowledged commits, never shorter than what was reported replicated,
//! whoever checkpointed while Litestream was down. walguard checkpoints
//! during the outage (a 32-frame size threshold, a 100 ms interval), and
//! the replica hold (`src/store/replica_hold.rs`) keeps the WAL from
//! restarting under the frames Litestream has not read. Every write is a
//! transaction over `t` and `t2`.
//!
//! Negative control: the same trial with the hold off
//! (`WALGUARD_TEST_NO_REPLICA_HOLD=1`, feature `testing`) restarts the WAL
//! during the outage, under frames Litestream never read: the condition of
//! the hole measured at `7feb55a` (6 of 8 restores missed 10-31 writes).
//!
//! `WALGUARD_ALONE_TRIALS=50 cargo test -p walguard-actors --all-features
//! --test replication -- alone --nocapture` runs the on-demand campaign and
//! prints its figures.

use std::path::Path;
use std::time::{Duration, Instant};

use rand::{Rng as _, SeedableRng as _};

use super::{KEY, Running, S3, SECRET, SYNC_PERIOD, child_with, restore, sigkill};

/// `checkpoint.size_threshold_frames` here: walguard checkpoints every
/// few writes while Litestream is down.
const SIZE_THRESHOLD_FRAMES: u64 = 32;

/// How long a start hangs (no control socket) while the gate is up.
const HANG_S: u32 = 4;

/// The longest the child may go without printing while its Litestream
/// restarts: it prints every 20 ms from the system arbiter, where the
/// replication actor runs, so a restart that blocked the arbiter until
/// the socket opened (or `HANG_S` passed) would show here.
// 3 s: a loaded machine does not silence the child that long, and an
// arbiter blocked by a restart would be silent for `HANG_S` (4 s) or more.
const MAX_QUIET: Duration = Duration::from_secs(3);

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

/// Trials in a plain `cargo test` (and so in CI).
const DEFAULT_TRIALS: u64 = 2;

/// What one trial saw.
struct Trial {
    /// How often the WAL started over while Litestream was down.
    restarts_in_outage: u32,
    /// The WAL's largest size in frames while Litestream was down.
    wal_max: u64,
    /// Acknowledged, reported replicated, and restored, at the machine loss.
    last_acked: u64,
    replicated: u64,
    restored: Vec<u64>,
    /// Seqs of `t` without their `t2` row or the reverse.
    torn: Vec<u64>,
    outage: Duration,
    max_quiet: Duration,
    log: String,
}

/// One trial: replicate, kill Litestream alone for a seeded outage while
/// walguard writes and checkpoints, let it return, lose the machine,
/// restore.
fn trial(s3: &S3, seed: u64, hold: bool) -> Trial {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let outage = Duration::from_millis(rng.random_range(1500..3500));
    let kill_after: u64 = rng.random_range(50..150);
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
            "database:\n  path: {}\ncheckpoint:\n  interval: 100ms\n  size_threshold_frames: {SIZE_THRESHOLD_FRAMES}\nreplication:\n  mode: litestream\n  url: s3://bucket/alone-{seed}-{hold}\n  endpoint: {}\n  sync_period: {}ms\n  max_lag: {MAX_LAG_MS}ms\n  litestream_binary: {}\n",
            db.display(),
            s3.endpoint(),
            SYNC_PERIOD.as_millis(),
            binary.display()
        ),
    )
    .unwrap();
    let log = work.path().join("child.log");
    let mut env = vec![("AWS_ACCESS_KEY_ID", KEY), (super::CHILD_WRITES_ENV, "txn")];
    if !hold {
        env.push(("WALGUARD_TEST_NO_REPLICA_HOLD", "1"));
    }
    let mut run = Running::new(child_with(&config, "alone", SECRET, None, &env, Some(&log)));

    run.until(Duration::from_secs(20), "replication", |r| {
        r.ls_pid.is_some() && r.owner.as_deref() == Some("litestream") && r.replicated >= kill_after
    });
    let first = run.ls_pid.unwrap();

    // Litestream dies alone, and stays down for the outage.
    std::fs::write(&gate, "").unwrap();
    sigkill(first);
    let killed = Instant::now();
    run.reset_quiet();
    let (mut previous, mut restarts, mut wal_max) = (None::<u64>, 0, 0);
    let mut track = |wal: Option<u64>, restarts: &mut u32, wal_max: &mut u64| {
        if let Some(frames) = wal {
            *restarts += u32::from(previous.is_some_and(|p| frames < p));
            previous = Some(frames);
            *wal_max = (*wal_max).max(frames);
        }
    };
    run.until(outage + Duration::from_secs(1), "the outage", |r| {
        track(r.wal, &mut restarts, &mut wal_max);
        killed.elapsed() >= outage
    });
    std::fs::remove_file(&gate).unwrap();
    let acked_at_return = run.last_acked();

    // Litestream returns and the replicated point moves past the outage.
    // (Its own checkpoints may restart the WAL from here on: it has read
    // every frame by then.)
    run.until(Duration::from_secs(20), "replication to resume", |r| {
        r.ls_pid.is_some_and(|p| p != first)
            && r.owner.as_deref() == Some("litestream")
            && r.replicated > acked_at_return
    });
    assert!(run.failed.is_empty(), "writes failed: {:?}", run.failed);
    run.lose_machine();
    std::fs::rename(&machine, work.path().join("lost")).unwrap();
    let out = work.path().join("restored.db");
    restore(&config, &out);
    let restored = super::survivors(&out);
    let conn = rusqlite::Connection::open(&out).unwrap();
    let mut torn = conn
        .prepare(
            "SELECT seq FROM t WHERE seq NOT IN (SELECT seq FROM t2)
             UNION SELECT seq FROM t2 WHERE seq NOT IN (SELECT seq FROM t)",
        )
        .unwrap();
    let torn = torn
        .query_map([], |r| r.get::<_, i64>(0))
        .unwrap()
        .map(|r| r.unwrap() as u64)
        .collect();
    Trial {
        restarts_in_outage: restarts,
        wal_max,
        last_acked: run.last_acked(),
        replicated: run.replicated,
        restored,
        torn,
        outage,
        max_quiet: run.max_quiet,
        log: std::fs::read_to_string(&log).unwrap(),
    }
}

#[test]
fn litestream_killed_alone_leaves_no_hole_in_the_replica() {
    super::require_replication_tools();
    let s3 = S3::start();
    let trials: u64 = std::env::var("WALGUARD_ALONE_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(DEFAULT_TRIALS);
    let mut losses = Vec::new();
    for seed in 0..trials {
        let t = trial(&s3, seed, true);
        let replay = format!(
            "seed {seed}: replay with WALGUARD_ALONE_TRIALS={} (seeds run from 0)",
            seed + 1
        );
        // Once is Litestream's own doing: killed right after its last
        // checkpoint backfilled every frame (it copies them first), the
        // next write starts the WAL over. Under walguard's checkpoints,
        // never (the negative control restarts it again and again).
        assert!(
            t.restarts_in_outage <= 1,
            "{replay}: the wal started over {} times while litestream was down, under frames it had not read",
            t.restarts_in_outage
        );
        let k = t.restored.len() as u64;
        assert_eq!(
            t.restored,
            (1..=k).collect::<Vec<_>>(),
            "{replay}: the restore has a hole (not a prefix of the acknowledged commits)"
        );
        assert!(
            t.torn.is_empty(),
            "{replay}: transactions torn in the restore: {:?}",
            t.torn
        );
        assert!(
            k >= t.replicated,
            "{replay}: {k} restored, but {} were reported replicated",
            t.replicated
        );
        // One write at a time: the one in flight at the machine loss may
        // be committed and replicated before its sender heard back.
        assert!(
            k <= t.last_acked + 1,
            "{replay}: restored {k}, acknowledged {} (one in flight at most)",
            t.last_acked
        );
        assert!(
            t.max_quiet < MAX_QUIET,
            "{replay}: the child went quiet for {:?} while its Litestream restarted: the restart blocked the system arbiter",
            t.max_quiet
        );
        let count = |needle: &str| t.log.matches(needle).count();
        for needle in [
            "walguard takes checkpointing back (litestream exited)",
            "litestream restarted",
            "litestream owns checkpointing now (it answers its syncs)",
        ] {
            assert!(
                count(needle) >= 1,
                "{replay}: {needle:?} not logged:\n{}",
                replication_lines(&t.log)
            );
        }
        assert!(!t.log.contains(SECRET), "the log shows the secret");
        losses.push(t.last_acked.saturating_sub(k));
        eprintln!(
            "litestream killed alone, seed {seed}: outage {:?}, wal at most {} frames during it ({} restart), {} acknowledged, {} reported replicated, {k} restored (a prefix, no torn transaction), lost at the later machine loss {}",
            t.outage,
            t.wal_max,
            t.restarts_in_outage,
            t.last_acked,
            t.replicated,
            t.last_acked.saturating_sub(k)
        );
    }
    losses.sort_unstable();
    eprintln!(
        "litestream killed alone: {trials} trials, 0 holes, 0 torn transactions; later machine loss lost p50 {} max {} writes",
        losses[losses.len() / 2],
        losses.last().unwrap()
    );
}

/// The negative control: without the hold, walguard's checkpoints during
/// the outage restart the WAL under frames Litestream never read.
#[test]
fn negative_control_without_the_hold_the_wal_restarts_under_litestream() {
    super::require_replication_tools();
    let s3 = S3::start();
    let t = trial(&s3, 1000, false);
    assert!(
        t.restarts_in_outage >= 2,
        "without the hold the wal should start over during the outage (walguard checkpoints every {SIZE_THRESHOLD_FRAMES} frames); the positive test proves nothing otherwise"
    );
    let k = t.restored.len() as u64;
    let hole = t.restored != (1..=k).collect::<Vec<_>>() || !t.torn.is_empty();
    eprintln!(
        "negative control (no replica hold): the wal restarted during the outage; hole in the restore: {hole}, {} restarts",
        t.restarts_in_outage
    );
}

/// The lines of the replication log targets, for a failure message.
fn replication_lines(log: &str) -> String {
    log.lines()
        .filter(|l| l.contains("walguard::replication"))
        .collect::<Vec<_>>()
        .join("\n")
}
