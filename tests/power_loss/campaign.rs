//! Random power cuts over a plain SQLite workload (NORMAL, FULL), and the
//! negative control under OFF.

use super::*;

const CAMPAIGN_TXNS: u64 = 40;
const CHECKPOINT_EVERY_TXNS: u64 = 6;

/// What one run of the campaign workload got acknowledged.
#[derive(Debug, Default)]
struct Acked {
    /// Commits that returned Ok.
    commits: u64,
    /// Commits made before the last checkpoint that fully caught up.
    durable_floor: u64,
}

/// The campaign workload: `CAMPAIGN_TXNS` commits, a PASSIVE checkpoint every
/// few, and a second connection that pins a snapshot for a while (so some
/// checkpoints stop short). Stops at the first error (the power cut).
fn campaign_workload(writer: &Connection, reader: &Connection) -> Acked {
    let mut acked = Acked::default();
    let mut reading = false;
    for txn in 1..=CAMPAIGN_TXNS {
        match txn % 16 {
            5 if !reading => {
                reading = reader.execute_batch("BEGIN").is_ok()
                    && reader
                        .query_row("SELECT count(*) FROM t", [], |row| row.get::<_, i64>(0))
                        .is_ok();
            }
            11 if reading => {
                reading = false;
                if reader.execute_batch("COMMIT").is_err() {
                    return acked;
                }
            }
            _ => {}
        }
        if commit(writer, txn).is_err() {
            return acked;
        }
        acked.commits = txn;
        if txn % CHECKPOINT_EVERY_TXNS == 0 {
            match checkpoint(writer, "PASSIVE") {
                Ok(result) if caught_up(result) => acked.durable_floor = txn,
                Ok(_) => {}
                Err(_) => return acked,
            }
        }
    }
    acked
}

fn dry_run(synchronous: &str) -> TestResult<DryRun> {
    let (_dir, path) = temp_db()?;
    let vfs = PowerLossVfs::register()?;
    let writer = open(&vfs, &path, "NORMAL")?;
    setup(&writer)?;
    writer.pragma_update(None, "synchronous", synchronous)?;
    let reader = open(&vfs, &path, synchronous)?;
    let setup_ops = vfs.io_ops();
    let acked = campaign_workload(&writer, &reader);
    assert_eq!(acked.commits, CAMPAIGN_TXNS);
    Ok(DryRun {
        setup_ops,
        total_ops: vfs.io_ops(),
        checkpoints: vfs
            .checkpoint_op_ranges()
            .into_iter()
            .filter(|r| *r.start() > setup_ops)
            .collect(),
        phase1s: 0,
    })
}

/// One campaign iteration's outcome.
#[derive(Debug)]
struct Iteration {
    seed: u64,
    crash_op: u64,
    in_checkpoint: bool,
    mode: RestoreMode,
    acked: Acked,
    torn_writes: usize,
    result: Result<walguard::testing::Survivors, SurvivorError>,
}

impl Iteration {
    /// The rule every run must keep: integrity, whole transactions, a prefix,
    /// nothing lost before the durable floor (or at all, with `full`), and no
    /// transaction past the one in flight.
    fn violation(&self, full: bool) -> Option<walguard::testing::Violation> {
        let found = match &self.result {
            Ok(found) => found,
            Err(e) => return e.violation().cloned(),
        };
        let floor = if full {
            self.acked.commits
        } else {
            self.acked.durable_floor
        };
        found
            .require_between(rows_through(floor), rows_through(self.acked.commits + 1))
            .err()
    }

    /// A survivor check that could not run: a failure of the harness, not
    /// of what it tests.
    fn harness_error(&self) -> Option<&SurvivorError> {
        self.result
            .as_ref()
            .err()
            .filter(|e| e.violation().is_none())
    }
}

fn campaign_iteration(dry: &DryRun, synchronous: &str, seed: u64) -> TestResult<Iteration> {
    // A third of the crashes aim inside a checkpoint.
    let CrashPoint {
        op: crash_op, mode, ..
    } = CrashPoint::draw(seed, dry.setup_ops, dry.total_ops, &dry.checkpoints);
    let (_dir, path) = temp_db()?;
    let vfs = PowerLossVfs::register()?;
    let writer = open(&vfs, &path, "NORMAL")?;
    setup(&writer)?;
    writer.pragma_update(None, "synchronous", synchronous)?;
    let reader = open(&vfs, &path, synchronous)?;
    assert_eq!(
        vfs.io_ops(),
        dry.setup_ops,
        "the workload must be deterministic"
    );
    vfs.crash_at(crash_op);
    let acked = campaign_workload(&writer, &reader);
    let report = vfs
        .crash_report()
        .ok_or("the crash point was never reached")?;
    drop((reader, writer));
    let restored = vfs.restore_durable_images_with(mode)?;
    Ok(Iteration {
        seed,
        crash_op,
        in_checkpoint: report.in_checkpoint,
        mode,
        acked,
        torn_writes: restored.torn_writes,
        result: check_survivors(&path, AfterCheck::Checkpoint),
    })
}

/// What a campaign saw.
#[derive(Debug, Default)]
struct Summary {
    iterations: u64,
    /// Crashes that landed inside a checkpoint.
    in_checkpoint: u64,
    /// Runs that lost acknowledged commits (allowed above the durable floor).
    lost_acked: u64,
    /// Writes torn by the restore.
    torn_writes: usize,
    violations: Vec<String>,
}

/// Runs `iterations` crash iterations.
fn campaign(synchronous: &str, full: bool, iterations: u64) -> TestResult<Summary> {
    let dry = dry_run(synchronous)?;
    assert!(!dry.checkpoints.is_empty(), "the dry run saw no checkpoint");
    let base = base_seed();
    let mut summary = Summary::default();
    for i in 0..iterations {
        let it = campaign_iteration(&dry, synchronous, base.wrapping_add(i))?;
        summary.iterations += 1;
        summary.in_checkpoint += u64::from(it.in_checkpoint);
        summary.torn_writes += it.torn_writes;
        if it
            .result
            .as_ref()
            .is_ok_and(|found| found.last_request() < it.acked.commits)
        {
            summary.lost_acked += 1;
        }
        let failure = match it.harness_error() {
            Some(e) => Some(format!("harness: {e}")),
            None => it.violation(full).map(|v| format!("{:?}: {v}", v.kind())),
        };
        if let Some(v) = failure {
            summary.violations.push(format!(
                "WALGUARD_SEED={seed}: crash at op {op} of {total} (in checkpoint: {ckpt}), \
                 {mode:?}, acked {acked:?}: {v}",
                seed = it.seed,
                op = it.crash_op,
                total = dry.total_ops,
                ckpt = it.in_checkpoint,
                mode = it.mode,
                acked = it.acked,
            ));
        }
    }
    Ok(summary)
}

/// NORMAL under random power cuts, exact and torn: integrity always holds,
/// survivors are whole transactions in order, and nothing made durable by a
/// fully caught-up checkpoint is lost.
#[test]
fn random_power_loss_campaign_normal() -> TestResult {
    let start = Instant::now();
    let summary = campaign("NORMAL", false, 200)?;
    eprintln!("NORMAL campaign in {:?}: {summary:?}", start.elapsed());
    assert!(
        summary.violations.is_empty(),
        "{}",
        summary.violations.join("\n")
    );
    // The harness must actually exercise the interesting cases.
    assert!(
        summary.in_checkpoint > 0,
        "no crash landed inside a checkpoint"
    );
    assert!(
        summary.lost_acked > 0,
        "NORMAL never lost an unsynced commit"
    );
    assert!(summary.torn_writes > 0, "no write was ever torn");
    Ok(())
}

/// FULL under random power cuts, exact and torn: nothing acknowledged is
/// ever lost.
#[test]
fn random_power_loss_campaign_full() -> TestResult {
    let start = Instant::now();
    let summary = campaign("FULL", true, 100)?;
    eprintln!("FULL campaign in {:?}: {summary:?}", start.elapsed());
    assert!(
        summary.violations.is_empty(),
        "{}",
        summary.violations.join("\n")
    );
    assert!(
        summary.in_checkpoint > 0,
        "no crash landed inside a checkpoint"
    );
    Ok(())
}

/// Negative control: with `synchronous=OFF` nothing is ever synced, so the
/// same campaign must catch both lost commits and a corrupt database within a
/// few iterations. If it could not fail, it would prove nothing.
#[test]
fn negative_control_synchronous_off_is_caught() -> TestResult {
    const MAX_ITERATIONS: u64 = 40;
    let dry = dry_run("OFF")?;
    let base = base_seed();
    let (mut lost, mut corrupt) = (None, None);
    let mut done = 0;
    for i in 0..MAX_ITERATIONS {
        let it = campaign_iteration(&dry, "OFF", base.wrapping_add(i))?;
        done += 1;
        if let Some(e) = it.harness_error() {
            panic!(
                "seed {}: the harness failed, which proves nothing: {e}",
                it.seed
            );
        }
        match it.violation(false) {
            Some(v) if v.kind() == ViolationKind::Corruption => {
                corrupt = corrupt.or(Some(format!("seed {}: {v}", it.seed)));
            }
            Some(v) if v.kind() == ViolationKind::LostAcknowledged => {
                lost = lost.or(Some(format!("seed {}: {v}", it.seed)));
            }
            Some(v) => panic!("seed {}: unexpected kind of violation: {v:?}", it.seed),
            None => {}
        }
        if lost.is_some() && corrupt.is_some() {
            break;
        }
    }
    eprintln!("OFF campaign, {done} iterations: lost: {lost:?}; corrupt: {corrupt:?}");
    assert!(
        lost.is_some(),
        "synchronous=OFF lost nothing durable in {MAX_ITERATIONS} power cuts: \
         the harness cannot fail"
    );
    assert!(
        corrupt.is_some(),
        "synchronous=OFF never corrupted in {MAX_ITERATIONS} power cuts: \
         the harness is blind to corruption"
    );
    Ok(())
}

// --- failed fsync (Linux semantics) -----------------------------------------
