//! The benchmark workload, shared by `walguard bench` (cli/) and the
//! `bench_walguard` example of this crate.
//!
//! ```no_run
//! use walguard::Settings;
//! use walguard_bench::{Progress, Until, Workload};
//!
//! let dir = tempfile::tempdir()?;
//! let settings = Settings::for_database(dir.path().join("bench.db"));
//! let measured = actix::System::new().block_on(async move {
//!     let workload = Workload::new(256, Until::Writes(10_000));
//!     walguard_bench::run_once(settings, &workload, &Progress::default()).await
//! })?;
//! println!("{:.0} writes/s", measured.throughput());
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The workload
//!
//! The peers' workload (`bench/README.md`): a fresh database, table
//! [`CREATE_TABLE_SQL`], and single-row inserts of a [`PAYLOAD_BYTES`]-byte
//! blob ([`INSERT_SQL`]), each one [`DbHandle::execute`](walguard_actors::DbHandle::execute) through `DbActor`
//! as [`WalGuard`](walguard_actors::WalGuard) wires it with the settings given. `in_flight` tasks on
//! the caller's actix thread each insert and await their reply before the
//! next insert (a closed loop), until the write count or the time runs out
//! ([`Until`]). Latency is submit to reply. Setup (schema) and shutdown are
//! not timed; after the run the row count is checked.
//!
//! What a run measures ([`Measured`]): throughput, the latency histogram
//! (exact nearest-rank percentiles up to 10 ms at 100 ns resolution, in
//! fixed memory), what `DbActor` saw (mean group size, the WAL's peak frames
//! from the WAL hook, size-triggered checkpoints), the `-wal` file's size,
//! and the checkpoints of the run ([`SessionReport`](walguard::SessionReport)). With
//! [`Workload::timeline`] it also keeps the latency over time, in buckets
//! of reply time, for the chart ([`chart::write_svg`]).
//!
//! # Checkpoints on the timeline
//!
//! Every checkpoint is logged as a `tracing` event (target
//! `walguard::checkpoint`, a stable interface: `docs/operations.md`).
//! [`CheckpointLog`] is a `tracing-subscriber` layer that keeps those events
//! with the time they arrived; install it next to your own log layer and
//! ask it for the [`CheckpointMark`]s of a run. A checkpoint's start is the
//! arrival time less its `elapsed_ms`: it is late by one message hop from
//! `DbActor` to `MetricsActor` (microseconds on an idle thread, up to about
//! a millisecond when 256 writers keep it busy).

// As in the actors: a panic in a writer task takes its arbiter down.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod capture;
pub mod chart;
mod closed_loop;
mod error;
mod histogram;
mod open_loop;
mod session;
mod timeline;
mod workload;

use std::path::{Path, PathBuf};
use std::time::Duration;

use walguard::Settings;

pub use capture::{CheckpointLog, CheckpointMark};
pub use closed_loop::{Measured, median, run_once};
pub use error::BenchError;
pub use histogram::Histogram;
pub use open_loop::{OpenLoop, OpenMeasured, SEND_AHEAD, run_open_loop};
pub use timeline::{Timeline, TimelinePoint};
pub use workload::{Progress, Until, Workload};

/// Bytes in each inserted blob: the peers' payload.
pub const PAYLOAD_BYTES: usize = 100;

/// The table every run creates in its fresh database.
pub const CREATE_TABLE_SQL: &str = "CREATE TABLE kv(id INTEGER PRIMARY KEY, v BLOB)";

/// One write of the workload: `?1` the id, `?2` the blob.
pub const INSERT_SQL: &str = "INSERT INTO kv(id, v) VALUES (?1, ?2)";

/// The in-flight levels of the table: one writer, and 256.
pub const IN_FLIGHT_LEVELS: [usize; 2] = [1, 256];

/// Width of a timeline bucket by default: 10 ms.
pub const DEFAULT_TIMELINE_BUCKET: Duration = Duration::from_millis(10);

/// The payload of every insert: [`PAYLOAD_BYTES`] bytes of `0xA5`.
pub const PAYLOAD: [u8; PAYLOAD_BYTES] = [0xA5; PAYLOAD_BYTES];

/// CPU time so far of every live thread of this process: the sum of the
/// first field (nanoseconds on the CPU) of `/proc/self/task/*/schedstat`,
/// which has nanosecond resolution where `getrusage` has clock ticks.
/// `None` where that is not readable (not Linux, or schedstats off).
#[must_use]
pub fn cpu_time() -> Option<Duration> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let mut ns = 0u64;
    let mut any = false;
    for task in tasks.flatten() {
        if let Some(n) = std::fs::read_to_string(task.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        {
            ns += n;
            any = true;
        }
    }
    any.then(|| Duration::from_nanos(ns))
}

/// The `-wal` file beside a database ([`walguard::files::wal_path`]).
#[must_use]
pub fn wal_file(db: &Path) -> PathBuf {
    walguard::files::wal_path(db)
}

/// `settings` with replication off: a benchmark never replicates (its
/// database would land in the replica of the database the settings name).
/// Says so once in the log when it turned replication off.
#[must_use]
pub fn without_replication(mut settings: Settings) -> Settings {
    if settings.replication.is_on() {
        tracing::info!(
            target: "walguard::bench",
            "the benchmark ignores the replication section: its throwaway database is never replicated"
        );
        settings.replication = walguard::settings::ReplicationSettings::default();
    }
    settings
}
