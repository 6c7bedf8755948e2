//! The closed loop: `in_flight` tasks, each inserting and awaiting its
//! reply before the next insert ([`run_once`]), and what it measured
//! ([`Measured`]).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use walguard::{SessionReport, Settings, Statement};
use walguard_actors::DbHandle;

use crate::session::{Ending, finish, start_with_table};
use crate::{
    BenchError, Histogram, INSERT_SQL, PAYLOAD, Progress, Timeline, Until, Workload, cpu_time,
};

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
    /// When the timed phase started (for [`CheckpointLog::since`](crate::CheckpointLog::since)).
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

/// Runs the workload once on `settings.database.path`, which should not
/// exist yet (the table is created): starts [`WalGuard`](walguard_actors::WalGuard) with `settings`
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
