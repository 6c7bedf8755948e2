//! `walguard-peers`: the peer side of walguard's benchmark.
//!
//! Runs the same workload (single-row inserts of 100-byte blobs into
//! `kv(id INTEGER PRIMARY KEY, v BLOB)`, WAL mode, a fresh database per run)
//! through raw rusqlite and tokio-rusqlite, and prints one JSON object per
//! (system, workload, synchronous, `in_flight`) on stdout. `bench/run.sh` merges
//! these lines with walguard's own and prints the comparison table.
//!
//! Usage: `walguard-peers [--writes N] [--runs N] [--synchronous normal|full|both] [--only SYSTEM]`

mod batching;
mod cli;
mod peers;
mod stats;

use std::io::Write;
use std::process::ExitCode;

use cli::{Command, Config, Synchronous, System};
use peers::BoxError;
use stats::Run;

/// The workload name every peer reports: one insert is one unit of work, and
/// how a system groups inserts into transactions is the system's business.
const WORKLOAD: &str = "single-insert";

fn main() -> ExitCode {
    let config = match cli::parse(std::env::args().skip(1)) {
        Ok(Command::Run(config)) => config,
        Ok(Command::Help) => {
            println!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("walguard-peers: {e}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    match run_all(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("walguard-peers: error: {e}");
            let mut source = e.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn run_all(config: &Config) -> Result<(), BoxError> {
    eprintln!(
        "walguard-peers: SQLite {} (rusqlite 0.40 bundled, tokio-rusqlite 0.8); \
         {} writes x {} run(s) per configuration; temp dirs under {}",
        rusqlite::version(),
        config.writes,
        config.runs,
        std::env::temp_dir().display()
    );
    for &sync in &config.synchronous {
        for &system in &config.systems {
            for &in_flight in system.in_flight_levels() {
                if config.in_flight.is_some_and(|n| n != in_flight) {
                    continue;
                }
                measure(config, system, sync, in_flight)?;
            }
        }
    }
    Ok(())
}

fn one_run(
    system: System,
    sync: Synchronous,
    writes: u64,
    in_flight: usize,
) -> Result<Run, BoxError> {
    let dir = tempfile::Builder::new()
        .prefix("walguard-peers-")
        .tempdir()?;
    let path = dir.path().join(peers::DB_FILE);
    let run = match system {
        System::RawPerInsert => peers::raw_per_insert(&path, sync, writes)?,
        System::RawBatched => peers::raw_batched(&path, sync, writes)?,
        System::TokioRusqlite => peers::tokio_rusqlite(&path, sync, writes, in_flight)?,
        System::BatchingWriter => batching::run(&path, sync, writes, in_flight)?,
    };
    dir.close()?;
    Ok(run)
}

fn measure(
    config: &Config,
    system: System,
    sync: Synchronous,
    in_flight: usize,
) -> Result<(), BoxError> {
    let label = format!(
        "{} synchronous={} in_flight={in_flight}",
        system.name(),
        sync.name()
    );
    let mut runs = Vec::with_capacity(config.runs as usize);
    for n in 1..=config.runs {
        let run = one_run(system, sync, config.writes_at(system, in_flight), in_flight)
            .map_err(|e| format!("{label} run {n}: {e}"))?;
        eprintln!(
            "  {label} run {n}/{}: {:.3} s, {:.0} writes/s",
            config.runs,
            run.elapsed.as_secs_f64(),
            run.throughput()
        );
        runs.push(run);
    }
    let mut median = stats::median_run(runs).ok_or("no runs")?;
    let latency = stats::latency(&mut median.latencies_ns).ok_or("no latency samples")?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{{\"system\":\"{}\",\"workload\":\"{WORKLOAD}\",\"synchronous\":\"{}\",\"in_flight\":{in_flight},\
         \"writes\":{},\"seconds\":{:.3},\"throughput\":{:.1},\"p50_us\":{:.1},\"p99_us\":{:.1},\
         \"max_us\":{:.1},\"runs\":{},\"cpu_us_per_write\":{:.3}}}",
        system.name(),
        sync.name(),
        median.writes,
        median.elapsed.as_secs_f64(),
        median.throughput(),
        latency.p50_us,
        latency.p99_us,
        latency.max_us,
        config.runs,
        median.cpu_ns as f64 / 1000.0 / median.writes.max(1) as f64,
    )?;
    // One line per configuration, visible at once even when piped.
    out.flush()?;
    Ok(())
}
