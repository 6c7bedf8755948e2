//! `walguard bench`: the benchmark workload ([`walguard_bench`]) on
//! the user's disk and settings, with a progress bar and a final table.
//!
//! The database is always a new file: `--db PATH` (refused when it exists)
//! or `walguard-bench-<pid>.db` beside `database.path`. It is removed, with
//! its `-wal` and `-shm` files, after every run, on an error and on Ctrl-C.

use std::io::IsTerminal as _;
use std::path::Path;

use walguard::Settings;
use walguard::settings::{LogFormat, format_duration};
use walguard_bench::{
    CheckpointLog, CheckpointMark, DEFAULT_TIMELINE_BUCKET, Measured, OpenLoop, OpenMeasured,
    Progress, Until, Workload,
};

use crate::cli::{BenchArgs, Global, GroupCommitArg};
use crate::error::CliError;
use crate::logging;
use crate::status;

mod bar;
mod chart;
mod report;
mod scratch;

use self::bar::Bar;
use self::chart::{draw_chart, draw_open_chart};
use self::report::{latency, open_json, open_table, row_json, table, thousands};
use self::scratch::{Scratch, bench_path, scratch_name};

/// One configuration: group commit on or off, at one in-flight level.
#[derive(Debug, Clone, Copy)]
struct Config {
    group_commit: bool,
    in_flight: usize,
    chart: bool,
}

impl Config {
    fn label(self) -> String {
        format!(
            "group commit {}, {} in flight",
            if self.group_commit { "on" } else { "off" },
            self.in_flight
        )
    }
}

/// The reported run of one configuration, with its checkpoint marks.
struct Row {
    config: Config,
    run: Measured,
    marks: Vec<CheckpointMark>,
}

/// One open-loop run, with its checkpoint marks.
struct OpenRow {
    percent: u32,
    run: OpenMeasured,
    marks: Vec<CheckpointMark>,
    chart: bool,
}

/// Runs `walguard bench`.
pub(crate) fn run(args: &BenchArgs, global: &Global) -> Result<(), CliError> {
    let settings = settings(args)?;
    let path = bench_path(args.db.as_deref(), &settings.database.path)?;
    let checkpoints = CheckpointLog::default();
    logging::init_with(
        logging::quiet_filter(global)?,
        settings.log.format,
        global.color,
        checkpoints.layer(),
    );
    let configs = configs(args);
    let scratch = Scratch(path);
    let on_terminal = std::io::stderr().is_terminal();
    let all = actix::System::new().block_on(async {
        let work = async {
            let rows = run_all(&settings, &scratch.0, args, &configs, &checkpoints, on_terminal).await?;
            let open = run_open(&settings, &scratch.0, args, &rows, &checkpoints).await?;
            Ok((rows, open))
        };
        tokio::select! {
            all = work => all,
            _ = tokio::signal::ctrl_c() => Err(CliError::BenchInterrupted { path: scratch.0.clone() }),
        }
    });
    status::clear();
    drop(scratch);
    let (rows, open) = all?;
    if let Some(chart) = &args.chart {
        if open.is_empty() {
            draw_chart(chart, &settings, &rows)?;
        } else {
            draw_open_chart(chart, &settings, &open)?;
        }
    }
    // `--json`, or JSON log lines (`--log-format json`), which printed the
    // results as JSON before `--json` existed.
    if args.json || settings.log.format == LogFormat::Json {
        for row in rows {
            println!("{}", row_json(&settings, row, args.runs));
        }
        for row in open {
            println!("{}", open_json(&settings, &row));
        }
    } else {
        print!(
            "{}",
            table(&settings, &scratch_name(args, &settings), rows, args)
        );
        if !open.is_empty() {
            print!("{}", open_table(&open, args));
        }
    }
    Ok(())
}

/// The open-loop runs (`--open-loop`), at their percentages of the
/// capacity the group-commit row with the most in flight measured.
async fn run_open(
    settings: &Settings,
    path: &Path,
    args: &BenchArgs,
    rows: &[Row],
    checkpoints: &CheckpointLog,
) -> Result<Vec<OpenRow>, CliError> {
    let mut open = Vec::new();
    if args.open_loop.is_empty() {
        return Ok(open);
    }
    let Some(capacity) = rows
        .iter()
        .filter(|r| r.config.group_commit)
        .max_by_key(|r| r.config.in_flight)
        .or(rows.last())
        .map(|r| r.run.throughput())
    else {
        return Ok(open);
    };
    // The chart shows the level nearest 50 %.
    let charted = args
        .open_loop
        .iter()
        .copied()
        .min_by_key(|p| p.abs_diff(50));
    for &percent in &args.open_loop {
        let mut settings = settings.clone();
        settings.database.path = path.to_path_buf();
        settings.database.group_commit = true;
        let rate = capacity * f64::from(percent) / 100.0;
        let chart = args.chart.is_some() && Some(percent) == charted;
        let mut plan = OpenLoop::new(rate, args.open_duration);
        if chart {
            plan = plan.timeline(DEFAULT_TIMELINE_BUCKET);
        }
        eprintln!(
            "walguard bench: open loop at {percent} % of {} writes/s: {} writes/s for {}",
            thousands(capacity.round() as u64),
            thousands(rate.round() as u64),
            format_duration(args.open_duration)
        );
        checkpoints.clear();
        let result = walguard_bench::run_open_loop(settings, &plan, &Progress::default()).await;
        Scratch::remove(path);
        let run = result?;
        let marks = checkpoints.since(run.started);
        open.push(OpenRow {
            percent,
            run,
            marks,
            chart,
        });
    }
    Ok(open)
}

/// The settings: embedded defaults, `--config`, environment, then the
/// flags; the checkpoint loop on unless `--no-checkpoint-loop`.
fn settings(args: &BenchArgs) -> Result<Settings, CliError> {
    let mut settings = Settings::load(args.config.as_deref()).map_err(CliError::Settings)?;
    if let Some(sync) = args.synchronous {
        settings.database.synchronous = sync.into();
    }
    if let Some(interval) = args.interval {
        settings.checkpoint.interval = interval;
    }
    settings.checkpoint.enabled = !args.no_checkpoint_loop;
    if let Some(format) = args.log_format {
        settings.log.format = format.into();
    }
    settings.validate().map_err(CliError::Settings)?;
    if settings.replication.is_on() {
        eprintln!(
            "walguard bench: replication is on in these settings; the benchmark ignores it (its throwaway database is never replicated)"
        );
    }
    Ok(walguard_bench::without_replication(settings))
}

/// The configurations in order: per in-flight level, group commit on then
/// off (off only above 1 in flight when both are asked for). The chart is
/// drawn for the last group-commit run, or the last run when there is none.
fn configs(args: &BenchArgs) -> Vec<Config> {
    let mut configs = Vec::new();
    for &level in &args.in_flight {
        let in_flight = level as usize;
        let (on, off) = match args.group_commit {
            GroupCommitArg::On => (true, false),
            GroupCommitArg::Off => (false, true),
            GroupCommitArg::Both => (true, in_flight > 1),
        };
        for group_commit in [true, false] {
            if (group_commit && on) || (!group_commit && off) {
                configs.push(Config {
                    group_commit,
                    in_flight,
                    chart: false,
                });
            }
        }
    }
    if args.chart.is_some() && args.open_loop.is_empty() {
        let charted = configs
            .iter()
            .rposition(|c| c.group_commit)
            .or(configs.len().checked_sub(1));
        if let Some(i) = charted {
            configs[i].chart = true;
        }
    }
    configs
}

async fn run_all(
    settings: &Settings,
    path: &Path,
    args: &BenchArgs,
    configs: &[Config],
    checkpoints: &CheckpointLog,
    on_terminal: bool,
) -> Result<Vec<Row>, CliError> {
    let until = args
        .duration
        .map_or(Until::Writes(args.writes), Until::Deadline);
    let mut rows = Vec::with_capacity(configs.len());
    for &config in configs {
        let mut runs = Vec::new();
        for i in 1..=args.runs {
            let mut settings = settings.clone();
            settings.database.path = path.to_path_buf();
            settings.database.group_commit = config.group_commit;
            let mut workload = Workload::new(config.in_flight, until);
            if config.chart {
                workload = workload.timeline(DEFAULT_TIMELINE_BUCKET);
            }
            let label = format!("{} (run {i}/{})", config.label(), args.runs);
            let progress = Progress::default();
            let bar = Bar::start(label.clone(), until, progress.clone(), on_terminal);
            checkpoints.clear();
            let result = walguard_bench::run_once(settings, &workload, &progress).await;
            bar.stop();
            Scratch::remove(path);
            let run = result?;
            let marks = checkpoints.since(run.started);
            if !on_terminal {
                eprintln!(
                    "walguard bench: {label}: {} writes/s, p99 {}",
                    thousands(run.throughput().round() as u64),
                    latency(run.latency.clone().percentile_us(99.0))
                );
            }
            runs.push((run, marks));
        }
        // The median run by throughput (the lower middle one).
        runs.sort_by(|a, b| a.0.throughput().total_cmp(&b.0.throughput()));
        let (run, marks) = runs.swap_remove((runs.len() - 1) / 2);
        rows.push(Row { config, run, marks });
    }
    Ok(rows)
}
