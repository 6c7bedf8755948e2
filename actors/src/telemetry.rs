//! Metrics through the [`metrics`] crate facade.
//!
//! walguard records; the application chooses the exporter. With no recorder
//! installed every call here is a cheap no-op. To export, install any
//! `metrics` recorder before starting the system, e.g.
//! `metrics-exporter-prometheus` (what `walguard run --metrics-addr` does),
//! and call [`describe`] once for help texts and units.
//!
//! The names are a stable interface, listed with their labels in
//! `docs/operations.md`:
//!
//! | name | kind | labels | unit |
//! |---|---|---|---|
//! | [`CHECKPOINTS_TOTAL`] | counter | `mode`, `outcome`, `reason` | checkpoints |
//! | [`CHECKPOINT_DURATION_SECONDS`] | histogram | `mode`, `reason` | seconds |
//! | [`WRITES_TOTAL`] | counter | | writes |
//! | [`WRITE_ERRORS_TOTAL`] | counter | | writes |
//! | [`WAL_FRAMES`] | gauge | | frames |
//! | [`WAL_BYTES`] | gauge | | bytes |
//! | [`EXPOSURE_SECONDS`] | gauge | | seconds |
//! | [`EXPOSED_COMMITS`] | gauge | | commits |
//! | [`READS_TOTAL`] | counter | `outcome` | reads |
//! | [`READ_SECONDS`] | gauge | `quantile` | seconds |
//! | [`READS_RUNNING`] | gauge | | reads |
//! | [`OLDEST_READ_SECONDS`] | gauge | | seconds |
//!
//! `mode` is `passive`, `full`, `restart` or `truncate`; `outcome` is
//! `completed`, `partial`, `busy` or `failed`; `reason` is why the
//! checkpoint ran ([`walguard::CheckpointReason`]): `interval`, `size`,
//! `manual`, `shutdown` or `backfill` (phase 1 of a two-phase size
//! checkpoint, on its own thread), so a dashboard can tell the scheduled
//! ones from the size-triggered ones, and the writer's from phase 1's.
//! The read side's `outcome` is `served`, `failed` or `interrupted`; its
//! `quantile` is `0.5`, `0.95` or `1` (the max) over the last
//! [`READ_WINDOW_SAMPLES`](walguard::read::READ_WINDOW_SAMPLES) reads. The
//! read figures are set from the pool's own counts each time the exposure
//! watch looks and each time a report is made.

use walguard::CheckpointReport;
use walguard::exposure::Exposure;

/// Counter: checkpoints run, by `mode`, `outcome` and `reason`.
pub const CHECKPOINTS_TOTAL: &str = "walguard_checkpoints_total";
/// Histogram: time spent in `PRAGMA wal_checkpoint`, by `mode` and
/// `reason`, in seconds.
pub const CHECKPOINT_DURATION_SECONDS: &str = "walguard_checkpoint_duration_seconds";
/// Counter: writes (statements, transactions, closures) acknowledged to
/// their sender.
pub const WRITES_TOTAL: &str = "walguard_writes_total";
/// Counter: writes that returned an error to their sender.
pub const WRITE_ERRORS_TOTAL: &str = "walguard_write_errors_total";
/// Gauge: frames in the WAL (`wal_checkpoint` `log` column).
pub const WAL_FRAMES: &str = "walguard_wal_frames";
/// Gauge: size of the `-wal` file on disk, in bytes.
pub const WAL_BYTES: &str = "walguard_wal_bytes";
/// Gauge: exposure age in seconds: how long the oldest commit a power loss
/// could take has waited (see [`walguard::exposure`]).
pub const EXPOSURE_SECONDS: &str = "walguard_exposure_seconds";
/// Gauge: commits since the last checkpoint that fully caught up.
pub const EXPOSED_COMMITS: &str = "walguard_exposed_commits";

/// Gauge: the first this many commits are on the replica (replication on).
pub const REPLICATED_COMMITS: &str = "walguard_replicated_commits";

/// Gauge: the first this many acknowledged writes are on the replica.
pub const REPLICATED_WRITES: &str = "walguard_replicated_writes";

/// Gauge: how old the replicated point is while commits wait beyond it,
/// in seconds (0 when the replica has every commit).
pub const REPLICATION_LAG_SECONDS: &str = "walguard_replication_lag_seconds";

/// Counter: syncs to the replica that failed or got no answer.
pub const REPLICATION_SYNC_FAILURES_TOTAL: &str = "walguard_replication_sync_failures_total";

/// Counter: times walguard restarted the Litestream it supervises.
pub const LITESTREAM_RESTARTS_TOTAL: &str = "walguard_litestream_restarts_total";

/// Counter: reads on the read connections, by `outcome` (`served`,
/// `failed`, `interrupted`).
pub const READS_TOTAL: &str = "walguard_reads_total";

/// Gauge: how long reads held their snapshot, by `quantile` (`0.5`, `0.95`,
/// `1`), over the last reads, in seconds.
pub const READ_SECONDS: &str = "walguard_read_seconds";

/// Gauge: reads running now on the read connections.
pub const READS_RUNNING: &str = "walguard_reads_running";

/// Gauge: the age of the oldest read's snapshot now, in seconds (0 when
/// none runs): what pins the WAL; it stays under `read.max_snapshot_age`.
pub const OLDEST_READ_SECONDS: &str = "walguard_oldest_read_seconds";

/// Histogram buckets for [`CHECKPOINT_DURATION_SECONDS`], in seconds: from
/// 100 µs (an empty PASSIVE) to 10 s (a TRUNCATE waiting on readers).
pub const CHECKPOINT_DURATION_BUCKETS_SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Registers help texts and units with the installed recorder. Call once,
/// after installing it.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        CHECKPOINTS_TOTAL,
        Unit::Count,
        "Checkpoints run, by mode, outcome and reason"
    );
    describe_histogram!(
        CHECKPOINT_DURATION_SECONDS,
        Unit::Seconds,
        "Time spent in PRAGMA wal_checkpoint, by mode and reason"
    );
    describe_counter!(
        WRITES_TOTAL,
        Unit::Count,
        "Writes acknowledged to their sender"
    );
    describe_counter!(
        WRITE_ERRORS_TOTAL,
        Unit::Count,
        "Writes that returned an error to their sender"
    );
    describe_gauge!(WAL_FRAMES, Unit::Count, "Frames in the WAL");
    describe_gauge!(WAL_BYTES, Unit::Bytes, "Size of the -wal file on disk");
    describe_gauge!(
        EXPOSURE_SECONDS,
        Unit::Seconds,
        "Age of the oldest commit a power loss under synchronous=NORMAL could take"
    );
    describe_gauge!(
        REPLICATED_COMMITS,
        Unit::Count,
        "Commits known to be on the replica"
    );
    describe_gauge!(
        REPLICATED_WRITES,
        Unit::Count,
        "Acknowledged writes known to be on the replica"
    );
    describe_gauge!(
        REPLICATION_LAG_SECONDS,
        Unit::Seconds,
        "Age of the replicated point while commits wait beyond it (what a machine loss could take)"
    );
    describe_counter!(
        REPLICATION_SYNC_FAILURES_TOTAL,
        Unit::Count,
        "Syncs to the replica that failed or got no answer"
    );
    describe_counter!(
        LITESTREAM_RESTARTS_TOTAL,
        Unit::Count,
        "Restarts of the Litestream walguard supervises"
    );
    describe_gauge!(
        EXPOSED_COMMITS,
        Unit::Count,
        "Commits since the last checkpoint that fully caught up"
    );
    describe_counter!(
        READS_TOTAL,
        Unit::Count,
        "Reads on the read connections, by outcome"
    );
    describe_gauge!(
        READ_SECONDS,
        Unit::Seconds,
        "Time reads held their snapshot over the last reads, by quantile"
    );
    describe_gauge!(READS_RUNNING, Unit::Count, "Reads running now");
    describe_gauge!(
        OLDEST_READ_SECONDS,
        Unit::Seconds,
        "Age of the oldest running read's snapshot (what pins the WAL)"
    );
}

/// Records the read pool's counts, read times and running reads.
pub(crate) fn record_reads(reads: &walguard::read::ReadStats) {
    let c = reads.counts();
    for (outcome, n) in [
        ("served", c.served),
        ("failed", c.failed),
        ("interrupted", c.interrupted),
    ] {
        metrics::counter!(READS_TOTAL, "outcome" => outcome).absolute(n);
    }
    let t = reads.time();
    for (quantile, d) in [("0.5", t.p50()), ("0.95", t.p95()), ("1", t.max())] {
        metrics::gauge!(READ_SECONDS, "quantile" => quantile).set(d.as_secs_f64());
    }
    metrics::gauge!(READS_RUNNING).set(reads.running().len() as f64);
    let oldest = reads
        .running()
        .first()
        .map_or(0.0, |r| r.age().as_secs_f64());
    metrics::gauge!(OLDEST_READ_SECONDS).set(oldest);
}

/// Records one checkpoint: the counter, the histogram, and the WAL frames
/// gauge when the row says how many there are.
pub(crate) fn record_checkpoint(report: &CheckpointReport) {
    let mode = report.mode().as_str();
    let reason = report.reason().as_str();
    metrics::counter!(
        CHECKPOINTS_TOTAL,
        "mode" => mode,
        "outcome" => report.outcome().as_str(),
        "reason" => reason
    )
    .increment(1);
    metrics::histogram!(CHECKPOINT_DURATION_SECONDS, "mode" => mode, "reason" => reason)
        .record(report.elapsed().as_secs_f64());
    if report.log_frames() >= 0 {
        record_wal_frames(report.log_frames());
    }
}

/// Records `ok` acknowledged and `failed` failed writes at once.
pub(crate) fn record_writes(ok: u64, failed: u64) {
    if ok > 0 {
        metrics::counter!(WRITES_TOTAL).increment(ok);
    }
    if failed > 0 {
        metrics::counter!(WRITE_ERRORS_TOTAL).increment(failed);
    }
}

/// Records the frames in the WAL.
pub(crate) fn record_wal_frames(frames: i64) {
    metrics::gauge!(WAL_FRAMES).set(frames as f64);
}

/// Records the size of the `-wal` file (0 when absent).
pub(crate) fn record_wal_bytes(bytes: u64) {
    metrics::gauge!(WAL_BYTES).set(bytes as f64);
}

/// Records the exposure.
pub(crate) fn record_exposure(exposure: &Exposure) {
    metrics::gauge!(EXPOSURE_SECONDS).set(exposure.age().as_secs_f64());
    metrics::gauge!(EXPOSED_COMMITS).set(exposure.commits() as f64);
}

/// Records the replicated point and its lag.
pub(crate) fn record_replicated(replicated: &walguard::replication::Replicated) {
    metrics::gauge!(REPLICATED_COMMITS).set(replicated.commits as f64);
    metrics::gauge!(REPLICATED_WRITES).set(replicated.writes as f64);
    metrics::gauge!(REPLICATION_LAG_SECONDS).set(replicated.lag.as_secs_f64());
}

/// Counts a failed sync.
pub(crate) fn record_sync_failure() {
    metrics::counter!(REPLICATION_SYNC_FAILURES_TOTAL).increment(1);
}

/// Counts a restart of Litestream.
pub(crate) fn record_litestream_restart() {
    metrics::counter!(LITESTREAM_RESTARTS_TOTAL).increment(1);
}
