//! The syncs and the replicated point: every tick asks `DbActor` for its
//! commit count and, when a sync is due (or commits wait under `ack:
//! replicated`), asks Litestream to sync and wait; the answer moves the
//! replicated point, the checkpoint owner and the lag.

use actix::{ActorFutureExt, AsyncContext, Context, WrapFuture};
use tokio::time::Instant;
use walguard::replication::{CheckpointOwner, LagEvent};
use walguard::settings::{AckMode, format_duration};

use super::control::SyncAnswer;
use super::{
    FAILED_SYNCS_BEFORE_TAKEOVER, Process, RESTART_BACKOFF_MIN, ReplicationActor, SYNC_TIMEOUT,
};
use crate::error::ReplicationError;
use crate::messages::ReplicationSeen;

impl ReplicationActor {
    pub(super) fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.stopped {
            return;
        }
        self.supervise();
        self.observe_lag();
        // The local counts at every tick, so the lag starts counting within
        // a tick of a commit the replica lacks (not at the next sync).
        self.look(ctx);
        if self.in_flight || !self.litestream_running() {
            // No sync will tell the commits made meanwhile: look at them,
            // so the lag (and its warning, and the gauge) keeps growing
            // while Litestream is down or a sync hangs. Replies held for
            // the replica past `max_lag` are answered (not replicated)
            // even while no sync answers: a sync can hang for its whole
            // timeout (the S3 server gone).
            self.db.replicated_through(None);
            return;
        }
        let due = self
            .last_sync
            .is_none_or(|at| at.elapsed() >= self.settings.sync_period);
        let ack = self.settings.ack == AckMode::Replicated;
        if !due && !ack {
            return;
        }
        self.in_flight = true;
        if due {
            // Periods run from the start of a sync, not from its answer.
            self.last_sync = Some(Instant::now());
        }
        let db = self.db.clone();
        let client = self.client.clone();
        let path = self.files.db.clone();
        let replicated = self.tracker.replicated(std::time::Instant::now()).commits;
        let work = async move {
            let durability = db.durability().await.ok().flatten()?;
            // Under ack: replicated, between periods, sync only when
            // commits wait for the replica.
            if !due && durability.commits() <= replicated {
                return None;
            }
            let started = std::time::Instant::now();
            let answer = client.sync(&path, SYNC_TIMEOUT).await;
            Some((durability, started, answer))
        };
        ctx.spawn(work.into_actor(self).map(|result, act, _| {
            act.in_flight = false;
            if let Some((durability, started, answer)) = result {
                act.answered(durability, started, answer);
            }
        }));
    }

    /// Asks `DbActor` for its commit count (one question at a time), for
    /// the lag while no sync answers.
    pub(super) fn look(&mut self, ctx: &mut Context<Self>) {
        if self.looking {
            return;
        }
        self.looking = true;
        let db = self.db.clone();
        let ask = async move { db.durability().await.ok().flatten() };
        ctx.spawn(ask.into_actor(self).map(|durability, act, _| {
            act.looking = false;
            if let Some(d) = durability {
                act.tracker
                    .see_local(d.commits(), d.writes(), std::time::Instant::now());
                act.observe_lag();
                act.publish();
            }
        }));
    }

    pub(super) fn answered(
        &mut self,
        durability: walguard::Durability,
        started: std::time::Instant,
        answer: Result<SyncAnswer, ReplicationError>,
    ) {
        let ticket = self
            .tracker
            .begin(durability.commits(), durability.writes(), started);
        match answer {
            Ok(answer) if answer.is_replicated() => {
                self.tracker.synced(ticket);
                self.failed_in_a_row = 0;
                if self.last_error.take().is_some() {
                    tracing::info!(target: "walguard::replication", "litestream syncs again");
                }
                if let Process::Managed { backoff, .. } = &mut self.process {
                    *backoff = RESTART_BACKOFF_MIN;
                }
                self.set_owner(CheckpointOwner::Litestream, "it answers its syncs");
                self.db.replicated_through(Some(ticket.commits()));
            }
            other => {
                let error = match other {
                    Ok(answer) => format!("unexpected sync status {:?}", answer.status),
                    Err(e) => e.to_string(),
                };
                self.tracker.failed();
                self.failed_in_a_row += 1;
                crate::telemetry::record_sync_failure();
                if self.last_error.as_deref() != Some(error.as_str()) {
                    tracing::warn!(target: "walguard::replication", error = %error, failed_in_a_row = self.failed_in_a_row, "sync to the replica failed");
                    self.last_error = Some(error);
                }
                if self.failed_in_a_row >= FAILED_SYNCS_BEFORE_TAKEOVER {
                    self.set_owner(CheckpointOwner::Walguard, "litestream's syncs fail");
                }
                self.db.replicated_through(None);
            }
        }
        self.publish();
    }

    pub(super) fn observe_lag(&mut self) {
        match self.tracker.observe(std::time::Instant::now()) {
            Some(LagEvent::Started { lag, commits }) => tracing::warn!(
                target: "walguard::replication",
                lag_s = walguard::settings::duration_s(lag),
                commits,
                max_lag = %format_duration(self.settings.max_lag),
                "the replica lags more than replication.max_lag; a machine loss now would take these commits"
            ),
            Some(LagEvent::Ended { lasted }) => tracing::info!(
                target: "walguard::replication",
                lasted_s = walguard::settings::duration_s(lasted),
                "the replica caught up"
            ),
            _ => {}
        }
    }

    pub(super) fn publish(&self) {
        let replicated = self.tracker.replicated(std::time::Instant::now());
        crate::telemetry::record_replicated(&replicated);
        if let Some(metrics) = &self.metrics {
            metrics.do_send(ReplicationSeen(replicated));
        }
    }
}
