//! The WAL watch: a WAL hook that sees the frames after each commit, and
//! the size-triggered checkpoint it drives ([`Store::set_size_threshold`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::checkpoint::{CheckpointMode, CheckpointReason, CheckpointReport};
use crate::error::{Error, Result};

use super::Store;

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
    /// Size-triggered checkpoints run so far.
    pub size_checkpoints: u64,
}

/// Written by the WAL hook inside each COMMIT, read by the store after it.
#[derive(Debug, Default)]
struct HookState {
    /// Frames in the WAL after the last commit (`nFrame` of the hook).
    frames: AtomicU32,
    /// A commit reported since the store last looked.
    fresh: AtomicBool,
}

/// The size-triggered checkpoint: the threshold and what the hook saw.
#[derive(Debug)]
pub(super) struct WalWatch {
    hook: Arc<HookState>,
    threshold: u32,
    /// Frames at which the next size checkpoint is due: the threshold, or
    /// a threshold past the last checkpoint when a reader kept the WAL from
    /// restarting (so a pinned WAL gets one checkpoint per threshold frames,
    /// not one per commit).
    next_due: u32,
    last: u32,
    peak: u32,
    size_checkpoints: u64,
}

impl Store {
    /// The size threshold in force (`0`: off, SQLite's own auto-checkpoint).
    pub(super) fn size_threshold(&self) -> u32 {
        self.wal.as_ref().map_or(0, |w| w.threshold)
    }

    /// Takes the size-triggered checkpoint over from SQLite: with `frames`
    /// above zero, sets `wal_autocheckpoint=0` on this connection and
    /// installs a WAL hook (`sqlite3_wal_hook`, which SQLite's own
    /// auto-checkpoint also uses: they cannot both be on) that records the
    /// frames in the WAL after each commit. [`Store::checkpoint_if_due`]
    /// then runs a PASSIVE checkpoint, reason
    /// [`CheckpointReason::Size`], after a commit that leaves `frames` or
    /// more in the WAL, and returns its report, so no checkpoint runs
    /// unmeasured inside a COMMIT. `0` gives the job back to SQLite with the
    /// `wal_autocheckpoint` of the settings.
    ///
    /// With no reader holding the WAL, a completed checkpoint lets the next
    /// commit restart the WAL from its start, so it stays within `frames`
    /// plus the frames of one commit. A reader that holds it makes the
    /// checkpoint partial; the next one is then due `frames` later, not at
    /// every commit.
    ///
    /// A closure ([`Store::call`]) that sets `PRAGMA wal_autocheckpoint`
    /// replaces the hook; call this again afterwards.
    ///
    /// # Errors
    ///
    /// [`Error::Pragma`] when `wal_autocheckpoint` or the hook cannot be set.
    pub fn set_size_threshold(&mut self, frames: u32) -> Result<()> {
        let pragma_err = |source| Error::Pragma {
            path: self.settings.path.clone(),
            pragma: "wal_autocheckpoint",
            source,
        };
        if frames == 0 {
            // Setting the pragma installs SQLite's own hook again.
            self.conn
                .pragma_update(None, "wal_autocheckpoint", self.settings.wal_autocheckpoint)
                .map_err(pragma_err)?;
            self.wal = None;
            return Ok(());
        }
        // The pragma first: it replaces whatever WAL hook is installed.
        self.conn
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(pragma_err)?;
        let hook = Arc::new(HookState::default());
        let state = Arc::clone(&hook);
        self.conn
            .wal_hook(Some(
                move |wal: &mut rusqlite::hooks::Wal, frames: std::ffi::c_int| {
                    // Only the main database: an attached one has its own WAL.
                    if wal.name() == c"main" {
                        state
                            .frames
                            .store(u32::try_from(frames).unwrap_or(0), Ordering::Relaxed);
                        state.fresh.store(true, Ordering::Release);
                    }
                    Ok(())
                },
            ))
            .map_err(|source| Error::Pragma {
                path: self.settings.path.clone(),
                pragma: "wal_hook",
                source,
            })?;
        let (last, peak, size_checkpoints) = self
            .wal
            .as_ref()
            .map_or((0, 0, 0), |w| (w.last, w.peak, w.size_checkpoints));
        self.wal = Some(WalWatch {
            hook,
            threshold: frames,
            next_due: frames,
            last,
            peak,
            size_checkpoints,
        });
        Ok(())
    }

    /// The WAL frames the hook saw, when [`Store::set_size_threshold`] is on.
    #[must_use]
    pub fn wal_frames(&self) -> Option<WalFrames> {
        self.wal.as_ref().map(|w| {
            let current = w.hook.frames.load(Ordering::Relaxed);
            WalFrames {
                current,
                peak: w.peak.max(current),
                threshold: w.threshold,
                size_checkpoints: w.size_checkpoints,
            }
        })
    }

    /// Runs the size-triggered PASSIVE checkpoint when the last commit left
    /// the WAL at or above the threshold of [`Store::set_size_threshold`];
    /// `None` when none was due (or the threshold is off). Call it after
    /// each write; it costs two atomic loads when nothing is due.
    pub fn checkpoint_if_due(&mut self) -> Option<CheckpointReport> {
        let watch = self.wal.as_mut()?;
        if !watch.hook.fresh.swap(false, Ordering::Acquire) {
            return None;
        }
        let frames = watch.hook.frames.load(Ordering::Relaxed);
        if frames < watch.last {
            // The WAL restarted from its start since the last look.
            watch.next_due = watch.threshold;
        }
        watch.last = frames;
        watch.peak = watch.peak.max(frames);
        if frames < watch.next_due || !self.conn.is_autocommit() {
            return None;
        }
        let report = self.checkpoint(CheckpointMode::Passive, CheckpointReason::Size);
        if let Some(watch) = self.wal.as_mut() {
            watch.size_checkpoints += 1;
            let log = u32::try_from(report.log_frames()).unwrap_or(frames);
            watch.next_due = frames.max(log).saturating_add(watch.threshold);
        }
        Some(report)
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use crate::store::test_support::{insert, store_in};
    use crate::{CheckpointMode, CheckpointOutcome, CheckpointReason, Statement};

    #[test]
    fn the_size_threshold_bounds_the_wal_by_frames() {
        const THRESHOLD: u32 = 100;
        let dir = tempfile::tempdir().unwrap();
        let mut store = store_in(&dir);
        store.set_size_threshold(THRESHOLD).unwrap();
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

    #[test]
    fn threshold_zero_gives_the_job_back_to_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store_in(&dir);
        store.set_size_threshold(10).unwrap();
        store.set_size_threshold(0).unwrap();
        assert!(store.wal_frames().is_none());
        let autocheckpoint: i64 = store
            .conn
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
            .unwrap();
        assert_eq!(autocheckpoint, 1000);
        store.execute(&insert(1)).unwrap();
        assert!(store.checkpoint_if_due().is_none());
    }
}
