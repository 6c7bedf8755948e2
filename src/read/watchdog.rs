//! The snapshot-age bound: one thread that interrupts a read once its
//! transaction is older than `read.max_snapshot_age`.
//!
//! It sleeps until the oldest running read's deadline (or until a read
//! starts when none runs), so an idle pool costs nothing. All reads share
//! one bound, so a read that starts later never has an earlier deadline;
//! the lanes wake it anyway, which is cheap.

use std::time::Instant;

use super::shared::Shared;
use crate::settings::duration_ms;

/// The watchdog's thread, until the pool has closed.
pub(super) fn watch(shared: &Shared) {
    let mut state = shared.lock();
    loop {
        if state.watchdog_stop {
            return;
        }
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        for (connection, lane) in state.lanes.iter_mut().enumerate() {
            let Some(running) = lane.running.as_mut() else {
                continue;
            };
            if running.overdue || running.stopped {
                continue;
            }
            // A bound too large to add to an instant never expires.
            let Some(deadline) = running.started.checked_add(shared.max_age) else {
                continue;
            };
            if deadline <= now {
                running.overdue = true;
                running.interrupt();
                tracing::warn!(
                    target: "walguard::read",
                    connection,
                    what = %running.what,
                    age_ms = duration_ms(now.saturating_duration_since(running.started)),
                    max_snapshot_age_ms = duration_ms(shared.max_age),
                    "a read held its snapshot past read.max_snapshot_age; interrupted"
                );
            } else {
                next = Some(next.map_or(deadline, |n| n.min(deadline)));
            }
        }
        state = match next {
            Some(deadline) => {
                shared
                    .watch
                    .wait_timeout(state, deadline.saturating_duration_since(now))
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0
            }
            None => shared
                .watch
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        };
    }
}
