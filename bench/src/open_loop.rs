//! The open loop: writes arrive at a fixed rate whatever the replies do,
//! and each write's latency counts from the time it was meant to be sent
//! (no coordinated omission: a stall delays every write due during it, and
//! each of them counts the whole wait).
//!
//! A generator on its own OS thread walks the schedule (write `i` is due
//! `i / rate` after the start): it sleeps with `std::thread::sleep` (tens
//! of microseconds of slack on Linux; tokio's timers have a millisecond
//! resolution, far too coarse for 100k writes/s) and, on each wake-up,
//! puts every write that is due on `DbActor`'s lane at once, as
//! [`DbHandle::execute`] does (`crate::lane`; it waits only while the lane
//! is full). It neither spins
//! nor waits for replies, so it leaves the cores to the writer. The reply
//! futures go to the caller's actix thread, where one task per write
//! awaits it and records `reply time - due time` in an [`hdrhistogram`]
//! (ns, 3 significant digits). How late the generator itself sent a write
//! is kept too ([`OpenMeasured::send_lag_max`]): latency includes it, and
//! a large value says the client, not walguard, fell behind.
//!
//! [`DbHandle::execute`]: walguard_actors::DbHandle::execute

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram as Hdr;
use walguard::{Settings, Statement};

use crate::session::start_with_table;
use crate::{BenchError, INSERT_SQL, PAYLOAD, Progress, Timeline, cpu_time};

/// The generator sends the writes due within this much of now at once, and
/// sleeps otherwise: about the timer slack of `std::thread::sleep`.
pub const SEND_AHEAD: Duration = Duration::from_micros(50);
/// The largest latency the histogram holds: 60 s (in ns); above it a value
/// counts as 60 s.
const HIGHEST_NS: u64 = 60_000_000_000;
/// Significant digits of the histogram (0.1 % resolution).
const SIGNIFICANT_DIGITS: u8 = 3;

/// One open-loop run: `rate` writes/s for `duration`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct OpenLoop {
    /// Writes per second, spaced evenly.
    pub rate: f64,
    /// How long writes keep arriving.
    pub duration: Duration,
    /// Keep a [`Timeline`] with buckets this wide (`None`: do not).
    pub timeline: Option<Duration>,
}

impl OpenLoop {
    /// `rate` writes/s (at least 1) for `duration`, no timeline.
    #[must_use]
    pub fn new(rate: f64, duration: Duration) -> Self {
        Self {
            rate: rate.max(1.0),
            duration,
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

/// What an open-loop run measured.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OpenMeasured {
    /// The rate asked for, writes/s.
    pub rate: f64,
    /// Writes sent (and answered: a failed write ends the run).
    pub writes: u64,
    /// When the schedule started (for [`super::CheckpointLog::since`]).
    pub started: Instant,
    /// From the start to the last reply.
    pub elapsed: Duration,
    /// Every write's latency from its due time to its reply, in ns.
    pub latency: Hdr<u64>,
    /// The latency over time (by reply time), when asked for.
    pub timeline: Option<Timeline>,
    /// The latest the generator sent a write after its due time.
    pub send_lag_max: Duration,
    /// Size-triggered checkpoints `DbActor` ran.
    pub size_checkpoints: u64,
    /// The WAL's peak in frames, from the WAL hook.
    pub wal_peak_frames: Option<u32>,
    /// Size of the `-wal` file after the run.
    pub wal_file_bytes: u64,
    /// The checkpoints of the run (before the shutdown TRUNCATE).
    pub checkpoints: walguard::SessionReport,
    /// CPU time of the process's threads during the run.
    pub cpu: Option<Duration>,
}

impl OpenMeasured {
    /// The `q`-quantile (0..=1) in µs.
    #[must_use]
    pub fn quantile_us(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    /// The largest latency in µs.
    #[must_use]
    pub fn max_us(&self) -> f64 {
        self.latency.max() as f64 / 1000.0
    }
}

/// One write sent by the generator: when it was due, and its answer.
struct Sent {
    due: Instant,
    reply:
        std::pin::Pin<Box<dyn std::future::Future<Output = walguard_actors::Result<usize>> + Send>>,
}

/// The generator thread: sends write `i` at `start + i * period_ns`, every
/// write due within [`SEND_AHEAD`] at once, until `total` or `stop`.
/// Returns the latest it sent a write after its due time.
fn generate(
    db: &walguard_actors::DbHandle,
    tx: &tokio::sync::mpsc::UnboundedSender<Sent>,
    stop: &AtomicBool,
    start: Instant,
    period_ns: f64,
    total: u64,
) -> Duration {
    let mut lag_max = Duration::ZERO;
    let mut i = 0;
    while i < total && !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let due = |i: u64| start + Duration::from_nanos((i as f64 * period_ns) as u64);
        let ahead = due(i).saturating_duration_since(now);
        if ahead > SEND_AHEAD {
            std::thread::sleep(ahead.saturating_sub(SEND_AHEAD));
            continue;
        }
        while i < total && due(i) <= now + SEND_AHEAD {
            let at = due(i);
            lag_max = lag_max.max(now.saturating_duration_since(at));
            let stmt = Statement::new(INSERT_SQL)
                .bind(i64::try_from(i).unwrap_or(i64::MAX))
                .bind(PAYLOAD.to_vec());
            let Ok(reply) = db.execute_from_thread(stmt) else {
                return lag_max;
            };
            if tx.send(Sent { due: at, reply }).is_err() {
                return lag_max;
            }
            i += 1;
        }
    }
    lag_max
}

/// Receives each sent write and spawns a task that awaits its reply and
/// records it; asks the generator to stop after a failed write.
async fn await_replies(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Sent>,
    shared: &Rc<RefCell<Shared>>,
    stop: &AtomicBool,
    start: Instant,
    progress: &Progress,
) {
    let failed = Rc::new(Cell::new(false));
    while let Some(Sent { due, reply }) = rx.recv().await {
        if failed.get() {
            stop.store(true, Ordering::Relaxed);
        }
        shared.borrow_mut().outstanding += 1;
        let (shared, failed, progress) = (Rc::clone(shared), Rc::clone(&failed), progress.clone());
        actix_rt::spawn(async move {
            let result = reply.await;
            let now = Instant::now();
            let mut s = shared.borrow_mut();
            s.outstanding -= 1;
            s.last_reply = s.last_reply.max(now);
            if let Err(error) = result {
                failed.set(true);
                s.error.get_or_insert(error);
                return;
            }
            let waited = now.saturating_duration_since(due);
            let ns = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
            s.latency.saturating_record(ns.max(1));
            if let Some(t) = &mut s.timeline {
                t.record(now.saturating_duration_since(start), waited);
            }
            progress.add();
        });
    }
}

/// Shared by the generator and the write tasks.
struct Shared {
    latency: Hdr<u64>,
    timeline: Option<Timeline>,
    outstanding: u64,
    error: Option<walguard_actors::Error>,
    last_reply: Instant,
}

/// Runs `open` on a fresh database at `settings.database.path` (as
/// [`super::run_once`] does: the table is created, the row count checked
/// after the run, and the system shut down cleanly).
///
/// # Errors
///
/// [`BenchError::Actors`] when the system cannot start or a write fails;
/// [`BenchError::RowCount`] when the table does not hold one row per write.
pub async fn run_open_loop(
    settings: Settings,
    open: &OpenLoop,
    progress: &Progress,
) -> Result<OpenMeasured, BenchError> {
    let path = settings.database.path.clone();
    let actors = |what| BenchError::actors(&path, what);
    let guard = start_with_table(settings).await?;
    let db = guard.db().clone();
    progress.reset();

    let total = (open.rate * open.duration.as_secs_f64()).ceil() as u64;
    let period_ns = 1e9 / open.rate;
    let latency = Hdr::new_with_bounds(1, HIGHEST_NS, SIGNIFICANT_DIGITS).map_err(|e| {
        BenchError::OpenLoop {
            path: path.clone(),
            reason: format!("cannot make the histogram: {e}"),
        }
    })?;
    let cpu_before = cpu_time();
    let start = Instant::now();
    let shared = Rc::new(RefCell::new(Shared {
        latency,
        timeline: open.timeline.map(Timeline::new),
        outstanding: 0,
        error: None,
        last_reply: start,
    }));
    // The generator thread sends; this thread awaits the replies.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Sent>();
    let stop = Arc::new(AtomicBool::new(false));
    let generator = {
        let (db, stop) = (db.clone(), Arc::clone(&stop));
        std::thread::spawn(move || generate(&db, &tx, &stop, start, period_ns, total))
    };
    await_replies(&mut rx, &shared, &stop, start, progress).await;
    let send_lag_max = generator.join().map_err(|_| BenchError::OpenLoop {
        path: path.clone(),
        reason: "the generator thread panicked".to_owned(),
    })?;
    // Every reply, however late.
    while shared.borrow().outstanding > 0 {
        actix_rt::time::sleep(Duration::from_millis(1)).await;
    }
    let cpu = cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    let mut shared = Rc::try_unwrap(shared)
        .map_err(|_| ())
        .map(RefCell::into_inner)
        .map_err(|()| BenchError::OpenLoop {
            path: path.clone(),
            reason: "a write task outlived the run".to_owned(),
        })?;
    if let Some(e) = shared.error.take() {
        return Err(actors("write")(e));
    }
    if let Some(t) = &mut shared.timeline {
        t.finish();
    }
    let crate::session::Ending {
        writes,
        stats,
        wal_file_bytes,
        checkpoints,
        ..
    } = crate::session::finish(guard, &path, progress).await?;
    Ok(OpenMeasured {
        rate: open.rate,
        writes,
        started: start,
        elapsed: shared.last_reply.saturating_duration_since(start),
        latency: shared.latency,
        timeline: shared.timeline,
        send_lag_max,
        size_checkpoints: stats.wal.map_or(0, |w| w.size_checkpoints),
        wal_peak_frames: stats.wal.map(|w| w.peak),
        wal_file_bytes,
        checkpoints,
        cpu,
    })
}
