//! What a power loss could take: the durable point of the commits made
//! through a [`Store`](super::Store).

use std::time::Instant;

#[cfg(doc)]
use super::Store;

/// What is known to survive a power loss, and what is exposed.
///
/// Kept in two units, because a group commit puts many writes in one
/// commit:
///
/// - **commits**: transactions committed through this store (a lone
///   statement, an atomic [`Store::transaction`], a closure that changed
///   rows, or one group of [`Store::execute_group`], however many writes it
///   holds);
/// - **writes**: the requests those commits acknowledged, one per lone
///   statement, per transaction, per closure that changed rows, and per
///   statement of a group that succeeded and is not read-only. This is the
///   unit a sender sees: "how many of my acknowledged writes could a power
///   loss take".
///
/// A commit (and every write in it) is durable once a checkpoint that fully
/// caught up (busy = 0, `checkpointed == log`) has run after it, or at once
/// under `synchronous=FULL`/`EXTRA`. SQLite's own auto-checkpoints are not
/// seen here, so the figures are conservative (walguard turns them off on
/// the writer when it runs the size-triggered checkpoints itself, see
/// [`Store::set_size_threshold`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Durability {
    commits: u64,
    durable_commits: u64,
    writes: u64,
    durable_writes: u64,
    durable_at: Option<Instant>,
}

impl Durability {
    /// Commits made through this store since it opened.
    #[must_use]
    pub fn commits(&self) -> u64 {
        self.commits
    }
    /// The first this many commits are durable ("durable through").
    #[must_use]
    pub fn durable_commits(&self) -> u64 {
        self.durable_commits
    }
    /// Commits a power loss under `synchronous=NORMAL` could take now.
    #[must_use]
    pub fn exposed_commits(&self) -> u64 {
        self.commits - self.durable_commits
    }
    /// Writes acknowledged through this store since it opened (see the type
    /// docs for what counts as one).
    #[must_use]
    pub fn writes(&self) -> u64 {
        self.writes
    }
    /// The first this many writes are durable.
    #[must_use]
    pub fn durable_writes(&self) -> u64 {
        self.durable_writes
    }
    /// Acknowledged writes a power loss under `synchronous=NORMAL` could take
    /// now.
    #[must_use]
    pub fn exposed_writes(&self) -> u64 {
        self.writes - self.durable_writes
    }
    /// When the durable point last moved (`None`: not since open).
    #[must_use]
    pub fn durable_at(&self) -> Option<Instant> {
        self.durable_at
    }
}

impl Durability {
    /// One commit holding `writes` acknowledged writes; `synced` when the
    /// commit itself fsynced the WAL (`synchronous=FULL`/`EXTRA`), which
    /// makes it durable at once.
    pub(super) fn record_commit(&mut self, writes: u64, synced: bool) {
        self.commits += 1;
        self.writes += writes;
        if synced {
            self.durable_commits = self.commits;
            self.durable_writes = self.writes;
            self.durable_at = Some(Instant::now());
        }
    }

    /// A checkpoint that fully caught up has run: every commit counted in
    /// `before` (the counts taken just before it started) is durable.
    pub(super) fn durable_through(&mut self, before: Durability) {
        if before.commits > self.durable_commits {
            self.durable_commits = before.commits;
            self.durable_writes = before.writes;
            self.durable_at = Some(Instant::now());
        } else if self.durable_at.is_none() {
            self.durable_at = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::store::test_support::{insert, store_in};
    use crate::{CheckpointMode, CheckpointOutcome, CheckpointReason};

    #[test]
    fn durability_counts_writes_and_commits() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store_in(&dir);
        let _ = store.execute_group(&[insert(1), insert(2), insert(3)]);
        let d = store.durability();
        assert_eq!((d.commits(), d.writes()), (2, 4));
        assert_eq!((d.exposed_commits(), d.exposed_writes()), (2, 4));
        let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
        assert_eq!(*report.outcome(), CheckpointOutcome::Completed);
        let d = store.durability();
        assert_eq!((d.exposed_commits(), d.exposed_writes()), (0, 0));
        assert_eq!(d.durable_writes(), 4);
    }
}
