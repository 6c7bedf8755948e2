//! Pausing the pool around the writer's reopen after a checkpoint I/O
//! error, which needs every other connection to the database closed.

use std::sync::PoisonError;
use std::time::Instant;

use super::{READ_PAUSE_TIMEOUT, ReadPool};
use crate::error::{Error, Result};

impl ReadPool {
    /// Pauses the pool for the writer's reopen after a checkpoint I/O
    /// error (see "Failed fsync" in the
    /// [checkpoint policy](crate::checkpoint)), which needs every other
    /// connection to the database closed: interrupts the reads running
    /// (their callers get [`Error::ReadPausedForReopen`]; a read cannot be
    /// run twice, since its closure may have done anything outside SQLite),
    /// holds the reads submitted from now on in the queue, and waits up to
    /// [`READ_PAUSE_TIMEOUT`] for every lane to close its connection.
    /// [`ReadPool::resume`] opens them again and serves the reads held.
    /// A closed pool has no connection to close: `Ok` at once.
    ///
    /// # Errors
    ///
    /// [`Error::ReadersBusy`] when a connection is still open after
    /// [`READ_PAUSE_TIMEOUT`] (a closure busy outside SQLite): the pool is
    /// resumed at once, nothing stays paused.
    pub fn pause(&self) -> Result<()> {
        let start = Instant::now();
        let mut state = self.shared.lock();
        if state.closing && state.lanes.iter().all(|l| l.exited) {
            return Ok(());
        }
        state.paused = true;
        for lane in &mut state.lanes {
            if let Some(running) = lane.running.as_mut() {
                running.paused = true;
                running.interrupt();
            }
        }
        self.shared.work.notify_all();
        let deadline = start + READ_PAUSE_TIMEOUT;
        loop {
            let left = state
                .lanes
                .iter()
                .filter(|l| !(l.paused || l.exited))
                .count();
            if left == 0 {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                drop(state);
                self.resume();
                return Err(Error::ReadersBusy {
                    path: self.shared.path.clone(),
                    left,
                    waited: start.elapsed(),
                });
            }
            state = self
                .shared
                .ended
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Ends a [`ReadPool::pause`]: each lane opens its connection again
    /// (read-only, as [`ReadPool::open`] does) and serves the reads held
    /// meanwhile, in order. Returns once every lane has opened its
    /// connection (or [`READ_PAUSE_TIMEOUT`] has passed), so that no
    /// open's own brief read (it checks the journal mode) overlaps what
    /// the caller does next, such as a checkpoint. A lane whose connection
    /// cannot be opened again tries again at its next read, whose caller
    /// gets the error.
    pub fn resume(&self) {
        let deadline = Instant::now() + READ_PAUSE_TIMEOUT;
        let mut state = self.shared.lock();
        state.paused = false;
        self.shared.work.notify_all();
        while state
            .lanes
            .iter()
            .any(|l| !l.exited && (l.paused || l.reopening))
        {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = self
                .shared
                .ended
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// The writer's reopen after a checkpoint I/O error pauses the pool
/// ([`Store::attach_readers`](crate::Store::attach_readers)).
impl crate::store::PausableReaders for ReadPool {
    fn pause(&self) -> Result<()> {
        ReadPool::pause(self)
    }

    fn resume(&self) {
        ReadPool::resume(self);
    }
}
