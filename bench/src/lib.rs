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
//! blob ([`INSERT_SQL`]), each one [`DbHandle::execute`] through `DbActor`
//! as [`WalGuard`] wires it with the settings given. `in_flight` tasks on
//! the caller's actix thread each insert and await their reply before the
//! next insert (a closed loop), until the write count or the time runs out
//! ([`Until`]). Latency is submit to reply. Setup (schema) and shutdown are
//! not timed; after the run the row count is checked.
//!
//! What a run measures ([`Measured`]): throughput, the latency histogram
//! (exact nearest-rank percentiles up to 10 ms at 100 ns resolution, in
//! fixed memory), what `DbActor` saw (mean group size, the WAL's peak frames
//! from the WAL hook, size-triggered checkpoints), the `-wal` file's size,
//! and the checkpoints of the run ([`SessionReport`]). With
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

mod capture;
pub mod chart;
mod open_loop;

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use walguard::{SessionReport, Settings, Statement};

use walguard_actors::messages::GetWriterStats;
use walguard_actors::{DbHandle, WalGuard};

pub use capture::{CheckpointLog, CheckpointMark};
pub use open_loop::{OpenLoop, OpenMeasured, SEND_AHEAD, run_open_loop};

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

/// What can end a benchmark run.
///
/// A separate enum from [`walguard_actors::Error`] because it exists only with the
/// `bench` feature; its [`BenchError::Actors`] variant carries that one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// Starting the system, the schema, a write, the row count or the
    /// shutdown failed.
    #[error("benchmark on {}: cannot {what}", path.display())]
    Actors {
        /// What was being done, e.g. `start the system`.
        what: &'static str,
        /// The benchmark database.
        path: PathBuf,
        /// What the subsystem said (boxed: it is large).
        #[source]
        source: Box<walguard_actors::Error>,
    },

    /// A writer task ended without an answer (it panicked or was
    /// cancelled).
    #[error("benchmark on {}: a writer task ended abnormally", path.display())]
    Writer {
        /// The benchmark database.
        path: PathBuf,
        /// What the runtime said.
        #[source]
        source: tokio::task::JoinError,
    },

    /// After the run the table does not hold one row per acknowledged write.
    #[error("benchmark on {}: expected {expected} rows after the run, found {found}", path.display())]
    RowCount {
        /// The benchmark database.
        path: PathBuf,
        /// Writes acknowledged.
        expected: u64,
        /// Rows counted.
        found: u64,
    },

    /// The open loop could not be set up or its bookkeeping broke.
    #[error("benchmark on {}: open loop: {reason}", path.display())]
    OpenLoop {
        /// The benchmark database.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// The chart could not be drawn or written.
    #[error("cannot write the chart {}: {reason}", path.display())]
    Chart {
        /// The SVG file asked for.
        path: PathBuf,
        /// What the drawing backend said.
        reason: String,
    },
}

/// When a closed loop stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// After this many writes (ids `0..n`).
    Writes(u64),
    /// When a writer finds this much time gone since the start.
    Deadline(Duration),
}

/// One configuration of the closed loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Workload {
    /// Writers, each awaiting its reply before its next insert.
    pub in_flight: usize,
    /// When to stop.
    pub until: Until,
    /// Keep a [`Timeline`] with buckets this wide (`None`: do not).
    pub timeline: Option<Duration>,
}

impl Workload {
    /// `in_flight` writers (at least 1) until `until`, no timeline.
    #[must_use]
    pub fn new(in_flight: usize, until: Until) -> Self {
        Self {
            in_flight: in_flight.max(1),
            until,
            timeline: None,
        }
    }

    /// Keeps the latency over time in buckets `bucket` wide (at least 1 ms).
    #[must_use]
    pub fn timeline(mut self, bucket: Duration) -> Self {
        self.timeline = Some(bucket.max(Duration::from_millis(1)));
        self
    }
}

/// Writes acknowledged so far in the running loop: a cheap shared counter
/// for a progress display on the same thread.
#[derive(Debug, Clone, Default)]
pub struct Progress(Rc<Cell<u64>>);

impl Progress {
    /// Writes acknowledged since the loop started.
    #[must_use]
    pub fn writes(&self) -> u64 {
        self.0.get()
    }

    fn reset(&self) {
        self.0.set(0);
    }

    fn add(&self) {
        self.0.set(self.0.get() + 1);
    }
}

/// Latencies in fixed memory (so that a memory measurement measures
/// walguard, not the benchmark): 100 ns buckets up to 10 ms, exact samples
/// above.
#[derive(Debug, Clone)]
pub struct Histogram {
    buckets: Vec<u64>,
    slow_ns: Vec<u64>,
    count: u64,
    max_ns: u64,
}

const BUCKET_NS: u64 = 100;
const BUCKETS: usize = 100_000; // 10 ms

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram (800 KB of buckets).
    #[must_use]
    pub fn new() -> Self {
        Self {
            buckets: vec![0; BUCKETS],
            slow_ns: Vec::new(),
            count: 0,
            max_ns: 0,
        }
    }

    /// Adds one latency.
    pub fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.count += 1;
        self.max_ns = self.max_ns.max(ns);
        match usize::try_from(ns / BUCKET_NS) {
            Ok(i) if i < BUCKETS => self.buckets[i] += 1,
            _ => self.slow_ns.push(ns),
        }
    }

    /// Latencies recorded.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `p`-th percentile in µs by nearest rank, as `bench/peers`
    /// computes it: the sample at rank ⌈p/100 · n⌉. A bucket answers with
    /// its upper edge (never flatters). 0 when empty.
    pub fn percentile_us(&mut self, p: f64) -> f64 {
        let Some(rank) = walguard::stats::nearest_rank(self.count as usize, p) else {
            return 0.0;
        };
        let rank = rank as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let upper = (i as u64 + 1) * BUCKET_NS;
                return upper.min(self.max_ns) as f64 / 1000.0;
            }
        }
        self.slow_ns.sort_unstable();
        let i = usize::try_from(rank - seen - 1).unwrap_or(0);
        self.slow_ns
            .get(i.min(self.slow_ns.len().saturating_sub(1)))
            .map_or(0.0, |ns| *ns as f64 / 1000.0)
    }

    /// The largest latency in µs.
    #[must_use]
    pub fn max_us(&self) -> f64 {
        self.max_ns as f64 / 1000.0
    }
}

/// One bucket of a [`Timeline`]: the writes answered in it.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct TimelinePoint {
    /// Start of the bucket, since the run started.
    pub at: Duration,
    /// Writes answered in the bucket.
    pub writes: u32,
    /// Median latency of those writes.
    pub p50: Duration,
    /// 99th percentile (nearest rank).
    pub p99: Duration,
    /// The slowest.
    pub max: Duration,
}

/// Write latency over time: each write lands in the bucket of its reply
/// time. A bucket where no reply came has no point (a stall shows as a gap,
/// then a bucket of slow writes). Memory: one bucket's samples plus one
/// point per bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    bucket: Duration,
    points: Vec<TimelinePoint>,
    current: Option<u64>,
    samples: Vec<Duration>,
}

impl Timeline {
    /// An empty timeline with buckets `bucket` wide (at least 1 µs).
    #[must_use]
    pub fn new(bucket: Duration) -> Self {
        Self {
            bucket: bucket.max(Duration::from_micros(1)),
            points: Vec::new(),
            current: None,
            samples: Vec::new(),
        }
    }

    /// Adds a write answered `reply_at` after the start, which took
    /// `latency`. Reply times must not go back by more than a bucket
    /// (they never do on one thread).
    pub fn record(&mut self, reply_at: Duration, latency: Duration) {
        let index = (reply_at.as_nanos() / self.bucket.as_nanos()) as u64;
        match self.current {
            Some(current) if index > current => {
                self.close();
                self.current = Some(index);
            }
            None => self.current = Some(index),
            Some(_) => {}
        }
        self.samples.push(latency);
    }

    /// Closes the last bucket; call once the run is over.
    pub fn finish(&mut self) {
        self.close();
        self.current = None;
    }

    fn close(&mut self) {
        let Some(index) = self.current else { return };
        if self.samples.is_empty() {
            return;
        }
        self.samples.sort_unstable();
        let n = self.samples.len();
        let rank = |p: f64| walguard::stats::nearest_rank(n, p).unwrap_or(n) - 1;
        self.points.push(TimelinePoint {
            at: self.bucket * u32::try_from(index).unwrap_or(u32::MAX),
            writes: u32::try_from(n).unwrap_or(u32::MAX),
            p50: self.samples[rank(50.0)],
            p99: self.samples[rank(99.0)],
            max: self.samples[n - 1],
        });
        self.samples.clear();
    }

    /// The bucket width.
    #[must_use]
    pub fn bucket(&self) -> Duration {
        self.bucket
    }

    /// The closed buckets, in time order.
    #[must_use]
    pub fn points(&self) -> &[TimelinePoint] {
        &self.points
    }
}

/// What the writers record as their replies come.
#[derive(Debug)]
struct Recorder {
    latency: Histogram,
    timeline: Option<Timeline>,
}

/// One timed run and what the subsystem saw during it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Measured {
    /// Writes acknowledged.
    pub writes: u64,
    /// When the timed phase started (for [`CheckpointLog::since`]).
    pub started: Instant,
    /// Length of the timed phase.
    pub elapsed: Duration,
    /// Every write's latency, submit to reply.
    pub latency: Histogram,
    /// The latency over time, when the workload asked for it.
    pub timeline: Option<Timeline>,
    /// Mean writes per group commit (1 with group commit off).
    pub mean_group: f64,
    /// The WAL's peak in frames, from the WAL hook (`None` when
    /// `checkpoint.size_threshold_frames` is 0).
    pub wal_peak_frames: Option<u32>,
    /// Size of the `-wal` file after the run (it only grows between
    /// truncations: about its peak).
    pub wal_file_bytes: u64,
    /// Size-triggered checkpoints `DbActor` ran.
    pub size_checkpoints: u64,
    /// The checkpoints of the timed phase (before the shutdown TRUNCATE):
    /// counts, window p50/p95/max.
    pub checkpoints: SessionReport,
    /// The whole session's report, from the clean shutdown (with the
    /// shutdown TRUNCATE).
    pub session: SessionReport,
    /// CPU time of the process's threads during the timed phase
    /// ([`cpu_time`]); `None` where it cannot be read.
    pub cpu: Option<Duration>,
}

impl Measured {
    /// Writes per second of the timed phase.
    #[must_use]
    pub fn throughput(&self) -> f64 {
        self.writes as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// The run with the median throughput (the lower middle one for an even
/// count), `None` when there is none.
#[must_use]
pub fn median(mut runs: Vec<Measured>) -> Option<Measured> {
    if runs.is_empty() {
        return None;
    }
    runs.sort_by(|a, b| a.throughput().total_cmp(&b.throughput()));
    let mid = (runs.len() - 1) / 2;
    Some(runs.swap_remove(mid))
}

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

impl BenchError {
    /// The `map_err` for a step of the subsystem that failed on the
    /// benchmark database at `path`; `what` names the step.
    pub(crate) fn actors(
        path: &Path,
        what: &'static str,
    ) -> impl FnOnce(walguard_actors::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Actors {
            what,
            path,
            source: Box::new(source),
        }
    }
}

/// Starts the subsystem on `settings` and creates the benchmark's table:
/// how every measured run begins. The replication section is ignored
/// ([`without_replication`]): a benchmark database is throwaway, and
/// replicating it would write it into the replica of the database the
/// settings were made for.
///
/// # Errors
///
/// [`BenchError::Actors`] naming the step that failed.
pub(crate) async fn start_with_table(settings: Settings) -> Result<WalGuard, BenchError> {
    let settings = without_replication(settings);
    let path = settings.database.path.clone();
    let guard = WalGuard::start(settings).map_err(BenchError::actors(&path, "start the system"))?;
    guard
        .db()
        .execute(CREATE_TABLE_SQL)
        .await
        .map_err(BenchError::actors(&path, "create the table"))?;
    Ok(guard)
}

/// Runs the workload once on `settings.database.path`, which should not
/// exist yet (the table is created): starts [`WalGuard`] with `settings`
/// (its checkpoint loop runs when `checkpoint.enabled` is set), runs the
/// closed loop, checks the row count, reads `DbActor`'s figures and the
/// session report, and shuts down cleanly. The database file stays; the
/// caller removes it.
///
/// Must run inside an actix `System`; `progress` counts the writes as
/// they are answered.
///
/// # Errors
///
/// [`BenchError::Actors`] when the system cannot start (bad settings, an
/// unusable path) or a write fails; [`BenchError::Writer`] when a writer
/// task dies; [`BenchError::RowCount`] when the table does not hold one row
/// per acknowledged write.
pub async fn run_once(
    settings: Settings,
    workload: &Workload,
    progress: &Progress,
) -> Result<Measured, BenchError> {
    let path = settings.database.path.clone();
    let guard = start_with_table(settings).await?;
    let cpu_before = cpu_time();
    let (started, elapsed, recorder) =
        closed_loop(guard.db(), workload, progress)
            .await
            .map_err(|e| match e {
                LoopError::Write(source) => BenchError::Actors {
                    what: "write",
                    path: path.clone(),
                    source: Box::new(source),
                },
                LoopError::Task(source) => BenchError::Writer {
                    path: path.clone(),
                    source,
                },
            })?;
    let cpu = cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    let Ending {
        writes,
        stats,
        wal_file_bytes,
        checkpoints,
        session,
    } = finish(guard, &path, progress).await?;
    Ok(Measured {
        writes,
        started,
        elapsed,
        latency: recorder.latency,
        timeline: recorder.timeline,
        mean_group: stats.flushed_writes as f64 / stats.flushes.max(1) as f64,
        wal_peak_frames: stats.wal.map(|w| w.peak),
        wal_file_bytes,
        size_checkpoints: stats.wal.map_or(0, |w| w.size_checkpoints),
        checkpoints,
        session,
        cpu,
    })
}

/// What a measured run reads at its end.
pub(crate) struct Ending {
    /// Writes acknowledged.
    pub(crate) writes: u64,
    /// The writer's figures.
    pub(crate) stats: walguard_actors::messages::WriterStats,
    /// The `-wal` file's size before the shutdown, in bytes.
    pub(crate) wal_file_bytes: u64,
    /// The checkpoints of the run, read after the loop stopped.
    pub(crate) checkpoints: SessionReport,
    /// The shutdown's report.
    pub(crate) session: SessionReport,
}

/// How every measured run ends, in this order: the rows checked against
/// the acknowledged writes, the writer's figures, the WAL file's size, the
/// loop stopped and its report read, then the shutdown.
///
/// # Errors
///
/// [`BenchError`] naming the step that failed.
pub(crate) async fn finish(
    guard: WalGuard,
    path: &Path,
    progress: &Progress,
) -> Result<Ending, BenchError> {
    let actors = |what| BenchError::actors(path, what);
    let writes = progress.writes();
    check_rows(guard.db(), path, writes).await?;
    let stats = guard
        .db()
        .addr()
        .send(GetWriterStats)
        .await
        .map_err(|source| walguard_actors::Error::Mailbox {
            actor: "DbActor",
            source,
        })
        .map_err(actors("read the writer's figures"))?;
    let wal_file_bytes = std::fs::metadata(wal_file(path)).map_or(0, |m| m.len());
    guard.stop_checkpoint_loop();
    let checkpoints = guard
        .report()
        .await
        .map_err(actors("read the checkpoint report"))?;
    let session = guard.shutdown().await.map_err(actors("shut down"))?;
    Ok(Ending {
        writes,
        stats,
        wal_file_bytes,
        checkpoints,
        session,
    })
}

/// Checks that the table holds one row per acknowledged write.
async fn check_rows(db: &DbHandle, path: &Path, writes: u64) -> Result<(), BenchError> {
    let rows = db
        .query("SELECT count(*) FROM kv")
        .await
        .map_err(|source| BenchError::Actors {
            what: "count the rows",
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
    let found = match rows.rows().first().and_then(|r| r.first()) {
        Some(rusqlite::types::Value::Integer(n)) => u64::try_from(*n).unwrap_or(0),
        _ => 0,
    };
    if found == writes {
        Ok(())
    } else {
        Err(BenchError::RowCount {
            path: path.to_path_buf(),
            expected: writes,
            found,
        })
    }
}

enum LoopError {
    Write(walguard_actors::Error),
    Task(tokio::task::JoinError),
}

/// `in_flight` tasks, each inserting and awaiting its reply until the work
/// or the time runs out. Returns the start, the elapsed time and the
/// recorded latencies.
async fn closed_loop(
    db: &DbHandle,
    workload: &Workload,
    progress: &Progress,
) -> Result<(Instant, Duration, Recorder), LoopError> {
    let next = Rc::new(Cell::new(0u64));
    let recorder = Rc::new(RefCell::new(Recorder {
        latency: Histogram::new(),
        timeline: workload.timeline.map(Timeline::new),
    }));
    progress.reset();
    let until = workload.until;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(workload.in_flight);
    for _ in 0..workload.in_flight {
        let (db, next, recorder, progress) = (
            db.clone(),
            Rc::clone(&next),
            Rc::clone(&recorder),
            progress.clone(),
        );
        tasks.push(actix_rt::spawn(async move {
            loop {
                let id = next.get();
                let more = match until {
                    Until::Writes(n) => id < n,
                    Until::Deadline(d) => start.elapsed() < d,
                };
                if !more {
                    return Ok::<(), walguard_actors::Error>(());
                }
                next.set(id + 1);
                let stmt = Statement::new(INSERT_SQL)
                    .bind(i64::try_from(id).unwrap_or(i64::MAX))
                    .bind(PAYLOAD.to_vec());
                let t = Instant::now();
                db.execute(stmt).await?;
                let now = Instant::now();
                let latency = now - t;
                let mut recorder = recorder.borrow_mut();
                recorder.latency.record(latency);
                if let Some(timeline) = &mut recorder.timeline {
                    timeline.record(now - start, latency);
                }
                progress.add();
            }
        }));
    }
    let mut first_error = None;
    for task in tasks {
        let outcome = match task.await {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => LoopError::Write(e),
            Err(e) => LoopError::Task(e),
        };
        first_error.get_or_insert(outcome);
    }
    let elapsed = start.elapsed();
    if let Some(e) = first_error {
        return Err(e);
    }
    // Every task has returned, so this is the only reference left; the
    // fallback copies (never taken).
    let mut recorder = Rc::try_unwrap(recorder).map_or_else(
        |shared| {
            let r = shared.borrow();
            Recorder {
                latency: r.latency.clone(),
                timeline: r.timeline.clone(),
            }
        },
        RefCell::into_inner,
    );
    if let Some(timeline) = &mut recorder.timeline {
        timeline.finish();
    }
    Ok((start, elapsed, recorder))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank_and_never_flatter() {
        let mut h = Histogram::new();
        for us in 1..=100 {
            h.record(Duration::from_micros(us));
        }
        h.record(Duration::from_millis(20));
        assert_eq!(h.count(), 101);
        assert!((h.percentile_us(50.0) - 51.0).abs() < 0.11);
        assert!((h.percentile_us(100.0) - 20_000.0).abs() < 1e-9);
        assert!((h.max_us() - 20_000.0).abs() < 1e-9);
        assert!(Histogram::new().percentile_us(99.0).abs() < f64::EPSILON);
    }

    #[test]
    fn a_timeline_buckets_by_reply_time_and_skips_silent_buckets() {
        let mut t = Timeline::new(Duration::from_millis(10));
        let ms = Duration::from_millis;
        t.record(ms(1), ms(1));
        t.record(ms(2), ms(3));
        // Nothing answered from 10 ms to 30 ms: a stall.
        t.record(ms(31), ms(25));
        t.finish();
        let points = t.points();
        assert_eq!(points.len(), 2);
        assert_eq!((points[0].at, points[0].writes), (ms(0), 2));
        assert_eq!((points[0].p50, points[0].max), (ms(1), ms(3)));
        assert_eq!((points[1].at, points[1].p99), (ms(30), ms(25)));
    }
}
