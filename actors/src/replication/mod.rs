//! Replication through Litestream: `ReplicationActor`, the Litestream
//! process it supervises, and the client of its control socket.
//!
//! - `replication/start.rs`: what runs before Litestream starts: the
//!   restore on start, the replica's identity (checked, then stamped), and
//!   [`restore_to`] (`walguard restore`);
//! - `replication/actor.rs`: [`ReplicationActor`]'s start, its messages
//!   and its shutdown; `replication/sync.rs`: the syncs and the replicated
//!   point; `replication/supervise.rs`: the Litestream it started, watched
//!   and restarted;
//! - `replication/child.rs`: the `litestream replicate` process;
//!   `replication/files.rs`: its config and socket beside the database;
//!   `replication/processes.rs`: Litestreams found through `/proc`
//!   (orphans, the holder of a database); `replication/restore.rs`:
//!   `litestream restore` and the replica probe;
//! - `replication/control.rs`: the client of the Unix control socket
//!   (HTTP/1).
//!
//! # The policy, in one place
//!
//! - **Replicated through.** Every `replication.sync_period` (every
//!   `ACK_POLL_PERIOD` (10 ms) under `ack: replicated`, when commits wait),
//!   the actor asks `DbActor` for its commit count, then asks Litestream
//!   to sync and wait (`/sync`, `wait: true`). A `synced` or `no_change`
//!   answer puts every commit counted before the call on the replica
//!   ([`walguard::replication::ReplicationTracker`]). The point goes to
//!   `DbActor` (held replies), `MetricsActor` (live status) and the
//!   `metrics` facade (gauges, lag in seconds). A lag above
//!   `replication.max_lag` is warned about once per episode.
//! - **Checkpoint ownership.** After the first answered sync, Litestream
//!   owns checkpointing: the interval loop stays quiet, and `DbActor`
//!   checkpoints only past `replication.wal_cap_frames`. After
//!   `FAILED_SYNCS_BEFORE_TAKEOVER` (3) failed syncs in a row, or as soon as
//!   the Litestream walguard started exits, walguard takes it back. Each
//!   switch is logged (target `walguard::replication`).
//! - **Supervision.** A Litestream walguard started that exits is started
//!   again after a backoff that doubles from `RESTART_BACKOFF_MIN` (1 s) to
//!   `RESTART_BACKOFF_MAX` (30 s), and is reset by an answered sync.
//! - **Shutdown** ([`FinalSync`](crate::messages::FinalSync)): one last sync, bounded; then the
//!   Litestream walguard started is stopped and checkpointing handed back,
//!   so that the shutdown TRUNCATE that follows completes.

mod actor;
mod child;
// `Files`, `ControlClient` and `litestream_holding` are public only to the
// crate's own tests (feature `testing`, module `testing` below).
#[cfg_attr(not(feature = "testing"), allow(unreachable_pub))]
mod control;
#[cfg_attr(not(feature = "testing"), allow(unreachable_pub))]
mod files;
#[cfg_attr(not(feature = "testing"), allow(unreachable_pub))]
mod processes;
mod restore;
mod start;
mod supervise;
mod sync;

use std::path::PathBuf;
use std::time::Duration;

use actix::Recipient;
use tokio::time::Instant;
use walguard::replication::ReplicationTracker;
use walguard::settings::ReplicationSettings;

pub(crate) use child::Child;
pub(crate) use control::ControlClient;
pub(crate) use files::Files;
pub(crate) use start::stamp_identity;
pub use start::{check_identity, restore_if_missing, restore_to};

use crate::DbHandle;
use crate::messages::ReplicationSeen;

/// What the crate's own tests reach of the Litestream plumbing (feature
/// `testing`): where walguard puts Litestream's files, the client of its
/// control socket, and the Litestream holding a database open.
#[cfg(feature = "testing")]
pub mod testing {
    pub use super::control::{ControlClient, SyncAnswer};
    pub use super::files::Files;
    pub use super::processes::litestream_holding;
}

/// Failed syncs in a row after which walguard takes checkpointing back from
/// a Litestream that still runs: 3.
pub(crate) const FAILED_SYNCS_BEFORE_TAKEOVER: u32 = 3;

/// First wait before restarting a Litestream that exited: 1 s.
pub(crate) const RESTART_BACKOFF_MIN: Duration = Duration::from_secs(1);

/// Longest wait before restarting a Litestream that exited: 30 s.
pub(crate) const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// How often the actor looks for commits to sync under `ack: replicated`:
/// 10 ms, so a held reply waits for one sync, not for a period.
pub(crate) const ACK_POLL_PERIOD: Duration = Duration::from_millis(10);

/// The longest a periodic sync waits for Litestream's answer: 10 s (its
/// first sync uploads a snapshot).
pub(crate) const SYNC_TIMEOUT: Duration = Duration::from_secs(10);

/// A Litestream made ready by [`ReplicationActor::prepare`], for
/// [`ReplicationActor::new`].
#[derive(Debug)]
pub(crate) struct Prepared {
    files: Files,
    process: Process,
}

/// Who runs Litestream.
#[derive(Debug)]
enum Process {
    /// walguard started it (and restarts it).
    Managed {
        binary: PathBuf,
        child: Option<Box<Child>>,
        /// A restarted child whose control socket is not open yet: since
        /// when (ticks poll it; nothing blocks on it).
        starting_since: Option<Instant>,
        restart_at: Option<Instant>,
        backoff: Duration,
        restarts: u64,
    },
    /// Someone else: walguard only talks to its socket.
    External,
}

/// Replicates through Litestream and tracks what the replica holds.
#[derive(Debug)]
pub struct ReplicationActor {
    settings: ReplicationSettings,
    files: Files,
    client: ControlClient,
    process: Process,
    db: DbHandle,
    metrics: Option<Recipient<ReplicationSeen>>,
    tracker: ReplicationTracker,
    in_flight: bool,
    /// A commit count asked of `DbActor` outside a sync is on its way.
    looking: bool,
    failed_in_a_row: u32,
    last_sync: Option<Instant>,
    last_error: Option<String>,
    stopped: bool,
}
