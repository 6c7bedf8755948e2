//! Replication through Litestream, the actor-free part: the replica URL,
//! the config walguard writes for Litestream, and "replicated through".
//!
//! # Replicated through
//!
//! Litestream numbers what it ships in its own transaction ids (LTX files),
//! not in SQLite commits, so its answers cannot be mapped to the commits a
//! sender saw. The one exact mapping is the one [`ReplicationTracker`]
//! keeps: note the commit count, then ask Litestream to sync and wait (its
//! control socket's `/sync` with `wait`); once it answers `synced` or
//! `no_change`, every commit counted before the call is on the replica.
//! The count is taken *before* the call, so a commit that races the sync is
//! never claimed; the replicated point only moves forward.
//!
//! The **lag** is how old the newest replicated moment is while commits are
//! waiting beyond it: the start of the last sync that answered, when later
//! commits exist; zero when every commit is on the replica. A warning fires
//! once per episode above `replication.max_lag`
//! ([`ReplicationTracker::observe`]).
//!
//! # Checkpoint ownership
//!
//! Litestream holds a read transaction at all times, on purpose, so that no
//! other connection checkpoints past the position it has shipped; beside
//! it, walguard's PASSIVE checkpoints only ever come back `partial` and its
//! shutdown TRUNCATE waits out its busy timeout. So while Litestream is
//! healthy it owns checkpointing ([`CheckpointOwner::Litestream`]) and
//! walguard runs none of its own; the WAL hook still moves walguard's
//! durable point on Litestream's checkpoints. walguard takes checkpointing
//! back ([`CheckpointOwner::Walguard`]) while Litestream is down, and for
//! one checkpoint whenever the WAL passes `replication.wal_cap_frames`.
//!
//! Handing checkpoints over hands the policy over too
//! ([`CheckpointHandover`]): the config walguard writes gives Litestream
//! walguard's `checkpoint.interval` as its `checkpoint-interval` and
//! `checkpoint.size_threshold_frames` as its `min-checkpoint-page-count`,
//! so the exposure to a power loss keeps the bound it has without
//! Litestream, and the starvation warning (two intervals) stays a true
//! alarm rather than Litestream's own one-minute rhythm.

pub mod identity;
mod litestream;
mod tracker;

use std::fmt;
use std::time::Duration;

pub use litestream::{
    SFTP_HOST_KEY_ENV, SFTP_KEY_PATH_ENV, SftpLogin, blame, litestream_config, version_supported,
};
pub use tracker::{LagEvent, Replicated, ReplicationTracker, SyncTicket};

use crate::settings::CheckpointSettings;

/// The part of walguard's checkpoint policy that Litestream takes over
/// while it owns checkpointing, as written into its config. `None` leaves
/// Litestream's own default (1 min and 1000 pages in 0.5).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckpointHandover {
    /// Litestream's `checkpoint-interval`: a PASSIVE checkpoint once the
    /// database file is older than this and the WAL holds frames.
    pub interval: Option<Duration>,
    /// Litestream's `min-checkpoint-page-count`: a PASSIVE checkpoint once
    /// the WAL holds this many pages (frames).
    pub size_threshold_frames: Option<u32>,
}

impl CheckpointHandover {
    /// walguard's own policy: `checkpoint.interval` always, the size
    /// threshold when above zero. The interval goes over whether or not
    /// the loop is on at start: the loop is opt-in and may be started
    /// later (`WalGuard::start_checkpoint_loop` in walguard-actors, which
    /// `walguard run` calls), after Litestream's config was written; and it
    /// bounds the power-loss exposure while Litestream checkpoints either
    /// way.
    #[must_use]
    pub fn from_settings(checkpoint: &CheckpointSettings) -> Self {
        Self {
            interval: Some(checkpoint.interval),
            size_threshold_frames: (checkpoint.size_threshold_frames > 0)
                .then_some(checkpoint.size_threshold_frames),
        }
    }
}

/// Who runs the checkpoints now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckpointOwner {
    /// walguard: replication is off, or Litestream is down.
    #[default]
    Walguard,
    /// Litestream, healthy: walguard runs no interval, size or shutdown
    /// checkpoint of its own (but the WAL cap).
    Litestream,
}

impl CheckpointOwner {
    /// `walguard` or `litestream`, as logged.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Walguard => "walguard",
            Self::Litestream => "litestream",
        }
    }
}

impl fmt::Display for CheckpointOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
