//! The command line, as clap derive structs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use walguard::CheckpointMode;
use walguard::settings::{LogFormat, parse_duration};

/// Keeps an engine's live state in one SQLite file in WAL mode, with
/// checkpoints that bound what a power loss can take.
#[derive(Debug, Parser)]
#[command(name = "walguard", version, propagate_version = true)]
#[command(after_help = "\
Exit codes: 0 ok, 1 runtime failure, 2 usage or settings error.

Examples:
  walguard run                                  run until Ctrl-C on ./walguard.db
  walguard run --duration 30s --interval 1s     a short session with frequent checkpoints
  walguard inspect walguard.db                  report on a database without changing it
  walguard checkpoint walguard.db --mode truncate")]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a live session: the subsystem plus a synthetic engine writing to
    /// it, until --duration, Ctrl-C or SIGTERM; then the clean shutdown and
    /// the session summary.
    #[command(after_help = "\
On a terminal, one status line is redrawn in place on stderr; otherwise
(piped, CI) only log lines are written. The summary goes to stdout.
Ctrl-C or SIGTERM runs the clean shutdown (drain writes, TRUNCATE, close)
within 5 s; a second Ctrl-C exits at once (a process exit loses no commit).

Settings come from the embedded defaults (config/default.yaml), then
--config FILE, then WALGUARD__SECTION__KEY variables, then these flags.

Examples:
  walguard run
  walguard run --duration 3s --interval 500ms --log-format json
  walguard run --config config/dev.yaml --rate 2000
  walguard run --db /var/lib/engine/state.db --metrics-addr 127.0.0.1:9187
  RUST_LOG=walguard=debug walguard run --duration 10s")]
    Run(RunArgs),

    /// Report on a database without changing it: journal mode, page size,
    /// file sizes, WAL frames, synchronous, a quick integrity check. Opens
    /// read-only and never creates a file.
    #[command(after_help = "\
Exits 1 when the path is missing or not an SQLite database.

Examples:
  walguard inspect walguard.db
  walguard inspect /var/lib/engine/state.db")]
    Inspect(InspectArgs),

    /// Run one checkpoint on a database that is not being served, and print
    /// the result row, the outcome and the elapsed time.
    #[command(after_help = "\
Exits 0 when the checkpoint completed, 1 when it was busy, partial or failed
(another process holds the WAL), or the path is missing, not an SQLite
database, or not in WAL mode. Never creates a database.

Examples:
  walguard checkpoint walguard.db
  walguard checkpoint walguard.db --mode passive
  walguard checkpoint walguard.db --mode truncate --timeout 10s")]
    Checkpoint(CheckpointArgs),
}

/// `walguard run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// A YAML settings file laid on top of the embedded defaults.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// The database file (overrides `database.path`); created when missing.
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

    /// Log line format (overrides `log.format`).
    #[arg(long, value_name = "FORMAT")]
    pub(crate) log_format: Option<LogFormatArg>,

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

/// `walguard inspect`.
#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The database file.
    pub(crate) path: PathBuf,
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
}
