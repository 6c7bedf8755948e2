//! Actor-level tests of walguard-actors, in one binary.
//!
//! Time comes from tokio's paused clock (`tokio::time::pause()` at the top of
//! an `#[actix_rt::test]`), never from sleeping for real; databases are real
//! files in temp dirs. Copy these for your own engine's tests.

#[path = "actors/common.rs"]
mod common;

/// The interval loop on a simulated clock: counts, bursts, opt-in.
#[path = "actors/clock.rs"]
mod clock;

/// Faults and supervisor restarts of the checkpoint actor.
// `InjectFault` is a fault-injection hook: feature `testing`.
#[cfg(feature = "testing")]
#[path = "actors/supervision.rs"]
mod supervision;

/// The ordered shutdown: drain, TRUNCATE under a deadline, close, report.
#[path = "actors/shutdown.rs"]
mod shutdown;

/// Writes, reads and closures through `DbActor`, good and bad.
#[path = "actors/writes.rs"]
mod writes;

/// Migrations at start: the latest schema before the first request.
#[path = "actors/migrations.rs"]
mod migrations;

/// The tracing events other tools read.
#[path = "actors/events.rs"]
mod events;

/// Group commit and the size-triggered checkpoint: batching, order, cap,
/// backpressure, failing neighbours, and the WAL bounded by frames.
#[path = "actors/group_commit.rs"]
mod group_commit;

/// The lane a system's handles send on: the same promises as the mailbox.
#[path = "actors/lane.rs"]
mod lane;

/// The read side: reads beside the writer, read your writes, the readers
/// at shutdown, the snapshot-age bound.
#[path = "actors/reads.rs"]
mod reads;

/// The lane under races: many senders and threads, shutdown and panics in
/// the middle, a busy lane beside the mailbox, the order of answers.
#[path = "actors/lane_races.rs"]
mod lane_races;

/// The exposure watch and the live status, on the paused clock.
#[path = "actors/exposure.rs"]
mod exposure;

/// The writer's contract among neighbours: panics, someone else's
/// checkpoint, deadlines, a file that is gone, a second engine.
#[path = "actors/neighbours.rs"]
mod neighbours;

/// The writer's contract, second round: guarded settings, reads that only
/// read, query columns after a schema change.
#[path = "actors/contract.rs"]
mod contract;
