//! The WAL watch: the write connection's WAL hook, which sees the frames
//! after each commit. It drives two things:
//!
//! - the size-triggered checkpoint ([`Store::set_size_threshold`]);
//! - the durable point moved by a checkpoint that **someone else** ran
//!   (SQLite's own auto-checkpoint, Litestream, a backup tool, the `sqlite3`
//!   shell): SQLite restarts the WAL from its start only after a
//!   checkpoint has copied all of it back and fsynced the database file
//!   (`walRestartLog` in `wal.c`, FACTS.md "A WAL restart is visible in the
//!   WAL hook"). So when the hook's frame count drops, every commit before
//!   the one that restarted the WAL is durable, whoever checkpointed. A
//!   commit larger than the whole WAL before it hides a restart (its count
//!   does not drop): the durable point then moves at the next one seen, or
//!   at the next checkpoint of ours, never ahead of the truth.
//!
//! The hook is installed when the store opens and stays: SQLite's own
//! auto-checkpoint uses the same hook slot, so with the size threshold off
//! the hook runs that checkpoint itself, exactly as SQLite's default hook
//! does (`sqlite3WalDefaultHook`: a PASSIVE checkpoint inside the COMMIT
//! that left `database.wal_autocheckpoint` frames or more).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::checkpoint::{CheckpointMode, CheckpointReason, CheckpointReport};
use crate::error::{Error, Result};
use crate::settings::SizeCheckpoint;

use super::Store;
use super::backfill::{Backfill, BackfillTarget};

/// With [`SizeCheckpoint::TwoPhase`], the WAL size, in percent of the size
/// threshold, at which the writer stops committing and waits for a phase 1
/// still running, then runs phase 2: 150 %. It keeps the WAL within about
/// 1.5 × the threshold plus one commit's frames whatever the two threads'
/// speeds.
pub const BACKSTOP_PERCENT: u32 = 150;

/// Waker called (from phase 1's thread) once phase 1 returned.
#[derive(Clone)]
pub(super) struct Waker(pub(super) Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for Waker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Waker")
    }
}

/// The WAL as the write connection's WAL hook last reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WalFrames {
    /// Frames in the WAL after the most recent commit (0 before any).
    pub current: u32,
    /// The most frames seen after any commit since the store opened.
    pub peak: u32,
    /// The threshold of [`Store::set_size_threshold`].
    pub threshold: u32,
    /// Size-triggered checkpoints run so far (a two-phase one counts once).
    pub size_checkpoints: u64,
    /// Two-phase checkpoints whose phase 2 had to wait for phase 1 at the
    /// backstop ([`BACKSTOP_PERCENT`]).
    pub backstop_waits: u64,
}

/// Written by the WAL hook inside each COMMIT, read by the store after it.
#[derive(Debug, Default)]
struct HookState {
    /// Frames in the WAL after the last commit (`nFrame` of the hook).
    frames: AtomicU32,
    /// A commit reported since the store last looked.
    fresh: AtomicBool,
    /// A commit started the WAL over from its start since the store last
    /// looked: every commit before it is durable.
    restarted: AtomicBool,
    /// With the size threshold off: the frames at which the hook runs
    /// SQLite's auto-checkpoint inside the COMMIT (`0`: never).
    auto_checkpoint: AtomicU32,
}

/// What the hook saw, and the size-triggered checkpoint's state.
#[derive(Debug)]
pub(super) struct WalWatch {
    hook: Arc<HookState>,
    /// The size threshold in frames; `0`: off, SQLite-style
    /// auto-checkpoint in the hook instead.
    threshold: u32,
    /// Frames at which the next size checkpoint is due: the threshold, or
    /// a threshold past the last checkpoint when a reader kept the WAL from
    /// restarting (so a pinned WAL gets one checkpoint per threshold frames,
    /// not one per commit).
    next_due: u32,
    last: u32,
    peak: u32,
    size_checkpoints: u64,
    backstop_waits: u64,
    mode: SizeCheckpoint,
    waker: Option<Waker>,
}

impl WalWatch {
    /// A watch with the size threshold off.
    pub(super) fn new() -> Self {
        Self {
            hook: Arc::new(HookState::default()),
            threshold: 0,
            next_due: 0,
            last: 0,
            peak: 0,
            size_checkpoints: 0,
            backstop_waits: 0,
            mode: crate::settings::DEFAULT_SIZE_CHECKPOINT,
            waker: None,
        }
    }
}

impl Store {
    /// Whether a commit restarted the WAL since the last call (and forgets
    /// it): every commit recorded before that one is durable.
    pub(super) fn take_wal_restart(&self) -> bool {
        self.wal.hook.restarted.swap(false, Ordering::Acquire)
    }

    /// Stops the auto-checkpoint the hook runs with the threshold off, until
    /// the hook is installed again.
    pub(super) fn stop_auto_checkpoint(&self) {
        self.wal.hook.auto_checkpoint.store(0, Ordering::Relaxed);
    }

    /// Whether the store's WAL hook is no longer on the connection: a
    /// closure replaced or removed it through rusqlite's
    /// `Connection::wal_hook`, which frees the hook it replaces, and with it
    /// the hook's clone of the shared state. (SQLite's own hook, installed
    /// by `PRAGMA wal_autocheckpoint`, shows in that setting instead; a
    /// hook set through the C API behind rusqlite's back is not seen.)
    pub(super) fn wal_hook_replaced(&self) -> bool {
        Arc::strong_count(&self.wal.hook) < 2
    }

    /// Installs the WAL hook on the current connection, with the size
    /// threshold in force. `wal_autocheckpoint` is set to 0 first: setting
    /// it installs (or removes) SQLite's own hook, which shares the slot.
    pub(super) fn install_wal_hook(&mut self) -> Result<()> {
        let conn = &self.conn;
        self.guard
            .own(|| conn.pragma_update(None, "wal_autocheckpoint", 0))
            .map_err(|source| Error::Pragma {
                path: self.settings.path.clone(),
                pragma: "wal_autocheckpoint",
                source,
            })?;
        // A fresh state: the frame count of a new connection starts at 0.
        let hook = Arc::new(HookState::default());
        let auto = if self.wal.threshold == 0 {
            self.settings.wal_autocheckpoint
        } else {
            0
        };
        hook.auto_checkpoint.store(auto, Ordering::Relaxed);
        let state = Arc::clone(&hook);
        self.conn
            .wal_hook(Some(
                move |wal: &mut rusqlite::hooks::Wal, frames: std::ffi::c_int| {
                    // Only the main database: an attached one has its own WAL.
                    if wal.name() != c"main" {
                        return Ok(());
                    }
                    let frames = u32::try_from(frames).unwrap_or(0);
                    let before = state.frames.swap(frames, Ordering::Relaxed);
                    if frames < before {
                        state.restarted.store(true, Ordering::Release);
                    }
                    state.fresh.store(true, Ordering::Release);
                    let auto = state.auto_checkpoint.load(Ordering::Relaxed);
                    if auto > 0 && frames >= auto {
                        // SQLite's own auto-checkpoint, as its default hook
                        // runs it: PASSIVE, result ignored.
                        let _ = wal.checkpoint();
                    }
                    Ok(())
                },
            ))
            .map_err(|source| Error::Pragma {
                path: self.settings.path.clone(),
                pragma: "wal_hook",
                source,
            })?;
        self.wal.hook = hook;
        self.wal.last = 0;
        Ok(())
    }

    /// Takes the size-triggered checkpoint over from SQLite: with `frames`
    /// above zero, the store's WAL hook (`sqlite3_wal_hook`) records the
    /// frames in the WAL after each commit, and [`Store::checkpoint_if_due`]
    /// then runs a PASSIVE checkpoint, reason [`CheckpointReason::Size`],
    /// after a commit that leaves `frames` or more in the WAL, and returns
    /// its report, so no checkpoint runs unmeasured inside a COMMIT. `0`
    /// gives the job back to SQLite's rule: a PASSIVE checkpoint inside the
    /// COMMIT that leaves `database.wal_autocheckpoint` frames or more (see
    /// the module docs of `store/wal_watch.rs` for why the hook, not SQLite,
    /// runs it).
    ///
    /// With no reader holding the WAL, a completed checkpoint lets the next
    /// commit restart the WAL from its start, so it stays within `frames`
    /// plus the frames of one commit. A reader that holds it makes the
    /// checkpoint partial; the next one is then due `frames` later, not at
    /// every commit.
    ///
    /// `PRAGMA wal_autocheckpoint` reads 0 while the store is open: the
    /// slot holds the store's hook. A closure ([`Store::call`]) that sets
    /// `PRAGMA wal_autocheckpoint` replaces the hook; call this again
    /// afterwards.
    ///
    /// # Errors
    ///
    /// [`Error::Pragma`] when `wal_autocheckpoint` or the hook cannot be set.
    pub fn set_size_threshold(&mut self, frames: u32) -> Result<()> {
        if let Some((report, _)) = self.join_backfill(false) {
            report.log();
        }
        self.wal.threshold = frames;
        self.wal.next_due = frames;
        self.install_wal_hook()
    }

    /// The WAL frames the hook saw, when [`Store::set_size_threshold`] is on.
    #[must_use]
    pub fn wal_frames(&self) -> Option<WalFrames> {
        let w = &self.wal;
        (w.threshold > 0).then(|| {
            let current = w.hook.frames.load(Ordering::Relaxed);
            WalFrames {
                current,
                peak: w.peak.max(current),
                threshold: w.threshold,
                size_checkpoints: w.size_checkpoints,
                backstop_waits: w.backstop_waits,
            }
        })
    }

    /// Chooses where the size-triggered checkpoint copies
    /// ([`SizeCheckpoint`]); a phase 1 in flight is waited for first.
    pub fn set_size_checkpoint(&mut self, mode: SizeCheckpoint) {
        if let Some((report, _)) = self.join_backfill(false) {
            report.log();
        }
        self.wal.mode = mode;
    }

    /// Where the size-triggered checkpoint copies.
    #[must_use]
    pub fn size_checkpoint(&self) -> SizeCheckpoint {
        self.wal.mode
    }

    /// Sets what phase 1 of a two-phase size checkpoint calls, on its own
    /// thread, once it returned and its connection is closed: a way to
    /// have [`Store::checkpoint_if_due`] called then even if no write comes
    /// (`walguard-actors` sends its writer a message). Without it, phase 2
    /// runs at the first call after phase 1 returned.
    pub fn set_backfill_waker(&mut self, waker: impl Fn() + Send + Sync + 'static) {
        self.wal.waker = Some(Waker(Arc::new(waker)));
    }

    /// Whether phase 1 of a two-phase size checkpoint is in flight.
    #[must_use]
    pub fn backfill_running(&self) -> bool {
        self.backfill.is_some()
    }

    /// Runs the size-triggered checkpoint when the last commit left the WAL
    /// at or above the threshold of [`Store::set_size_threshold`]; `None`
    /// when none was due (or the threshold is off). Call it after each
    /// write; it costs two atomic loads when nothing is due.
    ///
    /// With [`SizeCheckpoint::OnWriter`] it runs one PASSIVE here. With
    /// [`SizeCheckpoint::TwoPhase`] (the default) it starts phase 1 on its own
    /// thread and returns `None`; a later call, once phase 1 returned (or
    /// at the backstop, waiting for it), runs phase 2 here and returns its
    /// report, phase 1's inside ([`CheckpointReport::backfill`]).
    pub fn checkpoint_if_due(&mut self) -> Option<CheckpointReport> {
        let watch = &mut self.wal;
        if watch.threshold == 0 {
            return None;
        }
        let fresh = watch.hook.fresh.swap(false, Ordering::Acquire);
        if fresh {
            let frames = watch.hook.frames.load(Ordering::Relaxed);
            if frames < watch.last {
                // The WAL restarted from its start since the last look.
                watch.next_due = watch.threshold;
            }
            watch.last = frames;
            watch.peak = watch.peak.max(frames);
        }
        let frames = watch.last;
        if !self.conn.is_autocommit() {
            return None;
        }
        if let Some(backfill) = &self.backfill {
            let backstop = u64::from(frames) * 100
                >= u64::from(self.wal.threshold) * u64::from(BACKSTOP_PERCENT);
            let finished = backfill.is_finished();
            #[cfg(feature = "testing")]
            let backstop = backstop && self.wal.mode != SizeCheckpoint::BackfillOnly;
            if !finished && !backstop {
                return None;
            }
            if !finished {
                self.wal.backstop_waits += 1;
            }
            return Some(self.finish_two_phase(frames));
        }
        if !fresh || frames < self.wal.next_due {
            return None;
        }
        if self.wal.mode != SizeCheckpoint::OnWriter && self.start_backfill() {
            return None;
        }
        let report = self.checkpoint(CheckpointMode::Passive, CheckpointReason::Size);
        self.after_size_checkpoint(frames, &report);
        Some(report)
    }

    /// Starts phase 1, unless the store cannot run it now (the file's
    /// identity unknown or gone, a reopen pending, no thread): the size
    /// checkpoint then runs on the writer as [`SizeCheckpoint::OnWriter`].
    fn start_backfill(&mut self) -> bool {
        let Some(identity) = self.identity else {
            return false;
        };
        if self.gone.is_some() || self.reopen_pending {
            return false;
        }
        // Phase 1 copies frames beside the writer: the replica hold pins
        // the WAL first (a pin that fails leaves it to the writer, whose
        // checkpoint reports the failure).
        let commits = self.durability.commits();
        if let Some(hold) = self.replica.as_mut()
            && hold.pin(commits).is_err()
        {
            return false;
        }
        let target = BackfillTarget {
            path: self.settings.path.clone(),
            vfs: self.vfs.clone(),
            synchronous: self.settings.synchronous,
            identity,
        };
        let waker = self.wal.waker.clone().map(|w| w.0);
        match Backfill::start(target, waker) {
            Ok(backfill) => {
                self.backfill = Some(backfill);
                true
            }
            Err(e) => {
                tracing::warn!(target: "walguard::db", error = %e, "cannot start the phase-1 checkpoint thread; checkpointing on the writer");
                false
            }
        }
    }

    /// Phase 2: waits for phase 1 if it still runs, then a PASSIVE on the
    /// writer ([`Store::checkpoint`] joins phase 1 and carries its report).
    fn finish_two_phase(&mut self, frames: u32) -> CheckpointReport {
        #[cfg(feature = "testing")]
        if self.wal.mode == SizeCheckpoint::BackfillOnly
            && let Some((report, _)) = self.join_backfill(false)
        {
            self.after_size_checkpoint(frames, &report);
            return report;
        }
        let report = self.checkpoint(CheckpointMode::Passive, CheckpointReason::Size);
        self.after_size_checkpoint(frames, &report);
        report
    }

    /// Counts a size checkpoint and sets when the next one is due.
    fn after_size_checkpoint(&mut self, frames: u32, report: &CheckpointReport) {
        let watch = &mut self.wal;
        watch.size_checkpoints += 1;
        let log = u32::try_from(report.log_frames()).unwrap_or(frames);
        watch.next_due = frames.max(log).saturating_add(watch.threshold);
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use crate::settings::DatabaseSettings;
    use crate::store::test_support::{insert, store_in};
    use crate::{
        CheckpointMode, CheckpointOutcome, CheckpointReason, SizeCheckpoint, Statement, Store,
    };

    #[test]
    fn the_size_threshold_bounds_the_wal_by_frames() {
        const THRESHOLD: u32 = 100;
        let dir = tempfile::tempdir().unwrap();
        let mut store = store_in(&dir);
        store.set_size_threshold(THRESHOLD).unwrap();
        // The single checkpoint on the writer (tests/core/two_phase.rs has
        // the two-phase default's).
        store.set_size_checkpoint(SizeCheckpoint::OnWriter);
        let autocheckpoint: i64 = store
            .conn
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
            .unwrap();
        assert_eq!(autocheckpoint, 0, "SQLite's own auto-checkpoint is off");

        let mut reports = Vec::new();
        let mut largest_commit = 0;
        let mut id = 0;
        for n in 0..400 {
            // Groups of 1 to 40 writes.
            let group: Vec<Statement> = (0..=(n % 40))
                .map(|_| {
                    id += 1;
                    insert(id)
                })
                .collect();
            let before = store.wal_frames().unwrap().current;
            assert!(store.execute_group(&group).iter().all(Result::is_ok));
            let after = store.wal_frames().unwrap().current;
            largest_commit = largest_commit.max(after.saturating_sub(before));
            reports.extend(store.checkpoint_if_due());
        }
        let frames = store.wal_frames().unwrap();
        assert!(!reports.is_empty());
        assert_eq!(frames.size_checkpoints, reports.len() as u64);
        for report in &reports {
            assert_eq!(report.reason(), CheckpointReason::Size);
            assert_eq!(report.mode(), CheckpointMode::Passive);
            assert_eq!(*report.outcome(), CheckpointOutcome::Completed);
            assert!(report.log_frames() >= i64::from(THRESHOLD));
        }
        assert!(
            frames.peak < THRESHOLD + largest_commit,
            "peak {} frames, threshold {THRESHOLD}, largest commit {largest_commit} frames",
            frames.peak
        );
        // Every size checkpoint completed: everything before it is durable.
        assert!(store.durability().durable_writes() > 0);
        let wal = std::fs::metadata(dir.path().join("state.db-wal"))
            .unwrap()
            .len();
        let page = 4096 + 24;
        assert!(
            wal <= 32 + u64::from(THRESHOLD + largest_commit) * page,
            "{wal} bytes"
        );
    }

    #[test]
    fn a_reader_pinning_the_wal_gets_one_checkpoint_per_threshold_not_per_commit() {
        const THRESHOLD: u32 = 50;
        let dir = tempfile::tempdir().unwrap();
        let mut store = store_in(&dir);
        store.set_size_threshold(THRESHOLD).unwrap();
        // The single checkpoint on the writer (tests/core/two_phase.rs has
        // the two-phase default's).
        store.set_size_checkpoint(SizeCheckpoint::OnWriter);
        let reader = Connection::open(dir.path().join("state.db")).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader
            .query_row("SELECT count(*) FROM kv", [], |r| r.get(0))
            .unwrap();
        let mut reports = Vec::new();
        for id in 0..2000 {
            store.execute(&insert(id)).unwrap();
            reports.extend(store.checkpoint_if_due());
        }
        let frames = store.wal_frames().unwrap();
        assert!(
            reports
                .iter()
                .all(|r| *r.outcome() != CheckpointOutcome::Completed || r.log_frames() == 0)
        );
        let most = u64::from(frames.peak / THRESHOLD) + 1;
        assert!(
            (1..=most).contains(&frames.size_checkpoints),
            "{} checkpoints for {} frames",
            frames.size_checkpoints,
            frames.peak
        );
        reader.execute_batch("COMMIT").unwrap();
    }

    /// With the threshold off, the hook runs SQLite's own rule: a PASSIVE
    /// checkpoint inside the COMMIT that reaches `wal_autocheckpoint`
    /// frames, so the WAL stays bounded with no size checkpoint reported.
    #[test]
    fn threshold_zero_gives_the_job_back_to_sqlites_rule() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = DatabaseSettings::at(dir.path().join("state.db"));
        settings.wal_autocheckpoint = 20;
        let mut store = Store::open(&settings).unwrap();
        store
            .execute(&Statement::new(
                "CREATE TABLE kv (id INTEGER PRIMARY KEY, v BLOB NOT NULL)",
            ))
            .unwrap();
        store.set_size_threshold(10).unwrap();
        store.set_size_threshold(0).unwrap();
        assert!(store.wal_frames().is_none());
        for id in 0..300 {
            store.execute(&insert(id)).unwrap();
            assert!(store.checkpoint_if_due().is_none());
        }
        let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
        assert!(
            report.log_frames() < 2 * 20,
            "the WAL restarted every 20 frames or so: {report:?}"
        );
    }

    /// The negative control of the test above: with SQLite's auto-checkpoint
    /// off too, the same writes leave every frame in the WAL.
    #[test]
    fn without_any_auto_checkpoint_the_wal_keeps_every_frame() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = DatabaseSettings::at(dir.path().join("state.db"));
        settings.wal_autocheckpoint = 0;
        let mut store = Store::open(&settings).unwrap();
        store
            .execute(&Statement::new(
                "CREATE TABLE kv (id INTEGER PRIMARY KEY, v BLOB NOT NULL)",
            ))
            .unwrap();
        for id in 0..300 {
            store.execute(&insert(id)).unwrap();
        }
        let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
        assert!(report.log_frames() >= 300, "{report:?}");
    }
}
