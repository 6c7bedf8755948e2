//! The table rows: each system at 1 and 256 in flight, `--runs` times,
//! the median-throughput run printed as one JSON line.

use std::path::Path;
use std::time::Duration;

use walguard::Settings;
use walguard::settings::Synchronous;
use walguard_bench::{IN_FLIGHT_LEVELS, Measured, Progress, Until, Workload};

use crate::args::{Args, System};
use crate::{BoxError, DB_FILE};

/// What a run is asked to do beyond the default settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Setup {
    pub(crate) sync: Synchronous,
    pub(crate) group_commit: bool,
    pub(crate) in_flight: usize,
    pub(crate) max_batch: Option<usize>,
    pub(crate) checkpoint_loop: Option<Duration>,
    pub(crate) until: Until,
}

pub(crate) fn temp_dir() -> Result<tempfile::TempDir, BoxError> {
    Ok(tempfile::Builder::new()
        .prefix("walguard-bench-")
        .tempdir()?)
}

pub(crate) fn settings_for(path: &Path, setup: &Setup) -> Settings {
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
pub(crate) async fn one_run(setup: Setup) -> Result<Measured, BoxError> {
    let dir = temp_dir()?;
    let settings = settings_for(&dir.path().join(DB_FILE), &setup);
    let workload = Workload::new(setup.in_flight, setup.until);
    let measured = walguard_bench::run_once(settings, &workload, &Progress::default()).await?;
    dir.close()?;
    Ok(measured)
}

pub(crate) fn sync_name(sync: Synchronous) -> &'static str {
    sync.as_str()
}

pub(crate) fn print_row(system: &str, workload: &str, setup: &Setup, runs: u32, mut run: Measured) {
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
pub(crate) async fn measure(
    system: &str,
    workload: &str,
    setup: Setup,
    runs: u32,
) -> Result<(), BoxError> {
    measure_interleaved(system, &[(workload, setup)], runs).await
}

/// Runs several setups `runs` times each, taking turns (run 1 of each, then
/// run 2 of each...) so that a drift in the machine's load hits all of them
/// alike, and prints each one's median run as a table row.
pub(crate) async fn measure_interleaved(
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

pub(crate) async fn table(args: &Args) -> Result<(), BoxError> {
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
