//! What [`ExposureWatch`](crate::ExposureWatch) accepts: start and end the
//! watch.

use std::time::Duration;

use actix::Message;
use walguard::Durability;

/// `ExposureWatch`: start watching the exposure, looking every `every`
/// (replaces a running watch).
#[derive(Debug, Clone, Copy)]
pub struct WatchExposure {
    /// How often to look.
    pub every: Duration,
}

impl Message for WatchExposure {
    type Result = ();
}

/// `ExposureWatch`: the session is over; stop looking, and set the exposure
/// gauges from the final durability (`None` when `DbActor` could not say).
#[derive(Debug, Clone, Copy)]
pub(crate) struct EndWatch {
    /// What was durable when the store closed.
    pub(crate) durability: Option<Durability>,
}

impl Message for EndWatch {
    type Result = ();
}
