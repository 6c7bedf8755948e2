//! The request lane: how a [`DbHandle`](crate::DbHandle) reaches
//! `DbActor` without paying actix's envelope per request.
//!
//! An actix message costs a boxed envelope, a reply channel and a trip
//! through the actor's mailbox machinery; measured alone
//! (`bench_walguard --extra mailbox-floor`, docs/benchmarks.md), that is
//! most of what a single write cost above a hand-written batching writer.
//! The lane is a bounded channel the actor drains: a request is one channel
//! slot and, for a write, one reply channel, as in the hand-written writer.
//! The actor hears about the lane through one actix message, [`Wake`], sent
//! only when the lane goes from idle to busy (a flag, [`Lane::scheduled`]),
//! so a busy writer gets one wake per round, not one per request.
//!
//! # Order
//!
//! **Every** request takes the lane, from an engine's handle and from the
//! other actors' alike: writes, transactions, queries, closures,
//! checkpoints, durability, figures. It is the only road to the writer.
//! Requests are handled in the order they were accepted, and a request
//! that is not a single write commits the writes queued before it first.
//! The actor's mailbox carries only crate-private signals (this lane's
//! [`Wake`], the replica's position, the WAL brake's end, phase 1's return)
//! and the shutdown step, which handles every request the lane accepted
//! before it, then closes the lane: later requests are answered
//! [`Error::ShutDown`](crate::Error::ShutDown).
//!
//! # Bound
//!
//! The channel holds `database.mailbox_capacity` requests; a sender waits
//! while it is full. The writer takes up to [`TAKE_AT_ONCE`] off it at a
//! time, which frees their slots: while it serves them, at most
//! `mailbox_capacity + TAKE_AT_ONCE - 1` requests are waiting in all.
//!
//! # Fairness
//!
//! The actor handles at most one round per [`Wake`] (one group commit of
//! at most `database.max_batch` writes, or one other request) and then
//! schedules the next round with `ctx.notify`, which actix runs after the
//! messages already in its mailbox: a busy lane never starves the
//! replication actor's signals or the shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix::dev::ToEnvelope;
use actix::{Actor, Handler, Message, Recipient};
use tokio::sync::{mpsc, oneshot};
use walguard::Statement;

/// A request other than a single write, run against the actor `A`; it
/// answers its sender itself.
pub(crate) type Run<A> = Box<dyn FnOnce(&mut A, &mut <A as Actor>::Context) + Send>;

/// One request on the lane, for an actor `A`.
pub(crate) enum Request<A: Actor> {
    /// A single write, answered once the group commit that holds it has
    /// returned. Kept unboxed: it is the hot path.
    Execute {
        stmt: Statement,
        reply: oneshot::Sender<Result<usize, walguard::Error>>,
    },
    /// Any other request: run against the actor, between two rounds of
    /// writes, and answered by the closure itself.
    Other(Run<A>),
}

impl<A: Actor> std::fmt::Debug for Request<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Execute { stmt, .. } => f.debug_tuple("Execute").field(stmt).finish(),
            Self::Other(_) => f.write_str("Other(<request>)"),
        }
    }
}

/// Tells the actor that its lane has requests. Sent by a sender that found
/// the lane idle, and by the actor to itself for its next round.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wake;

impl Message for Wake {
    type Result = ();
}

/// What both ends share: whether a [`Wake`] is pending or a round is
/// running.
#[derive(Debug, Default)]
struct Shared {
    scheduled: AtomicBool,
}

/// The sending end, held by every [`DbHandle`](crate::DbHandle) of a
/// system.
pub(crate) struct LaneSender<A: Actor> {
    tx: mpsc::Sender<Request<A>>,
    shared: Arc<Shared>,
    wake: Recipient<Wake>,
}

impl<A: Actor> Clone for LaneSender<A> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            shared: Arc::clone(&self.shared),
            wake: self.wake.clone(),
        }
    }
}

impl<A: Actor> std::fmt::Debug for LaneSender<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaneSender")
            .field("capacity", &self.tx.max_capacity())
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

/// The lane is closed: the actor shut down or is gone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Closed;

impl<A: Actor> LaneSender<A> {
    /// Queues `request`, waiting while the lane is full (the backpressure
    /// of `database.mailbox_capacity`), and wakes the actor if the lane was
    /// idle.
    pub(crate) async fn send(&self, request: Request<A>) -> Result<(), Closed> {
        self.tx.send(request).await.map_err(|_| Closed)?;
        if !self.shared.scheduled.swap(true, Ordering::SeqCst) {
            // `do_send`: at most one wake is ever pending, so the mailbox
            // capacity does not need to hold it back.
            self.wake.do_send(Wake);
        }
        Ok(())
    }
}

impl<A: Actor> LaneSender<A> {
    /// As [`LaneSender::send`], without waiting: refused (the request
    /// given back) while the lane is full or closed.
    #[cfg(feature = "testing")]
    pub(crate) fn try_send(&self, request: Request<A>) -> Result<(), Request<A>> {
        self.tx.try_send(request).map_err(|e| match e {
            mpsc::error::TrySendError::Full(r) | mpsc::error::TrySendError::Closed(r) => r,
        })?;
        if !self.shared.scheduled.swap(true, Ordering::SeqCst) {
            self.wake.do_send(Wake);
        }
        Ok(())
    }

    /// As [`LaneSender::send`], from a thread outside any async runtime
    /// (the open-loop benchmark's generator), blocking while the lane is
    /// full. Called inside a runtime it would panic (tokio's rule), so it
    /// exists only for the benchmark.
    #[cfg(feature = "bench")]
    pub(crate) fn send_from_thread(&self, request: Request<A>) -> Result<(), Closed> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Closed);
        }
        self.tx.blocking_send(request).map_err(|_| Closed)?;
        if !self.shared.scheduled.swap(true, Ordering::SeqCst) {
            self.wake.do_send(Wake);
        }
        Ok(())
    }
}

/// The receiving end, owned by the actor.
pub(crate) struct Lane<A: Actor> {
    rx: mpsc::Receiver<Request<A>>,
    shared: Arc<Shared>,
    /// Requests taken off the channel in one go and not served yet, in
    /// order. Taking them [`TAKE_AT_ONCE`] at a time frees their channel
    /// slots with one lock of the channel's semaphore, where one
    /// `try_recv` per request takes it each time.
    taken: std::collections::VecDeque<Request<A>>,
    fill: Vec<Request<A>>,
}

/// Most requests [`Lane::next`] takes off the channel at once: 256.
pub(crate) const TAKE_AT_ONCE: usize = 256;

impl<A: Actor> std::fmt::Debug for Lane<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lane")
            .field("queued", &(self.rx.len() + self.taken.len()))
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

/// The sending end before it knows whom to wake: the actor's address
/// exists only once the actor that owns the [`Lane`] has been started.
pub(crate) struct Unwired<A: Actor> {
    tx: mpsc::Sender<Request<A>>,
    shared: Arc<Shared>,
}

impl<A: Actor> std::fmt::Debug for Unwired<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unwired").finish_non_exhaustive()
    }
}

impl<A: Actor> Unwired<A> {
    /// The sending end, waking the actor at `addr`.
    pub(crate) fn wake<W>(self, addr: &actix::Addr<W>) -> LaneSender<A>
    where
        W: Actor + Handler<Wake>,
        W::Context: ToEnvelope<W, Wake>,
    {
        LaneSender {
            tx: self.tx,
            shared: self.shared,
            wake: addr.clone().recipient(),
        }
    }
}

/// Makes a lane of `capacity` requests (at least 1).
pub(crate) fn lane<A: Actor>(capacity: usize) -> (Unwired<A>, Lane<A>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let shared = Arc::<Shared>::default();
    (
        Unwired {
            tx,
            shared: Arc::clone(&shared),
        },
        Lane {
            rx,
            shared,
            taken: std::collections::VecDeque::new(),
            fill: Vec::new(),
        },
    )
}

impl<A: Actor> Lane<A> {
    /// The next request, if one is queued.
    pub(crate) fn next(&mut self) -> Option<Request<A>> {
        if self.taken.is_empty() {
            self.take();
        }
        self.taken.pop_front()
    }

    /// Takes up to [`TAKE_AT_ONCE`] requests off the channel without
    /// waiting. Polled once with a waker that does nothing (the actor
    /// hears of new requests through [`Wake`], not through the channel),
    /// outside tokio's task budget, which would otherwise answer "not
    /// ready" to a busy actor and leave requests behind.
    fn take(&mut self) {
        use std::future::Future as _;

        let (rx, fill) = (&mut self.rx, &mut self.fill);
        let poll = std::pin::pin!(tokio::task::unconstrained(std::future::poll_fn(|cx| {
            rx.poll_recv_many(cx, fill, TAKE_AT_ONCE)
        })));
        let _ = poll.poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
        self.taken.extend(self.fill.drain(..));
    }

    /// Called at the end of a round that found the lane empty: clears the
    /// flag, then says whether a request slipped in meanwhile (its sender
    /// saw the flag still set and sent no wake), in which case the caller
    /// must schedule the next round itself. The flag is then set again.
    pub(crate) fn idle(&self) -> bool {
        self.shared.scheduled.store(false, Ordering::SeqCst);
        !self.is_empty() && !self.shared.scheduled.swap(true, Ordering::SeqCst)
    }

    /// Whether no request is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.taken.is_empty() && self.rx.is_empty()
    }

    /// Refuses new requests; those already queued can still be taken.
    pub(crate) fn close(&mut self) {
        self.rx.close();
    }
}
