//! What [`DbActor`](crate::DbActor)'s mailbox accepts: the shutdown step
//! only (crate-private). Requests go through [`DbHandle`](crate::DbHandle)
//! and the lane, never the mailbox.

use std::time::Duration;

use actix::Message;

pub use walguard::writer::{ShutdownOutcome, WriterStats};

/// `DbActor`: the clean-shutdown step. Every request the lane accepted
/// before it is served; then a TRUNCATE checkpoint runs under `deadline`,
/// the connection closes, and the actor stops.
#[derive(Debug)]
pub(crate) struct Shutdown {
    /// Hard deadline of the TRUNCATE checkpoint.
    pub(crate) deadline: Duration,
    /// The read pool's close, running beside the drain: the TRUNCATE waits
    /// for its signal (at most this long), so no reader of ours holds the
    /// WAL then.
    pub(crate) readers_closed: Option<(std::sync::mpsc::Receiver<()>, Duration)>,
}

impl Message for Shutdown {
    type Result = ShutdownOutcome;
}
