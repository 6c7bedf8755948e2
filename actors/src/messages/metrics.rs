//! What [`MetricsActor`](crate::MetricsActor) accepts: every checkpoint
//! result and schedule event, what the exposure watch saw, and the report
//! and live status.

use actix::Message;
use walguard::exposure::{Exposure, StarvationCause};
use walguard::stats::DbSummary;
use walguard::{CheckpointReport, Durability, SessionReport};

/// `MetricsActor`: one checkpoint result. Sent by `DbActor` for every
/// checkpoint it runs, whatever asked for it.
#[derive(Debug, Clone)]
pub struct CheckpointDone(pub CheckpointReport);

impl Message for CheckpointDone {
    type Result = ();
}

/// `MetricsActor`: an interval tick was skipped.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TickSkipped;

impl Message for TickSkipped {
    type Result = ();
}

/// `MetricsActor`: the checkpoint actor was restarted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Restarted;

impl Message for Restarted {
    type Result = ();
}

/// `MetricsActor`: the report so far, without ending the session.
#[derive(Debug, Clone, Copy)]
pub struct GetReport;

impl Message for GetReport {
    type Result = SessionReport;
}

/// `MetricsActor`: end the session: emit the end-of-session event once and
/// answer the final report.
#[derive(Debug, Clone)]
pub(crate) struct Finish(pub(crate) DbSummary);

impl Message for Finish {
    type Result = SessionReport;
}

/// `MetricsActor`: what the exposure watch saw at its last look, for the
/// live status (`None`: no look yet, or the watch ended). Sent by
/// [`ExposureWatch`](crate::ExposureWatch) after every look.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ExposureSeen(pub(crate) Option<ExposureView>);

impl Message for ExposureSeen {
    type Result = ();
}

/// One look of the exposure watch.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ExposureView {
    /// The exposure (`None` until `DbActor` has answered with a durability).
    pub exposure: Option<Exposure>,
    /// Whether a starvation episode is going on.
    pub starving: bool,
    /// While commits are exposed: why no checkpoint has caught up since
    /// (what a starvation warning names).
    pub starvation_cause: Option<StarvationCause>,
    /// While checkpoints come back partial or busy: what pins the WAL,
    /// walguard's own oldest read (its connection, SQL text or `closure`,
    /// age) or a connection outside walguard (none of ours runs).
    pub pinned_by: Option<String>,
    /// Frames in the WAL.
    pub wal_frames: Option<i64>,
    /// Size of the `-wal` file (0 when absent).
    pub wal_bytes: Option<u64>,
    /// Durability.
    pub durability: Option<Durability>,
}

/// `MetricsActor`: everything a live status display needs, in one answer.
#[derive(Debug, Clone, Copy)]
pub struct GetStatus;

impl Message for GetStatus {
    type Result = Status;
}

/// The live status: the session so far, and what the exposure watch last
/// saw (all `None` before its first look, or without a watch).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Status {
    /// Checkpoint counts, the window aggregate, the last checkpoint.
    pub report: SessionReport,
    /// The exposure at the last look.
    pub exposure: Option<Exposure>,
    /// Whether a starvation episode is going on.
    pub starving: bool,
    /// While commits are exposed: why no checkpoint has caught up since
    /// (what a starvation warning names).
    pub starvation_cause: Option<StarvationCause>,
    /// While checkpoints come back partial or busy: what pins the WAL,
    /// walguard's own oldest read (its connection, SQL text or `closure`,
    /// age) or a connection outside walguard (none of ours runs).
    pub pinned_by: Option<String>,
    /// Frames in the WAL at the last look.
    pub wal_frames: Option<i64>,
    /// Size of the `-wal` file at the last look (0 when absent).
    pub wal_bytes: Option<u64>,
    /// Durability at the last look.
    pub durability: Option<Durability>,
    /// What the replica holds, after the last sync (`None` with
    /// replication off, or before the first answer).
    pub replicated: Option<walguard::replication::Replicated>,
}
