//! Every message the actors accept, one file per actor; the public ones
//! are re-exported here (`walguard_actors::messages::StartLoop`).
//!
//! | file | actor |
//! |---|---|
//! | `messages/db.rs` | [`DbActor`](crate::DbActor) |
//! | `messages/checkpoint.rs` | [`CheckpointActor`](crate::CheckpointActor) |
//! | `messages/metrics.rs` | [`MetricsActor`](crate::MetricsActor) |
//! | `messages/exposure.rs` | [`ExposureWatch`](crate::ExposureWatch) |
//! | `messages/replication.rs` | [`ReplicationActor`](crate::replication::ReplicationActor), and what it tells the others |
//!
//! Messages name no actor type: the actors depend on them, never the
//! reverse. Public are the messages an engine sends and the answers it
//! reads; the ones the actors tell each other are crate-private. `DbActor`
//! takes no request by message: engines and actors alike go through
//! [`DbHandle`](crate::DbHandle) and its lane.

mod checkpoint;
mod db;
mod exposure;
mod metrics;
mod replication;

#[cfg(feature = "testing")]
pub use checkpoint::InjectFault;
pub use checkpoint::{GetLoopState, LoopState, StartLoop, StopLoop};
pub use db::{ShutdownOutcome, WriterStats};
pub use exposure::WatchExposure;
pub use metrics::{CheckpointDone, ExposureView, GetReport, GetStatus, Status};
#[cfg(feature = "testing")]
pub use replication::KillLitestream;
pub use replication::{FinalSync, GetReplicated};

pub(crate) use db::Shutdown;
pub(crate) use exposure::EndWatch;
pub(crate) use metrics::{ExposureSeen, Finish, Restarted, TickSkipped};
pub(crate) use replication::{
    ReplicatedThrough, ReplicationSeen, SetWalBrake, WalBrake, WalBrakeDone,
};
