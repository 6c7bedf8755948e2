//! Checkpoint execution and its result type.
//!
//! # The checkpoint policy
//!
//! walguard keeps SQLite in WAL mode. A commit lands in the `-wal` file; a
//! checkpoint copies WAL frames back into the database file and, when it
//! copied at least one frame, fsyncs the WAL first (`walCheckpoint` in
//! `wal.c`). What that buys depends on the failure:
//!
//! - **Process crash** (SIGKILL, OOM kill, Windows `CTRL_CLOSE_EVENT`): no
//!   committed transaction is lost in WAL mode, whatever `synchronous` says.
//!   Checkpoints change nothing here.
//! - **Power loss or OS crash** under `synchronous=NORMAL`: the WAL is fsynced
//!   only at checkpoints, so commits made after the last checkpoint that fully
//!   caught up may roll back. The database stays consistent. The periodic
//!   checkpoint therefore bounds this loss window to about one interval (plus
//!   SQLite's own auto-checkpoints). Under `synchronous=FULL` every commit is
//!   fsynced and nothing acknowledged is lost.
//!
//! The tiers:
//!
//! - **Interval**: a [`CheckpointMode::Passive`] checkpoint every
//!   `checkpoint.interval` (default
//!   [`DEFAULT_CHECKPOINT_INTERVAL`](crate::settings::DEFAULT_CHECKPOINT_INTERVAL),
//!   60 s). PASSIVE never waits and never blocks the writer or readers, so a
//!   reader that pins the WAL makes it return [`CheckpointOutcome::Partial`]:
//!   that is expected, logged without alarm, and retried next interval. Such
//!   a checkpoint may not have fsynced anything, so it does not move the
//!   "durable through" point; only [`CheckpointOutcome::Completed`] does.
//! - **Shutdown**: one [`CheckpointMode::Truncate`] checkpoint under a hard
//!   deadline (`checkpoint.shutdown_timeout`, default
//!   [`DEFAULT_SHUTDOWN_TIMEOUT`](crate::settings::DEFAULT_SHUTDOWN_TIMEOUT),
//!   2 s): the busy timeout is lowered to the deadline and
//!   `sqlite3_interrupt` stops it if it still runs. A busy or failed TRUNCATE
//!   is logged and shutdown goes on.
//! - **Manual**: any mode, on request.
//!
//! RESTART is never scheduled: like Litestream found, it blocks all writers
//! behind long readers.
//!
//! # Failed fsync
//!
//! On Linux a failed `fsync` marks the dirty pages clean: the data it was
//! meant to save may never reach the disk, though every read still shows
//! it. A checkpoint whose database `fsync` fails may so lose pages that an
//! earlier partial checkpoint copied, while SQLite's WAL index still counts
//! those frames as copied: a retry copies only the rest, the WAL is then
//! reset, and a later power loss leaves the database corrupt or short
//! (Postgres' "fsyncgate"). A normal close is no better: it checkpoints
//! from the same stale count, then deletes the WAL.
//!
//! So when a checkpoint fails on an I/O error
//! ([`CheckpointReport::io_error`]: `SQLITE_IOERR_*` or `SQLITE_FULL`), the
//! [`Store`](crate::Store) closes its connection with
//! `SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE` (no checkpoint, and the WAL stays) and
//! opens it again. With no other connection open, SQLite rebuilds the WAL
//! index from the WAL, and the next checkpoint copies every frame again. The
//! checkpoint is still reported as failed and does not move the "durable
//! through" point.
//!
//! The rebuild needs every connection to the database closed at that
//! moment, and the store can close only its own, and pause the readers
//! attached to it ([`Store::attach_readers`](crate::Store::attach_readers):
//! walguard's [`ReadPool`](crate::read::ReadPool) closes its connections
//! until the new one is open): a reader connection left open keeps the
//! stale index alive. So after reopening, the store asks
//! SQLite (`PRAGMA wal_checkpoint(NOOP)`) how many frames it counts as
//! copied: none in a rebuilt index. Until that holds, no checkpoint runs,
//! not even SQLite's auto-checkpoint on the writer: each checkpoint call
//! tries the reopen again instead and fails with
//! [`Error::StaleWalIndex`](crate::Error::StaleWalIndex). Writes go on
//! meanwhile; the WAL grows and the "durable through" point stands still
//! until the other connection closes. Frames in the WAL were fsynced before
//! any of them was copied, so a power loss meanwhile loses nothing the
//! durable point covers: recovery reads them from the WAL. Should the reopen
//! itself fail, the store refuses every statement (`SQLITE_AUTH`) until a
//! later checkpoint call reopens it.
//!
//! `tests/power_loss/` and `actors/tests/crash_lab.rs` show the loss
//! without the reopen, and none with it, a reader left open included;
//! `docs/reliability.md` has the figures.
//!
//! Checkpoints run on the single write connection, between transactions
//! (inside a transaction SQLite answers `SQLITE_LOCKED`), with one
//! exception: phase 1 of the two-phase size checkpoint
//! ([`SizeCheckpoint::TwoPhase`](crate::SizeCheckpoint::TwoPhase)) runs on a
//! second connection while the writer commits. A second connection alone
//! never lets the WAL reset against a writer that never pauses, so phase 2
//! always finishes on the writer, and only phase 2 moves the durable
//! point. Phase 1's connection is closed before the writer learns its
//! result, so the reopen above still finds no other connection of ours.

mod mode;
mod outcome;
mod report;
mod run;

pub use mode::{CheckpointMode, CheckpointReason, UnknownMode};
pub use outcome::CheckpointOutcome;
pub use report::{CheckpointReport, LOG_FIELDS};
pub use run::{MIN_DEADLINE_GRACE, run, run_with_deadline};
