//! The command's errors and their exit codes.

use std::path::PathBuf;

use crate::exit::Exit;

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

    /// The path given does not exist: exit 2, as every refused path.
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

    /// `run` or `checkpoint` on a rollback-journal database. The one rule
    /// of the command: it never converts a database to WAL.
    #[error(
        "{} is a rollback-journal database (not WAL): walguard never converts a database to WAL",
        path.display()
    )]
    NotWal {
        /// The path as given.
        path: PathBuf,
    },

    /// `run --db` names a database that holds more than the synthetic
    /// engine's own tables: it is never written.
    #[error(
        "{} holds {found}, which walguard run did not create: run writes its demo data only to a new \
         file or to one that holds nothing but {prefix}* tables, and this file was not touched; \
         to serve a real database, embed walguard_actors::WalGuard (see actors/examples/engine.rs)",
        path.display(),
        prefix = crate::demo::DEMO_PREFIX
    )]
    NotDemo {
        /// The path as given.
        path: PathBuf,
        /// What was found, e.g. `table events, index events_by_key`.
        found: String,
    },

    /// `run --db` names no file, but a `-wal` or `-journal` of that name
    /// exists: the remains of someone's database, never reused.
    #[error(
        "{} does not exist but {} does: the remains of another database; remove it, or pick another --db",
        path.display(),
        sibling.display()
    )]
    Remains {
        /// The path as given.
        path: PathBuf,
        /// The `-wal` or `-journal` file found.
        sibling: PathBuf,
    },

    /// Another connection holds a lock the command would have to wait on.
    #[error("{} is locked by {holder}: {consequence}", path.display())]
    Locked {
        /// The database path.
        path: PathBuf,
        /// Who holds it: `another process (pid 4711)` where the OS tells,
        /// else `another connection`.
        holder: String,
        /// What the command does about it.
        consequence: &'static str,
    },

    /// `inspect` found a hot journal that no one holds: only a read-write
    /// open may roll it back, and `inspect` is read-only.
    #[error(
        "{} has a hot journal (a writer stopped in the middle of a transaction): the next read-write \
         open rolls it back; inspect is read-only and will not read around it",
        path.display()
    )]
    HotJournal {
        /// The database path.
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

    /// An SQLite call of `inspect`, or of a check before `run`, failed.
    #[error("cannot {what} of {}", path.display())]
    Sqlite {
        /// What was being done, e.g. `read the page count`.
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

    /// A signal handler could not be installed (Windows' console handler
    /// fails as [`walguard_actors::Error::ConsoleHandler`]).
    #[cfg(unix)]
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
        "shutdown did not finish within {budget_s} s (the engine had {acknowledged} writes acknowledged \
         and {failed} failed); exiting without the session summary (no commit is lost on a process exit)"
    )]
    ShutdownTimeout {
        /// The budget in seconds (4.5 after a Windows console event).
        budget_s: f64,
        /// Writes acknowledged to the engine so far.
        acknowledged: u64,
        /// Writes that returned an error to the engine so far.
        failed: u64,
    },

    /// `bench --db` names a path that exists: it is never touched.
    #[error("{} exists: walguard bench writes only to a new file (remove it, or pick another --db)", path.display())]
    BenchPathExists {
        /// The path as given (or its `-wal`/`-shm` file).
        path: PathBuf,
    },

    /// The benchmark failed (a write, the chart...).
    #[error(transparent)]
    Bench(#[from] walguard_bench::BenchError),

    /// `bench` was interrupted; its database was removed.
    #[error("interrupted; the benchmark database {} was removed", path.display())]
    BenchInterrupted {
        /// The benchmark database.
        path: PathBuf,
    },

    /// The database file was deleted, renamed or replaced during the
    /// session: nothing acknowledged is at its path.
    #[error("the database file {} was deleted, renamed or replaced during the session; the writes acknowledged to it are not at that path", path.display())]
    DatabaseGone {
        /// The database path.
        path: PathBuf,
    },

    /// Writes of the synthetic engine failed (a full disk, a lock held past
    /// `busy_timeout`, a read-only file): every write it sends is valid, so
    /// any failure means the database refused it.
    #[error("{failed} of {sent} writes failed (see the warnings above); the summary counts them")]
    WritesFailed {
        /// Writes that returned an error.
        failed: u64,
        /// Writes sent.
        sent: u64,
    },

    /// `walguard checkpoint` in a blocking mode on a database an engine
    /// serves: refused before the file was opened.
    #[error(
        "database {} is served by a walguard engine{}: a {mode} checkpoint would hold SQLite's write lock while it waits on readers, and the engine's writes would fail with \"database is locked\"; use --mode passive (it never waits), or let the engine checkpoint",
        path.display(),
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    ServedBlockingCheckpoint {
        /// The database.
        path: PathBuf,
        /// The mode asked for, e.g. `truncate`.
        mode: &'static str,
        /// The engine's process, when its lock file says.
        pid: Option<u32>,
    },

    /// `run` stopped while the replica lacked commits (replication on).
    #[error(
        "stopped with {commits} commits ({writes} writes) not on the replica; they are committed locally, and the wal keeps them for litestream's next start"
    )]
    ReplicaBehind {
        /// Commits of the session not on the replica.
        commits: u64,
        /// Their writes.
        writes: u64,
    },

    /// A one-shot checkpoint ran but did not complete.
    #[error("checkpoint did not complete: {outcome}")]
    CheckpointIncomplete {
        /// The outcome, e.g. `busy`.
        outcome: String,
    },
}

impl CliError {
    /// Whether the command printed its own answer before failing with this
    /// error (a one-shot checkpoint that ran and ended `busy` or `partial`
    /// has already printed its result).
    pub(crate) fn printed_answer(&self) -> bool {
        matches!(self, Self::CheckpointIncomplete { .. })
    }

    /// The exit code for this error ([`Exit`], the one table).
    pub(crate) fn exit(&self) -> Exit {
        match self {
            // An invalid setting can also surface when the system validates
            // on start. A path is refused with one code, whatever the
            // reason.
            Self::Settings(_)
            | Self::LogFilter { .. }
            | Self::NoSuchFile { .. }
            | Self::NotAFile { .. }
            | Self::NotADatabase { .. }
            | Self::NotWal { .. }
            | Self::BenchPathExists { .. }
            | Self::NotDemo { .. }
            | Self::Remains { .. }
            | Self::Actors(walguard_actors::Error::Db(
                walguard::Error::InvalidSetting { .. } | walguard::Error::Settings { .. },
            ))
            | Self::Core(
                walguard::Error::InvalidSetting { .. } | walguard::Error::Settings { .. },
            ) => Exit::Usage,
            Self::ReplicaBehind { .. } => Exit::ReplicaBehind,
            _ => Exit::Failure,
        }
    }
}

/// Renders an error and its causes on one line, `a: b: c`, saying each
/// thing once: the core's one renderer, [`walguard::error::error_chain`].
/// Every message the command prints about an error goes through it.
pub(crate) fn render(error: &dyn std::error::Error) -> String {
    walguard::error::error_chain(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sqlite_failure_is_said_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        let source = conn
            .query_row("PRAGMA page_count", [], |r| r.get::<_, i64>(0))
            .unwrap_err();
        let error = CliError::Sqlite {
            what: "read the page count",
            path: path.clone(),
            source,
        };
        let text = render(&error);
        assert_eq!(
            text,
            format!(
                "cannot read the page count of {}: file is not a database",
                path.display()
            )
        );
    }

    #[test]
    fn a_cause_with_new_text_is_kept() {
        let error = CliError::Io {
            path: "a.db".into(),
            source: std::io::Error::other("permission denied"),
        };
        assert_eq!(render(&error), "cannot read a.db: permission denied");
    }
}
