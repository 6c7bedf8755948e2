//! The durability model behind [`PowerLossVfs`](super::PowerLossVfs): plain
//! Rust, no FFI.
//!
//! For each main database, WAL and rollback journal file the model keeps the
//! file's *durable image* (its bytes as of its last successful `xSync`) and
//! the list of writes, truncates and deletes made since then. A power loss
//! replaces each file with its durable image, optionally plus a random,
//! sector-torn part of the pending operations.

use std::collections::BTreeMap;
use std::ffi::c_int;
use std::io;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use rusqlite::ffi;

use super::{
    CrashReport, CutCount, Fault, FileKind, Lane, Phase, PhaseSpan, RestoreMode, RestoreReport,
    VfsStats,
};
use crate::Error;

/// The sector size a torn write is cut on: the smallest sector any disk has.
pub(super) const SECTOR_SIZE_BYTES: u64 = 512;

/// WAL-index lock slot that SQLite takes exclusively for a checkpoint
/// (`WAL_CKPT_LOCK` in `wal.c`).
pub(super) const WAL_CKPT_LOCK_SLOT: c_int = 1;

/// A mutating operation on a modelled file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Io {
    Write,
    Truncate,
    Sync,
    Delete,
}

impl Io {
    /// The error code an operation returns once the power is off.
    fn crash_code(self) -> c_int {
        match self {
            Io::Write => ffi::SQLITE_IOERR_WRITE,
            Io::Truncate => ffi::SQLITE_IOERR_TRUNCATE,
            Io::Sync => ffi::SQLITE_IOERR_FSYNC,
            Io::Delete => ffi::SQLITE_IOERR_DELETE,
        }
    }
}

/// What the shim must do with an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Run it on the real file, then report the outcome to the model.
    Proceed,
    /// Touch nothing and return this error code.
    Fail(c_int),
}

/// An operation made since the file's last successful sync.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    Write {
        offset: u64,
        data: Vec<u8>,
    },
    Truncate {
        size: u64,
    },
    /// The file was deleted (without a directory sync).
    Delete,
    /// The file was created again after a delete.
    Create,
}

impl Pending {
    fn apply(&self, image: &mut Option<Vec<u8>>) {
        match self {
            Pending::Write { offset, data } => {
                write_at(image.get_or_insert_with(Vec::new), *offset, data);
            }
            Pending::Truncate { size } => {
                let image = image.get_or_insert_with(Vec::new);
                // A size that does not fit in memory cannot have been written
                // either; the shim rejects it before it gets here.
                if let Ok(size) = usize::try_from(*size) {
                    image.resize(size, 0);
                }
            }
            Pending::Delete => *image = None,
            Pending::Create => {
                image.get_or_insert_with(Vec::new);
            }
        }
    }
}

fn write_at(image: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let (Ok(start), Some(end)) = (
        usize::try_from(offset),
        usize::try_from(offset)
            .ok()
            .and_then(|s| s.checked_add(data.len())),
    ) else {
        return;
    };
    if image.len() < end {
        image.resize(end, 0);
    }
    if let Some(target) = image.get_mut(start..end) {
        target.copy_from_slice(data);
    }
}

/// One modelled file.
#[derive(Debug)]
struct FileModel {
    kind: FileKind,
    /// `None`: the file does not exist on stable storage.
    durable: Option<Vec<u8>>,
    pending: Vec<Pending>,
    /// Whether the live file exists (false after a delete until reopened).
    live_exists: bool,
    open_handles: usize,
}

/// A small seeded generator (`SplitMix64`) so torn restores are reproducible
/// without a dependency.
#[derive(Debug, Clone)]
pub(super) struct SplitMix64(u64);

impl SplitMix64 {
    pub(super) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..=max` (tiny modulo bias, irrelevant here).
    pub(super) fn up_to(&mut self, max: usize) -> usize {
        let span = (max as u64).saturating_add(1);
        if span == 0 {
            return self.next_u64() as usize;
        }
        (self.next_u64() % span) as usize
    }

    pub(super) fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }
}

/// The whole mutable state of one shim instance.
#[derive(Debug, Default)]
pub(super) struct State {
    files: BTreeMap<PathBuf, FileModel>,
    ops: u64,
    /// Operations per lane ([`Lane::index`]).
    lane_ops: [u64; 2],
    /// The cut: an operation number, and what it counts.
    crash_at: Option<(CutCount, u64)>,
    crash: Option<CrashReport>,
    faults: Vec<Fault>,
    in_checkpoint: bool,
    /// The lane whose connection holds the checkpoint lock.
    checkpoint_lane: Option<Lane>,
    checkpoint_start_op: u64,
    checkpoint_start_lane_op: u64,
    checkpoint_ranges: Vec<RangeInclusive<u64>>,
    /// Per lane: the checkpoints its connections ran, in its own numbering.
    lane_checkpoint_ranges: [Vec<RangeInclusive<u64>>; 2],
    /// A backfill-lane checkpoint released the lock since a foreground
    /// connection last took it.
    backfill_checkpointed: bool,
    /// The phase of the checkpoint in progress and its ordinal among the
    /// checkpoints of that phase that did I/O (0-based).
    phase: Option<(Phase, u64)>,
    /// Checkpoints that did I/O, per phase ([`Phase::index`]).
    phases_with_io: [u64; 2],
    /// Per phase: its checkpoints that did I/O.
    phase_spans: [Vec<PhaseSpan>; 2],
    /// Modelled file handles open per lane.
    lane_handles: [usize; 2],
    checkpoints: u64,
    /// Successful syncs of modelled files.
    syncs: u64,
    faults_fired: u64,
    /// The owner was dropped: forward everything, model nothing.
    detached: bool,
}

impl State {
    /// Is `path` a modelled file, and of which kind?
    pub(super) fn kind_of(&self, path: &Path) -> Option<FileKind> {
        if self.detached {
            return None;
        }
        self.files.get(path).map(|f| f.kind)
    }

    /// Called before the real `xOpen` of a file that should be modelled. The
    /// first time a path is seen, its bytes on disk are taken as durable.
    pub(super) fn opening(&mut self, path: &Path, kind: FileKind, create: bool) {
        if self.detached {
            return;
        }
        let model = self.files.entry(path.to_path_buf()).or_insert_with(|| {
            let durable = std::fs::read(path).ok();
            FileModel {
                kind,
                live_exists: durable.is_some(),
                durable,
                pending: Vec::new(),
                open_handles: 0,
            }
        });
        model.open_handles += 1;
        if create && !model.live_exists && self.crash.is_none() {
            model.pending.push(Pending::Create);
            model.live_exists = true;
        }
    }

    /// Called after `xClose`, or after a failed `xOpen`.
    pub(super) fn closed(&mut self, path: &Path) {
        if let Some(model) = self.files.get_mut(path) {
            model.open_handles = model.open_handles.saturating_sub(1);
        }
    }

    /// A modelled file handle was opened (`true`) or closed on `lane`.
    pub(super) fn lane_handle(&mut self, lane: Lane, open: bool) {
        let handles = &mut self.lane_handles[lane.index()];
        *handles = if open {
            handles.saturating_add(1)
        } else {
            handles.saturating_sub(1)
        };
    }

    /// The report of a cut made now, met by an operation of `lane`.
    fn report(&self, lane: Option<Lane>) -> CrashReport {
        CrashReport {
            ops_before_crash: self.ops,
            in_checkpoint: self.in_checkpoint,
            lane,
            lane_ops_before_crash: self.lane_ops,
            checkpoint_lane: self.checkpoint_lane,
            phase: self.phase.map(|(phase, _)| phase),
            backfill_open: self.lane_handles[Lane::Backfill.index()] > 0,
        }
    }

    /// Decide the fate of one mutating operation of `lane`, counting it.
    pub(super) fn begin(&mut self, path: &Path, io: Io, lane: Lane) -> Verdict {
        if self.detached {
            return Verdict::Proceed;
        }
        let Some(kind) = self.files.get(path).map(|f| f.kind) else {
            return Verdict::Proceed;
        };
        if self.crash.is_some() {
            return Verdict::Fail(io.crash_code());
        }
        let next_of_lane = self.lane_ops[lane.index()].saturating_add(1);
        let cut = self.crash_at.is_some_and(|(count, n)| match count {
            CutCount::All => self.ops.saturating_add(1) >= n,
            CutCount::Lane(on) => on == lane && next_of_lane >= n,
            CutCount::InPhase { phase, nth } => {
                // The op's 1-based position inside the checkpoint in
                // progress, counted on its holder's lane.
                self.phase == Some((phase, nth))
                    && self.checkpoint_lane == Some(lane)
                    && next_of_lane.saturating_sub(self.checkpoint_start_lane_op) + 1 >= n
            }
        });
        if cut {
            self.crash = Some(self.report(Some(lane)));
            return Verdict::Fail(io.crash_code());
        }
        self.ops += 1;
        self.lane_ops[lane.index()] += 1;
        if let Some(code) = self.take_fault(kind, io) {
            self.faults_fired += 1;
            if io == Io::Sync {
                self.sync_failed(path);
            }
            return Verdict::Fail(code);
        }
        Verdict::Proceed
    }

    fn take_fault(&mut self, kind: FileKind, io: Io) -> Option<c_int> {
        let in_checkpoint = self.in_checkpoint;
        let index = self.faults.iter().position(|fault| match *fault {
            Fault::WriteIoErr { file, .. } | Fault::DiskFull { file, .. } => {
                io == Io::Write && file == kind
            }
            Fault::SyncFails { file, .. } => io == Io::Sync && file == kind,
            Fault::CheckpointWriteIoErr { .. } => {
                io == Io::Write && kind == FileKind::MainDb && in_checkpoint
            }
            Fault::OpenFails { .. } => false,
        })?;
        let fault = self.faults.get_mut(index)?;
        let (code, count) = match fault {
            Fault::WriteIoErr { count, .. } | Fault::CheckpointWriteIoErr { count } => {
                (ffi::SQLITE_IOERR_WRITE, count)
            }
            Fault::DiskFull { count, .. } => (ffi::SQLITE_FULL, count),
            Fault::SyncFails { count, .. } => (ffi::SQLITE_IOERR_FSYNC, count),
            Fault::OpenFails { count, .. } => (ffi::SQLITE_CANTOPEN, count),
        };
        *count = count.saturating_sub(1);
        if *count == 0 {
            self.faults.remove(index);
        }
        Some(code)
    }

    /// The error an open of a `kind` file fails with, if a
    /// [`Fault::OpenFails`] is armed for it (and spends one).
    pub(super) fn take_open_fault(&mut self, kind: FileKind) -> Option<c_int> {
        let index = self
            .faults
            .iter()
            .position(|fault| matches!(*fault, Fault::OpenFails { file, .. } if file == kind))?;
        if let Fault::OpenFails { count, .. } = &mut self.faults[index] {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.faults.remove(index);
            }
        }
        self.faults_fired += 1;
        Some(ffi::SQLITE_CANTOPEN)
    }

    pub(super) fn wrote(&mut self, path: &Path, offset: u64, data: &[u8]) {
        self.push(
            path,
            Pending::Write {
                offset,
                data: data.to_vec(),
            },
        );
    }

    pub(super) fn truncated(&mut self, path: &Path, size: u64) {
        self.push(path, Pending::Truncate { size });
    }

    fn push(&mut self, path: &Path, op: Pending) {
        if self.detached {
            return;
        }
        if let Some(model) = self.files.get_mut(path) {
            model.live_exists = true;
            model.pending.push(op);
        }
    }

    /// A successful sync: everything pending on that file reaches stable
    /// storage.
    ///
    /// Deletes are metadata: a journaling file system (ext4, XFS, APFS)
    /// commits them in order with the next fsync of any file, so a sync also
    /// makes every other file's pending delete durable. Without that, a
    /// rollback journal deleted at the switch to WAL would come back after
    /// every simulated power loss and roll the database back to empty, which
    /// real file systems do not do.
    pub(super) fn synced(&mut self, path: &Path) {
        self.syncs += 1;
        for (other, model) in &mut self.files {
            if other == path {
                for op in model.pending.drain(..) {
                    op.apply(&mut model.durable);
                }
            } else if let Some(last_delete) =
                model.pending.iter().rposition(|op| *op == Pending::Delete)
            {
                model.durable = None;
                model.pending.drain(..=last_delete);
            }
        }
    }

    /// A failed sync with Linux semantics: the kernel marks the dirty pages
    /// clean, so the pending operations never reach stable storage, though
    /// the live file (page cache) still shows them.
    pub(super) fn sync_failed(&mut self, path: &Path) {
        if let Some(model) = self.files.get_mut(path) {
            model.pending.clear();
        }
    }

    /// A successful delete. With `dir_synced` the directory was fsynced, so
    /// the delete itself is durable.
    pub(super) fn deleted(&mut self, path: &Path, dir_synced: bool) {
        if self.detached {
            return;
        }
        if let Some(model) = self.files.get_mut(path) {
            model.live_exists = false;
            if dir_synced {
                model.pending.clear();
                model.durable = None;
            } else {
                model.pending.push(Pending::Delete);
            }
        }
    }

    /// The checkpoint lock changed hands (taken: `true`) on `lane`.
    pub(super) fn checkpoint_lock(&mut self, taken: bool, lane: Lane) {
        if taken && !self.in_checkpoint {
            self.in_checkpoint = true;
            self.checkpoint_lane = Some(lane);
            self.checkpoints += 1;
            self.checkpoint_start_op = self.ops.saturating_add(1);
            self.checkpoint_start_lane_op = self.lane_ops[lane.index()].saturating_add(1);
            let phase = match lane {
                Lane::Backfill => Some(Phase::One),
                Lane::Foreground if std::mem::take(&mut self.backfill_checkpointed) => {
                    Some(Phase::Two)
                }
                Lane::Foreground => None,
            };
            self.phase = phase.map(|phase| (phase, self.phases_with_io[phase.index()]));
        } else if !taken && self.in_checkpoint {
            self.in_checkpoint = false;
            let phase = self.phase.take();
            let holder = self.checkpoint_lane.take().unwrap_or(lane);
            if holder == Lane::Backfill {
                self.backfill_checkpointed = true;
            }
            if self.ops >= self.checkpoint_start_op && !self.detached {
                self.checkpoint_ranges
                    .push(self.checkpoint_start_op..=self.ops);
            }
            let end = self.lane_ops[holder.index()];
            if end >= self.checkpoint_start_lane_op && !self.detached {
                self.lane_checkpoint_ranges[holder.index()]
                    .push(self.checkpoint_start_lane_op..=end);
                if let Some((phase, nth)) = phase {
                    self.phases_with_io[phase.index()] += 1;
                    self.phase_spans[phase.index()].push(PhaseSpan {
                        nth,
                        ops: end + 1 - self.checkpoint_start_lane_op,
                    });
                }
            }
        }
    }

    pub(super) fn lane_io_ops(&self, lane: Lane) -> u64 {
        self.lane_ops[lane.index()]
    }

    pub(super) fn crash_at_counting(&mut self, count: CutCount, op: u64) {
        self.crash_at = Some((count, op));
    }

    pub(super) fn lane_checkpoint_op_ranges(&self, lane: Lane) -> Vec<RangeInclusive<u64>> {
        self.lane_checkpoint_ranges[lane.index()].clone()
    }

    pub(super) fn phase_spans(&self, phase: Phase) -> Vec<PhaseSpan> {
        self.phase_spans[phase.index()].clone()
    }

    pub(super) fn io_ops(&self) -> u64 {
        self.ops
    }

    pub(super) fn crash_at(&mut self, op: u64) {
        self.crash_at = Some((CutCount::All, op));
    }

    pub(super) fn crash_now(&mut self) {
        if self.crash.is_none() {
            self.crash = Some(self.report(None));
        }
    }

    pub(super) fn crash(&self) -> Option<CrashReport> {
        self.crash.clone()
    }

    pub(super) fn checkpoint_op_ranges(&self) -> Vec<RangeInclusive<u64>> {
        self.checkpoint_ranges.clone()
    }

    pub(super) fn inject(&mut self, fault: Fault) {
        let count = match fault {
            Fault::WriteIoErr { count, .. }
            | Fault::DiskFull { count, .. }
            | Fault::SyncFails { count, .. }
            | Fault::CheckpointWriteIoErr { count }
            | Fault::OpenFails { count, .. } => count,
        };
        if count > 0 {
            self.faults.push(fault);
        }
    }

    pub(super) fn clear_faults(&mut self) {
        self.faults.clear();
    }

    pub(super) fn stats(&self) -> VfsStats {
        VfsStats {
            io_ops: self.ops,
            checkpoints: self.checkpoints,
            syncs: self.syncs,
            faults_fired: self.faults_fired,
            tracked_files: self.files.len(),
            open_files: self.files.values().map(|f| f.open_handles).sum(),
            pending_ops: self.files.values().map(|f| f.pending.len()).sum(),
        }
    }

    /// The owner is gone: drop all images and model nothing from now on.
    pub(super) fn detach(&mut self) {
        self.detached = true;
        self.files.clear();
        self.faults.clear();
        self.checkpoint_ranges.clear();
        self.lane_checkpoint_ranges = [Vec::new(), Vec::new()];
        self.phase_spans = [Vec::new(), Vec::new()];
    }

    /// Power comes back: replace each modelled file on disk by what survived.
    pub(super) fn restore(&mut self, mode: RestoreMode) -> Result<RestoreReport, Error> {
        let open: usize = self.files.values().map(|f| f.open_handles).sum();
        if open > 0 {
            return Err(crate::testing::VfsError::FilesOpen { open }.into());
        }
        let mut rng = match mode {
            RestoreMode::Exact => None,
            RestoreMode::Torn { seed } => Some(SplitMix64::new(seed)),
        };
        let mut report = RestoreReport {
            files: 0,
            pending_kept: 0,
            pending_lost: 0,
            torn_writes: 0,
        };
        for (path, model) in &mut self.files {
            let mut image = model.durable.take();
            let pending = std::mem::take(&mut model.pending);
            let total = pending.len();
            if let Some(rng) = rng.as_mut() {
                survive_torn(&mut image, &pending, rng, &mut report);
            } else {
                report.pending_lost += total;
            }
            write_image(path, image.as_deref())?;
            model.live_exists = image.is_some();
            model.durable = image;
            report.files += 1;
        }
        self.crash = None;
        self.crash_at = None;
        self.in_checkpoint = false;
        self.checkpoint_lane = None;
        self.phase = None;
        self.backfill_checkpointed = false;
        Ok(report)
    }
}

/// The harder model: a random prefix of the pending operations survives, the
/// operation at the cut is torn on sector boundaries, and each later one
/// survives or not at random (the disk may reorder writes between syncs).
fn survive_torn(
    image: &mut Option<Vec<u8>>,
    pending: &[Pending],
    rng: &mut SplitMix64,
    report: &mut RestoreReport,
) {
    let cut = rng.up_to(pending.len());
    for (index, op) in pending.iter().enumerate() {
        if index < cut {
            op.apply(image);
            report.pending_kept += 1;
        } else if index == cut {
            if let Pending::Write { offset, data } = op {
                let kept = torn_prefix_len(*offset, data.len(), rng);
                if let Some(part) = data.get(..kept)
                    && !part.is_empty()
                {
                    write_at(image.get_or_insert_with(Vec::new), *offset, part);
                }
                if kept == data.len() {
                    report.pending_kept += 1;
                } else {
                    report.pending_lost += 1;
                    if kept > 0 {
                        report.torn_writes += 1;
                    }
                }
            } else if rng.coin() {
                op.apply(image);
                report.pending_kept += 1;
            } else {
                report.pending_lost += 1;
            }
        } else if rng.coin() {
            op.apply(image);
            report.pending_kept += 1;
        } else {
            report.pending_lost += 1;
        }
    }
}

/// How many leading bytes of a write at `offset` of `len` bytes reach the
/// disk when power fails during it: a whole number of sectors (the part
/// before the first sector boundary counts as one sector).
fn torn_prefix_len(offset: u64, len: usize, rng: &mut SplitMix64) -> usize {
    let mut cuts = vec![0usize];
    let first_boundary = (offset / SECTOR_SIZE_BYTES + 1) * SECTOR_SIZE_BYTES;
    let mut boundary = first_boundary;
    while let Some(rel) = boundary
        .checked_sub(offset)
        .and_then(|r| usize::try_from(r).ok())
        .filter(|&r| r < len)
    {
        cuts.push(rel);
        boundary += SECTOR_SIZE_BYTES;
    }
    cuts.push(len);
    let pick = rng.up_to(cuts.len() - 1);
    cuts.get(pick).copied().unwrap_or(0)
}

fn write_image(path: &Path, image: Option<&[u8]>) -> Result<(), Error> {
    let result = match image {
        Some(bytes) => std::fs::write(path, bytes),
        None => match std::fs::remove_file(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        },
    };
    result.map_err(|source| {
        crate::testing::VfsError::Restore {
            path: path.to_path_buf(),
            source,
        }
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_prefix_is_sector_aligned() {
        let mut rng = SplitMix64::new(7);
        for _ in 0..1000 {
            let offset = rng.next_u64() % 10_000;
            let len = (rng.next_u64() % 5000) as usize + 1;
            let kept = torn_prefix_len(offset, len, &mut rng);
            assert!(kept <= len);
            let end = offset + kept as u64;
            assert!(kept == 0 || kept == len || end.is_multiple_of(SECTOR_SIZE_BYTES));
        }
    }

    #[test]
    fn sync_makes_pending_durable_and_failed_sync_drops_it() {
        let mut state = State::default();
        let path = Path::new("/nonexistent/walguard-model-test.db");
        state.opening(path, FileKind::MainDb, true);
        state.wrote(path, 4, b"abcd");
        state.synced(path);
        state.wrote(path, 0, b"zz");
        state.sync_failed(path);
        let model = state.files.get(path).expect("modelled");
        assert_eq!(model.durable.as_deref(), Some(&b"\0\0\0\0abcd"[..]));
        assert!(model.pending.is_empty());
    }
}
