//! `DbActor`: the actix shell of the one writer.
//!
//! Everything the writer decides is in [`walguard::writer::Writer`]: the
//! group queue, who owns the checkpoints, the size threshold in both its
//! phases, the replica hold, the WAL brake and the counts (its module doc
//! states the policy). `DbActor` drains the lane into it and turns results
//! into replies, nothing more.
//!
//! # One road
//!
//! Every request reaches the writer through the lane (`actors/src/lane.rs`,
//! which says why and how the order is kept): from an engine's
//! [`DbHandle`](crate::DbHandle), from the checkpoint loop, the exposure
//! watch and the replication actor alike, all through their `DbHandle`.
//! Each round of the lane takes the writes queued, up to
//! `database.max_batch`, and commits them as one group as soon as the lane
//! is empty or the group is full; any other request commits the writes
//! before it first. The actor's mailbox carries no request: only the
//! lane's wake-up, the signals of the other actors (the brake's end, phase
//! 1's return, the replica's position) and the shutdown step, all
//! crate-private.
//!
//! The store's calls block, so `DbActor` runs on its own arbiter thread by
//! default ([`Placement`]); a blocking call would
//! otherwise stall every other actor on the same thread.
//!
//! # Backpressure
//!
//! The lane holds `database.mailbox_capacity` requests; a
//! [`DbHandle`](crate::DbHandle) waits while it is full. The up to 256
//! (`TAKE_AT_ONCE` in `actors/src/lane.rs`) the writer has taken off it and
//! not served yet come on top.

use actix::{
    Actor, ArbiterHandle, AsyncContext, Context, Handler, Message, MessageResult, Recipient,
};
use tokio::sync::oneshot;
use walguard::writer::{Braking, WriteReply, Writer};
use walguard::{EngineLock, Store};

use crate::lane::{Lane, Request, Run, Unwired, Wake};
use crate::messages::{CheckpointDone, ReplicatedThrough, SetWalBrake, Shutdown, WalBrake};

pub use walguard::writer::{BRAKE_MAX_PAUSE, BRAKE_THRESHOLD_FACTOR, WriterStats};

/// Where `DbActor` runs.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Placement {
    /// A new arbiter (thread) of its own, stopped at shutdown. The default:
    /// its blocking SQLite calls then stall no other actor.
    #[default]
    OwnArbiter,
    /// The arbiter of the caller. Tests on a paused clock need this: each
    /// arbiter has its own runtime and clock, and a paused runtime jumps
    /// ahead while it waits on another thread.
    Current,
    /// An arbiter of the caller's choice.
    Arbiter(ArbiterHandle),
}

/// A single write's reply channel, as the writer answers it.
#[derive(Debug)]
pub(crate) struct Tx(pub(crate) oneshot::Sender<Result<usize, walguard::Error>>);

impl WriteReply for Tx {
    fn send(self, result: Result<usize, walguard::Error>) {
        // The sender may have given up waiting; nothing to do then.
        let _ = self.0.send(result);
    }
}

/// The actor that owns the only write connection (through its
/// [`Writer`]).
#[derive(Debug)]
pub struct DbActor {
    writer: Writer<Tx>,
    lane: Lane<DbActor>,
    /// The lane's sending end, until the actor starts and its address is
    /// known.
    unwired: Option<Unwired<DbActor>>,
    mailbox_capacity: usize,
    /// Where the WAL brake asks for its sync ([`SetWalBrake`]).
    brake_to: Option<Recipient<WalBrake>>,
}

/// How a round of the lane ended ([`DbActor::serve_lane`]).
enum Round {
    /// The group reached `max_batch`.
    Full,
    /// A request that is not a single write came next.
    Other(Run<DbActor>),
    /// The lane is empty.
    Empty,
}

impl DbActor {
    /// Wraps an open store; checkpoint reports go to `reports` when given.
    /// Group commit, its cap and the lane's capacity come from the store's
    /// settings (`database.group_commit`, `database.max_batch`,
    /// `database.mailbox_capacity`). Start it with [`DbActor::spawn`].
    #[must_use]
    pub fn new(store: Store, reports: Option<Recipient<CheckpointDone>>) -> Self {
        let capacity = store.settings().mailbox_capacity.max(1);
        let (unwired, lane) = crate::lane::lane(capacity);
        Self {
            writer: Writer::new(store).on_count(Box::new(crate::telemetry::record_writes)),
            lane,
            unwired: Some(unwired),
            mailbox_capacity: capacity,
            brake_to: None,
        }
        .with_reports(reports.into_iter().collect())
    }

    /// Sends every checkpoint report to `reports`.
    #[must_use]
    pub(crate) fn with_reports(self, reports: Vec<Recipient<CheckpointDone>>) -> Self {
        self.map_writer(|w| {
            w.on_checkpoint(Box::new(move |report| {
                for to in &reports {
                    to.do_send(CheckpointDone(report.clone()));
                }
            }))
        })
    }

    /// Holds `lock` as long as the store is open.
    #[must_use]
    pub(crate) fn with_engine_lock(self, lock: EngineLock) -> Self {
        self.map_writer(|w| w.with_engine_lock(lock))
    }

    /// Changes the writer (the system's settings: state, hold, WAL cap).
    #[must_use]
    pub(crate) fn map_writer(self, f: impl FnOnce(Writer<Tx>) -> Writer<Tx>) -> Self {
        Self {
            writer: f(self.writer),
            ..self
        }
    }

    /// The lane's sending end, once: to be wired to the actor's address.
    pub(crate) fn take_unwired(&mut self) -> Option<Unwired<DbActor>> {
        self.unwired.take()
    }

    /// The writer, for a request taken off the lane.
    pub(crate) fn writer(&mut self) -> &mut Writer<Tx> {
        &mut self.writer
    }

    /// One round of the lane: the single writes queued, up to
    /// `max_batch`, committed as one group once the lane is empty or the
    /// group is full; or one other request (which commits the writes
    /// before it first). Returns whether another round is due now.
    fn serve_lane(&mut self, ctx: &mut Context<Self>) -> bool {
        match self.writer.braking(std::time::Instant::now()) {
            Braking::No => {}
            // The lane stays scheduled: the brake's end wakes it.
            Braking::Waiting => return false,
            Braking::Engaged => {
                if let Some(to) = &self.brake_to {
                    to.do_send(WalBrake);
                }
                // Let go after the longest pause, whatever the sync does.
                ctx.run_later(BRAKE_MAX_PAUSE, |_, ctx| ctx.notify(Wake));
                return false;
            }
        }
        if self.writer.one_by_one() {
            return self.serve_one_by_one(ctx);
        }
        let ended = loop {
            if self.writer.is_full() {
                break Round::Full;
            }
            match self.lane.next() {
                Some(Request::Execute { stmt, reply }) => self.writer.accept(stmt, Tx(reply)),
                Some(Request::Other(run)) => break Round::Other(run),
                None => break Round::Empty,
            }
        };
        match ended {
            Round::Full => {
                self.writer.flush();
                true
            }
            // Every request commits the writes queued before it first.
            Round::Other(run) => {
                run(self, ctx);
                true
            }
            Round::Empty => {
                self.writer.flush();
                self.lane.idle()
            }
        }
    }

    /// A round without group commit (or after a panic): each write is
    /// answered as it comes, at most `max_batch` per round, so the mailbox
    /// gets its turn between rounds.
    fn serve_one_by_one(&mut self, ctx: &mut Context<Self>) -> bool {
        for _ in 0..self.writer.max_batch() {
            match self.lane.next() {
                Some(Request::Execute { stmt, reply }) => self.writer.accept(stmt, Tx(reply)),
                Some(Request::Other(run)) => {
                    run(self, ctx);
                    return true;
                }
                None => {
                    self.writer.flush();
                    return self.lane.idle();
                }
            }
        }
        true
    }

    /// Serves every request the lane holds, after closing it: the
    /// shutdown's and the end's (later requests are refused and their
    /// senders told the writer is gone).
    fn drain_lane(&mut self, ctx: &mut Context<Self>) {
        // The end serves what is left without pausing for the WAL.
        self.writer.drop_brake();
        self.lane.close();
        while !self.lane.is_empty() {
            self.serve_lane(ctx);
        }
    }
}

impl Actor for DbActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(self.mailbox_capacity);
        // Phase 2 of a two-phase size checkpoint runs as soon as phase 1
        // returned, even if no write comes: phase 1's thread wakes the
        // writer. A weak address, so the store does not keep its own actor
        // alive.
        let me = ctx.address().downgrade();
        self.writer.set_backfill_waker(move || {
            if let Some(me) = me.upgrade() {
                me.do_send(BackfillReturned);
            }
        });
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        // Writes queued when the actor stops without `Shutdown` (every
        // address dropped) are committed and answered, not dropped.
        self.drain_lane(ctx);
        self.writer.finish();
    }
}

impl Handler<Wake> for DbActor {
    type Result = ();

    fn handle(&mut self, _: Wake, ctx: &mut Self::Context) {
        if self.serve_lane(ctx) {
            // After the messages already in the mailbox (see crate::lane).
            ctx.notify(Wake);
        }
    }
}

/// Sent by phase 1 of a two-phase size checkpoint, from its own thread,
/// once it returned: the writer then runs phase 2 between two groups.
struct BackfillReturned;

impl Message for BackfillReturned {
    type Result = ();
}

impl Handler<BackfillReturned> for DbActor {
    type Result = ();

    fn handle(&mut self, _: BackfillReturned, _: &mut Self::Context) {
        self.writer.backfill_returned();
    }
}

impl Handler<Shutdown> for DbActor {
    type Result = MessageResult<Shutdown>;

    fn handle(&mut self, msg: Shutdown, ctx: &mut Self::Context) -> Self::Result {
        use actix::ActorContext as _;

        // Requests refused from here on are told "shut down" (not "mailbox
        // closed"), also while the drain below still runs.
        self.writer.state().set_shut_down();
        // Every request the lane accepted before the shutdown is served,
        // and answered before the summary counts it.
        self.drain_lane(ctx);
        // The readers close beside the drain; the TRUNCATE comes after.
        if let Some((closed, wait)) = msg.readers_closed
            && closed.recv_timeout(wait).is_err()
        {
            tracing::warn!(target: "walguard::db", "the read pool did not close in time; the TRUNCATE runs anyway");
        }
        let outcome = self.writer.shutdown(msg.deadline);
        ctx.stop();
        MessageResult(outcome)
    }
}

impl Handler<SetWalBrake> for DbActor {
    type Result = ();

    fn handle(&mut self, msg: SetWalBrake, _: &mut Self::Context) {
        // The negative control of the brake's test (feature `testing`).
        #[cfg(feature = "testing")]
        if std::env::var_os("WALGUARD_TEST_NO_WAL_BRAKE").is_some_and(|v| v == "1") {
            return;
        }
        self.writer.set_brake(msg.frames);
        self.brake_to = Some(msg.to);
    }
}

impl Handler<crate::messages::WalBrakeDone> for DbActor {
    type Result = ();

    fn handle(&mut self, _: crate::messages::WalBrakeDone, ctx: &mut Self::Context) {
        if self.writer.brake_done() {
            ctx.notify(Wake);
        }
    }
}

impl Handler<ReplicatedThrough> for DbActor {
    type Result = ();

    fn handle(&mut self, msg: ReplicatedThrough, _: &mut Self::Context) {
        self.writer.replicated_through(msg.0);
    }
}
