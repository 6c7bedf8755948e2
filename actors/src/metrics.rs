//! `MetricsActor`: receives every checkpoint result, logs it, and keeps the
//! session statistics.
//!
//! A thin shell over [`walguard::SessionStats`]: one `tracing` event per
//! checkpoint (target `walguard::checkpoint`), a rolling window of
//! `metrics.window` samples, and at the end of the session one
//! `walguard::session` event with the aggregate. If the actor stops without
//! [`Finish`] (the system went down), it still emits the aggregate from
//! `stopped`.

use actix::{Actor, Context, Handler, MessageResult};
use walguard::SessionStats;

use crate::messages::{CheckpointDone, Finish, GetReport, Restarted, TickSkipped};

/// The actor that keeps checkpoint statistics.
#[derive(Debug)]
pub struct MetricsActor {
    stats: SessionStats,
    finished: bool,
}

impl MetricsActor {
    /// Statistics with a rolling window of `window` samples.
    #[must_use]
    pub fn new(window: usize) -> Self {
        Self {
            stats: SessionStats::new(window),
            finished: false,
        }
    }
}

impl Actor for MetricsActor {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Self::Context) {
        if !self.finished {
            self.finished = true;
            self.stats.report().log();
        }
    }
}

impl Handler<CheckpointDone> for MetricsActor {
    type Result = ();

    fn handle(&mut self, msg: CheckpointDone, _: &mut Self::Context) {
        msg.0.log();
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
        MessageResult(self.stats.report())
    }
}

impl Handler<Finish> for MetricsActor {
    type Result = MessageResult<Finish>;

    fn handle(&mut self, msg: Finish, _: &mut Self::Context) -> Self::Result {
        let report = self.stats.report().with_db(msg.0);
        if !self.finished {
            self.finished = true;
            report.log();
        }
        MessageResult(report)
    }
}
