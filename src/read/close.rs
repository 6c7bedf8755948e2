//! Closing the pool at shutdown: queued reads refused, running ones given
//! a budget, then interrupted, then the connections closed.

use std::collections::VecDeque;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use super::shared::{Queued, Turn};
use super::{READ_CLOSE_GRACE, ReadPool, ReadPoolClose, running};

impl ReadPool {
    /// Closes the pool: refuses the reads still queued
    /// ([`Error::ReadPoolClosed`](crate::Error::ReadPoolClosed)), waits up to `budget` for the running
    /// ones to end, interrupts the rest ([`Error::ReadStopped`](crate::Error::ReadStopped)), waits
    /// [`READ_CLOSE_GRACE`] for them, and closes every connection whose
    /// read has ended. Later reads are refused. A second call does nothing
    /// and reports nothing.
    ///
    /// A read busy outside SQLite past the grace is left behind
    /// ([`ReadPoolClose::left_running`]); its connection closes when it
    /// returns.
    pub fn close(&self, budget: Duration) -> ReadPoolClose {
        let start = Instant::now();
        let (refused, running_at_start) = {
            let mut state = self.shared.lock();
            if state.closing {
                return ReadPoolClose::default();
            }
            state.closing = true;
            let refused: VecDeque<Queued> = std::mem::take(&mut state.queue);
            state.counts.refused += refused.len() as u64;
            let running = state.lanes.iter().filter(|l| l.running.is_some()).count();
            (refused, running)
        };
        self.shared.work.notify_all();
        let mut report = ReadPoolClose {
            refused: refused.len(),
            ..ReadPoolClose::default()
        };
        for queued in refused {
            (queued.task)(Turn::Refuse(self.shared.closed_error()));
        }
        let mut state = self.shared.lock();
        let deadline = start.checked_add(budget);
        while state.lanes.iter().any(|l| l.running.is_some()) {
            let now = Instant::now();
            let left = match deadline {
                Some(deadline) if deadline > now => deadline - now,
                Some(_) => break,
                None => Duration::MAX,
            };
            state = self
                .shared
                .ended
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        for lane in &mut state.lanes {
            if let Some(running) = lane.running.as_mut() {
                running.stopped = true;
                running.interrupt();
                report.interrupted += 1;
            }
        }
        report.drained = running_at_start.saturating_sub(report.interrupted);
        let grace = Instant::now() + READ_CLOSE_GRACE;
        while !state.lanes.iter().all(|l| l.exited) {
            let now = Instant::now();
            if now >= grace {
                break;
            }
            state = self
                .shared
                .ended
                .wait_timeout(state, grace - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        report.left_running = running(&state.lanes);
        let exited: Vec<bool> = state.lanes.iter().map(|l| l.exited).collect();
        state.watchdog_stop = true;
        drop(state);
        self.shared.watch.notify_all();
        let mut threads = self.threads();
        for (handle, exited) in threads.lanes.iter_mut().zip(exited) {
            // A lane still in a read is left behind (detached): it closes
            // its connection when the read returns.
            if exited && let Some(handle) = handle.take() {
                let _ = handle.join();
            }
        }
        if let Some(handle) = threads.watchdog.take() {
            let _ = handle.join();
        }
        report.elapsed = start.elapsed();
        if !report.left_running.is_empty() {
            tracing::warn!(target: "walguard::read", left = report.left_running.len(), "reads still running after the read pool closed; their connections close when they return");
        }
        report
    }
}
