//! The command line, as clap derive structs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use walguard::CheckpointMode;
use walguard::settings::{LogFormat, parse_duration};

use crate::exit::Exit;

/// Keeps an engine's live state in one SQLite file in WAL mode, with
/// checkpoints that bound what a power loss can take.
#[derive(Debug, Parser)]
#[command(name = "walguard", version, propagate_version = true)]
#[command(after_help = after_help())]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,

    #[command(flatten)]
    pub(crate) global: Global,
}

/// The top-level help's closing text: the exit codes (from the one table,
/// [`Exit::SUMMARY`]), the command's one rule, examples.
fn after_help() -> String {
    format!("Exit codes: {}.\n\n{AFTER_HELP}", Exit::SUMMARY)
}

/// The rest of [`after_help`].
const AFTER_HELP: &str = "\
No command converts a rollback-journal database to WAL; `run` writes its
demo data only to a new database or one holding nothing but its own
walguard_demo_* tables. To keep a real engine's state in walguard, embed
the library (walguard_actors::WalGuard; see actors/examples/engine.rs).

Examples:
  walguard run                                  run until Ctrl-C on ./walguard.db
  walguard run --duration 30s --interval 1s     a short session with frequent checkpoints
  walguard inspect walguard.db                  report on a database without changing it
  walguard checkpoint walguard.db --mode truncate
  walguard bench --config prod.yaml             what writes cost on this disk with these settings";

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// When to colour the log lines: auto (on a terminal, unless `NO_COLOR`
    /// is set), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorArg::Auto, global = true)]
    pub(crate) color: ColorArg,

    /// The log filter: a level (error, warn, info, debug, trace, off) or
    /// tracing directives, e.g. `info,walguard::db=debug`. Wins over
    /// `RUST_LOG` and `log.level` [default: `log.level` for run, warn for
    /// the others].
    #[arg(long, value_name = "FILTER", global = true)]
    pub(crate) log_level: Option<String>,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorArg {
    /// Colour when stderr is a terminal and `NO_COLOR` is unset or empty.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

impl ColorArg {
    /// Whether log lines on stderr get ANSI colours.
    pub(crate) fn enabled(self) -> bool {
        use std::io::IsTerminal as _;
        match self {
            Self::Always => true,
            Self::Never => false,
            // https://no-color.org: any non-empty value disables colour.
            Self::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stderr().is_terminal()
            }
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a live session: the subsystem and a synthetic demo engine.
    ///
    /// The synthetic engine writes demo data to the subsystem until
    /// --duration, Ctrl-C or SIGTERM; then the clean shutdown and the
    /// session summary.
    #[command(after_help = "\
The database must be new, or hold nothing but the demo's own tables
(walguard_demo_records, walguard_demo_events) from an earlier run, and be
in WAL mode: any other database is refused before a single write and left
byte-for-byte untouched, and a rollback-journal database is never converted
to WAL. A database write-locked by another connection is refused at start.
`run` is a demonstration and a smoke test, not a way to serve your data: to
keep a real engine's state in walguard, embed the library
(walguard_actors::WalGuard; actors/examples/engine.rs shows how).

Exits 1 after the summary when any write failed: every demo write is valid,
so a failure means the database or the disk refused it.

On a terminal, one status line is redrawn in place on stderr; otherwise
(piped, CI) only log lines are written. The summary goes to stdout (one
JSON object with --json, or with JSON log lines).
Ctrl-C or SIGTERM runs the clean shutdown (drain writes, TRUNCATE, close)
within 5 s; a second Ctrl-C exits at once (a process exit loses no commit).

Settings come from the embedded defaults (config/default.yaml), then
--config FILE, then WALGUARD__SECTION__KEY variables, then these flags.

Examples:
  walguard run
  walguard run --duration 3s --interval 500ms --json
  walguard run --config config/dev.yaml --rate 2000
  walguard run --db /tmp/walguard-demo.db --metrics-addr 127.0.0.1:9187
  walguard run --duration 10s --log-level walguard=debug")]
    Run(RunArgs),

    /// Report on a database without changing it.
    ///
    /// Journal mode, page size, file sizes, WAL frames, synchronous, a
    /// quick integrity check. Opens read-only and never creates a file.
    #[command(after_help = "\
A WAL database with neither -wal nor -journal beside it (closed cleanly,
nobody has it open) is read immutable, which leaves no side file; any other
is read under SQLite's shared lock, and a writer holding it is reported
(exit 1), never read around.

Exits 2 when the path is missing or not an SQLite database (every refused
path exits 2), 1 when it is locked or has a hot journal.

Examples:
  walguard inspect walguard.db
  walguard inspect /var/lib/engine/state.db --json")]
    Inspect(InspectArgs),

    /// Run one checkpoint on a database, served by an engine or not.
    ///
    /// Prints the result row, the outcome and the elapsed time. Beside a
    /// running engine (its engine lock is held) only --mode passive runs:
    /// it never waits, and the engine's own checkpoints meanwhile come back
    /// busy, which is not an error. A blocking mode there is refused,
    /// because it would hold SQLite's write lock while it waits on readers
    /// and fail the engine's writes.
    #[command(after_help = "\
Exits 0 when the checkpoint completed; 1 when it was busy, partial or
failed (another process holds the WAL), or when a blocking mode (full,
restart, truncate: the default) is asked for on a database a walguard
engine serves; 2 when the path is missing, not an SQLite database, or not
in WAL mode (every refused path exits 2). Never creates a database, and never converts a rollback-journal
database to WAL. On a database nobody serves it holds the engine lock while
it runs, so an engine started meanwhile is told the file is served.

Examples:
  walguard checkpoint walguard.db
  walguard checkpoint walguard.db --mode passive
  walguard checkpoint walguard.db --mode truncate --timeout 10s --json")]
    Checkpoint(CheckpointArgs),

    /// Measure what writes cost on this machine, disk and settings.
    ///
    /// Single-row inserts of 100-byte blobs through the same actors as
    /// `run`, group commit on (and off, for comparison), at 1 and
    /// 256 writes in flight; then a table of throughput, latency,
    /// checkpoints and WAL peak.
    #[command(after_help = "\
The benchmark writes to a fresh database: by default a new file
walguard-bench-<pid>.db beside database.path (so it measures that disk),
removed afterwards with its -wal and -shm files. --db PATH picks the file
instead; it must not exist (an existing path is refused with exit 2, and
left untouched), and it is removed afterwards too. Your database is never
opened.

Settings come from the embedded defaults, then --config FILE, then
WALGUARD__SECTION__KEY variables, then these flags. The checkpoint loop
runs at checkpoint.interval (as under `walguard run`) unless
--no-checkpoint-loop. Each configuration runs --runs times; the run with
the median throughput is reported.

--open-loop 25,50,75 then sends writes at a fixed rate, those percentages
of the capacity just measured, for --open-duration each; latency counts
from each write's due time to its reply, so a checkpoint's stall counts for
every write due during it.

On a terminal a progress bar is redrawn in place on stderr; otherwise one
line per run. The table (or, with --json, one JSON object per
configuration) goes to stdout.

Examples:
  walguard bench
  walguard bench --config /etc/engine/walguard.yaml --synchronous full
  walguard bench --db /mnt/fast/bench.db --writes 1000000 --runs 3
  walguard bench --in-flight 1,16,256 --group-commit on
  walguard bench --duration 5s --interval 1s --in-flight 256 --group-commit on --chart latency.svg
  walguard bench --in-flight 256 --group-commit on --duration 4s --open-loop 25,50,75 --chart latency.svg
  walguard bench --json | jq .throughput")]
    Bench(BenchArgs),

    /// Restore a database from its Litestream replica into a new file.
    #[command(after_help = "\
The replica is the one `replication` in --config names for `database.path`;
the restored file goes to --db (default: `database.path`). An existing
file (or its -wal or -shm) is never overwritten. Needs the litestream
binary (replication.litestream_binary) and the replica's credentials in
the environment, as `run` does.

Exits 0 when restored, 1 when the replica is missing or unreachable or
the target exists, 2 for a settings error.

With --json the result is one JSON object on stdout: `database`,
`replica`, `restored`, `elapsed_s`; a failure prints `database`, `error`
and `exit_code`.

Examples:
  walguard restore --config replicate.yaml
  walguard restore --config replicate.yaml --db /tmp/restored.db")]
    Restore(RestoreArgs),
}

/// `walguard restore`.
#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    /// The YAML settings file with the `replication` section.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: PathBuf,

    /// Where the restored database goes (default: `database.path`); must
    /// not exist.
    #[arg(long, value_name = "PATH")]
    pub(crate) db: Option<PathBuf>,

    /// Print the result as one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `walguard run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// A YAML settings file laid on top of the embedded defaults.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// The demo database (overrides `database.path`): created when missing;
    /// an existing one must hold only the demo's own tables.
    #[arg(long, value_name = "PATH")]
    pub(crate) db: Option<PathBuf>,

    /// Time between two interval checkpoints, e.g. 60s, 1s, 250ms (overrides
    /// `checkpoint.interval`).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) interval: Option<Duration>,

    /// Stop after this long, e.g. 30s, 5m; runs until stopped when absent.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) duration: Option<Duration>,

    /// Writes per second the synthetic engine sends (each an upsert of a
    /// keyed record plus an appended event, in one transaction); 0 for none.
    #[arg(long, value_name = "WRITES_PER_S", default_value_t = DEFAULT_RATE)]
    pub(crate) rate: u32,

    /// Log line format (overrides `log.format`); `json` prints the summary
    /// as JSON too.
    #[arg(long, value_name = "FORMAT")]
    pub(crate) log_format: Option<LogFormatArg>,

    /// Print the session summary as one JSON object.
    #[arg(long)]
    pub(crate) json: bool,

    /// Serve Prometheus metrics on this address, at /metrics, e.g.
    /// 127.0.0.1:9187.
    #[arg(long, value_name = "ADDR")]
    pub(crate) metrics_addr: Option<SocketAddr>,
}

/// Default rate of the synthetic engine: 200 writes/s, a busy order book's
/// worth of state changes, well under what one write connection sustains.
pub(crate) const DEFAULT_RATE: u32 = 200;

/// `--log-format`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum LogFormatArg {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(arg: LogFormatArg) -> Self {
        match arg {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        }
    }
}

/// `walguard bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// A YAML settings file laid on top of the embedded defaults.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// The benchmark database; must not exist, removed afterwards
    /// [default: a new file beside database.path].
    #[arg(long, value_name = "PATH")]
    pub(crate) db: Option<PathBuf>,

    /// Inserts per run, e.g. 200000 (underscores allowed).
    #[arg(long, value_name = "N", default_value = "100_000", value_parser = parse_count)]
    pub(crate) writes: u64,

    /// Run each configuration this long instead of --writes, e.g. 5s.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) duration: Option<Duration>,

    /// Writes in flight, one configuration each (comma-separated or
    /// repeated).
    #[arg(
        long,
        value_name = "N",
        value_delimiter = ',',
        default_value = "1,256",
        value_parser = clap::value_parser!(u32).range(1..=65_536)
    )]
    pub(crate) in_flight: Vec<u32>,

    /// Group commit on, off, or both (off is then run at the levels above
    /// 1 only: a lone writer commits alone either way).
    #[arg(long, value_enum, default_value_t = GroupCommitArg::Both)]
    pub(crate) group_commit: GroupCommitArg,

    /// PRAGMA synchronous (overrides `database.synchronous`).
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub(crate) synchronous: Option<SynchronousArg>,

    /// Time between two interval checkpoints, e.g. 1s (overrides
    /// `checkpoint.interval`).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) interval: Option<Duration>,

    /// Do not run the interval checkpoint loop (size-triggered checkpoints
    /// still run).
    #[arg(long)]
    pub(crate) no_checkpoint_loop: bool,

    /// Runs per configuration; the median-throughput run is reported.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub(crate) runs: u32,

    /// Then an open loop at these percentages of the measured capacity
    /// (the group-commit run at the highest in-flight level), e.g.
    /// 25,50,75: writes arrive at a fixed rate whatever the replies do, and
    /// latency counts from each write's due time (no coordinated omission).
    #[arg(
        long,
        value_name = "PERCENT",
        value_delimiter = ',',
        value_parser = clap::value_parser!(u32).range(1..=100)
    )]
    pub(crate) open_loop: Vec<u32>,

    /// Length of each open-loop run.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5s")]
    pub(crate) open_duration: Duration,

    /// Also write an SVG chart of write latency over time with the
    /// checkpoints marked: for the open-loop run nearest 50 % when
    /// --open-loop is given, else for the group-commit run at the highest
    /// in-flight level (the last one without group commit if none).
    #[arg(long, value_name = "FILE.svg")]
    pub(crate) chart: Option<PathBuf>,

    /// Log line format (overrides `log.format`); `json` prints the
    /// results as JSON too.
    #[arg(long, value_name = "FORMAT")]
    pub(crate) log_format: Option<LogFormatArg>,

    /// Print the results as JSON, one object per configuration.
    #[arg(long)]
    pub(crate) json: bool,
}

/// A positive count; underscores allowed.
fn parse_count(text: &str) -> Result<u64, String> {
    let digits: String = text.chars().filter(|c| *c != '_').collect();
    match digits.parse::<u64>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is not a positive integer")),
    }
}

/// `--group-commit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum GroupCommitArg {
    /// Group commit on (the default setting).
    On,
    /// One transaction per write.
    Off,
    /// Both, to compare.
    Both,
}

/// `--synchronous`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum SynchronousArg {
    /// Fsync the WAL at checkpoints only.
    Normal,
    /// Fsync the WAL at every commit.
    Full,
}

impl From<SynchronousArg> for walguard::settings::Synchronous {
    fn from(arg: SynchronousArg) -> Self {
        match arg {
            SynchronousArg::Normal => Self::Normal,
            SynchronousArg::Full => Self::Full,
        }
    }
}

/// `walguard inspect`.
#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The database file.
    pub(crate) path: PathBuf,

    /// Print the report as one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `walguard checkpoint`.
#[derive(Debug, Args)]
pub(crate) struct CheckpointArgs {
    /// The database file; must exist and be in WAL mode.
    pub(crate) path: PathBuf,

    /// The checkpoint mode.
    #[arg(long, value_enum, default_value_t = ModeArg::Truncate)]
    pub(crate) mode: ModeArg,

    /// How long FULL, RESTART and TRUNCATE may wait for other connections
    /// before giving up (busy timeout, with a hard stop shortly after).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5s")]
    pub(crate) timeout: Duration,

    /// Print the result as one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `--mode`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ModeArg {
    /// Copy what can be copied without waiting for anyone.
    Passive,
    /// Wait for writers, then copy everything readers allow.
    Full,
    /// Like full, then wait for readers so the WAL restarts.
    Restart,
    /// Like restart, then truncate the WAL file to zero bytes.
    Truncate,
}

impl From<ModeArg> for CheckpointMode {
    fn from(arg: ModeArg) -> Self {
        match arg {
            ModeArg::Passive => CheckpointMode::Passive,
            ModeArg::Full => CheckpointMode::Full,
            ModeArg::Restart => CheckpointMode::Restart,
            ModeArg::Truncate => CheckpointMode::Truncate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    /// `--help` lists each subcommand on one line: a short `about`, the
    /// rest in `long_about`.
    #[test]
    fn every_subcommand_has_a_one_line_summary() {
        use clap::CommandFactory;
        for sub in Cli::command().get_subcommands() {
            let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
            assert!(!about.is_empty(), "{} has no summary", sub.get_name());
            assert!(
                about.len() <= 72 && !about.contains('\n'),
                "{}: {about:?}",
                sub.get_name()
            );
        }
    }
}
