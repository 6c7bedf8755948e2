//! What [`ReplicationActor`](crate::replication::ReplicationActor) accepts,
//! and what it tells `DbActor`, `CheckpointActor` and `MetricsActor`.

use std::time::Duration;

use actix::Message;
use walguard::replication::Replicated;

/// `ReplicationActor`: the shutdown's replication step: one last sync
/// (bounded by `timeout`), then stop the Litestream walguard started and
/// give checkpointing back to walguard. Answers the final replicated point.
#[derive(Debug, Clone, Copy)]
pub struct FinalSync {
    /// The longest the sync may take.
    pub timeout: Duration,
    /// The longest stopping Litestream may take.
    pub stop_timeout: Duration,
}

impl Message for FinalSync {
    type Result = Replicated;
}

/// `ReplicationActor`: the replicated point now.
#[derive(Debug, Clone, Copy)]
pub struct GetReplicated;

impl Message for GetReplicated {
    type Result = Replicated;
}

/// `ReplicationActor`: kill the Litestream it started, as a crash would
/// (tests of "Litestream killed alone"). It is restarted with backoff.
/// A fault-injection hook: feature `testing`.
#[cfg(feature = "testing")]
#[derive(Debug, Clone, Copy)]
pub struct KillLitestream;

#[cfg(feature = "testing")]
impl Message for KillLitestream {
    type Result = Option<u32>;
}

/// `DbActor`: the first `commits` commits are on the replica (with
/// `ack: replicated`, the replies held for them are sent now). Sent after
/// every sync, answered or not (`None`), so held replies past
/// `replication.max_lag` are answered with an error.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplicatedThrough(pub(crate) Option<u64>);

impl Message for ReplicatedThrough {
    type Result = ();
}

/// `MetricsActor`: the replicated point after a sync, for the live status.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ReplicationSeen(pub(crate) Replicated);

impl Message for ReplicationSeen {
    type Result = ();
}

/// `ReplicationActor`: `DbActor` has paused its writes because the WAL
/// passed the brake while Litestream owns checkpointing; sync now (locally,
/// without waiting for the replica) so that Litestream's checkpoint finds
/// no writer beside it, then answer [`WalBrakeDone`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WalBrake;

impl Message for WalBrake {
    type Result = ();
}

/// `DbActor`: the sync asked for by [`WalBrake`] returned (or failed):
/// writes go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WalBrakeDone;

impl Message for WalBrakeDone {
    type Result = ();
}

/// `DbActor`: where to ask for the brake's sync
/// ([`WalBrake`]), and the WAL size in frames that engages it.
#[derive(Debug, Clone)]
pub(crate) struct SetWalBrake {
    pub(crate) to: actix::Recipient<WalBrake>,
    pub(crate) frames: u32,
}

impl Message for SetWalBrake {
    type Result = ();
}
