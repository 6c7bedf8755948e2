//! `MetricsActor`: receives every checkpoint result, logs it, keeps the
//! session statistics, and answers the live status.
//!
//! A thin shell over [`walguard::SessionStats`]:
//!
//! - one `tracing` event per checkpoint (target `walguard::checkpoint`), a
//!   rolling window of `metrics.window` samples, and at the end of the
//!   session one `walguard::session` event with the aggregate. If the actor
//!   stops without `Finish` (the system went down), it still emits the
//!   aggregate from `stopped`;
//! - every checkpoint also goes to the [`metrics`] facade
//!   ([`crate::telemetry`]);
//! - the live status ([`GetStatus`]) joins the session so far with what
//!   the exposure watch ([`crate::exposure`]) last saw (`ExposureSeen`).

use actix::{Actor, Context, Handler, MessageResult};
use walguard::SessionStats;

use crate::messages::{
    CheckpointDone, ExposureSeen, ExposureView, Finish, GetReport, Restarted, TickSkipped,
};
use crate::telemetry;

// The exposure watch and its messages had their home here; these keep the
// old paths working.
use crate::messages::{GetStatus, Status};

/// The actor that keeps checkpoint statistics.
#[derive(Debug)]
pub struct MetricsActor {
    stats: SessionStats,
    finished: bool,
    /// What the exposure watch last saw.
    seen: Option<ExposureView>,
    /// What the replication actor last saw.
    replicated: Option<walguard::replication::Replicated>,
    /// The migrations applied at start.
    migrations: Option<walguard::MigrationReport>,
    /// The read pool, whose counts and read times the report carries.
    reads: Option<std::sync::Arc<walguard::read::ReadPool>>,
}

impl MetricsActor {
    /// Statistics with a rolling window of `window` samples.
    #[must_use]
    pub fn new(window: usize) -> Self {
        Self {
            stats: SessionStats::new(window),
            finished: false,
            seen: None,
            replicated: None,
            migrations: None,
            reads: None,
        }
    }

    /// Carries the read pool's counts and read times into the session
    /// report, the status and the read metrics.
    #[must_use]
    pub fn with_reads(mut self, reads: std::sync::Arc<walguard::read::ReadPool>) -> Self {
        self.reads = Some(reads);
        self
    }

    /// Carries what the migrations at start did into the session report.
    #[must_use]
    pub fn with_migrations(mut self, migrations: Option<walguard::MigrationReport>) -> Self {
        self.migrations = migrations;
        self
    }

    /// The session so far, with what the replica holds as the replication
    /// actor last said (its final sync comes before [`Finish`]).
    fn report(&self) -> walguard::SessionReport {
        let mut report = self.stats.report();
        report.replication = self.replicated;
        report.migrations.clone_from(&self.migrations);
        report.reads = self.reads.as_ref().map(|r| r.stats());
        if let Some(reads) = &report.reads {
            telemetry::record_reads(reads);
        }
        report
    }
}

impl Actor for MetricsActor {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Self::Context) {
        if !self.finished {
            self.finished = true;
            self.report().log();
        }
    }
}

impl Handler<CheckpointDone> for MetricsActor {
    type Result = ();

    fn handle(&mut self, msg: CheckpointDone, _: &mut Self::Context) {
        msg.0.log();
        telemetry::record_checkpoint(&msg.0);
        self.stats.record(&msg.0);
    }
}

impl Handler<TickSkipped> for MetricsActor {
    type Result = ();

    fn handle(&mut self, _: TickSkipped, _: &mut Self::Context) {
        tracing::debug!(target: "walguard::checkpoint", "interval tick skipped: a checkpoint is in flight or the tick is a catch-up burst");
        self.stats.record_skipped();
    }
}

impl Handler<Restarted> for MetricsActor {
    type Result = ();

    fn handle(&mut self, _: Restarted, _: &mut Self::Context) {
        self.stats.record_restart();
    }
}

impl Handler<GetReport> for MetricsActor {
    type Result = MessageResult<GetReport>;

    fn handle(&mut self, _: GetReport, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.report())
    }
}

impl Handler<ExposureSeen> for MetricsActor {
    type Result = ();

    fn handle(&mut self, msg: ExposureSeen, _: &mut Self::Context) {
        self.seen = msg.0;
    }
}

impl Handler<crate::messages::ReplicationSeen> for MetricsActor {
    type Result = ();

    fn handle(&mut self, msg: crate::messages::ReplicationSeen, _: &mut Self::Context) {
        self.replicated = Some(msg.0);
    }
}

impl Handler<GetStatus> for MetricsActor {
    type Result = MessageResult<GetStatus>;

    fn handle(&mut self, _: GetStatus, _: &mut Self::Context) -> Self::Result {
        let seen = self.seen.as_ref();
        MessageResult(Status {
            report: self.report(),
            exposure: seen.and_then(|s| s.exposure),
            starving: seen.is_some_and(|s| s.starving),
            starvation_cause: seen.and_then(|s| s.starvation_cause.clone()),
            pinned_by: seen.and_then(|s| s.pinned_by.clone()),
            wal_frames: seen.and_then(|s| s.wal_frames),
            wal_bytes: seen.and_then(|s| s.wal_bytes),
            durability: seen.and_then(|s| s.durability),
            replicated: self.replicated,
        })
    }
}

impl Handler<Finish> for MetricsActor {
    type Result = MessageResult<Finish>;

    fn handle(&mut self, msg: Finish, _: &mut Self::Context) -> Self::Result {
        // The session is over: the status no longer shows a watch.
        self.seen = None;
        let report = self.report().with_db(msg.0);
        if !self.finished {
            self.finished = true;
            report.log();
        }
        MessageResult(report)
    }
}
