//! The command's errors and their exit codes.

use std::path::PathBuf;

/// Exit code of a runtime failure.
pub(crate) const EXIT_RUNTIME: u8 = 1;
/// Exit code of a usage or settings error (the code clap uses too).
pub(crate) const EXIT_USAGE: u8 = 2;

/// Everything that ends a subcommand with a non-zero exit code.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The settings (file, environment or flags) are unusable: exit 2.
    #[error(transparent)]
    Settings(walguard::Error),

    /// A log filter (`log.level` or `RUST_LOG`) does not parse: exit 2.
    #[error("invalid setting {key} = {value:?}: {reason}")]
    LogFilter {
        /// `log.level` or `RUST_LOG`.
        key: &'static str,
        /// The filter as given.
        value: String,
        /// Why it was rejected.
        reason: String,
    },

    /// The path given does not exist.
    #[error("no such file: {}", path.display())]
    NoSuchFile {
        /// The path as given.
        path: PathBuf,
    },

    /// The path is not a regular file.
    #[error("{} is not a regular file", path.display())]
    NotAFile {
        /// The path as given.
        path: PathBuf,
    },

    /// The file is not an SQLite database (wrong header, or empty).
    #[error("{} is not an SQLite database: {why}", path.display())]
    NotADatabase {
        /// The path as given.
        path: PathBuf,
        /// What was found instead.
        why: &'static str,
    },

    /// `checkpoint` on a database that is not in WAL mode.
    #[error("{} is not in WAL mode (its header says rollback journal): there is no WAL to checkpoint", path.display())]
    NotWal {
        /// The path as given.
        path: PathBuf,
    },

    /// Reading a file failed.
    #[error("cannot read {}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },

    /// An SQLite call of `inspect` failed.
    #[error("cannot {what} on {}", path.display())]
    Sqlite {
        /// What was being done, e.g. `open read-only`.
        what: &'static str,
        /// The database path.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },

    /// A core call failed (open, schema, close).
    #[error(transparent)]
    Core(#[from] walguard::Error),

    /// The actor system failed.
    #[error(transparent)]
    Actors(#[from] walguard_actors::Error),

    /// `--metrics-addr` could not be served.
    #[error("cannot serve metrics on {addr}")]
    Metrics {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// What the exporter said.
        #[source]
        source: metrics_exporter_prometheus::BuildError,
    },

    /// A signal handler could not be installed.
    #[error("cannot listen for {signal}")]
    Signal {
        /// The signal, e.g. `SIGTERM`.
        signal: &'static str,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },

    /// The clean shutdown overran its budget.
    #[error(
        "shutdown did not finish within {budget_s} s; exiting (no commit is lost on a process exit)"
    )]
    ShutdownTimeout {
        /// The budget in seconds.
        budget_s: u64,
    },

    /// `bench --db` names a path that exists: it is never touched.
    #[error("{} exists: walguard bench writes only to a new file (remove it, or pick another --db)", path.display())]
    BenchPathExists {
        /// The path as given (or its `-wal`/`-shm` file).
        path: PathBuf,
    },

    /// The benchmark failed (a write, the chart...).
    #[error(transparent)]
    Bench(#[from] walguard_actors::bench::BenchError),

    /// `bench` was interrupted; its database was removed.
    #[error("interrupted; the benchmark database {} was removed", path.display())]
    BenchInterrupted {
        /// The benchmark database.
        path: PathBuf,
    },

    /// A one-shot checkpoint ran but did not complete.
    #[error("checkpoint did not complete: {outcome}")]
    CheckpointIncomplete {
        /// The outcome, e.g. `busy`.
        outcome: String,
    },
}

impl CliError {
    /// The process exit code for this error.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            // An invalid setting can also surface when the system validates
            // on start.
            Self::Settings(_)
            | Self::LogFilter { .. }
            | Self::BenchPathExists { .. }
            | Self::Actors(walguard_actors::Error::Db(
                walguard::Error::InvalidSetting { .. } | walguard::Error::Settings { .. },
            ))
            | Self::Core(
                walguard::Error::InvalidSetting { .. } | walguard::Error::Settings { .. },
            ) => EXIT_USAGE,
            _ => EXIT_RUNTIME,
        }
    }
}
