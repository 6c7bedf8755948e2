//! The command's exit codes: the one table, applied by every subcommand
//! (`docs/operations.md`, "Exit codes", is its manual).
//!
//! | code | [`Exit`] | meaning |
//! |---|---|---|
//! | 0 | [`Exit::Success`] | success |
//! | 1 | [`Exit::Failure`] | a runtime failure (the database, a lock, a checkpoint, a write) |
//! | 2 | [`Exit::Usage`] | a flag, setting or path the command refuses, whatever the reason |
//! | 3 | [`Exit::ReplicaBehind`] | `run` stopped while the replica lacked commits |
//! | 130 | [`Exit::SecondInterrupt`] | a second interrupt during the shutdown |

/// One exit code of the `walguard` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Exit {
    /// Success. For `checkpoint`, the checkpoint completed.
    Success = 0,
    /// A runtime failure, on one line on stderr (a panic too).
    Failure = 1,
    /// A usage or settings error (the code clap uses too), and every path
    /// the command refuses to read or write: missing, not a regular file,
    /// not an SQLite database, not in WAL mode, another database's tables
    /// or remains, an existing `bench --db`.
    Usage = 2,
    /// `run` stopped while the replica lacked commits: every write is
    /// committed locally, but a machine loss now would take some.
    ReplicaBehind = 3,
    /// A second interrupt during the shutdown: 128 + SIGINT, as shells
    /// report it.
    SecondInterrupt = 130,
}

impl Exit {
    /// The table on one line, for `--help`.
    pub(crate) const SUMMARY: &str = "0 ok, 1 runtime failure, 2 usage or settings error or a refused path, \
         3 replica behind (run), 130 second interrupt (run)";

    /// The code as the process returns it.
    pub(crate) fn code(self) -> u8 {
        self as u8
    }

    /// Exits the process at once with this code.
    pub(crate) fn now(self) -> ! {
        std::process::exit(i32::from(self.code()))
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        Self::from(exit.code())
    }
}
