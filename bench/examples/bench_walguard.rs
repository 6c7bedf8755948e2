//! walguard's side of the benchmark (`bench/run.sh` runs it beside the
//! peers and prints one table; `docs/benchmarks.md` has a real run).
//!
//! ```sh
//! cargo run --release -p walguard-actors --example bench_walguard -- \
//!     [--writes N] [--runs N] [--synchronous normal|full|both] [--only SYSTEM]
//! ```
//!
//! The workload is the peers' (`bench/README.md`), and lives in
//! `walguard_bench` (feature `bench`), which `walguard bench` runs
//! too: a fresh file in a temp dir, WAL, `busy_timeout` 5 s, table
//! `kv(id INTEGER PRIMARY KEY, v BLOB)`, N single-row inserts of a 100-byte
//! blob, setup and close untimed, and the row count checked after the run.
//! Every insert is one `DbHandle::execute` from one of `in_flight` tasks on
//! the actix system's thread, each awaiting its reply before its next
//! insert (a closed loop); `DbActor` runs on its own arbiter thread, as it
//! does by default. Latency is submit to reply. Systems: `walguard` (group
//! commit off: one commit per insert) and `walguard-group-commit`, at 1 and
//! 256 in flight. Each configuration runs `--runs` times and the run with
//! the median throughput is reported, one JSON line per configuration on
//! stdout (the format `bench/table.py` reads). Progress goes to stderr.
//!
//! `--extra NAME` runs one of the measurements that are not table rows
//! instead (repeatable; `all` runs every one). Run them directly, not
//! through `bench/run.sh` (the peers do not know the flag):
//!
//! - `max-batch`: group commit with `database.max_batch` 16, 64, 128 and
//!   256 at 256 in flight, and 256, 512 and 1024 at 1024 in flight (table
//!   rows, system `walguard-group-commit-maxN`);
//! - `checkpoint-loop`: writer throughput and latency over `--seconds` of
//!   sustained writes, with the 1 s PASSIVE checkpoint loop and without it,
//!   the runs of the two taking turns (table rows, workload `sustained` and
//!   `sustained+loop-1s`);
//! - `wal-peak`: the WAL's peak over `--seconds` of sustained writes at full
//!   speed, in frames (from the WAL hook) and bytes (the `-wal` file);
//! - `shutdown-truncate`: the shutdown TRUNCATE of a WAL of about 1000
//!   frames;
//! - `memory`: peak RSS (`VmHWM`) of a child process after 100k and after
//!   1M writes at full speed;
//! - `open-loop`: capacity first (a closed loop at 256 in flight for
//!   `--seconds`), then writes arriving at a fixed 25 %, 50 % and 75 % of
//!   it for `--seconds` each, with the size-triggered checkpoints running;
//!   latency from each write's due time to its reply, percentiles by
//!   `hdrhistogram` (`walguard_bench::run_open_loop`). `--runs`
//!   rounds of the three levels, each round once with
//!   `checkpoint.size_checkpoint: on_writer` and once with `two_phase`
//!   (taking turns), one JSON line per run;
//! - `mailbox-floor`: the hand-off alone, no SQLite: `--writes` echo
//!   messages at 1 and 256 in flight through an actix actor on its own
//!   arbiter (what `DbActor` pays per write), against a thread draining a
//!   bounded tokio channel and answering on a oneshot (what the batching
//!   writer pays), the two taking turns for `--runs` rounds;
//! - `savepoint-cost`: what a savepoint around every write of a group would
//!   cost, against walguard's choice (no savepoints; a rerun with them only
//!   for a group that holds a failing write).

use std::error::Error;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use rusqlite::params;
use walguard::settings::Synchronous;
use walguard::{Settings, SizeCheckpoint, Statement, Store};
use walguard_actors::WalGuard;
use walguard_bench::{
    IN_FLIGHT_LEVELS, INSERT_SQL, Measured, PAYLOAD as BLOB, Progress, Until, Workload, wal_file,
};

type BoxError = Box<dyn Error>;

const USAGE: &str = "\
usage: bench_walguard [--writes N] [--runs N] [--synchronous normal|full|both] [--only SYSTEM]
                      [--extra NAME]... [--seconds N]

  --writes N        inserts per run (default 200000; underscores allowed)
  --lone-writes N   inserts per run at one in flight (default: --writes)
  --in-flight N     only this in-flight level of the table (1 or 256; default: both)
  --runs N          runs per configuration; the median-throughput run is reported (default 3)
  --synchronous S   normal, full or both (default both)
  --only SYSTEM     walguard or walguard-group-commit (default: both)
  --extra NAME      max-batch, checkpoint-loop, wal-peak, shutdown-truncate, memory,
                    savepoint-cost, open-loop, mailbox-floor or all, instead of the table rows
  --seconds N       length of the sustained runs of checkpoint-loop and wal-peak (default 10)
  -h, --help        this text";

const DB_FILE: &str = "bench.db";

/// The two walguard systems of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum System {
    /// Group commit off: one commit per insert.
    Plain,
    /// Group commit on (the default setting).
    GroupCommit,
}

impl System {
    const ALL: [Self; 2] = [Self::Plain, Self::GroupCommit];

    fn name(self) -> &'static str {
        match self {
            Self::Plain => "walguard",
            Self::GroupCommit => "walguard-group-commit",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extra {
    MaxBatch,
    CheckpointLoop,
    WalPeak,
    ShutdownTruncate,
    Memory,
    /// The child process of `memory`.
    MemoryChild,
    SavepointCost,
    OpenLoop,
    MailboxFloor,
}

impl Extra {
    const ALL: [Self; 8] = [
        Self::MaxBatch,
        Self::CheckpointLoop,
        Self::WalPeak,
        Self::ShutdownTruncate,
        Self::Memory,
        Self::SavepointCost,
        Self::OpenLoop,
        Self::MailboxFloor,
    ];

    fn parse(name: &str) -> Option<Vec<Self>> {
        Some(match name {
            "max-batch" => vec![Self::MaxBatch],
            "checkpoint-loop" => vec![Self::CheckpointLoop],
            "wal-peak" => vec![Self::WalPeak],
            "shutdown-truncate" => vec![Self::ShutdownTruncate],
            "memory" => vec![Self::Memory],
            "memory-child" => vec![Self::MemoryChild],
            "savepoint-cost" => vec![Self::SavepointCost],
            "open-loop" => vec![Self::OpenLoop],
            "mailbox-floor" => vec![Self::MailboxFloor],
            "all" => Self::ALL.to_vec(),
            _ => return None,
        })
    }
}

#[derive(Debug)]
struct Args {
    writes: u64,
    runs: u32,
    synchronous: Vec<Synchronous>,
    systems: Vec<System>,
    extras: Vec<Extra>,
    seconds: u64,
    /// Inserts per run at one in flight (`--lone-writes`; default `writes`).
    lone_writes: Option<u64>,
    /// Only this in-flight level of the table (`--in-flight`).
    in_flight: Option<usize>,
}

fn parse_count(flag: &str, value: &str) -> Result<u64, String> {
    let digits: String = value.chars().filter(|c| *c != '_').collect();
    match digits.parse::<u64>() {
        Ok(0) => Err(format!("{flag} must be at least 1")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{flag} wants a positive integer, got {value:?}")),
    }
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        writes: 200_000,
        runs: 3,
        synchronous: vec![Synchronous::Normal, Synchronous::Full],
        systems: System::ALL.to_vec(),
        extras: Vec::new(),
        seconds: 10,
        lone_writes: None,
        in_flight: None,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--writes" => parsed.writes = parse_count(&flag, &value()?)?,
            "--lone-writes" => parsed.lone_writes = Some(parse_count(&flag, &value()?)?),
            "--in-flight" => {
                let v = value()?;
                parsed.in_flight = Some(
                    usize::try_from(parse_count(&flag, &v)?)
                        .map_err(|_| format!("--in-flight too large: {v}"))?,
                );
            }
            "--runs" => {
                let v = value()?;
                parsed.runs = u32::try_from(parse_count(&flag, &v)?)
                    .map_err(|_| format!("--runs too large: {v}"))?;
            }
            "--seconds" => parsed.seconds = parse_count(&flag, &value()?)?,
            "--synchronous" => {
                let v = value()?;
                parsed.synchronous = match v.to_ascii_lowercase().as_str() {
                    "normal" => vec![Synchronous::Normal],
                    "full" => vec![Synchronous::Full],
                    "both" => vec![Synchronous::Normal, Synchronous::Full],
                    _ => {
                        return Err(format!(
                            "--synchronous wants normal, full or both, got {v:?}"
                        ));
                    }
                };
            }
            "--only" => {
                let v = value()?;
                let system = System::ALL
                    .into_iter()
                    .find(|s| s.name() == v)
                    .ok_or_else(|| {
                        format!("--only wants walguard or walguard-group-commit, got {v:?}")
                    })?;
                parsed.systems = vec![system];
            }
            "--extra" => {
                let v = value()?;
                let extras = Extra::parse(&v).ok_or_else(|| format!("unknown --extra {v:?}"))?;
                parsed.extras.extend(extras);
            }
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    Ok(Some(parsed))
}

/// What a run is asked to do beyond the default settings.
#[derive(Debug, Clone, Copy)]
struct Setup {
    sync: Synchronous,
    group_commit: bool,
    in_flight: usize,
    max_batch: Option<usize>,
    checkpoint_loop: Option<Duration>,
    until: Until,
}

fn temp_dir() -> Result<tempfile::TempDir, BoxError> {
    Ok(tempfile::Builder::new()
        .prefix("walguard-bench-")
        .tempdir()?)
}

fn settings_for(path: &Path, setup: &Setup) -> Settings {
    let mut settings = Settings::for_database(path);
    settings.database.synchronous = setup.sync;
    settings.database.group_commit = setup.group_commit;
    if let Some(n) = setup.max_batch {
        settings.database.max_batch = n;
    }
    if let Some(interval) = setup.checkpoint_loop {
        settings.checkpoint.enabled = true;
        settings.checkpoint.interval = interval;
    }
    settings
}

/// One run of the shared workload (`walguard_bench`) in a fresh
/// temp dir.
async fn one_run(setup: Setup) -> Result<Measured, BoxError> {
    let dir = temp_dir()?;
    let settings = settings_for(&dir.path().join(DB_FILE), &setup);
    let workload = Workload::new(setup.in_flight, setup.until);
    let measured = walguard_bench::run_once(settings, &workload, &Progress::default()).await?;
    dir.close()?;
    Ok(measured)
}

fn sync_name(sync: Synchronous) -> &'static str {
    match sync {
        Synchronous::Full => "full",
        _ => "normal",
    }
}

fn print_row(system: &str, workload: &str, setup: &Setup, runs: u32, mut run: Measured) {
    println!(
        "{{\"system\":\"{system}\",\"workload\":\"{workload}\",\"synchronous\":\"{}\",\
         \"in_flight\":{},\"writes\":{},\"seconds\":{:.6},\"throughput\":{:.1},\
         \"p50_us\":{:.1},\"p99_us\":{:.1},\"max_us\":{:.1},\"runs\":{runs},\
         \"cpu_us_per_write\":{:.3}}}",
        sync_name(setup.sync),
        setup.in_flight,
        run.writes,
        run.elapsed.as_secs_f64(),
        run.throughput(),
        run.latency.percentile_us(50.0),
        run.latency.percentile_us(99.0),
        run.latency.max_us(),
        run.cpu
            .map_or(0.0, |c| c.as_secs_f64() * 1e6 / run.writes.max(1) as f64),
    );
}

/// Runs a setup `runs` times and prints the median run as a table row.
async fn measure(system: &str, workload: &str, setup: Setup, runs: u32) -> Result<(), BoxError> {
    measure_interleaved(system, &[(workload, setup)], runs).await
}

/// Runs several setups `runs` times each, taking turns (run 1 of each, then
/// run 2 of each...) so that a drift in the machine's load hits all of them
/// alike, and prints each one's median run as a table row.
async fn measure_interleaved(
    system: &str,
    setups: &[(&str, Setup)],
    runs: u32,
) -> Result<(), BoxError> {
    let mut done: Vec<Vec<Measured>> = setups.iter().map(|_| Vec::new()).collect();
    for i in 0..runs {
        for ((workload, setup), done) in setups.iter().zip(&mut done) {
            let run = one_run(*setup).await?;
            eprintln!(
                "bench_walguard: {system} {workload} {} in_flight={} run {}/{runs}: \
                 {:.0} writes/s, mean group {:.1} writes, WAL peak {} frames, \
                 {} size checkpoints",
                sync_name(setup.sync),
                setup.in_flight,
                i + 1,
                run.throughput(),
                run.mean_group,
                run.wal_peak_frames.unwrap_or(0),
                run.size_checkpoints,
            );
            done.push(run);
        }
    }
    for ((workload, setup), done) in setups.iter().zip(done) {
        if let Some(run) = walguard_bench::median(done) {
            print_row(system, workload, setup, runs, run);
        }
    }
    Ok(())
}

async fn table(args: &Args) -> Result<(), BoxError> {
    for &sync in &args.synchronous {
        for &system in &args.systems {
            for in_flight in IN_FLIGHT_LEVELS {
                if args.in_flight.is_some_and(|n| n != in_flight) {
                    continue;
                }
                let setup = Setup {
                    sync,
                    group_commit: system == System::GroupCommit,
                    in_flight,
                    max_batch: None,
                    checkpoint_loop: None,
                    until: Until::Writes(match (in_flight, args.lone_writes) {
                        (1, Some(n)) => n,
                        _ => args.writes,
                    }),
                };
                measure(system.name(), "single-insert", setup, args.runs).await?;
            }
        }
    }
    Ok(())
}

async fn max_batch(args: &Args) -> Result<(), BoxError> {
    for &sync in &args.synchronous {
        for (cap, in_flight) in [
            (16, 256),
            (64, 256),
            (128, 256),
            (256, 256),
            (256, 1024),
            (512, 1024),
            (1024, 1024),
        ] {
            let setup = Setup {
                sync,
                group_commit: true,
                in_flight,
                max_batch: Some(cap),
                checkpoint_loop: None,
                until: Until::Writes(args.writes),
            };
            let name = format!("walguard-group-commit-max{cap}");
            measure(&name, "single-insert", setup, args.runs).await?;
        }
    }
    Ok(())
}

async fn checkpoint_loop(args: &Args) -> Result<(), BoxError> {
    let seconds = Duration::from_secs(args.seconds);
    for &sync in &args.synchronous {
        for in_flight in IN_FLIGHT_LEVELS {
            let setup = |checkpoint_loop| Setup {
                sync,
                group_commit: true,
                in_flight,
                max_batch: None,
                checkpoint_loop,
                until: Until::Deadline(seconds),
            };
            let setups = [
                ("sustained", setup(None)),
                ("sustained+loop-1s", setup(Some(Duration::from_secs(1)))),
            ];
            measure_interleaved("walguard-group-commit", &setups, args.runs).await?;
        }
    }
    Ok(())
}

async fn wal_peak(args: &Args) -> Result<(), BoxError> {
    let seconds = Duration::from_secs(args.seconds);
    for &sync in &args.synchronous {
        let setup = Setup {
            sync,
            group_commit: true,
            in_flight: 256,
            max_batch: None,
            checkpoint_loop: None,
            until: Until::Deadline(seconds),
        };
        let run = one_run(setup).await?;
        let window = run.checkpoints.window;
        let peak_frames = run.wal_peak_frames.ok_or("the size threshold is off")?;
        println!(
            "{{\"measure\":\"wal-peak\",\"synchronous\":\"{}\",\"in_flight\":256,\"seconds\":{:.1},\
             \"writes\":{},\"threshold_frames\":{},\"peak_frames\":{},\"wal_file_bytes\":{},\
             \"size_checkpoints\":{},\"checkpoint_p50_ms\":{:.3},\"checkpoint_p95_ms\":{:.3},\
             \"checkpoint_max_ms\":{:.3}}}",
            sync_name(sync),
            run.elapsed.as_secs_f64(),
            run.writes,
            walguard::settings::DEFAULT_SIZE_THRESHOLD_FRAMES,
            peak_frames,
            run.wal_file_bytes,
            run.size_checkpoints,
            window.p50().as_secs_f64() * 1000.0,
            window.p95().as_secs_f64() * 1000.0,
            window.max().as_secs_f64() * 1000.0,
        );
    }
    Ok(())
}

/// The open loop at 25, 50 and 75 % of the capacity a closed loop at 256
/// in flight measured just before, `--runs` rounds; one JSON line per run.
/// The size checkpoints the open loop compares (before and after issue 12
/// item 3).
const SIZE_CHECKPOINTS: [SizeCheckpoint; 2] = [SizeCheckpoint::OnWriter, SizeCheckpoint::TwoPhase];

fn size_checkpoint_name(mode: SizeCheckpoint) -> &'static str {
    match mode {
        SizeCheckpoint::OnWriter => "on_writer",
        _ => "two_phase",
    }
}

async fn open_loop(args: &Args) -> Result<(), BoxError> {
    use walguard_bench::{OpenLoop, run_open_loop};
    const LEVELS_PERCENT: [u32; 3] = [25, 50, 75];
    let seconds = Duration::from_secs(args.seconds);
    for &sync in &args.synchronous {
        // Before and after the two-phase size checkpoint, taking turns
        // round by round, so that load drift hits both alike.
        for (round, mode) in (1..=args.runs)
            .flat_map(|round| SIZE_CHECKPOINTS.iter().map(move |&mode| (round, mode)))
        {
            let setup = Setup {
                sync,
                group_commit: true,
                in_flight: 256,
                max_batch: None,
                checkpoint_loop: None,
                until: Until::Deadline(seconds),
            };
            let capacity = one_run(setup).await?.throughput();
            eprintln!(
                "bench_walguard: open-loop {} round {round}/{}: capacity {capacity:.0} writes/s",
                sync_name(sync),
                args.runs
            );
            for percent in LEVELS_PERCENT {
                let rate = capacity * f64::from(percent) / 100.0;
                let dir = temp_dir()?;
                let mut settings = settings_for(&dir.path().join(DB_FILE), &setup);
                settings.checkpoint.size_checkpoint = mode;
                let run = run_open_loop(
                    settings,
                    &OpenLoop::new(rate, seconds),
                    &Progress::default(),
                )
                .await?;
                dir.close()?;
                let window = run.checkpoints.window;
                println!(
                    "{{\"measure\":\"open-loop\",\"system\":\"walguard-group-commit\",\
                     \"synchronous\":\"{}\",\"size_checkpoint\":\"{}\",\"round\":{round},\
                     \"capacity\":{capacity:.0},\
                     \"percent\":{percent},\"rate\":{rate:.0},\"writes\":{},\"p50_us\":{:.1},\
                     \"p99_us\":{:.1},\"p999_us\":{:.1},\"max_us\":{:.1},\
                     \"send_lag_max_us\":{:.1},\"checkpoints\":{},\
                     \"checkpoint_p50_ms\":{:.3},\"checkpoint_max_ms\":{:.3},\
                     \"wal_peak_frames\":{}}}",
                    sync_name(sync),
                    size_checkpoint_name(mode),
                    run.writes,
                    run.quantile_us(0.50),
                    run.quantile_us(0.99),
                    run.quantile_us(0.999),
                    run.max_us(),
                    run.send_lag_max.as_secs_f64() * 1e6,
                    run.size_checkpoints,
                    window.p50().as_secs_f64() * 1000.0,
                    window.max().as_secs_f64() * 1000.0,
                    run.wal_peak_frames.unwrap_or(0),
                );
            }
        }
    }
    Ok(())
}

/// An actor that answers each message with its number: the mailbox alone.
struct Echo;

impl actix::Actor for Echo {
    type Context = actix::Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(walguard::settings::DEFAULT_MAILBOX_CAPACITY_MESSAGES);
    }
}

struct Ping(u64);

impl actix::Message for Ping {
    type Result = u64;
}

impl actix::Handler<Ping> for Echo {
    type Result = u64;

    fn handle(&mut self, msg: Ping, _: &mut Self::Context) -> u64 {
        msg.0
    }
}

/// A request to the channel echo: its number and where the answer goes.
type ChannelPing = (u64, tokio::sync::oneshot::Sender<u64>);

/// Sends `n` messages from `in_flight` tasks, each awaiting its answer
/// before its next; the elapsed time, CPU time and p50 in µs.
async fn echo_loop<F, Fut>(n: u64, in_flight: usize, send: F) -> (Duration, Duration, f64)
where
    F: Fn(u64) -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = Option<u64>>,
{
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    let next = Rc::new(Cell::new(0u64));
    let hist = Rc::new(RefCell::new(walguard_bench::Histogram::new()));
    let cpu = walguard_bench::cpu_time();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..in_flight {
        let (next, hist, send) = (Rc::clone(&next), Rc::clone(&hist), send.clone());
        tasks.push(actix_rt::spawn(async move {
            loop {
                let i = next.get();
                if i >= n {
                    return;
                }
                next.set(i + 1);
                let t = Instant::now();
                if send(i).await != Some(i) {
                    return;
                }
                hist.borrow_mut().record(t.elapsed());
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = start.elapsed();
    let cpu = walguard_bench::cpu_time()
        .zip(cpu)
        .map_or(Duration::ZERO, |(a, b)| a.saturating_sub(b));
    let p50 = hist.borrow_mut().percentile_us(50.0);
    (elapsed, cpu, p50)
}

/// The hand-off alone: actix mailbox against a drained tokio channel.
async fn mailbox_floor(args: &Args) -> Result<(), BoxError> {
    for round in 1..=args.runs {
        for in_flight in IN_FLIGHT_LEVELS {
            let n = if in_flight == 1 {
                args.lone_writes.unwrap_or(args.writes)
            } else {
                args.writes
            };
            // actix: an actor on its own arbiter, as DbActor runs.
            let arbiter = actix::Arbiter::new();
            let addr = actix::Actor::start_in_arbiter(&arbiter.handle(), |_| Echo);
            let actix_run = echo_loop(n, in_flight, move |i| {
                let addr = addr.clone();
                async move { addr.send(Ping(i)).await.ok() }
            })
            .await;
            arbiter.stop();
            // A thread draining a bounded channel, as the batching writer.
            let (tx, mut rx) = tokio::sync::mpsc::channel::<ChannelPing>(
                walguard::settings::DEFAULT_MAILBOX_CAPACITY_MESSAGES,
            );
            let thread = std::thread::spawn(move || {
                let mut batch = Vec::with_capacity(1024);
                while let Some(first) = rx.blocking_recv() {
                    batch.push(first);
                    while batch.len() < 1024 {
                        match rx.try_recv() {
                            Ok(r) => batch.push(r),
                            Err(_) => break,
                        }
                    }
                    for (i, reply) in batch.drain(..) {
                        let _ = reply.send(i);
                    }
                }
            });
            let channel_run = echo_loop(n, in_flight, move |i| {
                let tx = tx.clone();
                async move {
                    let (reply, answer) = tokio::sync::oneshot::channel();
                    tx.send((i, reply)).await.ok()?;
                    answer.await.ok()
                }
            })
            .await;
            let _ = thread.join();
            for (system, (elapsed, cpu, p50)) in
                [("actix-mailbox", actix_run), ("channel-drain", channel_run)]
            {
                println!(
                    "{{\"measure\":\"mailbox-floor\",\"system\":\"{system}\",\"round\":{round},\
                     \"in_flight\":{in_flight},\"messages\":{n},\"per_second\":{:.0},\
                     \"cpu_us_per_message\":{:.3},\"p50_us\":{p50:.1}}}",
                    n as f64 / elapsed.as_secs_f64(),
                    cpu.as_secs_f64() * 1e6 / n as f64,
                );
            }
        }
    }
    Ok(())
}

/// Fills a WAL to at least 1000 frames with SQLite's and walguard's
/// size-triggered checkpoints off, then times the shutdown.
async fn shutdown_truncate(args: &Args) -> Result<(), BoxError> {
    const FRAMES: u64 = 1000;
    const FRAME_BYTES: u64 = 4096 + 24;
    for &sync in &args.synchronous {
        let mut samples = Vec::new();
        for _ in 0..args.runs.max(3) {
            let dir = temp_dir()?;
            let path = dir.path().join(DB_FILE);
            let mut settings = Settings::for_database(&path);
            settings.database.synchronous = sync;
            settings.database.wal_autocheckpoint = 0;
            settings.checkpoint.size_threshold_frames = 0;
            let guard = WalGuard::start(settings)?;
            let db = guard.db();
            db.execute(walguard_bench::CREATE_TABLE_SQL).await?;
            let mut id = 0i64;
            while std::fs::metadata(wal_file(&path)).map_or(0, |m| m.len())
                < 32 + FRAMES * FRAME_BYTES
            {
                let batch = (0..100)
                    .map(|_| {
                        id += 1;
                        Statement::new(INSERT_SQL).bind(id).bind(BLOB.to_vec())
                    })
                    .collect();
                db.transaction(batch).await?;
            }
            let frames = (std::fs::metadata(wal_file(&path))?.len() - 32) / FRAME_BYTES;
            let start = Instant::now();
            let report = guard.shutdown().await?;
            let wall = start.elapsed();
            let truncate = report
                .shutdown_checkpoint
                .ok_or("no shutdown checkpoint in the report")?;
            if truncate.outcome().as_str() != "completed" {
                return Err(format!("the shutdown TRUNCATE ended {}", truncate.outcome()).into());
            }
            samples.push((truncate.elapsed(), wall, frames));
            dir.close()?;
        }
        samples.sort();
        let (truncate, wall, frames) = samples[(samples.len() - 1) / 2];
        let slowest = samples.iter().map(|s| s.0).max().unwrap_or_default();
        println!(
            "{{\"measure\":\"shutdown-truncate\",\"synchronous\":\"{}\",\"wal_frames\":{frames},\
             \"truncate_ms\":{:.3},\"truncate_max_ms\":{:.3},\"shutdown_ms\":{:.3},\"runs\":{}}}",
            sync_name(sync),
            truncate.as_secs_f64() * 1000.0,
            slowest.as_secs_f64() * 1000.0,
            wall.as_secs_f64() * 1000.0,
            samples.len(),
        );
    }
    Ok(())
}

/// `VmHWM` of this process, in KiB.
fn vm_hwm_kib() -> Result<u64, BoxError> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .ok_or("no VmHWM in /proc/self/status")?;
    let kib = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kib)
}

async fn memory_child(args: &Args) -> Result<(), BoxError> {
    let setup = Setup {
        sync: Synchronous::Normal,
        group_commit: true,
        in_flight: 256,
        max_batch: None,
        checkpoint_loop: None,
        until: Until::Writes(args.writes),
    };
    let run = one_run(setup).await?;
    println!(
        "{{\"measure\":\"memory\",\"writes\":{},\"vm_hwm_kib\":{}}}",
        run.writes,
        vm_hwm_kib()?
    );
    Ok(())
}

/// Runs `memory-child` in fresh processes (peak RSS only grows) for 100k and
/// 1M writes.
fn memory(args: &Args) -> Result<(), BoxError> {
    let exe = std::env::current_exe()?;
    // Medians of `--runs` children per size, the children of the two sizes
    // taking turns (100k, 1M, 100k, 1M...).
    let mut peaks: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..args.runs {
        for (i, writes) in [100_000u64, 1_000_000].into_iter().enumerate() {
            let out = std::process::Command::new(&exe)
                .args(["--extra", "memory-child", "--writes", &writes.to_string()])
                .stderr(std::process::Stdio::inherit())
                .output()?;
            if !out.status.success() {
                return Err(format!("the memory child for {writes} writes failed").into());
            }
            let line = String::from_utf8(out.stdout)?;
            print!("{line}");
            let kib: u64 = line
                .split("\"vm_hwm_kib\":")
                .nth(1)
                .and_then(|rest| rest.trim().trim_end_matches('}').parse().ok())
                .ok_or("cannot read the child's VmHWM")?;
            peaks[i].push(kib);
        }
    }
    let median = |v: &mut Vec<u64>| {
        v.sort_unstable();
        v[(v.len() - 1) / 2]
    };
    let ratios: Vec<String> = peaks[0]
        .iter()
        .zip(&peaks[1])
        .map(|(a, b)| format!("{:.3}", *b as f64 / *a as f64))
        .collect();
    let (small, large) = (median(&mut peaks[0]), median(&mut peaks[1]));
    println!(
        "{{\"measure\":\"memory-ratio\",\"runs\":{},\"vm_hwm_100k_kib\":{small},\
         \"vm_hwm_1m_kib\":{large},\"vm_hwm_1m_over_100k\":{:.3},\"pairwise\":[{}]}}",
        args.runs,
        large as f64 / small as f64,
        ratios.join(",")
    );
    Ok(())
}

/// Per-write cost of groups of 256 inserts on one connection: plain, with a
/// savepoint around each insert, through `Store::execute_group` without and
/// with one failing insert per group (which makes the group run again with
/// savepoints).
fn savepoint_cost(args: &Args) -> Result<(), BoxError> {
    const GROUP: u64 = 256;
    for &sync in &args.synchronous {
        let groups = args.writes.div_ceil(GROUP);
        let writes = groups * GROUP;
        let mut medians = Vec::new();
        for variant in 0..4 {
            let mut per_write = Vec::new();
            for _ in 0..args.runs {
                let dir = temp_dir()?;
                let mut settings = Settings::for_database(dir.path().join(DB_FILE));
                settings.database.synchronous = sync;
                let mut store = Store::open(&settings.database)?;
                store.set_size_threshold(settings.checkpoint.size_threshold_frames)?;
                store.execute(&Statement::new(walguard_bench::CREATE_TABLE_SQL))?;
                let start = Instant::now();
                for g in 0..groups {
                    let ids = (g * GROUP)..((g + 1) * GROUP);
                    match variant {
                        0 | 1 => {
                            let savepoints = variant == 1;
                            store.call(|c| {
                                let tx = c.transaction()?;
                                {
                                    let mut insert = tx.prepare_cached(INSERT_SQL)?;
                                    for id in ids {
                                        if savepoints {
                                            tx.prepare_cached("SAVEPOINT w")?.execute([])?;
                                        }
                                        insert.execute(params![id as i64, &BLOB[..]])?;
                                        if savepoints {
                                            tx.prepare_cached("RELEASE w")?.execute([])?;
                                        }
                                    }
                                }
                                tx.commit()
                            })?;
                        }
                        _ => {
                            let mut stmts: Vec<Statement> = ids
                                .map(|id| {
                                    Statement::new(INSERT_SQL)
                                        .bind(id as i64)
                                        .bind(BLOB.to_vec())
                                })
                                .collect();
                            if variant == 3 {
                                // A duplicate of the group's first id.
                                let first = (g * GROUP) as i64;
                                stmts[GROUP as usize / 2] =
                                    Statement::new(INSERT_SQL).bind(first).bind(BLOB.to_vec());
                            }
                            let failed = store
                                .execute_group(&stmts)
                                .iter()
                                .filter(|r| r.is_err())
                                .count();
                            if failed != usize::from(variant == 3) {
                                return Err(format!("{failed} writes failed in a group").into());
                            }
                        }
                    }
                    let _ = store.checkpoint_if_due();
                }
                per_write.push(start.elapsed().as_secs_f64() * 1e6 / writes as f64);
                store.close().map_err(|(_, e)| e)?;
                dir.close()?;
            }
            per_write.sort_by(f64::total_cmp);
            medians.push(per_write[(per_write.len() - 1) / 2]);
        }
        println!(
            "{{\"measure\":\"savepoint-cost\",\"synchronous\":\"{}\",\"group\":{GROUP},\
             \"writes\":{writes},\"runs\":{},\"plain_us_per_write\":{:.3},\
             \"savepoint_each_us_per_write\":{:.3},\"execute_group_us_per_write\":{:.3},\
             \"execute_group_one_failure_us_per_write\":{:.3}}}",
            sync_name(sync),
            args.runs,
            medians[0],
            medians[1],
            medians[2],
            medians[3],
        );
    }
    Ok(())
}

async fn run(args: Args) -> Result<(), BoxError> {
    eprintln!(
        "bench_walguard: SQLite {}; {} writes x {} run(s) per configuration; temp dirs under {}",
        rusqlite::version(),
        args.writes,
        args.runs,
        std::env::temp_dir().display()
    );
    if args.extras.is_empty() {
        return table(&args).await;
    }
    for extra in args.extras.clone() {
        match extra {
            Extra::MaxBatch => max_batch(&args).await?,
            Extra::CheckpointLoop => checkpoint_loop(&args).await?,
            Extra::WalPeak => wal_peak(&args).await?,
            Extra::ShutdownTruncate => shutdown_truncate(&args).await?,
            Extra::Memory => memory(&args)?,
            Extra::MemoryChild => memory_child(&args).await?,
            Extra::SavepointCost => savepoint_cost(&args)?,
            Extra::OpenLoop => open_loop(&args).await?,
            Extra::MailboxFloor => mailbox_floor(&args).await?,
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("bench_walguard: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match actix::System::new().block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_walguard: error: {e}");
            let mut source = e.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}
