//! Adversarial tests of the lane, from a review that set out to break it.
//! Five failed before the fixes that came with them:
//! `shutdown::request_refused_during_shutdown_drain_is_shut_down`,
//! `shutdown::mixed_senders_racing_shutdown`,
//! `busy_lane::group_commit_off_busy_lane_does_not_starve_the_mailbox`,
//! `busy_lane::group_commit_off_busy_lane_does_not_hold_the_shutdown` and
//! `order::groups_are_answered_in_their_order`. Real time, `DbActor` on its
//! own arbiter (the default placement, with the replier).
//!
//! No test here waits a fixed time for a state to be reached: each waits
//! for the state itself (writes acknowledged, rows committed),
//! and the only wall-clock bounds are [`HANG`] and drain deadlines of
//! 30 s, which only a hang reaches however loaded the machine.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use walguard::Statement;
use walguard_actors::{Error, WalGuard};

use crate::common::{create_table, insert, integrity_and_count, settings};

const MINUTE: Duration = Duration::from_secs(60);

/// How long a wait for a state may take before the test fails as hung.
const HANG: Duration = Duration::from_secs(60);

/// A `busy_timeout` that puts the shutdown's drain deadline (30.25 s) out
/// of reach of a slow round, and within reach of a starved shutdown.
const FAR_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

#[cfg(feature = "testing")]
#[path = "lane_races/busy_lane.rs"]
mod busy_lane;
#[path = "lane_races/order.rs"]
mod order;
#[path = "lane_races/panic_and_drop.rs"]
mod panic_and_drop;
#[path = "lane_races/shutdown.rs"]
mod shutdown;

/// Waits until the senders have had `n` writes acknowledged: the lane is
/// busy. Fails only on a hang.
async fn until_acked(acked: &AtomicU64, n: u64) {
    let started = Instant::now();
    while acked.load(Ordering::Relaxed) < n {
        assert!(
            started.elapsed() < HANG,
            "{} writes acknowledged after {HANG:?}, waiting for {n}",
            acked.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn futures_poll_once<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::Pin::new(f).poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}
