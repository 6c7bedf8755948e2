//! `walguard bench`: the benchmark workload ([`walguard_bench`]) on
//! the user's disk and settings, with a progress bar and a final table.
//!
//! The database is always a new file: `--db PATH` (refused when it exists)
//! or `walguard-bench-<pid>.db` beside `database.path`. It is removed, with
//! its `-wal` and `-shm` files, after every run, on an error and on Ctrl-C.

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use walguard::Settings;
use walguard::settings::{LogFormat, format_duration};
use walguard_bench::{
    CheckpointLog, CheckpointMark, DEFAULT_TIMELINE_BUCKET, Measured, OpenLoop, OpenMeasured,
    Progress, Until, Workload,
};

use crate::cli::{BenchArgs, Global, GroupCommitArg};
use crate::error::CliError;
use crate::logging;
use crate::status::{self, figure, ms, secs};

/// Redraw period of the progress bar on a terminal.
const BAR_REDRAW: Duration = Duration::from_millis(100);
/// Width of the bar itself, in characters.
const BAR_WIDTH: usize = 24;

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

/// The open-loop table, on stdout after the closed-loop one.
fn open_table(open: &[OpenRow], args: &BenchArgs) -> String {
    let mut text = format!(
        "\nOpen loop: writes arrive at a fixed rate for {} per level; latency from each \
         write's due time to its reply (hdrhistogram, 3 significant digits)\n\n",
        format_duration(args.open_duration)
    );
    let _ = writeln!(
        text,
        "{:>7} {:>12} {:>10} {:>10} {:>10} {:>10} {:>10} {:>11} {:>9} {:>10} {:>10}",
        "load",
        "writes/s",
        "writes",
        "p50",
        "p99",
        "p99.9",
        "max",
        "checkpoints",
        "ckpt max",
        "ckpt busy",
        "send lag"
    );
    for row in open {
        let run = &row.run;
        let _ = writeln!(
            text,
            "{:>6}% {:>12} {:>10} {:>10} {:>10} {:>10} {:>10} {:>11} {:>9} {:>9.1}% {:>10}",
            row.percent,
            thousands(run.rate.round() as u64),
            thousands(run.writes),
            latency(run.quantile_us(0.50)),
            latency(run.quantile_us(0.99)),
            latency(run.quantile_us(0.999)),
            latency(run.max_us()),
            writer_marks(row).count(),
            writer_marks(row).map(|m| m.elapsed).max().map_or_else(
                || "-".to_owned(),
                |max| format!("{:.2} ms", max.as_secs_f64() * 1000.0)
            ),
            busy_percent(row),
            latency(run.send_lag_max.as_secs_f64() * 1e6),
        );
    }
    text.push_str(
        "\nload: percent of the capacity measured above. checkpoints, ckpt max, ckpt busy: \
         the checkpoints the writer ran (from the checkpoint log; phase 1 of a two-phase \
         size checkpoint, reason backfill, runs on its own thread and is not counted), their \
         longest, and their total length over the run's, the share of the time the writer \
         spent checkpointing. send lag: the latest the generator \
         sent a write after its due time (included in the latency; a large one says the \
         client fell behind).\n",
    );
    text
}

/// The checkpoints of an open-loop run that ran on the writer: all but
/// phase 1 of the two-phase size checkpoint (reason `backfill`).
fn writer_marks(row: &OpenRow) -> impl Iterator<Item = &CheckpointMark> {
    row.marks.iter().filter(|m| m.reason != "backfill")
}

/// The share of an open-loop run the writer spent in checkpoints, in %.
fn busy_percent(row: &OpenRow) -> f64 {
    let busy: Duration = writer_marks(row).map(|m| m.elapsed).sum();
    100.0 * busy.as_secs_f64() / row.run.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
}

/// One open-loop run as a JSON object.
fn open_json(settings: &Settings, row: &OpenRow) -> serde_json::Value {
    let run = &row.run;
    serde_json::json!({
        "system": "walguard-group-commit",
        "workload": "open-loop",
        "synchronous": sync_name(settings),
        "percent": row.percent,
        "rate": run.rate,
        "writes": run.writes,
        "p50_us": figure(run.quantile_us(0.50)),
        "p99_us": figure(run.quantile_us(0.99)),
        "p999_us": figure(run.quantile_us(0.999)),
        "max_us": figure(run.max_us()),
        "send_lag_max_us": figure(run.send_lag_max.as_secs_f64() * 1e6),
        "checkpoints": run.checkpoints.counts.total,
        "writer_checkpoints": writer_marks(row).count(),
        "size_checkpoints": run.size_checkpoints,
        "checkpoint_max_ms": writer_marks(row).map(|m| m.elapsed).max().map(ms),
        "backfill_max_ms": row.marks.iter().filter(|m| m.reason == "backfill").map(|m| m.elapsed).max().map(ms),
        "checkpoint_busy_percent": figure(busy_percent(row)),
        "wal_peak_frames": run.wal_peak_frames,
    })
}

/// The chart of the charted open-loop run.
fn draw_open_chart(path: &Path, settings: &Settings, open: &[OpenRow]) -> Result<(), CliError> {
    let Some(row) = open.iter().find(|r| r.chart) else {
        return Ok(());
    };
    let Some(timeline) = &row.run.timeline else {
        return Ok(());
    };
    let title = format!(
        "walguard bench: open loop at {} % of capacity ({} writes/s), synchronous={}, checkpoint loop {}",
        row.percent,
        thousands(row.run.rate.round() as u64),
        sync_name(settings),
        loop_name(settings),
    );
    walguard_bench::chart::write_svg_from(
        path,
        &title,
        timeline,
        &row.marks,
        walguard_bench::chart::LatencyFrom::DueTime,
    )?;
    eprintln!("walguard bench: chart written to {}", path.display());
    Ok(())
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

/// The benchmark database: `--db` when it names no existing file (nor a
/// `-wal`/`-shm` beside it), else a new `walguard-bench-<pid>[-n].db`
/// beside `database.path`.
fn bench_path(db: Option<&Path>, database: &Path) -> Result<PathBuf, CliError> {
    let taken = |p: &Path| {
        [
            p.to_path_buf(),
            walguard::files::wal_path(p),
            walguard::files::shm_path(p),
        ]
        .into_iter()
        .find(|f| f.symlink_metadata().is_ok())
    };
    if let Some(db) = db {
        return match taken(db) {
            Some(path) => Err(CliError::BenchPathExists { path }),
            None => Ok(db.to_path_buf()),
        };
    }
    let dir = match database.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let pid = std::process::id();
    let mut path = dir.join(format!("walguard-bench-{pid}.db"));
    let mut n = 0u64;
    while taken(&path).is_some() {
        n += 1;
        path = dir.join(format!("walguard-bench-{pid}-{n}.db"));
    }
    Ok(path)
}

/// The benchmark database and its companions, removed on drop (and between
/// runs). Removal is best effort: a file that is already gone is fine.
struct Scratch(PathBuf);

impl Scratch {
    fn remove(path: &Path) {
        for file in [
            path.to_path_buf(),
            walguard::files::wal_path(path),
            walguard::files::shm_path(path),
            walguard::files::journal_path(path),
        ] {
            let _ = std::fs::remove_file(file);
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        Self::remove(&self.0);
    }
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

/// The progress display of one run: a bar redrawn in place on a terminal,
/// else one line when the run starts.
struct Bar {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Bar {
    fn start(label: String, until: Until, progress: Progress, on_terminal: bool) -> Self {
        if !on_terminal {
            eprintln!("walguard bench: {label}: running");
            return Self { task: None };
        }
        let started = Instant::now();
        let task = actix::spawn(async move {
            let mut tick = tokio::time::interval(BAR_REDRAW);
            loop {
                tick.tick().await;
                status::draw(&bar_line(
                    &label,
                    until,
                    progress.writes(),
                    started.elapsed(),
                ));
            }
        });
        Self { task: Some(task) }
    }

    fn stop(self) {
        if let Some(task) = self.task {
            task.abort();
            status::clear();
        }
    }
}

/// `label  [#####.....]  45%  45,000/100,000 writes  62,300 writes/s`.
fn bar_line(label: &str, until: Until, writes: u64, elapsed: Duration) -> String {
    let (done, of) = match until {
        Until::Writes(n) => (
            writes as f64 / n as f64,
            format!("{}/{} writes", thousands(writes), thousands(n)),
        ),
        Until::Deadline(d) => (
            elapsed.as_secs_f64() / d.as_secs_f64(),
            format!(
                "{:.1}/{:.1} s, {} writes",
                elapsed.as_secs_f64(),
                d.as_secs_f64(),
                thousands(writes)
            ),
        ),
    };
    let done = done.clamp(0.0, 1.0);
    let filled = (done * BAR_WIDTH as f64).round() as usize;
    let rate = writes as f64 / elapsed.as_secs_f64().max(1e-3);
    format!(
        "{label}  [{}{}] {:>3.0}%  {of}  {} writes/s",
        "#".repeat(filled),
        ".".repeat(BAR_WIDTH - filled),
        done * 100.0,
        thousands(rate.round() as u64)
    )
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A latency in µs as µs below 1 ms, else ms.
fn latency(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.1} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

/// What the benchmark database is called in the table.
fn scratch_name(args: &BenchArgs, settings: &Settings) -> String {
    if let Some(db) = &args.db {
        return db.display().to_string();
    }
    let dir = settings
        .database
        .path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    format!("a new file in {}", dir.display())
}

fn sync_name(settings: &Settings) -> String {
    settings.database.synchronous.as_str().to_ascii_lowercase()
}

/// The checkpoint loop, as the header says it.
fn loop_name(settings: &Settings) -> String {
    if settings.checkpoint.enabled {
        format!("every {}", format_duration(settings.checkpoint.interval))
    } else {
        "off".to_owned()
    }
}

/// The final table, on stdout.
fn table(settings: &Settings, db: &str, rows: Vec<Row>, args: &BenchArgs) -> String {
    let work = match args.duration {
        Some(d) => format!("{} of", format_duration(d)),
        None => thousands(args.writes),
    };
    let mut text = format!(
        "walguard bench on {db} (removed after): SQLite {}, synchronous={}, checkpoint loop {}, \
         size checkpoint at {} frames, max_batch {}\n\
         {work} single-row inserts of {} bytes per configuration, median of {} run(s)\n\n",
        rusqlite::version(),
        sync_name(settings),
        loop_name(settings),
        settings.checkpoint.size_threshold_frames,
        settings.database.max_batch,
        walguard_bench::PAYLOAD_BYTES,
        args.runs,
    );
    let _ = writeln!(
        text,
        "{:<12} {:>9} {:>10} {:>12} {:>10} {:>10} {:>10} {:>11} {:>9}  WAL peak",
        "group commit",
        "in flight",
        "writes",
        "writes/s",
        "p50",
        "p99",
        "max",
        "checkpoints",
        "ckpt p95",
    );
    for Row {
        config, mut run, ..
    } in rows
    {
        let report = &run.checkpoints;
        let count = report.counts.total;
        let p95 = if report.window.n() > 0 {
            format!("{:.2} ms", report.window.p95().as_secs_f64() * 1000.0)
        } else {
            "-".to_owned()
        };
        let peak = run.wal_peak_frames.map_or_else(
            || "-".to_owned(),
            |f| format!("{f} frames ({})", status::bytes(run.wal_file_bytes)),
        );
        let _ = writeln!(
            text,
            "{:<12} {:>9} {:>10} {:>12} {:>10} {:>10} {:>10} {:>11} {:>9}  {}",
            if config.group_commit { "on" } else { "off" },
            config.in_flight,
            thousands(run.writes),
            thousands(run.throughput().round() as u64),
            latency(run.latency.percentile_us(50.0)),
            latency(run.latency.percentile_us(99.0)),
            latency(run.latency.max_us()),
            count,
            p95,
            peak,
        );
    }
    text.push_str(
        "\nLatency is submit to reply, per write. Checkpoints: those of the timed phase \
         (interval and size-triggered), with the p95 of their durations. WAL peak: frames \
         from the WAL hook, bytes of the -wal file.\n",
    );
    text
}

/// One configuration as a JSON object: `bench/README.md`'s row fields plus
/// the checkpoint and WAL figures.
fn row_json(settings: &Settings, row: Row, runs: u32) -> serde_json::Value {
    let Row {
        config, mut run, ..
    } = row;
    let report = &run.checkpoints;
    serde_json::json!({
        "system": if config.group_commit { "walguard-group-commit" } else { "walguard" },
        "workload": "single-insert",
        "synchronous": sync_name(settings),
        "group_commit": config.group_commit,
        "in_flight": config.in_flight,
        "writes": run.writes,
        "seconds": secs(run.elapsed),
        "throughput": figure(run.throughput()),
        "p50_us": figure(run.latency.percentile_us(50.0)),
        "p99_us": figure(run.latency.percentile_us(99.0)),
        "max_us": figure(run.latency.max_us()),
        "runs": runs,
        "checkpoints": report.counts.total,
        "size_checkpoints": run.size_checkpoints,
        "checkpoint_p95_ms": (report.window.n() > 0).then(|| ms(report.window.p95())),
        "checkpoint_max_ms": (report.window.n() > 0).then(|| ms(report.window.max())),
        "wal_peak_frames": run.wal_peak_frames,
        "wal_file_bytes": run.wal_file_bytes,
        "mean_group": figure(run.mean_group),
    })
}

/// The chart of the charted configuration.
fn draw_chart(path: &Path, settings: &Settings, rows: &[Row]) -> Result<(), CliError> {
    let Some(row) = rows.iter().find(|r| r.config.chart) else {
        return Ok(());
    };
    let Some(timeline) = &row.run.timeline else {
        return Ok(());
    };
    let title = format!(
        "walguard bench: write latency, {}, synchronous={}, checkpoint loop {}, {} writes/s",
        row.config.label(),
        sync_name(settings),
        loop_name(settings),
        thousands(row.run.throughput().round() as u64),
    );
    walguard_bench::chart::write_svg(path, &title, timeline, &row.marks)?;
    eprintln!("walguard bench: chart written to {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(latency(59.64), "59.6 µs");
        assert_eq!(latency(5031.1), "5.03 ms");
    }

    #[test]
    fn the_bar_fills_with_the_work() {
        let line = bar_line("x", Until::Writes(100), 50, Duration::from_secs(1));
        assert!(
            line.contains(" 50%") && line.contains("50/100 writes"),
            "{line}"
        );
        assert!(
            line.contains(&format!("[{}{}]", "#".repeat(12), ".".repeat(12))),
            "{line}"
        );
    }

    #[test]
    fn an_existing_path_is_refused_and_a_default_name_is_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.db");
        std::fs::write(&db, b"keep").unwrap();
        assert!(matches!(
            bench_path(Some(&db), &db),
            Err(CliError::BenchPathExists { .. })
        ));
        let fresh = bench_path(None, &db).unwrap();
        assert_eq!(fresh.parent(), Some(dir.path()));
        assert!(!fresh.exists());
        std::fs::write(&fresh, b"").unwrap();
        let next = bench_path(None, &db).unwrap();
        assert_ne!(next, fresh);
    }
}
