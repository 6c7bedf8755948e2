//! `CheckpointActor`: owns the checkpoint schedule, not the connection.
//!
//! # Policy
//!
//! On every tick of an actix `run_interval` (`checkpoint.interval`, default
//! 60 s) it asks `DbActor` for a PASSIVE checkpoint, through its
//! [`DbHandle`] and the lane like every request; the checkpoint itself
//! runs on the write connection, between transactions, and `DbActor` sends
//! the result to `MetricsActor`.
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
//!   or `InjectFault` (feature `testing`) arrives, the actor stops (never panics). Run under
//!   [`actix::Supervisor`], it is restarted: everything spawned in its
//!   context is dropped, the restart is counted, and `started` registers the
//!   interval again, exactly once, **on the same schedule**: the first tick
//!   after a restart comes at the deadline after the last tick that fired
//!   (at once, when it passed during the restart), so a restart never costs
//!   a tick, and each later deadline comes from the previous deadline, so
//!   a restart never shifts the schedule.
//! - **Quiet while Litestream owns checkpointing.** Ticks then pass without
//!   a checkpoint, and are not counted as skipped. Who owns them is read
//!   from the writer's shared state ([`walguard::writer::WriterState::owner`]),
//!   the one home of that fact.
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

use crate::DbHandle;
use crate::messages::{GetLoopState, LoopState, Restarted, StartLoop, StopLoop, TickSkipped};
use crate::metrics::MetricsActor;

/// The actor that fires interval checkpoints.
#[derive(Debug)]
pub struct CheckpointActor {
    db: DbHandle,
    metrics: Addr<MetricsActor>,
    interval: Duration,
    enabled: bool,
    in_flight: bool,
    last_started: Option<Instant>,
    timer: Option<SpawnHandle>,
    /// When the loop was armed: ticks are due at `anchor + k * interval`,
    /// across restarts. `None` while the loop is stopped.
    anchor: Option<Instant>,
    /// The index `k` of the last deadline (`anchor + k * interval`) whose
    /// tick fired; 0 before the first.
    fired: u32,
    /// How the loop comes back after a restart.
    restart: RestartSchedule,
}

/// How [`CheckpointActor`] registers its loop again after a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RestartSchedule {
    /// On the original deadlines (the behaviour).
    Original,
    /// From the first tick after the restart: the negative control of the
    /// restart schedule's test (issue 21 item 8).
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    FromFirstTick,
}

impl CheckpointActor {
    /// A stopped loop with the given interval. Run it under
    /// [`actix::Supervisor`] so faults lead to a restart.
    #[must_use]
    pub fn new(db: DbHandle, metrics: Addr<MetricsActor>, interval: Duration) -> Self {
        Self {
            db,
            metrics,
            interval,
            enabled: false,
            in_flight: false,
            last_started: None,
            timer: None,
            anchor: None,
            fired: 0,
            restart: RestartSchedule::Original,
        }
    }

    /// The negative control of the restart schedule's test (feature
    /// `testing`): after a restart, the interval is registered again from
    /// the first tick, the way it was before issue 21 item 8.
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    #[must_use]
    pub fn restart_schedule_from_first_tick_for_tests(mut self) -> Self {
        self.restart = RestartSchedule::FromFirstTick;
        self
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
        let period = self.interval.as_nanos().max(1);
        // Deadlines of the schedule that have passed by now.
        let passed = u32::try_from(now.saturating_duration_since(anchor).as_nanos() / period)
            .unwrap_or(u32::MAX);
        if self.restart == RestartSchedule::FromFirstTick {
            let next = anchor + self.interval * passed.saturating_add(1);
            let wait = next.saturating_duration_since(now);
            self.timer = Some(ctx.run_later(wait, |act, ctx| {
                act.timer = Some(ctx.run_interval(act.interval, Self::tick));
                act.tick(ctx);
            }));
            return;
        }
        // After a restart: the deadline after the last tick that fired. If
        // it has passed unfired (the fault came at the tick's own instant)
        // it fires at once, so a restart never costs a tick; never more
        // than one (no catch-up burst). Each later deadline comes from the
        // previous deadline (`run_interval_at`), not from the moment a tick
        // fired: tokio's timer wheel fires up to 1 ms after a deadline (it
        // rounds up to its millisecond), and a loop registered again from
        // that moment ran late by as much ever after (issue 21 item 8).
        let next = anchor + self.interval * self.fired.saturating_add(1).max(passed);
        self.timer = Some(ctx.run_interval_at(next, self.interval, Self::tick));
    }

    fn disarm(&mut self, ctx: &mut Context<Self>) {
        if let Some(timer) = self.timer.take() {
            ctx.cancel_future(timer);
        }
        self.anchor = None;
        self.fired = 0;
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if let Some(anchor) = self.anchor {
            // The deadline this tick is for (it fires at or just after it).
            let since = Instant::now().saturating_duration_since(anchor).as_nanos();
            self.fired = u32::try_from(since / self.interval.as_nanos().max(1)).unwrap_or(u32::MAX);
        }
        if self.db.checkpoint_owner() == walguard::replication::CheckpointOwner::Litestream {
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
        let db = self.db.clone();
        let request = async move {
            db.checkpoint_for(CheckpointMode::Passive, CheckpointReason::Interval)
                .await
        };
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

#[cfg(feature = "testing")]
impl Handler<crate::messages::InjectFault> for CheckpointActor {
    type Result = ();

    fn handle(&mut self, msg: crate::messages::InjectFault, ctx: &mut Self::Context) {
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
