//! `walguard run`: a live session.
//!
//! Settings, then the log subscriber, then the engine lock (before anything
//! touches the file: a second `run` hears "served by another engine"), then
//! the restore on start, then the checks on the database
//! ([`engine::check_target`]: new, or holding only the demo's own tables; in
//! WAL mode; not write-locked elsewhere), then (optionally) the Prometheus
//! listener, then the engine's schema, then the actor system: the subsystem
//! under that lock, with its checkpoint loop and exposure watch, and the
//! synthetic engine.
//! It runs until `--duration` passes, Ctrl-C, SIGTERM (on Windows: a
//! console close, logoff or system shutdown); then the clean shutdown,
//! within [`SHUTDOWN_BUDGET`](walguard::settings::SHUTDOWN_BUDGET) (after a console event, within
//! [`console::CONSOLE_SHUTDOWN_BUDGET`]), and the summary on stdout.

use std::fmt::{self, Write as _};
use std::io::IsTerminal as _;
use std::rc::Rc;
use std::time::Duration;

use tokio::time::Instant;
use walguard::settings::{LogFormat, Synchronous, format_duration};
use walguard::{SessionReport, Settings};
use walguard_actors::WalGuard;
#[cfg(windows)]
use walguard_actors::console::{self, ConsoleEvent, ConsoleEvents};
use walguard_actors::exposure::DEFAULT_WATCH_PERIOD;
use walguard_actors::messages::Status;
use walguard_actors::telemetry;

use crate::cli::{Global, RunArgs};
use crate::engine::{self, Counters};
use crate::error::CliError;
use crate::exit::Exit;
use crate::logging;
use crate::status::{self, Progress, ms, secs};

/// Redraw period of the status line on a terminal.
const STATUS_REDRAW: Duration = Duration::from_millis(250);

/// Period of the plain `status` log line when stderr is not a terminal.
const STATUS_LOG_PERIOD: Duration = Duration::from_secs(10);

/// Shortest period of the exposure watch: 50 ms, so a very short interval
/// does not turn the watch into a busy loop on `DbActor`.
const MIN_WATCH_PERIOD: Duration = Duration::from_millis(50);

/// Why the session stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopReason {
    Duration,
    Interrupt,
    #[cfg(unix)]
    Terminate,
    #[cfg(windows)]
    Console(ConsoleEvent),
}

impl StopReason {
    /// Whether the console that stdout may lead to is closing: a Windows
    /// console event.
    fn console_may_be_gone(self) -> bool {
        #[cfg(windows)]
        if let Self::Console(_) = self {
            return true;
        }
        let _ = self;
        false
    }

    /// How long the clean shutdown may take after this stop: Windows ends
    /// the process about 5 s after a console event, so the summary must be
    /// out before that.
    fn budget(self) -> Duration {
        match self {
            #[cfg(windows)]
            Self::Console(_) => console::CONSOLE_SHUTDOWN_BUDGET,
            _ => walguard::settings::SHUTDOWN_BUDGET,
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Duration => "duration",
            Self::Interrupt => "interrupt",
            #[cfg(unix)]
            Self::Terminate => "sigterm",
            #[cfg(windows)]
            Self::Console(event) => event.as_str(),
        })
    }
}

/// The end of a session, for the summary.
#[derive(Debug)]
struct Outcome {
    report: SessionReport,
    stopped_by: StopReason,
    elapsed: Duration,
    shutdown: Duration,
}

/// Loads the settings: embedded defaults, `--config`, environment, then the
/// flags on top; validated.
pub(crate) fn settings(args: &RunArgs) -> Result<Settings, CliError> {
    let mut settings = Settings::load(args.config.as_deref()).map_err(CliError::Settings)?;
    if let Some(db) = &args.db {
        settings.database.path.clone_from(db);
    }
    if let Some(interval) = args.interval {
        settings.checkpoint.interval = interval;
    }
    if let Some(format) = args.log_format {
        settings.log.format = format.into();
    }
    settings.validate().map_err(CliError::Settings)?;
    Ok(settings)
}

/// Runs `walguard run`.
///
/// Exits 1 after the summary when the database file went away during the
/// session ([`CliError::DatabaseGone`]), or when any write failed
/// ([`CliError::WritesFailed`]): every write of the synthetic engine is
/// valid, so a failure means the database or the disk refused it.
pub(crate) fn run(args: &RunArgs, global: &Global) -> Result<(), CliError> {
    let mut settings = settings(args)?;
    if let Some(level) = &global.log_level {
        settings.log.level.clone_from(level);
    }
    let on_terminal = std::io::stderr().is_terminal();
    logging::init(
        logging::filter(&settings.log.level, global.log_level.is_some(), on_terminal)?,
        settings.log.format,
        global.color,
    );
    // One engine per file, before anything touches it: a second `run` on
    // the same path hears "served by another engine", never a half-made
    // file from the first (issue 21).
    let engine_lock = if take_lock_first() {
        Some(walguard::EngineLock::acquire(&settings.database.path)?)
    } else {
        None
    };
    if settings.replication.is_on() {
        // Before the demo's checks create anything at the path: the
        // restore on start, and the replica's identity (a new database is
        // judged new, not "another database" with the demo's tables). The
        // system checks the identity again at its start.
        if settings.replication.restore_on_start {
            walguard_actors::replication::restore_if_missing(&settings)
                .map_err(walguard_actors::Error::from)?;
        }
        walguard_actors::replication::check_identity(&settings)
            .map_err(walguard_actors::Error::from)?;
    }
    engine::check_target(&settings.database.path)?;
    if let Some(addr) = args.metrics_addr {
        serve_metrics(addr)?;
    }
    engine::prepare(&settings.database)?;

    let format = settings.log.format;
    let outcome = match actix::System::new().block_on(session(
        settings.clone(),
        engine_lock,
        args,
        on_terminal,
    )) {
        Ok(outcome) => outcome,
        // No session report: say so and exit now, before the actors that
        // are dropped with the system log an end-of-session event that
        // lacks the database's counts.
        Err(e) => crate::exit_now(&e),
    };
    // `--json`, or JSON log lines (`--log-format json`, `log.format:
    // json`), which printed the summary as JSON before `--json` existed.
    let summary = if args.json || format == LogFormat::Json {
        format!("{}\n", summary_json(&settings, &outcome))
    } else {
        summary_text(&settings, &outcome)
    };
    if outcome.stopped_by.console_may_be_gone() {
        // The console may already be gone: the summary is best effort then
        // (`print!` would panic on the write error).
        let _ = std::io::Write::write_all(&mut std::io::stdout(), summary.as_bytes());
    } else {
        print!("{summary}");
    }
    let db = &outcome.report.db;
    if db.file_gone {
        return Err(CliError::DatabaseGone {
            path: settings.database.path.clone(),
        });
    }
    if db.writes_failed > 0 {
        return Err(CliError::WritesFailed {
            failed: db.writes_failed,
            sent: db.writes_failed + db.writes_acknowledged,
        });
    }
    if let Some(replicated) = &outcome.report.replication
        && replicated.unreplicated_commits() > 0
    {
        return Err(CliError::ReplicaBehind {
            commits: replicated.unreplicated_commits(),
            writes: replicated.unreplicated_writes(),
        });
    }
    Ok(())
}

/// Whether `run` takes the engine lock before it touches the file: always,
/// except for the process test's negative control, in builds with the
/// `testing` feature: `WALGUARD_TEST_LOCK_LAST=1` takes it at start, after
/// the file was prepared, as before issue 21.
fn take_lock_first() -> bool {
    #[cfg(feature = "testing")]
    return std::env::var_os("WALGUARD_TEST_LOCK_LAST").is_none_or(|v| v != "1");
    #[cfg(not(feature = "testing"))]
    true
}

/// Installs the Prometheus recorder and its HTTP listener, on a thread of
/// its own (it is installed outside the actor system's runtime).
fn serve_metrics(addr: std::net::SocketAddr) -> Result<(), CliError> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    let err = |source| CliError::Metrics { addr, source };
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            Matcher::Full(telemetry::CHECKPOINT_DURATION_SECONDS.to_owned()),
            telemetry::CHECKPOINT_DURATION_BUCKETS_SECONDS,
        )
        .map_err(err)?
        .install()
        .map_err(err)?;
    telemetry::describe();
    tracing::info!(target: "walguard::run", addr = %addr, "serving metrics at http://{addr}/metrics");
    Ok(())
}

async fn session(
    settings: Settings,
    engine_lock: Option<walguard::EngineLock>,
    args: &RunArgs,
    on_terminal: bool,
) -> Result<Outcome, CliError> {
    let started = Instant::now();
    let mut stop = Signals::new()?;
    let builder = WalGuard::builder(settings.clone());
    let builder = match engine_lock {
        Some(lock) => builder.engine_lock(lock),
        None => builder,
    };
    let guard = builder.start()?;
    #[cfg(windows)]
    if let Err(e) = console::check_budget(&guard) {
        tracing::warn!(target: "walguard::run", error = %e, "a console close may end the process before the clean shutdown finishes");
    }
    guard.start_checkpoint_loop();
    // Look at least twice per interval, so a starvation warning comes within
    // about half an interval of the threshold.
    guard.watch_exposure(
        (settings.checkpoint.interval / 2).clamp(MIN_WATCH_PERIOD, DEFAULT_WATCH_PERIOD),
    );

    let counters = Rc::new(Counters::default());
    let engine = actix::spawn(engine::run(guard.db().clone(), args.rate, counters.clone()));
    tracing::info!(
        target: "walguard::run",
        database = %settings.database.path.display(),
        interval = %format_duration(settings.checkpoint.interval),
        synchronous = %settings.database.synchronous,
        rate = args.rate,
        duration = %args.duration.map_or_else(|| "until stopped".to_owned(), format_duration),
        "session started"
    );
    if settings.database.synchronous == Synchronous::Off {
        tracing::warn!(
            target: "walguard::run",
            "synchronous=off: nothing is ever fsynced, so a power loss or OS crash can lose or corrupt anything; for tests only"
        );
    }

    let mut display = Display::new(on_terminal, started);
    let mut redraw = tokio::time::interval(if on_terminal {
        STATUS_REDRAW
    } else {
        STATUS_LOG_PERIOD
    });
    redraw.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // The first tick fires at once; there is nothing to show yet.
    redraw.tick().await;
    let deadline = args.duration.map(|d| started + d);

    let stopped_by = loop {
        tokio::select! {
            reason = stop.next(deadline) => break reason,
            _ = redraw.tick() => {
                if let Ok(status) = guard.status().await {
                    display.show(&status, counters.acknowledged.get());
                }
            }
        }
    };
    status::clear();
    tracing::info!(target: "walguard::run", stopped_by = %stopped_by, "stopping: draining writes, then TRUNCATE and close");
    let elapsed = started.elapsed();
    stop.exit_on_second_signal();

    let shutdown_started = Instant::now();
    let shutdown = async {
        counters.stop();
        // The engine finishes the write it has in flight, then returns.
        let _ = engine.await;
        guard.shutdown().await
    };
    let budget = stopped_by.budget();
    let report =
        tokio::time::timeout(budget, shutdown)
            .await
            .map_err(|_| CliError::ShutdownTimeout {
                budget_s: secs(budget),
                acknowledged: counters.acknowledged.get(),
                failed: counters.failed.get(),
            })??;
    Ok(Outcome {
        report,
        stopped_by,
        elapsed,
        shutdown: shutdown_started.elapsed(),
    })
}

/// The stop signals: `--duration`, Ctrl-C, SIGTERM; on Windows console
/// close, logoff and shutdown.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(windows)]
    console: ConsoleEvents,
}

impl Signals {
    /// Installs the handlers now, so a signal that comes while the system
    /// starts is not lost (and does not kill the process with the default
    /// action).
    fn new() -> Result<Self, CliError> {
        Ok(Self {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .map_err(|source| CliError::Signal {
                    signal: "SIGTERM",
                    source,
                })?,
            #[cfg(windows)]
            console: ConsoleEvents::listen()?,
        })
    }

    /// Waits for the first stop.
    async fn next(&mut self, deadline: Option<Instant>) -> StopReason {
        let duration = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = duration => StopReason::Duration,
            () = interrupted() => StopReason::Interrupt,
            reason = self.platform() => reason,
        }
    }

    /// The platform's own stop signal: SIGTERM.
    #[cfg(unix)]
    async fn platform(&mut self) -> StopReason {
        self.term.recv().await;
        StopReason::Terminate
    }

    /// The platform's own stop signals: the console window closing, the
    /// user logging off, the system shutting down.
    #[cfg(windows)]
    async fn platform(&mut self) -> StopReason {
        StopReason::Console(self.console.recv().await)
    }

    /// No platform signal beyond Ctrl-C.
    #[cfg(not(any(unix, windows)))]
    async fn platform(&mut self) -> StopReason {
        std::future::pending().await
    }

    /// From now on, a second Ctrl-C or SIGTERM exits at once. Nothing
    /// committed is lost: in WAL mode a process exit loses no commit, and
    /// the next open recovers the WAL.
    fn exit_on_second_signal(mut self) {
        actix::spawn(async move {
            tokio::select! {
                () = interrupted() => {}
                _ = self.platform() => {}
            }
            status::clear();
            eprintln!(
                "walguard: second signal: exiting now, without the shutdown checkpoint \
                 (no commit is lost; the next open recovers the WAL)"
            );
            Exit::SecondInterrupt.now();
        });
    }
}

/// Resolves on Ctrl-C. When the handler cannot be installed it says so and
/// never resolves, rather than stopping the session at once.
async fn interrupted() {
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::warn!(target: "walguard::run", error = %e, "cannot listen for Ctrl-C; stop with SIGTERM or --duration");
        std::future::pending::<()>().await;
    }
}

/// The live display: the status line on a terminal, else a `status` log
/// line every [`STATUS_LOG_PERIOD`].
struct Display {
    on_terminal: bool,
    started: Instant,
    last: (Instant, u64),
}

impl Display {
    fn new(on_terminal: bool, started: Instant) -> Self {
        Self {
            on_terminal,
            started,
            last: (started, 0),
        }
    }

    fn show(&mut self, status: &Status, acknowledged: u64) {
        let now = Instant::now();
        let dt = now.saturating_duration_since(self.last.0).as_secs_f64();
        let writes_per_s = if dt > 0.0 {
            acknowledged.saturating_sub(self.last.1) as f64 / dt
        } else {
            0.0
        };
        self.last = (now, acknowledged);
        if self.on_terminal {
            let progress = Progress {
                elapsed: now.saturating_duration_since(self.started),
                writes_per_s,
            };
            status::draw(&status::render(progress, status));
        } else {
            let exposure = status.exposure.unwrap_or_default();
            tracing::info!(
                target: "walguard::run",
                writes = acknowledged,
                writes_per_s = walguard::settings::figure(writes_per_s),
                wal_bytes = status.wal_bytes.unwrap_or(0),
                wal_frames = status.wal_frames.unwrap_or(0),
                checkpoints = status.report.counts.total,
                p95_ms = ms(status.report.window.p95()),
                exposure_s = secs(exposure.age()),
                exposed_commits = exposure.commits(),
                replicated_commits = status.replicated.map(|r| r.commits),
                replicated_writes = status.replicated.map(|r| r.writes),
                replication_lag_s = status.replicated.map(|r| secs(r.lag)),
                "status"
            );
        }
    }
}

/// The human summary, on stdout.
fn summary_text(settings: &Settings, outcome: &Outcome) -> String {
    let report = &outcome.report;
    let mut text = format!(
        "walguard session on {}: {:.1}s, stopped by {}, shutdown took {:.0}ms\n{report}\n",
        settings.database.path.display(),
        outcome.elapsed.as_secs_f64(),
        outcome.stopped_by,
        outcome.shutdown.as_secs_f64() * 1000.0,
    );
    if report.db.file_gone {
        let _ = writeln!(
            text,
            "durable through: nothing: the database file {} was deleted, renamed or replaced during the session, so the writes acknowledged to it are not at that path",
            settings.database.path.display()
        );
    } else if settings.database.synchronous == Synchronous::Off {
        let _ = writeln!(
            text,
            "durable through: nothing against a power loss: synchronous=off never fsyncs (a process kill still loses nothing)"
        );
    } else if let Some(d) = report.db.durability {
        if d.exposed_commits() == 0 {
            let _ = writeln!(
                text,
                "durable through: all {} commits ({} writes); nothing exposed to a power loss",
                d.commits(),
                d.writes()
            );
        } else {
            let _ = writeln!(
                text,
                "durable through: commit {} of {}; {} commits ({} writes) exposed to a power loss under synchronous={}",
                d.durable_commits(),
                d.commits(),
                d.exposed_commits(),
                d.exposed_writes(),
                settings.database.synchronous
            );
        }
    }
    if report.db.file_returned {
        let _ = writeln!(
            text,
            "the database file {} was away from its path during the session and the same file came back (renamed back): every acknowledged write is in it; writes and checkpoints were refused while it was away",
            settings.database.path.display()
        );
    }
    if let Some(error) = &report.db.close_error {
        let _ = writeln!(text, "close: {error}");
    }
    text
}

/// The summary as one JSON object, with the field names of the
/// `walguard::session` event plus the durability figures.
fn summary_json(settings: &Settings, outcome: &Outcome) -> serde_json::Value {
    let report = &outcome.report;
    let c = report.counts;
    let d = report.db.durability;
    // Nothing is durable against a power loss without fsync.
    let off = settings.database.synchronous == Synchronous::Off;
    serde_json::json!({
        "summary": "walguard run",
        "database": settings.database.path.display().to_string(),
        "stopped_by": outcome.stopped_by.to_string(),
        "elapsed_s": secs(outcome.elapsed),
        "shutdown_ms": ms(outcome.shutdown),
        "writes": report.db.writes_acknowledged,
        "write_errors": report.db.writes_failed,
        "n": report.window.n(),
        "p50_ms": ms(report.window.p50()),
        "p95_ms": ms(report.window.p95()),
        "max_ms": ms(report.window.max()),
        "total": c.total,
        "completed": c.completed,
        "partial": c.partial,
        "busy": c.busy,
        "failed": c.failed,
        "skipped": c.skipped,
        "restarts": c.restarts,
        "shutdown_outcome": report.shutdown_checkpoint.as_ref().map_or("none", |r| r.outcome().as_str()),
        "commits": d.map(|d| d.commits()),
        "durable_commits": if report.db.file_gone || off { Some(0) } else { d.map(|d| d.durable_commits()) },
        "exposed_commits": if report.db.file_gone || off { d.map(|d| d.commits()) } else { d.map(|d| d.exposed_commits()) },
        "file_gone": report.db.file_gone,
        "file_returned": report.db.file_returned,
        "replicated_commits": report.replication.map(|r| r.commits),
        "replicated_writes": report.replication.map(|r| r.writes),
        "replication_lag_s": report.replication.map(|r| secs(r.lag)),
        "reads_served": report.reads.as_ref().map(|r| r.counts().served),
        "reads_failed": report.reads.as_ref().map(|r| r.counts().failed),
        "reads_interrupted": report.reads.as_ref().map(|r| r.counts().interrupted),
        "read_n": report.reads.as_ref().map(|r| r.time().n()),
        "read_p50_ms": report.reads.as_ref().map(|r| ms(r.time().p50())),
        "read_p95_ms": report.reads.as_ref().map(|r| ms(r.time().p95())),
        "read_max_ms": report.reads.as_ref().map(|r| ms(r.time().max())),
        "close_error": report.db.close_error,
    })
}
