//! What the writer shares with the threads that talk to it: whether it is
//! shut down or stopped after a panic, its counts, the interrupt handle of
//! its connection, and who runs the checkpoints.
//!
//! The point is that no sender hangs and every answer says what happened,
//! even when the writer itself cannot answer: a handle whose request found
//! the writer gone asks this state why, and a shutdown that passed its
//! deadline interrupts the connection from outside the writer's thread.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use rusqlite::InterruptHandle;

use crate::replication::CheckpointOwner;

/// The state a [`Writer`](super::Writer) shares with its handles, the
/// shutdown and the checkpoint schedule. Cheap to read on every request
/// (atomics; a lock only for the panic message and the interrupt handle).
#[derive(Default)]
pub struct WriterState {
    shut_down: AtomicBool,
    past_deadline: AtomicBool,
    /// Set with `panicked`, so the hot path (every write asks) reads an
    /// atomic, not a lock.
    has_panicked: AtomicBool,
    panicked: Mutex<Option<String>>,
    interrupt: Mutex<Option<InterruptHandle>>,
    writes_acknowledged: AtomicU64,
    writes_failed: AtomicU64,
    /// Who runs the checkpoints: the one home of that fact (see
    /// [`WriterState::set_owner`]).
    owner: AtomicU8,
}

impl std::fmt::Debug for WriterState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterState")
            .field("shut_down", &self.is_shut_down())
            .field("past_deadline", &self.is_past_deadline())
            .field("panicked", &self.panicked())
            .field("writes_acknowledged", &self.writes_acknowledged())
            .field("writes_failed", &self.writes_failed())
            .field("owner", &self.owner())
            .finish_non_exhaustive()
    }
}

const OWNER_WALGUARD: u8 = 0;
const OWNER_LITESTREAM: u8 = 1;

impl WriterState {
    /// The writer's shutdown has completed (or given up): no more requests.
    pub fn set_shut_down(&self) {
        self.shut_down.store(true, Ordering::Release);
    }

    /// Whether the shutdown has completed or given up.
    #[must_use]
    pub fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Acquire)
    }

    /// The shutdown passed its drain deadline: requests still waiting are
    /// answered without being run, and the one running is interrupted.
    pub fn pass_deadline(&self) {
        self.past_deadline.store(true, Ordering::Release);
        if let Some(handle) = &*lock(&self.interrupt) {
            handle.interrupt();
        }
    }

    /// Whether the shutdown passed its drain deadline.
    #[must_use]
    pub fn is_past_deadline(&self) -> bool {
        self.past_deadline.load(Ordering::Acquire)
    }

    /// The writer stopped after a panic of its own, with this message.
    pub(crate) fn set_panicked(&self, message: String) {
        *lock(&self.panicked) = Some(message);
        self.has_panicked.store(true, Ordering::Release);
    }

    /// The message of the panic that stopped the writer, if one did.
    #[must_use]
    pub fn panicked(&self) -> Option<String> {
        if !self.has_panicked.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.panicked).clone()
    }

    /// The handle that interrupts the connection now open.
    pub(crate) fn set_interrupt(&self, handle: Option<InterruptHandle>) {
        *lock(&self.interrupt) = handle;
    }

    /// Counts `ok` acknowledged and `failed` failed writes at once.
    pub(crate) fn count_many(&self, ok: u64, failed: u64) {
        if ok > 0 {
            self.writes_acknowledged.fetch_add(ok, Ordering::Relaxed);
        }
        if failed > 0 {
            self.writes_failed.fetch_add(failed, Ordering::Relaxed);
        }
    }

    /// A write counted acknowledged at its COMMIT whose caller was then
    /// told it is not on the replica (`replication.ack: replicated`).
    pub(crate) fn count_not_replicated(&self) {
        let _ = self
            .writes_acknowledged
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        self.writes_failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Writes (statements, transactions, closures) acknowledged so far.
    #[must_use]
    pub fn writes_acknowledged(&self) -> u64 {
        self.writes_acknowledged.load(Ordering::Relaxed)
    }

    /// Writes that returned an error to their sender so far.
    #[must_use]
    pub fn writes_failed(&self) -> u64 {
        self.writes_failed.load(Ordering::Relaxed)
    }

    /// Who runs the checkpoints now. Read by the interval loop (it stays
    /// quiet while Litestream does) and by the writer (its size threshold
    /// and its shutdown TRUNCATE follow it).
    #[must_use]
    pub fn owner(&self) -> CheckpointOwner {
        match self.owner.load(Ordering::Acquire) {
            OWNER_LITESTREAM => CheckpointOwner::Litestream,
            _ => CheckpointOwner::Walguard,
        }
    }

    /// Hands checkpointing to `owner` (the replication side decides). The
    /// writer applies it before its next round: while Litestream owns
    /// checkpointing, the size checkpoint waits for the WAL cap.
    pub fn set_owner(&self, owner: CheckpointOwner) {
        let value = match owner {
            CheckpointOwner::Walguard => OWNER_WALGUARD,
            CheckpointOwner::Litestream => OWNER_LITESTREAM,
        };
        self.owner.store(value, Ordering::Release);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing that can panic runs under these locks.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
