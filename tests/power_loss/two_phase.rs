//! The two-phase size checkpoint under power cuts: campaigns aimed inside
//! each phase, the negative control, and failures in phase 1.

use super::*;

/// Commits of the two-phase campaign workload.
const TWO_PHASE_TXNS: u64 = 300;
/// Its size threshold, in frames: a two-phase checkpoint every few commits.
const TWO_PHASE_THRESHOLD: u32 = 40;

/// Where a two-phase campaign's power cut landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CutIn {
    /// Phase 1's checkpoint, on its own connection and thread, while the
    /// writer committed.
    Phase1,
    /// The writer's call that ran phase 2 (or waited for phase 1 at the
    /// backstop), holding the checkpoint lock.
    Phase2,
    /// Anywhere else (a commit, outside any checkpoint).
    Elsewhere,
    /// Nowhere: the run ended before the cut came (counted, and bounded
    /// by [`TWO_PHASE_MAX_UNREACHED_PERCENT`]).
    Unreached,
}

/// Most cuts of a two-phase campaign that may never come, in percent: 10.
/// Phase 1 runs beside the writer, so how far it gets, and how much phase 2
/// then copies, differs from run to run: a cut aimed at the `nth` phase, or
/// drawn near the end of the dry run's foreground operations, can lie past
/// the end of a run. Each such cut still ends with a power loss after the
/// run and the full check; it just did not land where it was aimed.
const TWO_PHASE_MAX_UNREACHED_PERCENT: u64 = 10;

/// A store through `vfs` with the two-phase size checkpoint on.
fn two_phase_store(vfs: &PowerLossVfs, path: &Path, synchronous: Synchronous) -> TestResult<Store> {
    let mut store = store_through_with(vfs, path, synchronous)?;
    store.set_size_threshold(TWO_PHASE_THRESHOLD)?;
    store.set_size_checkpoint(walguard::SizeCheckpoint::TwoPhase);
    Ok(store)
}

/// Kind: the database file is replaced while phase 1 opens its
/// connection, between its check before the open and its check after.
/// Phase 1 fails naming itself and checkpoints nothing; phase 2 finds the
/// file gone; the durable point does not move. (A phase 1 that checked
/// only before opening would checkpoint the file it had open as ours.)
#[cfg(unix)]
#[test]
fn phase_one_checks_the_file_again_after_opening_its_connection() -> TestResult {
    let (dir, path) = temp_db()?;
    let vfs = PowerLossVfs::register()?;
    let mut store = two_phase_store(&vfs, &path, Synchronous::Normal)?;
    let (done_tx, done) = std::sync::mpsc::channel();
    let done_tx = std::sync::Mutex::new(done_tx);
    store.set_backfill_waker(move || {
        let _ = done_tx.lock().map(|tx| tx.send(()));
    });
    // A copy of the file takes its place right after phase 1's open.
    let other = dir.path().join("other.db");
    std::fs::copy(&path, &other)?;
    let at = path.clone();
    let swapped = Arc::new(AtomicU64::new(0));
    let swapped_in_hook = Arc::clone(&swapped);
    vfs.after_next_open(Lane::Backfill, FileKind::MainDb, move || {
        if std::fs::rename(&other, &at).is_ok() {
            swapped_in_hook.store(1, Ordering::SeqCst);
        }
    });
    let durable = store.durability().durable_commits();
    let mut txn = 0;
    let report = loop {
        txn += 1;
        assert!(txn < 10_000, "no size checkpoint came");
        // Refused once phase 2 has found the file gone.
        let _ = store_commit(&mut store, txn);
        if let Some(report) = store.checkpoint_if_due() {
            break report;
        }
        if store.backfill_running() {
            done.recv_timeout(Duration::from_secs(30))?;
        }
    };
    assert_eq!(swapped.load(Ordering::SeqCst), 1, "phase 1 never opened");
    let phase1 = report.backfill().expect("two phases");
    assert!(
        phase1.outcome().is_failure() && phase1.outcome().to_string().contains("phase-1"),
        "phase 1 checkpointed a file that is not ours: {phase1:?}"
    );
    assert!(report.outcome().is_failure(), "{report:?}");
    assert_eq!(store.durability().durable_commits(), durable);
    Ok(())
}

/// Where a two-phase iteration aims its cut.
#[derive(Debug, Clone, Copy)]
enum Aim {
    /// At an operation number drawn from the dry run, counted over both
    /// threads, so that it can land on phase 1's own I/O too (and may
    /// come later or never, counted: [`CutIn::Unreached`]).
    Op(u64),
    /// `offset` operations after the `nth` phase 1 (0-based) took the
    /// checkpoint lock: its copy and fsyncs, or a commit made beside it.
    Phase1 { nth: u32, offset: u64 },
    /// `offset` operations into the `nth` phase 2, run once phase 1 has
    /// returned (no other thread does I/O then): before, between or after
    /// its WAL and database fsyncs, or during its copy.
    Phase2 { nth: u32, offset: u64 },
}

/// The writer never pauses: `TWO_PHASE_TXNS` commits, the size checkpoint
/// after each. Stops at the first error (the power cut). Returns the
/// commits acknowledged and where the cut landed (`None`: not reached).
fn two_phase_workload(
    vfs: &PowerLossVfs,
    store: &mut Store,
    aim: Aim,
    phase1_returned: &AtomicU64,
) -> (u64, Option<CutIn>) {
    let (mut started, mut finishing, mut returned) = (0, 0, 0);
    let mut acked = 0;
    for txn in 1..=TWO_PHASE_TXNS {
        if store_commit(store, txn).is_err() {
            // Only phase 1 can hold the checkpoint lock during a commit.
            return (acked, cut_in(vfs, CutIn::Phase1));
        }
        acked = txn;
        let crashed = vfs.is_crashed();
        let running = store.backfill_running();
        let locks = vfs.stats().checkpoints;
        if running && phase1_returned.load(Ordering::Acquire) > returned {
            returned += 1;
            // Phase 1 returned: this call runs phase 2 alone.
            if let Aim::Phase2 { nth, offset } = aim
                && nth == finishing
            {
                vfs.crash_at(vfs.io_ops() + 1 + offset);
            }
            finishing += 1;
        }
        let report = store.checkpoint_if_due();
        if !running && store.backfill_running() {
            if let Aim::Phase1 { nth, offset } = aim
                && nth == started
            {
                // Once phase 1 holds the checkpoint lock (or returned
                // without taking it), then `offset` of phase 1's own
                // operations on, the writer committing meanwhile. Counted
                // on phase 1's lane: counted over both threads, a loaded
                // machine let the writer's fsyncs (under FULL) take every
                // cut (a CI run had 0 of 20 in phase 1).
                let bound = Instant::now() + Duration::from_secs(10);
                while vfs.stats().checkpoints == locks
                    && phase1_returned.load(Ordering::Acquire) == returned
                    && !vfs.is_crashed()
                    && Instant::now() < bound
                {
                    std::thread::yield_now();
                }
                vfs.crash_at_on(Lane::Backfill, vfs.io_ops_on(Lane::Backfill) + 1 + offset);
            }
            started += 1;
        }
        if !crashed && vfs.is_crashed() {
            // Phase 1 failed on the cut: the cut was in phase 1 (the
            // writer may have been waiting for it at the backstop);
            // otherwise in phase 2, the call's own checkpoint.
            let phase1_hit = report
                .as_ref()
                .is_none_or(|r| r.backfill().is_some_and(CheckpointReport::io_error));
            let place = if phase1_hit {
                CutIn::Phase1
            } else {
                CutIn::Phase2
            };
            return (acked, cut_in(vfs, place));
        }
    }
    (acked, None)
}

/// Where the cut landed: `checkpoint` when a connection held the
/// checkpoint lock, else elsewhere.
fn cut_in(vfs: &PowerLossVfs, checkpoint: CutIn) -> Option<CutIn> {
    let report = vfs.crash_report()?;
    Some(if report.in_checkpoint {
        checkpoint
    } else {
        CutIn::Elsewhere
    })
}

/// What one two-phase iteration found.
#[derive(Debug)]
struct TwoPhaseRun {
    cut: Option<CutIn>,
    acked: u64,
    durable: u64,
    result: Result<walguard::testing::Survivors, SurvivorError>,
}

/// One two-phase iteration: a power cut at `crash_op` (restored by `mode`),
/// survivors checked against the store's own durable point.
fn two_phase_iteration(
    synchronous: Synchronous,
    aim: Option<Aim>,
    mode: RestoreMode,
) -> TestResult<(TwoPhaseRun, DryRun)> {
    let (_dir, path) = temp_db()?;
    let vfs = PowerLossVfs::register()?;
    let mut store = two_phase_store(&vfs, &path, synchronous)?;
    let returned = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&returned);
    store.set_backfill_waker(move || {
        counter.fetch_add(1, Ordering::Release);
    });
    let setup_ops = vfs.io_ops();
    if let Some(Aim::Op(op)) = aim {
        vfs.crash_at(op);
    }
    let aim = aim.unwrap_or(Aim::Op(0));
    let (acked, cut) = two_phase_workload(&vfs, &mut store, aim, &returned);
    let cut = cut.or(Some(CutIn::Unreached));
    // The claim at the cut: a checkpoint failing after it moves nothing.
    let durable = durable_txns(&store);
    if !vfs.is_crashed() {
        vfs.crash_now();
    }
    let _ = store.close();
    let dry = DryRun {
        setup_ops,
        total_ops: vfs.io_ops(),
        checkpoints: vfs
            .checkpoint_op_ranges()
            .into_iter()
            .filter(|r| *r.start() > setup_ops)
            .collect(),
        phase1s: vfs.checkpoint_op_ranges_on(Lane::Backfill).len(),
    };
    vfs.restore_durable_images_with(mode)?;
    let result = check_survivors(&path, AfterCheck::Checkpoint);
    Ok((
        TwoPhaseRun {
            cut,
            acked,
            durable,
            result,
        },
        dry,
    ))
}

/// Runs `iterations` cuts: a third aimed inside a phase 1 (its copy, its
/// fsyncs, a commit beside it), a third inside a phase 2 (before, between
/// and after its fsyncs, during its copy), a third drawn as the core
/// campaign draws them, over both threads' operations. Returns the
/// violations and the cuts per place ([`CutIn`]).
fn two_phase_campaign(
    synchronous: Synchronous,
    iterations: u64,
) -> TestResult<(Vec<String>, [u64; 4])> {
    let (_, dry) = two_phase_iteration(synchronous, None, RestoreMode::Exact)?;
    assert!(dry.phase1s >= 4, "the dry run saw {} phase 1s", dry.phase1s);
    let full = synchronous == Synchronous::Full;
    let base = base_seed();
    let mut violations = Vec::new();
    let mut places = [0; 4];
    for i in 0..iterations {
        let seed = base.wrapping_add(i);
        let drawn = CrashPoint::draw(seed, dry.setup_ops, dry.total_ops, &dry.checkpoints);
        let mut rng = StdRng::seed_from_u64(seed);
        let nth = rng.random_range(0..4);
        let aim = match i % 3 {
            0 => Aim::Phase1 {
                nth,
                offset: rng.random_range(0..20),
            },
            1 => Aim::Phase2 {
                nth,
                offset: rng.random_range(0..4),
            },
            _ => Aim::Op(drawn.op),
        };
        let (run, _) = two_phase_iteration(synchronous, Some(aim), drawn.mode)?;
        if let Some(cut) = run.cut {
            places[cut as usize] += 1;
        }
        let floor = if full { run.acked } else { run.durable };
        let verdict = match &run.result {
            Ok(found) => found
                .require_between(rows_through(floor), rows_through(run.acked + 1))
                .err()
                .map(|v| format!("{:?}: {v}", v.kind())),
            Err(e) => Some(format!("{e}")),
        };
        if let Some(v) = verdict {
            violations.push(format!(
                "WALGUARD_SEED={seed}: cut {aim:?} ({:?}), {:?}, acked {}, durable {}: {v}",
                run.cut, drawn.mode, run.acked, run.durable
            ));
        }
    }
    Ok((violations, places))
}

/// Fails when more than [`TWO_PHASE_MAX_UNREACHED_PERCENT`] of
/// `iterations` cuts never came.
fn assert_cuts_came(unreached: u64, iterations: u64) {
    assert!(
        unreached * 100 <= iterations * TWO_PHASE_MAX_UNREACHED_PERCENT,
        "{unreached} of {iterations} cuts never came: the campaign aims at nothing"
    );
}

/// Power cuts aimed inside each phase of the two-phase size checkpoint,
/// under NORMAL: integrity always holds, and nothing the store counted
/// durable (only phase 2 moves that point) is lost.
#[test]
fn store_two_phase_checkpoint_power_loss_campaign_normal() -> TestResult {
    let start = Instant::now();
    let (violations, [phase1, phase2, elsewhere, unreached]) =
        two_phase_campaign(Synchronous::Normal, 150)?;
    eprintln!(
        "two-phase NORMAL campaign in {:?}: cuts in phase 1 {phase1}, in phase 2 {phase2}, \
         elsewhere {elsewhere}, never came {unreached}",
        start.elapsed()
    );
    assert!(violations.is_empty(), "{}", violations.join("\n"));
    assert_cuts_came(unreached, 150);
    assert!(phase1 >= 10, "only {phase1} cuts landed inside phase 1");
    assert!(phase2 >= 10, "only {phase2} cuts landed inside phase 2");
    Ok(())
}

/// The same under FULL: every acknowledged commit survives.
#[test]
fn store_two_phase_checkpoint_power_loss_campaign_full() -> TestResult {
    let (violations, [phase1, phase2, _, unreached]) = two_phase_campaign(Synchronous::Full, 60)?;
    assert!(violations.is_empty(), "{}", violations.join("\n"));
    eprintln!(
        "two-phase FULL campaign: cuts in phase 1 {phase1}, in phase 2 {phase2}, never came \
         {unreached}"
    );
    assert_cuts_came(unreached, 60);
    assert!(
        phase1 >= 1 && phase2 >= 1 && phase1 + phase2 >= 6,
        "{phase1}, {phase2} cuts in phases 1, 2"
    );
    Ok(())
}

/// Negative control of the two-phase campaign: with `synchronous=OFF` (no
/// fsync at all, in either phase) the same harness reports lost durable
/// commits or corruption within a few cuts. If it could not fail, it would
/// prove nothing.
#[test]
fn two_phase_negative_control_synchronous_off_is_caught() -> TestResult {
    let (violations, _) = two_phase_campaign(Synchronous::Off, 40)?;
    assert!(
        !violations.is_empty(),
        "synchronous=OFF survived 40 cuts: the two-phase harness cannot fail"
    );
    eprintln!(
        "OFF: {} violations, first: {}",
        violations.len(),
        violations[0]
    );
    Ok(())
}

/// Kind: a failed fsync inside phase 1 (its WAL sync before the copy, or
/// the database sync of a phase 1 that caught up), with Linux semantics.
/// Phase 1's connection is closed before the writer learns of it, so the
/// writer's reopen rebuilds the WAL index (no `StaleWalIndex`), phase 2
/// copies everything again and completes, and a power loss afterwards
/// keeps every commit the store counted durable.
#[test]
fn store_two_phase_failed_fsync_in_phase_one_reopens_and_loses_nothing() -> TestResult {
    for file in [FileKind::Wal, FileKind::MainDb] {
        let (_dir, path) = temp_db()?;
        let vfs = PowerLossVfs::register()?;
        let mut store = two_phase_store(&vfs, &path, Synchronous::Normal)?;
        let txn = fail_a_sync_in_phase_one(&vfs, &mut store, file)?;
        let report = store.checkpoint_if_due().ok_or("phase 2")?;
        let phase1 = report.backfill().ok_or("phase 1 inside")?;
        assert!(phase1.io_error(), "{file:?}: {phase1:?}");
        assert_eq!(
            *report.outcome(),
            CheckpointOutcome::Completed,
            "{file:?}: {report:?}"
        );
        let durable = durable_txns(&store);
        assert_eq!(durable, txn, "{file:?}");
        for more in txn + 1..=txn + 5 {
            store_commit(&mut store, more)?;
        }
        store_power_loss(&vfs, store, Vec::new())?;
        assert_eq!(survivors(&path)?, durable, "{file:?}");
    }
    Ok(())
}

/// Commits until the WAL reaches the size threshold, arms a failed sync of
/// `file` there, starts phase 1 and waits until it returned (its I/O
/// error then waits for the writer). Returns the last transaction
/// committed.
fn fail_a_sync_in_phase_one(
    vfs: &PowerLossVfs,
    store: &mut Store,
    file: FileKind,
) -> TestResult<u64> {
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    store.set_backfill_waker(move || {
        let _ = tx.lock().map(|tx| tx.send(()));
    });
    let mut txn = 0;
    // Up to the threshold, then phase 1 with the fault armed; the writer
    // waits, so phase 1 catches up and syncs the database too.
    while !store.backfill_running() {
        txn += 1;
        store_commit(store, txn)?;
        if store.wal_frames().map(|f| f.current) >= Some(TWO_PHASE_THRESHOLD) {
            vfs.inject(Fault::SyncFails { file, count: 1 });
        }
        assert!(store.checkpoint_if_due().is_none());
    }
    rx.recv_timeout(Duration::from_secs(30))?;
    Ok(txn)
}

/// Kind: the store closes (or is dropped) right after phase 1 failed on an
/// I/O error, before any phase 2. Its close must not checkpoint from the
/// stale WAL index: the WAL stays, the next open rebuilds the index, and a
/// power loss keeps every commit counted durable.
#[test]
fn store_closed_after_a_failed_phase_one_keeps_its_wal() -> TestResult {
    for close in [true, false] {
        let (_dir, path) = temp_db()?;
        let vfs = PowerLossVfs::register()?;
        let mut store = two_phase_store(&vfs, &path, Synchronous::Normal)?;
        fail_a_sync_in_phase_one(&vfs, &mut store, FileKind::MainDb)?;
        let durable = durable_txns(&store);
        if close {
            store.close().map_err(|(_, e)| e)?;
        } else {
            drop(store);
        }
        assert!(
            walguard::files::wal_path(&path).exists(),
            "close {close}: the close checkpointed and deleted the WAL"
        );
        vfs.crash_now();
        vfs.restore_durable_images()?;
        let found = survivors(&path)?;
        assert!(found >= durable, "close {close}: {found} < {durable}");
    }
    Ok(())
}
