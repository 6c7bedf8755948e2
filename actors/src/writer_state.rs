//! What `DbActor` shares with the handles that talk to it and with the
//! shutdown: whether it is shut down or stopped after a panic, its counts,
//! the interrupt handle of its connection, and the shutdown gate.
//!
//! The point is that no sender hangs and every answer says what happened,
//! even when the actor itself cannot answer: a [`DbHandle`](crate::DbHandle)
//! whose request found the mailbox closed asks this state why, and a
//! shutdown that passed its deadline interrupts the connection and closes
//! the gate from outside the actor's thread.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use rusqlite::InterruptHandle;

/// The state shared by `DbActor`, its handles and the shutdown.
#[derive(Default)]
pub(crate) struct WriterState {
    shut_down: AtomicBool,
    past_deadline: AtomicBool,
    /// Set with `panicked`, so the hot path (every write asks) reads an
    /// atomic, not a lock.
    has_panicked: AtomicBool,
    panicked: Mutex<Option<String>>,
    interrupt: Mutex<Option<InterruptHandle>>,
    writes_acknowledged: AtomicU64,
    writes_failed: AtomicU64,
}

impl std::fmt::Debug for WriterState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterState")
            .field("shut_down", &self.is_shut_down())
            .field("past_deadline", &self.is_past_deadline())
            .field("panicked", &self.panicked())
            .field("writes_acknowledged", &self.writes_acknowledged())
            .field("writes_failed", &self.writes_failed())
            .finish_non_exhaustive()
    }
}

impl WriterState {
    /// The writer's shutdown has completed (or given up): no more requests.
    pub(crate) fn set_shut_down(&self) {
        self.shut_down.store(true, Ordering::Release);
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Acquire)
    }

    /// The shutdown passed its drain deadline: requests still waiting are
    /// answered without being run, and the one running is interrupted.
    pub(crate) fn pass_deadline(&self) {
        self.past_deadline.store(true, Ordering::Release);
        if let Some(handle) = &*lock(&self.interrupt) {
            handle.interrupt();
        }
    }

    pub(crate) fn is_past_deadline(&self) -> bool {
        self.past_deadline.load(Ordering::Acquire)
    }

    /// The writer stopped after a panic of its own, with this message.
    pub(crate) fn set_panicked(&self, message: String) {
        *lock(&self.panicked) = Some(message);
        self.has_panicked.store(true, Ordering::Release);
    }

    pub(crate) fn panicked(&self) -> Option<String> {
        if !self.has_panicked.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.panicked).clone()
    }

    /// The handle that interrupts the connection now open.
    pub(crate) fn set_interrupt(&self, handle: Option<InterruptHandle>) {
        *lock(&self.interrupt) = handle;
    }

    pub(crate) fn count(&self, ok: bool) {
        let counter = if ok {
            &self.writes_acknowledged
        } else {
            &self.writes_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `ok` acknowledged and `failed` failed writes at once.
    /// A write counted acknowledged at its COMMIT whose caller was then
    /// told it is not on the replica (`replication.ack: replicated`).
    pub(crate) fn count_not_replicated(&self) {
        let _ = self
            .writes_acknowledged
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        self.writes_failed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_many(&self, ok: u64, failed: u64) {
        if ok > 0 {
            self.writes_acknowledged.fetch_add(ok, Ordering::Relaxed);
        }
        if failed > 0 {
            self.writes_failed.fetch_add(failed, Ordering::Relaxed);
        }
    }

    pub(crate) fn writes_acknowledged(&self) -> u64 {
        self.writes_acknowledged.load(Ordering::Relaxed)
    }

    pub(crate) fn writes_failed(&self) -> u64 {
        self.writes_failed.load(Ordering::Relaxed)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing that can panic runs under these locks.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
