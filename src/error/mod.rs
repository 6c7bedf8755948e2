//! The core crate's one error type.
//!
//! Messages are lowercase fragments that name what failed and where. The
//! underlying cause is never printed inside `Display`; it is returned from
//! [`std::error::Error::source`], so a report that walks the chain prints
//! every cause exactly once.

mod chain;
mod settings;
mod text;

use std::path::PathBuf;

pub use chain::error_chain;
pub use settings::SettingsError;
pub use text::panic_message;
pub(crate) use text::sql_for_error;
use text::{describe_migration, holder};

/// Everything that can go wrong in the core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database file could not be opened or created (missing directory,
    /// permissions, not a database, locked by another process).
    #[error("cannot open database {}", path.display())]
    Open {
        /// The database path as configured.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },

    /// A file exists at the path but is not an SQLite database.
    #[error("{} is not an SQLite database", path.display())]
    NotADatabase {
        /// The offending path.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },

    /// A `PRAGMA` needed to configure the connection failed.
    #[error("cannot set {pragma} on {}", path.display())]
    Pragma {
        /// The database path.
        path: PathBuf,
        /// The pragma, e.g. `journal_mode`.
        pragma: &'static str,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },

    /// SQLite refused WAL mode and reported another journal mode back
    /// (an in-memory database answers `memory`).
    #[error("database {} runs in journal mode {mode:?}, walguard needs \"wal\"", path.display())]
    NotWal {
        /// The database path.
        path: PathBuf,
        /// The mode SQLite reported.
        mode: String,
    },

    /// A single statement failed: bad SQL, a wrong parameter count, a
    /// constraint violation, a full disk... Nothing was written.
    #[error("statement failed: {sql}")]
    Statement {
        /// The statement (shortened when long).
        sql: String,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },

    /// A statement inside an atomic batch failed; the whole batch was rolled
    /// back and nothing of it was written.
    #[error("transaction rolled back: statement {index} failed: {sql}")]
    Transaction {
        /// Zero-based position of the failing statement in the batch.
        index: usize,
        /// The failing statement (shortened when long).
        sql: String,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },

    /// A statement of an atomic batch would end or split the transaction
    /// walguard opened for it (`COMMIT`, `END`, `ROLLBACK`, `SAVEPOINT`,
    /// `RELEASE`, `ROLLBACK TO`, `BEGIN`), as SQLite says when it compiles
    /// it. The batch was refused before anything ran.
    #[error("statement {index} would end or split the transaction, so nothing ran: {sql}")]
    SplitsTransaction {
        /// Zero-based position of the statement in the batch.
        index: usize,
        /// The statement (shortened when long).
        sql: String,
    },
    /// Beginning or committing a transaction failed; nothing was written.
    #[error("cannot {step} transaction")]
    TransactionControl {
        /// `begin` or `commit`.
        step: &'static str,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },

    /// A closure passed to [`Store::call`](crate::Store::call) returned an
    /// error.
    #[error("closure on the write connection failed")]
    Call {
        /// What the closure returned.
        #[source]
        source: rusqlite::Error,
    },

    /// A closure passed to [`Store::call`](crate::Store::call) panicked.
    /// The panic was caught at the closure's boundary, a transaction it
    /// left open was rolled back, and the store keeps serving.
    #[error("closure on the write connection panicked: {message}")]
    Panic {
        /// The panic's message.
        message: String,
    },
    /// Closing the connection failed. [`Store::close`](crate::Store::close)
    /// hands the store back alongside this error.
    #[error("cannot close database {}", path.display())]
    Close {
        /// The database path.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },

    /// One failed `BEGIN IMMEDIATE` or `COMMIT` of a group commit
    /// ([`Store::execute_group`](crate::Store::execute_group)): every write
    /// of the group gets this error, sharing the one cause. Nothing of the
    /// group was written.
    #[error("cannot {step} the group commit this write was part of ({writes} writes)")]
    GroupControl {
        /// `begin` or `commit`.
        step: &'static str,
        /// Writes in the group.
        writes: usize,
        /// What SQLite said, shared by every write of the group.
        #[source]
        source: std::sync::Arc<rusqlite::Error>,
    },
    /// A statement or a closure left a transaction open. walguard rolled it
    /// back (checkpoints run between transactions): nothing it did was
    /// written. Send statements that belong together as one
    /// [`Store::transaction`](crate::Store::transaction).
    #[error(
        "{what} left a transaction open, so it was rolled back; send statements that belong together as one transaction"
    )]
    LeftTransactionOpen {
        /// `statement BEGIN` (shortened when long) or `closure`.
        what: String,
    },
    /// The rollback of a transaction left open by a statement or a closure
    /// failed; the transaction may still be open.
    #[error("{what} left a transaction open and rolling it back failed")]
    RollbackFailed {
        /// `statement BEGIN` (shortened when long) or `closure`.
        what: String,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A statement would change a setting walguard's promises rest on
    /// (see [`GUARDED_PRAGMAS`](crate::store::GUARDED_PRAGMAS)): refused
    /// before it ran, on every entry point. The connection is unchanged.
    #[error("refused {sql}: the write connection's {pragma} is walguard's to set ({instead})")]
    GuardedSetting {
        /// The statement (shortened when long).
        sql: String,
        /// The guarded PRAGMA, e.g. `synchronous`.
        pragma: &'static str,
        /// What to use instead, e.g. `set database.synchronous`.
        instead: &'static str,
    },
    /// A [`Store::call`](crate::Store::call) closure changed settings
    /// walguard's promises rest on. walguard set them back; the commits
    /// the closure made count as exposed until the next checkpoint that
    /// catches up. The closure's own result is lost with this error.
    #[error("the closure changed {changed} on the write connection; walguard set it back")]
    SettingRestored {
        /// Each setting, the value found and the value restored, e.g.
        /// `synchronous = 0 (restored to 2)`.
        changed: String,
    },
    /// A [`Store::call`](crate::Store::call) closure changed settings
    /// walguard's promises rest on, and setting them back failed: from now
    /// on no commit counts as durable ([`Store::weakened`](crate::Store::weakened)).
    #[error(
        "the closure changed {changed} on the write connection and setting it back failed ({reason}); no commit counts as durable from now on"
    )]
    SettingLost {
        /// Each setting and the value found.
        changed: String,
        /// Why the restore failed: what SQLite said, or the value still
        /// found.
        reason: String,
    },
    /// [`Store::query`](crate::Store::query) runs reads only; this
    /// statement writes, controls a transaction, attaches a database or
    /// runs a PRAGMA that changes something (as SQLite says when it
    /// compiles it). Nothing ran.
    #[error("query runs reads only, and {sql} {what}; send it through execute or transaction")]
    NotARead {
        /// The statement (shortened when long).
        sql: String,
        /// What it would do, e.g. `writes`.
        what: &'static str,
    },
    /// The directory the database should live in does not exist; walguard
    /// creates the file, never its directories.
    #[error("cannot open database {}: directory {} does not exist", path.display(), directory.display())]
    MissingDirectory {
        /// The database path as configured.
        path: PathBuf,
        /// Its parent directory.
        directory: PathBuf,
    },
    /// SQLite reports another `synchronous` level than the one set.
    #[error("cannot set synchronous on {}: asked for {asked}, sqlite reports level {reported}", path.display())]
    SynchronousMismatch {
        /// The database path.
        path: PathBuf,
        /// The level asked for.
        asked: crate::synchronous::Synchronous,
        /// The level SQLite reports (`PRAGMA synchronous`).
        reported: i64,
    },
    /// The database file was deleted, renamed or replaced while the store
    /// had it open ([`Store::check_file`](crate::Store::check_file)). SQLite
    /// would go on writing to a file nobody can open again, so writes and
    /// checkpoints are refused, and nothing more counts as durable.
    #[error("database file {} was {how} while walguard had it open; nothing written now could be read again", path.display())]
    DatabaseGone {
        /// The database path.
        path: PathBuf,
        /// `deleted or renamed`, or `replaced by another file`.
        how: &'static str,
    },
    /// Another engine serves this database: it holds the engine lock
    /// ([`EngineLock`](crate::EngineLock)).
    #[error("database {} is served by another engine (walguard, {}); lock file {}", path.display(), holder(*pid), lock.display())]
    AlreadyServed {
        /// The database path.
        path: PathBuf,
        /// The process that holds the lock, when the lock file says.
        pid: Option<u32>,
        /// The lock file.
        lock: PathBuf,
    },
    /// The engine lock file could not be created or locked.
    #[error("cannot take the engine lock {}", path.display())]
    EngineLock {
        /// The lock file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The owner of the store (walguard-actors' `DbActor`) stopped after a
    /// panic in its own code, a bug: it serves no more requests, and every
    /// request gets this error. A panic in a caller's closure is
    /// [`Error::Panic`] instead, and the writer goes on.
    #[error("writer stopped after a panic: {message}")]
    WriterPanicked {
        /// The panic's message.
        message: String,
    },
    /// The request was not run: the writer of this database had passed its
    /// shutdown deadline when the request's turn came.
    #[error("not run: the writer of {} passed its shutdown deadline", path.display())]
    ShutdownDeadline {
        /// The database path.
        path: PathBuf,
    },
    /// With `replication.ack: replicated`: the write is committed locally,
    /// but no sync confirmed it on the replica within `replication.max_lag`
    /// (or before the shutdown), so it is not acknowledged as replicated.
    #[error(
        "committed locally to {} but not confirmed on the replica within {waited_ms}ms (replication.max_lag; ack: replicated)",
        path.display()
    )]
    NotReplicated {
        /// The database path.
        path: PathBuf,
        /// How long the write waited, in milliseconds.
        waited_ms: u64,
    },
    /// The replica hold (replication on) could not pin the WAL before a
    /// checkpoint, so the checkpoint did not run: running it could take
    /// frames the replica lacks out of the WAL.
    #[error("cannot pin the wal of {} for the replica; checkpoint not run", path.display())]
    ReplicaHold {
        /// The database path.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The store was already closed (for example after shutdown).
    #[error("database {} is closed", path.display())]
    Closed {
        /// The database path.
        path: PathBuf,
    },

    /// A setting has a value walguard cannot use.
    #[error("invalid setting {key} = {value}: {reason}")]
    InvalidSetting {
        /// Dotted key, e.g. `checkpoint.interval`.
        key: String,
        /// The value as given.
        value: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A settings source could not be read or parsed (missing file, YAML
    /// syntax, unknown key, wrong type).
    #[error("cannot load settings from {origin}")]
    Settings {
        /// Which source: a file path, or `defaults`/`environment`.
        origin: String,
        /// What went wrong, naming the key where one is known.
        #[source]
        source: SettingsError,
    },

    /// After a checkpoint I/O error the store reopened its connection, but
    /// another connection to the database stayed open, so SQLite kept the
    /// WAL index and its stale count of copied frames. Checkpoints are
    /// refused, writes go on, until that connection closes (see "Failed
    /// fsync" in the [checkpoint policy](crate::checkpoint)).
    #[error(
        "cannot rebuild the wal index of {}: another connection keeps the database open; checkpoints wait until it closes",
        path.display()
    )]
    StaleWalIndex {
        /// The database path.
        path: PathBuf,
    },

    /// Phase 1 of a two-phase size checkpoint was stopped (shutdown, a
    /// reopen, an explicit checkpoint) before its checkpoint ran.
    #[error("phase 1 of the size checkpoint of {} was stopped before it ran", path.display())]
    BackfillStopped {
        /// The database file.
        path: PathBuf,
    },

    /// The thread of phase 1 of a two-phase size checkpoint panicked (its
    /// connection was closed by the unwinding); the writer goes on.
    #[error("phase 1 of the size checkpoint panicked: {message}")]
    BackfillPanicked {
        /// The panic's message.
        message: String,
    },

    /// The migrations directory cannot be read.
    #[error("cannot read the migrations directory {}", path.display())]
    MigrationsDirectory {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },

    /// A `.sql` file of the migrations directory is not named
    /// `NNNN_name.sql`, or shares its number with another: nothing was
    /// applied.
    #[error("migration file {} is refused: {reason}; name them NNNN_name.sql with distinct numbers", path.display())]
    MigrationFileName {
        /// The file.
        path: PathBuf,
        /// What is wrong with its name.
        reason: String,
    },

    /// A migration file cannot be read (or is not UTF-8).
    #[error("cannot read migration file {}", path.display())]
    MigrationFile {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },

    /// The database's schema version (`PRAGMA user_version`) is above the
    /// number of migrations this build knows: a newer build has changed it.
    /// Nothing was written; the file is as it was.
    #[error(
        "database {} is at schema version {found}, but this build knows only {known} migrations: a newer build has changed it, so nothing was touched; run the newer build, or restore a copy made before it"
    , path.display())]
    SchemaFromTheFuture {
        /// The database path.
        path: PathBuf,
        /// The schema version found in the file.
        found: i64,
        /// The migrations given (the latest version this build knows).
        known: usize,
    },

    /// A statement of a migration failed. The transaction of all pending
    /// migrations was rolled back: none of them is applied, and the schema
    /// version is as it was.
    #[error("{} failed, so no migration was applied: {message}; in: {sql}", describe_migration(*number, file.as_ref()))]
    MigrationFailed {
        /// The migration's 1-based number.
        number: usize,
        /// Its file, when it came from a directory.
        file: Option<PathBuf>,
        /// The failing statement (shortened when long).
        sql: String,
        /// What SQLite said.
        message: String,
    },

    /// A statement of a migration would end or open a transaction of its
    /// own (`COMMIT`, `BEGIN`, `SAVEPOINT`, `RELEASE`, `ROLLBACK`...), as
    /// SQLite says when it compiles it: the migrations run in walguard's
    /// one transaction. Nothing was applied.
    #[error("{} would end or open a transaction of its own, so no migration was applied: {sql}", describe_migration(*number, file.as_ref()))]
    MigrationSplitsTransaction {
        /// The migration's 1-based number.
        number: usize,
        /// Its file, when it came from a directory.
        file: Option<PathBuf>,
        /// The statement (shortened when long).
        sql: String,
    },

    /// `BEGIN` or `COMMIT` of the migrations' transaction failed; nothing
    /// was applied.
    #[error("cannot {step} the migrations of {} to schema version {to}", path.display())]
    MigrationCommit {
        /// The database path.
        path: PathBuf,
        /// `begin` or `commit`.
        step: &'static str,
        /// The version the migrations would have reached.
        to: usize,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },

    /// A read ([`ReadPool`](crate::read::ReadPool)) tried what the read
    /// side refuses: a write (the connections are opened read-only, so
    /// SQLite refused it), transaction control (each read runs in one
    /// transaction of walguard's, its snapshot), an `ATTACH`/`DETACH`, or
    /// a temporary table, index, view or trigger (the connection serves
    /// the next read). Nothing was written.
    #[error(
        "refused on the read side, which only reads (each read in one transaction of its own): {what} {would}"
    )]
    ReadRefused {
        /// The statement (shortened when long) or `closure`.
        what: String,
        /// What it would do, e.g. `writes`.
        would: &'static str,
    },
    /// A closure run by [`ReadPool::read`](crate::read::ReadPool::read)
    /// returned an error.
    #[error("closure on a read connection failed")]
    Read {
        /// What the closure returned.
        #[source]
        source: rusqlite::Error,
    },
    /// A closure run on a read connection panicked. The panic was caught,
    /// its transaction ended and its connection replaced; the pool keeps
    /// serving.
    #[error("closure on a read connection panicked: {message}")]
    ReadPanicked {
        /// The panic's message.
        message: String,
    },
    /// A read held its snapshot past `read.max_snapshot_age` and was
    /// interrupted at its next SQLite step; its transaction ended, so the
    /// WAL it pinned can be checkpointed. Whatever it read is dropped.
    #[error(
        "read interrupted after {:.3}ms: {what} held its snapshot past read.max_snapshot_age ({}), which keeps checkpoints from completing",
        crate::duration::duration_ms(*age),
        crate::duration::format_duration(*limit)
    )]
    ReadTooOld {
        /// The statement (shortened when long) or `closure`.
        what: String,
        /// How long the read held its snapshot, until its transaction
        /// ended.
        age: std::time::Duration,
        /// `read.max_snapshot_age`.
        limit: std::time::Duration,
    },
    /// A read was still running when its pool closed and its drain budget
    /// ran out: it was interrupted; whatever it read is dropped.
    #[error(
        "read stopped after {:.3}ms: the read pool closed and {what} outlived its drain budget",
        crate::duration::duration_ms(*age)
    )]
    ReadStopped {
        /// The statement (shortened when long) or `closure`.
        what: String,
        /// How long the read had run.
        age: std::time::Duration,
    },
    /// A read was running when the read connections closed for the
    /// writer's reopen after a checkpoint I/O error
    /// ([`ReadPool`](crate::read::ReadPool) as
    /// [`PausableReaders`](crate::store::PausableReaders)): it was
    /// interrupted; whatever it read is dropped. Nothing is wrong with the
    /// read: run it again (reads sent during the reopen wait for it and run
    /// after).
    #[error(
        "read interrupted after {:.3}ms: the read connections closed for the writer's reopen after a checkpoint i/o error; run {what} again",
        crate::duration::duration_ms(*age)
    )]
    ReadPausedForReopen {
        /// The statement (shortened when long) or `closure`.
        what: String,
        /// How long the read had run.
        age: std::time::Duration,
    },
    /// The read connections did not all close within
    /// [`READ_PAUSE_TIMEOUT`](crate::read::READ_PAUSE_TIMEOUT) for the
    /// writer's reopen after a checkpoint I/O error: a read busy outside
    /// SQLite does not stop at the interrupt. The reopen is not tried; the
    /// next checkpoint call tries again, and checkpoints wait meanwhile.
    #[error(
        "cannot close the read connections of {} for the reopen: {left} still open after {:.3}ms (a read busy outside sqlite); checkpoints wait until a reopen succeeds",
        path.display(),
        crate::duration::duration_ms(*waited)
    )]
    ReadersBusy {
        /// The database path.
        path: PathBuf,
        /// Read connections still open.
        left: usize,
        /// How long the pause waited.
        waited: std::time::Duration,
    },
    /// A read connection's thread could not be started; the pool did not
    /// open.
    #[error("cannot start a read connection's thread for {}", path.display())]
    ReadThread {
        /// The database path.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The read pool of this database is closed (or closing): the read did
    /// not run.
    #[error("the read pool of {} is closed, so the read did not run", path.display())]
    ReadPoolClosed {
        /// The database path.
        path: PathBuf,
    },

    /// The power-loss shim (feature `testing`) failed: its own error.
    #[cfg(feature = "testing")]
    #[error(transparent)]
    Vfs(#[from] crate::testing::VfsError),
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
