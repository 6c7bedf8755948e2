//! `CheckpointActor`: owns the checkpoint schedule, not the connection.
//!
//! # Policy
//!
//! On every tick of an actix `run_interval` (`checkpoint.interval`, default
//! 60 s) it asks [`DbActor`] for a PASSIVE checkpoint; the
//! checkpoint itself runs on the write connection, between transactions,
//! and `DbActor` sends the result to `MetricsActor`.
//!
//! - **Opt-in.** Building the system starts no timer: the loop starts with
//!   [`StartLoop`] (or `checkpoint.enabled`).
//! - **Never two in flight.** A tick that finds a checkpoint still running is
//!   skipped and counted, not queued.
//! - **No catch-up bursts.** `run_interval` schedules from the previous
//!   deadline, so after a stall (a suspended machine, a blocked thread) it
//!   fires the missed ticks back to back. A tick less than half an interval
//!   after the previous checkpoint started is skipped and counted too.
//! - **Faults stop it; the supervisor restarts it.** When `DbActor` does not
//!   answer, or answers with a failed checkpoint (e.g. a broken connection),
//!   or [`InjectFault`] arrives, the actor stops (never panics). Run under
//!   [`actix::Supervisor`], it is restarted: everything spawned in its
//!   context is dropped, the restart is counted, and `started` registers the
//!   interval again, exactly once, **on the same schedule**: the first tick
//!   after a restart comes at the next deadline the loop had before it, so
//!   a restart never costs a tick.
//! - **Busy is not a fault.** A checkpoint that finds another connection's
//!   checkpoint running (Litestream, a backup, the `sqlite3` shell) or a
//!   reader in the way comes back busy or partial: logged and counted, and
//!   the loop goes on.

use std::time::Duration;

use actix::Addr;
use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, SpawnHandle, Supervised,
    WrapFuture,
};
use tokio::time::Instant;
use walguard::{CheckpointMode, CheckpointReason};

use crate::db::DbActor;
use crate::messages::{
    Checkpoint, GetLoopState, InjectFault, LoopState, Restarted, SetCheckpointOwner, StartLoop,
    StopLoop, TickSkipped,
};
use crate::metrics::MetricsActor;

/// The actor that fires interval checkpoints.
#[derive(Debug)]
pub struct CheckpointActor {
    db: Addr<DbActor>,
    metrics: Addr<MetricsActor>,
    interval: Duration,
    enabled: bool,
    in_flight: bool,
    last_started: Option<Instant>,
    timer: Option<SpawnHandle>,
    /// When the loop was armed: ticks are due at `anchor + k * interval`,
    /// across restarts. `None` while the loop is stopped.
    anchor: Option<Instant>,
    /// Litestream owns checkpointing ([`SetCheckpointOwner`]): ticks pass
    /// without a checkpoint (and are not counted as skipped).
    deferred: bool,
}

impl CheckpointActor {
    /// A stopped loop with the given interval. Run it under
    /// [`actix::Supervisor`] so faults lead to a restart.
    #[must_use]
    pub fn new(db: Addr<DbActor>, metrics: Addr<MetricsActor>, interval: Duration) -> Self {
        Self {
            db,
            metrics,
            interval,
            enabled: false,
            in_flight: false,
            last_started: None,
            timer: None,
            deferred: false,
            anchor: None,
        }
    }

    /// Starts with the loop already on (as `checkpoint.enabled` does).
    #[must_use]
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    fn arm(&mut self, ctx: &mut Context<Self>) {
        if self.timer.is_some() {
            return;
        }
        let now = Instant::now();
        let Some(anchor) = self.anchor else {
            self.anchor = Some(now);
            self.timer = Some(ctx.run_interval(self.interval, Self::tick));
            return;
        };
        // After a restart: wait for the deadline the old schedule had next,
        // then go on from there.
        let since = now.saturating_duration_since(anchor).as_nanos();
        let period = self.interval.as_nanos().max(1);
        let next = anchor + self.interval * u32::try_from(since / period + 1).unwrap_or(u32::MAX);
        let wait = next.saturating_duration_since(now);
        self.timer = Some(ctx.run_later(wait, |act, ctx| {
            act.timer = Some(ctx.run_interval(act.interval, Self::tick));
            act.tick(ctx);
        }));
    }

    fn disarm(&mut self, ctx: &mut Context<Self>) {
        if let Some(timer) = self.timer.take() {
            ctx.cancel_future(timer);
        }
        self.anchor = None;
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.deferred {
            return;
        }
        let now = Instant::now();
        let too_soon = self
            .last_started
            .is_some_and(|last| now.saturating_duration_since(last) < self.interval / 2);
        if self.in_flight || too_soon {
            self.metrics.do_send(TickSkipped);
            return;
        }
        self.in_flight = true;
        self.last_started = Some(now);
        let request = self.db.send(Checkpoint {
            mode: CheckpointMode::Passive,
            reason: CheckpointReason::Interval,
        });
        ctx.spawn(request.into_actor(self).map(|reply, act, ctx| {
            act.in_flight = false;
            match reply {
                Ok(report) if report.outcome().is_failure() => {
                    tracing::warn!(
                        target: "walguard::checkpoint",
                        outcome = %report.outcome(),
                        "interval checkpoint failed; stopping the checkpoint actor for a restart"
                    );
                    ctx.stop();
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(
                        target: "walguard::checkpoint",
                        error = %e,
                        "DbActor did not answer; stopping the checkpoint actor for a restart"
                    );
                    ctx.stop();
                }
            }
        }));
    }
}

impl Actor for CheckpointActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Registered here, not in `new`: a restart drops every handle spawned
        // in the context, so `started` is where the interval comes back.
        if self.enabled {
            self.arm(ctx);
        }
    }
}

impl Supervised for CheckpointActor {
    fn restarting(&mut self, _: &mut Self::Context) {
        // The old context's timer and in-flight future are gone.
        self.timer = None;
        self.in_flight = false;
        self.metrics.do_send(Restarted);
        tracing::info!(target: "walguard::checkpoint", "checkpoint actor restarting");
    }
}

impl Handler<StartLoop> for CheckpointActor {
    type Result = ();

    fn handle(&mut self, _: StartLoop, ctx: &mut Self::Context) {
        self.enabled = true;
        self.arm(ctx);
    }
}

impl Handler<StopLoop> for CheckpointActor {
    type Result = ();

    fn handle(&mut self, _: StopLoop, ctx: &mut Self::Context) {
        self.enabled = false;
        self.disarm(ctx);
    }
}

impl Handler<InjectFault> for CheckpointActor {
    type Result = ();

    fn handle(&mut self, msg: InjectFault, ctx: &mut Self::Context) {
        tracing::warn!(target: "walguard::checkpoint", fault = %msg.0, "fault injected; stopping the checkpoint actor");
        ctx.stop();
    }
}

impl Handler<GetLoopState> for CheckpointActor {
    type Result = actix::MessageResult<GetLoopState>;

    fn handle(&mut self, _: GetLoopState, _: &mut Self::Context) -> Self::Result {
        actix::MessageResult(LoopState {
            enabled: self.enabled,
            armed: self.timer.is_some(),
            in_flight: self.in_flight,
            interval: self.interval,
        })
    }
}

impl Handler<SetCheckpointOwner> for CheckpointActor {
    type Result = ();

    fn handle(&mut self, msg: SetCheckpointOwner, _: &mut Self::Context) {
        self.deferred = msg.owner == walguard::replication::CheckpointOwner::Litestream;
    }
}
