//! The replica hold: frames Litestream may not have read never leave the
//! WAL.
//!
//! # Why
//!
//! Litestream copies WAL frames into its own files (LTX) and ships them.
//! When it starts again it resumes from the last frame it copied. If, while
//! it was down, a checkpoint copied every frame back and a writer then
//! *restarted* the WAL (new salts, frames written again from the start),
//! the frames it had not copied are gone, and Litestream 0.5 cannot always
//! tell: when the page at its old offset happens to match, it treats the
//! new WAL as a clean restart and streams on, leaving a hole in the replica
//! (measured: 6 of 8 restores missed 10-31 acknowledged writes; its issue
//! #752 is the same class; `../shared/FACTS.md`, "Litestream").
//!
//! # How (SQLite's rules, `wal.c`)
//!
//! - A checkpoint copies frames only up to the oldest read mark in use
//!   (`mxSafeFrame`), and copies nothing while a reader holds read lock 0
//!   (it needs that lock exclusively to backfill).
//! - The WAL restarts only once every frame is backfilled *and* no reader
//!   holds read locks 1..N (`walRestartLog`; RESTART and TRUNCATE
//!   checkpoints wait for the same).
//!
//! So before walguard runs any checkpoint while replication is on, this
//! hold opens a read transaction on a connection of its own (a **pin**),
//! and keeps it until the replica is known to hold every commit made
//! before the pin ([`ReplicaHold::replicated_through`], fed by the
//! `/sync`-and-wait answers of the replication actor). While the pin
//! lasts, no checkpoint copies past it and the WAL cannot restart, whoever
//! checkpoints; frames already backfilled stay in the WAL file, where
//! Litestream reads them when it returns. A pin taken when every frame was
//! already backfilled sits on read lock 0 and blocks backfill altogether;
//! the frames a writer may then overwrite were all backfilled under an
//! earlier pin or by Litestream itself (which copies before it
//! checkpoints), so they are on the replica.
//!
//! RESTART and TRUNCATE checkpoints, and the checkpoint SQLite runs when
//! the last connection closes, would restart or delete the WAL: the store
//! runs them only once the replica holds every commit
//! ([`Store::replica_caught_up`](super::Store::replica_caught_up));
//! until then a TRUNCATE is reported `busy` without waiting, and the close
//! keeps the WAL (`SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`).
//!
//! # What it costs
//!
//! While a pin lasts the WAL grows with the writes: about one
//! `replication.sync_period` of writes while Litestream is healthy, and
//! everything written while it is down. The checkpoints walguard runs
//! meanwhile come back `partial` (or `busy`), which the exposure figures
//! show as it is.
//!
//! # What it does not cover
//!
//! Another program's checkpoint while Litestream is down and no pin is
//! held (before walguard's first checkpoint after the crash). walguard's
//! own tools never run one beside a served database with replication on.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};

/// A pin: the read transaction and the commit count it protects.
#[derive(Debug, Clone, Copy)]
struct Pin {
    /// The store's commit count when the pin was taken: every commit up to
    /// it has its frames at or below the pin's read mark.
    commits: u64,
    since: Instant,
}

/// The replica hold of a store ([`Store::hold_for_replica`](super::Store::hold_for_replica)).
#[derive(Debug)]
pub(super) struct ReplicaHold {
    conn: Connection,
    pin: Option<Pin>,
    /// The highest commit count the replica is known to hold.
    replicated: u64,
    /// Pins taken in this session.
    pins: u64,
}

/// What the replica hold holds now, for reports
/// ([`Store::replica_hold`](super::Store::replica_hold)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicaHoldState {
    /// The commit count the pin protects (every commit up to it stays in
    /// the WAL until the replica has it); `None` while no pin is held.
    pub pinned_commits: Option<u64>,
    /// How long the pin has been held.
    pub pinned_for: Option<Duration>,
    /// The highest commit count the replica is known to hold.
    pub replicated_commits: u64,
    /// Pins taken in this session (one per stretch of checkpoints that
    /// ran ahead of the replica).
    pub pins: u64,
}

impl ReplicaHold {
    /// Opens the hold's own connection on `path` (read-only, through `vfs`
    /// when given). The writer must have set WAL mode first.
    pub(super) fn open(path: &Path, vfs: Option<&str>) -> Result<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let opened = match vfs {
            Some(vfs) => Connection::open_with_flags_and_vfs(path, flags, vfs),
            None => Connection::open_with_flags(path, flags),
        };
        let conn = opened.map_err(|source| Error::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            conn,
            pin: None,
            replicated: 0,
            pins: 0,
        })
    }

    /// Takes a pin at the WAL's current end, unless one is held already
    /// (the older pin protects more). `commits` is the store's commit
    /// count now. A pin is taken even when the replica already holds
    /// every commit: phase 1 of a size checkpoint runs beside the writer,
    /// and the commits made meanwhile are not on the replica yet.
    pub(super) fn pin(&mut self, commits: u64) -> rusqlite::Result<()> {
        if self.pin.is_some() {
            return Ok(());
        }
        // A deferred BEGIN takes no lock; the first read takes the read
        // mark, and the open transaction keeps it.
        self.conn.execute_batch("BEGIN")?;
        let read = self
            .conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()));
        if let Err(e) = read {
            let _ = self.conn.execute_batch("ROLLBACK");
            return Err(e);
        }
        self.pin = Some(Pin {
            commits,
            since: Instant::now(),
        });
        self.pins += 1;
        Ok(())
    }

    /// The replica holds every commit up to `commits`: a pin it covers is
    /// released.
    pub(super) fn replicated_through(&mut self, commits: u64) {
        self.replicated = self.replicated.max(commits);
        if self.pin.is_some_and(|p| p.commits <= self.replicated) {
            self.release();
        }
    }

    /// Ends the pin's read transaction.
    fn release(&mut self) {
        if self.pin.take().is_some()
            && let Err(e) = self.conn.execute_batch("COMMIT")
        {
            // A read transaction that cannot end still ends with its
            // connection; the hold reopens nothing and says so.
            tracing::warn!(target: "walguard::replication", error = %e, "cannot end the replica hold's read transaction");
        }
    }

    /// Whether the replica holds every one of `commits`.
    pub(super) fn caught_up(&self, commits: u64) -> bool {
        self.replicated >= commits
    }

    /// Releases the pin when the replica holds every one of `commits`
    /// (the store's count now, on the writer's thread: no commit can come
    /// in between), before a checkpoint that restarts the WAL.
    pub(super) fn release_if_caught_up(&mut self, commits: u64) -> bool {
        if self.caught_up(commits) {
            self.release();
            true
        } else {
            false
        }
    }

    pub(super) fn state(&self) -> ReplicaHoldState {
        ReplicaHoldState {
            pinned_commits: self.pin.map(|p| p.commits),
            pinned_for: self.pin.map(|p| p.since.elapsed()),
            replicated_commits: self.replicated,
            pins: self.pins,
        }
    }
}
