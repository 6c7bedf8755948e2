//! Every message the actors accept, one file per actor, all re-exported
//! here (`walguard_actors::messages::Execute`).
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
//! reverse. Engines mostly use [`DbHandle`](crate::DbHandle), which sends
//! the `DbActor` ones and flattens the two error layers (mailbox, database)
//! into one.

mod checkpoint;
mod db;
mod exposure;
mod metrics;
mod replication;

pub use checkpoint::{GetLoopState, InjectFault, LoopState, StartLoop, StopLoop};
pub use db::{
    Call, Checkpoint, Execute, GetDurability, GetWriterStats, InjectPanic, Query, Shutdown,
    ShutdownOutcome, Transaction, WriterStats,
};
pub use exposure::{EndWatch, WatchExposure};
pub use metrics::{
    CheckpointDone, ExposureSeen, ExposureView, Finish, GetReport, GetStatus, Restarted, Status,
    TickSkipped,
};
pub use replication::{
    FinalSync, GetReplicated, KillLitestream, ReplicatedThrough, ReplicationSeen,
    SetCheckpointOwner,
};

pub(crate) use replication::{SetWalBrake, WalBrake, WalBrakeDone};
