//! What [`CheckpointActor`](crate::CheckpointActor) accepts: its schedule,
//! and a fault for drills.

use std::time::Duration;

use actix::Message;

/// `CheckpointActor`: start the periodic loop (idempotent: a running loop is
/// left as it is, never doubled).
#[derive(Debug, Clone, Copy)]
pub struct StartLoop;

impl Message for StartLoop {
    type Result = ();
}

/// `CheckpointActor`: stop the periodic loop. A checkpoint already sent to
/// `DbActor` still completes.
#[derive(Debug, Clone, Copy)]
pub struct StopLoop;

impl Message for StopLoop {
    type Result = ();
}

/// `CheckpointActor`: stop as if a fault happened, so the supervisor restarts
/// it. For tests and chaos drills: a fault-injection hook, so only with the
/// `testing` feature.
#[cfg(feature = "testing")]
#[derive(Debug, Clone)]
pub struct InjectFault(pub String);

#[cfg(feature = "testing")]
impl Message for InjectFault {
    type Result = ();
}

/// `CheckpointActor`: its schedule state.
#[derive(Debug, Clone, Copy)]
pub struct GetLoopState;

/// The schedule state of `CheckpointActor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopState {
    /// Whether the loop is on.
    pub enabled: bool,
    /// Whether a timer is registered (at most one ever is).
    pub armed: bool,
    /// Whether a checkpoint is in flight.
    pub in_flight: bool,
    /// The interval.
    pub interval: Duration,
}

impl Message for GetLoopState {
    type Result = LoopState;
}
