//! The write connection: one SQLite connection in WAL mode that owns every
//! write, and the checkpoints that run on it.
//!
//! [`Store`] is a plain struct with blocking methods; it knows nothing about
//! actors. `walguard-actors` puts it on its own thread behind `DbActor`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior, params_from_iter};

use crate::CheckpointReport;
use crate::checkpoint::{self, CheckpointMode, CheckpointOutcome, CheckpointReason};
use crate::error::{Error, Result, sql_for_error};
use crate::settings::{DatabaseSettings, Synchronous};

/// One SQL statement and its bound parameters, owned so it can travel in a
/// message.
///
/// ```
/// use walguard::Statement;
///
/// let stmt = Statement::new("INSERT INTO kv (k, v) VALUES (?1, ?2)")
///     .bind("answer")
///     .bind(42);
/// assert_eq!(stmt.params().len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    sql: String,
    params: Vec<Value>,
}

impl Statement {
    /// A statement without parameters (yet).
    #[must_use]
    pub fn new(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            params: Vec::new(),
        }
    }

    /// A statement with all its parameters.
    #[must_use]
    pub fn with_params(sql: impl Into<String>, params: impl IntoIterator<Item = Value>) -> Self {
        Self {
            sql: sql.into(),
            params: params.into_iter().collect(),
        }
    }

    /// Binds the next positional parameter.
    #[must_use]
    pub fn bind(mut self, value: impl IntoValue) -> Self {
        self.params.push(value.into_value());
        self
    }

    /// The SQL text.
    #[must_use]
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The bound parameters, in order.
    #[must_use]
    pub fn params(&self) -> &[Value] {
        &self.params
    }
}

impl From<&str> for Statement {
    fn from(sql: &str) -> Self {
        Self::new(sql)
    }
}

impl From<String> for Statement {
    fn from(sql: String) -> Self {
        Self::new(sql)
    }
}

/// A Rust value that can be bound to a statement parameter.
///
/// Implemented for integers, floats, `bool`, strings, byte buffers,
/// `Option` of those (`None` binds NULL) and rusqlite's own
/// [`Value`].
pub trait IntoValue {
    /// The owned SQLite value.
    fn into_value(self) -> Value;
}

impl IntoValue for Value {
    fn into_value(self) -> Value {
        self
    }
}

macro_rules! into_value_via_from {
    ($($t:ty),*) => {$(
        impl IntoValue for $t {
            fn into_value(self) -> Value {
                Value::from(self)
            }
        }
    )*};
}
into_value_via_from!(
    i8,
    i16,
    i32,
    i64,
    u8,
    u16,
    u32,
    f32,
    f64,
    bool,
    String,
    Vec<u8>
);

impl IntoValue for &str {
    fn into_value(self) -> Value {
        Value::Text(self.to_owned())
    }
}

impl IntoValue for &String {
    fn into_value(self) -> Value {
        Value::Text(self.clone())
    }
}

impl IntoValue for &[u8] {
    fn into_value(self) -> Value {
        Value::Blob(self.to_vec())
    }
}

impl<T: IntoValue> IntoValue for Option<T> {
    fn into_value(self) -> Value {
        self.map_or(Value::Null, IntoValue::into_value)
    }
}

/// The rows a query returned, with their column names.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResultSet {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
}

impl ResultSet {
    /// Column names, in order.
    #[must_use]
    pub fn columns(&self) -> &[String] {
        &self.columns
    }
    /// The rows; each has one value per column.
    #[must_use]
    pub fn rows(&self) -> &[Vec<Value>] {
        &self.rows
    }
    /// Number of rows.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rows.len()
    }
    /// Whether no row came back.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
    /// Takes the rows out.
    #[must_use]
    pub fn into_rows(self) -> Vec<Vec<Value>> {
        self.rows
    }
}

/// What is known to survive a power loss, and what is exposed.
///
/// Kept in two units, because a group commit puts many writes in one
/// commit:
///
/// - **commits**: transactions committed through this store (a lone
///   statement, an atomic [`Store::transaction`], a closure that changed
///   rows, or one group of [`Store::execute_group`], however many writes it
///   holds);
/// - **writes**: the requests those commits acknowledged, one per lone
///   statement, per transaction, per closure that changed rows, and per
///   statement of a group that succeeded and is not read-only. This is the
///   unit a sender sees: "how many of my acknowledged writes could a power
///   loss take".
///
/// A commit (and every write in it) is durable once a checkpoint that fully
/// caught up (busy = 0, `checkpointed == log`) has run after it, or at once
/// under `synchronous=FULL`/`EXTRA`. SQLite's own auto-checkpoints are not
/// seen here, so the figures are conservative (walguard turns them off on
/// the writer when it runs the size-triggered checkpoints itself, see
/// [`Store::set_size_threshold`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durability {
    commits: u64,
    durable_commits: u64,
    writes: u64,
    durable_writes: u64,
    durable_at: Option<Instant>,
}

impl Durability {
    /// Commits made through this store since it opened.
    #[must_use]
    pub fn commits(&self) -> u64 {
        self.commits
    }
    /// The first this many commits are durable ("durable through").
    #[must_use]
    pub fn durable_commits(&self) -> u64 {
        self.durable_commits
    }
    /// Commits a power loss under `synchronous=NORMAL` could take now.
    #[must_use]
    pub fn exposed_commits(&self) -> u64 {
        self.commits - self.durable_commits
    }
    /// Writes acknowledged through this store since it opened (see the type
    /// docs for what counts as one).
    #[must_use]
    pub fn writes(&self) -> u64 {
        self.writes
    }
    /// The first this many writes are durable.
    #[must_use]
    pub fn durable_writes(&self) -> u64 {
        self.durable_writes
    }
    /// Acknowledged writes a power loss under `synchronous=NORMAL` could take
    /// now.
    #[must_use]
    pub fn exposed_writes(&self) -> u64 {
        self.writes - self.durable_writes
    }
    /// When the durable point last moved (`None`: not since open).
    #[must_use]
    pub fn durable_at(&self) -> Option<Instant> {
        self.durable_at
    }
}

/// How [`Store::execute_group`] has been going: batch sizes, and how often
/// a failing write made a batch run again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct GroupStats {
    /// Groups run (each is one transaction, or one statement on its own).
    pub groups: u64,
    /// Writes those groups held, failed ones included.
    pub writes: u64,
    /// The largest group, in writes.
    pub largest: usize,
    /// Groups in which a write failed, so the group was rolled back and run
    /// again with a savepoint around each write.
    pub savepoint_reruns: u64,
    /// Groups that lost their transaction even with savepoints (SQLite
    /// rolled it back: `ON CONFLICT ROLLBACK`, a full disk, an I/O error...)
    /// and were run one write per transaction.
    pub one_by_one_reruns: u64,
}

/// The WAL as the write connection's WAL hook last reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WalFrames {
    /// Frames in the WAL after the most recent commit (0 before any).
    pub current: u32,
    /// The most frames seen after any commit since the store opened.
    pub peak: u32,
    /// The threshold of [`Store::set_size_threshold`].
    pub threshold: u32,
    /// Size-triggered checkpoints run so far.
    pub size_checkpoints: u64,
}

/// The single write connection, in WAL mode.
///
/// ```
/// use walguard::{settings::DatabaseSettings, CheckpointMode, CheckpointReason, Statement, Store};
///
/// let dir = tempfile::tempdir()?;
/// let mut store = Store::open(&DatabaseSettings::at(dir.path().join("state.db")))?;
/// store.execute(&Statement::new("CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)"))?;
/// store.execute(&Statement::new("INSERT INTO kv VALUES (?1, ?2)").bind("a").bind(1))?;
/// let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
/// assert_eq!(report.outcome().as_str(), "completed");
/// store.close().map_err(|(_, e)| e)?;
/// Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    settings: DatabaseSettings,
    counts: Counts,
    group: GroupStats,
    wal: Option<WalWatch>,
    /// The VFS the store opened through (`None`: SQLite's default), for
    /// the reopen after a checkpoint I/O error.
    vfs: Option<String>,
    /// A checkpoint failed on an I/O error and the WAL index has not been
    /// rebuilt yet: no checkpoint may run. `conn` is a stand-in that refuses
    /// every statement if the reopen itself failed.
    reopen_pending: bool,
}

/// The durability counters, see [`Durability`].
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    commits: u64,
    durable_commits: u64,
    writes: u64,
    durable_writes: u64,
    durable_at: Option<Instant>,
}

/// Written by the WAL hook inside each COMMIT, read by the store after it.
#[derive(Debug, Default)]
struct HookState {
    /// Frames in the WAL after the last commit (`nFrame` of the hook).
    frames: AtomicU32,
    /// A commit reported since the store last looked.
    fresh: AtomicBool,
}

/// The size-triggered checkpoint: the threshold and what the hook saw.
#[derive(Debug)]
struct WalWatch {
    hook: Arc<HookState>,
    threshold: u32,
    /// Frames at which the next size checkpoint is due: the threshold, or
    /// a threshold past the last checkpoint when a reader kept the WAL from
    /// restarting (so a pinned WAL gets one checkpoint per threshold frames,
    /// not one per commit).
    next_due: u32,
    last: u32,
    peak: u32,
    size_checkpoints: u64,
}

/// Name of the savepoint around each write of a group that is run again.
const GROUP_SAVEPOINT: &str = "walguard_write";

/// How one pass over a group ended.
enum Pass {
    /// Every write has its result; the group is committed (or, when BEGIN or
    /// COMMIT failed, every write has that error).
    Done(Vec<Result<usize>>),
    /// A write failed in a way this pass cannot isolate; the transaction was
    /// rolled back and nothing of the group is written.
    Rerun,
}

/// File mode for database files walguard creates: owner read/write only.
#[cfg(unix)]
pub const NEW_FILE_MODE: u32 = 0o600;

impl Store {
    /// Opens (creating if missing) the database and configures it.
    ///
    /// In order: `busy_timeout` (the switch to WAL takes a lock), then
    /// `journal_mode=WAL`, checked against what SQLite reports back, then
    /// `synchronous`, `journal_size_limit` and `wal_autocheckpoint`, all
    /// from typed settings. A new file is created with mode 0600 on Unix
    /// (SQLite gives the `-wal` and `-shm` files the same mode).
    ///
    /// # Errors
    ///
    /// [`Error::Open`] when the file cannot be opened or created (the
    /// directory is missing, permissions), [`Error::NotADatabase`] when the
    /// file is something else, [`Error::NotWal`] when SQLite refuses WAL,
    /// [`Error::Pragma`] when a pragma fails (e.g. the database is locked).
    pub fn open(settings: &DatabaseSettings) -> Result<Self> {
        Self::open_through(settings, None)
    }

    /// Like [`Store::open`], through the SQLite VFS registered under `vfs`
    /// (a VFS of your own, or the power-loss shim of the `testing` feature,
    /// `walguard::testing::PowerLossVfs`). The reopen after a checkpoint
    /// I/O error (see the [checkpoint policy](crate::checkpoint)) goes
    /// through the same VFS.
    ///
    /// # Errors
    ///
    /// As [`Store::open`]; [`Error::Open`] also when no VFS is registered
    /// under that name.
    pub fn open_with_vfs(settings: &DatabaseSettings, vfs: &str) -> Result<Self> {
        Self::open_through(settings, Some(vfs))
    }

    fn open_through(settings: &DatabaseSettings, vfs: Option<&str>) -> Result<Self> {
        let conn = open_connection(settings, vfs)?;
        Ok(Self {
            conn,
            settings: settings.clone(),
            counts: Counts::default(),
            group: GroupStats::default(),
            wal: None,
            vfs: vfs.map(str::to_owned),
            reopen_pending: false,
        })
    }

    /// The database path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.settings.path
    }

    /// The settings the store was opened with.
    #[must_use]
    pub fn settings(&self) -> &DatabaseSettings {
        &self.settings
    }

    /// Commits so far and how many of them are durable.
    #[must_use]
    pub fn durability(&self) -> Durability {
        let c = self.counts;
        Durability {
            commits: c.commits,
            durable_commits: c.durable_commits,
            writes: c.writes,
            durable_writes: c.durable_writes,
            durable_at: c.durable_at,
        }
    }

    /// Batch sizes and reruns of [`Store::execute_group`] so far.
    #[must_use]
    pub fn group_stats(&self) -> GroupStats {
        self.group
    }

    fn every_commit_is_synced(&self) -> bool {
        matches!(
            self.settings.synchronous,
            Synchronous::Full | Synchronous::Extra
        )
    }

    /// One commit, holding `writes` acknowledged writes.
    fn record_commit(&mut self, writes: u64) {
        self.counts.commits += 1;
        self.counts.writes += writes;
        if self.every_commit_is_synced() {
            self.counts.durable_commits = self.counts.commits;
            self.counts.durable_writes = self.counts.writes;
            self.counts.durable_at = Some(Instant::now());
        }
    }

    /// Prepares (cached) and runs one statement; the rows changed and
    /// whether it is read-only. Commits nothing by itself.
    fn run_statement(&self, stmt: &Statement) -> Result<(usize, bool)> {
        let err = |source| Error::Statement {
            sql: sql_for_error(&stmt.sql),
            source,
        };
        let mut prepared = self.conn.prepare_cached(&stmt.sql).map_err(err)?;
        let readonly = prepared.readonly();
        let changed = prepared
            .execute(params_from_iter(&stmt.params))
            .map_err(err)?;
        Ok((changed, readonly))
    }

    /// Runs a transaction-control statement (cached: it runs per group).
    fn control(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.prepare_cached(sql)?.execute([]).map(drop)
    }

    /// Rolls back the open transaction, if SQLite has not already done so.
    fn rollback_quietly(&self) {
        if !self.conn.is_autocommit()
            && let Err(e) = self.control("ROLLBACK")
        {
            tracing::warn!(target: "walguard::db", error = %e, "rolling back a group commit failed");
        }
    }

    /// Runs one statement with its parameters, as its own transaction.
    /// Returns the number of rows changed.
    ///
    /// # Errors
    ///
    /// [`Error::Statement`] naming the SQL: bad SQL, a wrong parameter
    /// count, a constraint violation, a full disk. Nothing was written and
    /// the store keeps serving.
    /// A statement that opens a transaction and leaves it open (`BEGIN`,
    /// `SAVEPOINT`) is rolled back and refused: checkpoints run between
    /// transactions, and an atomic batch is what
    /// [`Store::transaction`] is for.
    pub fn execute(&mut self, stmt: &Statement) -> Result<usize> {
        let (changed, readonly) = self.run_statement(stmt)?;
        if !self.conn.is_autocommit() {
            self.rollback_quietly();
            return Err(Error::Statement {
                sql: sql_for_error(&stmt.sql),
                source: rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISUSE),
                    Some(
                        "the statement left a transaction open; it was rolled back \
                         (send the statements together as one transaction instead)"
                            .to_owned(),
                    ),
                ),
            });
        }
        if !readonly {
            self.record_commit(1);
        }
        Ok(changed)
    }

    /// Runs independent single statements as one group commit: one
    /// transaction, one COMMIT (one WAL fsync under `synchronous=FULL`),
    /// and for each statement its own result, as if it had run alone with
    /// [`Store::execute`], in order.
    ///
    /// One failing statement fails nothing else and loses nothing else. The
    /// group first runs without savepoints (the common case costs nothing
    /// extra). When a statement fails, the transaction is rolled back and
    /// the group runs again with a `SAVEPOINT` around each statement, so the
    /// failed one is undone alone and the others commit. Should SQLite roll
    /// back the whole transaction itself (`ON CONFLICT ROLLBACK`,
    /// `RAISE(ROLLBACK)`, a full disk, an I/O error), the group runs once
    /// more, one statement per transaction. Statements that cannot run
    /// inside a transaction or that control one (`BEGIN`, `COMMIT`,
    /// `SAVEPOINT`, `VACUUM`, `ATTACH`, `PRAGMA`...) run alone, in their
    /// place in the order. A group of one is a plain [`Store::execute`].
    ///
    /// A statement of a group that runs again runs twice; its first run was
    /// rolled back, so the database sees it once, but a statement with a
    /// side effect outside SQLite (an application-defined function) would
    /// see two calls.
    ///
    /// Durability counts the group as one commit holding one write per
    /// statement that succeeded and is not read-only ([`Durability`]).
    ///
    /// ```
    /// use walguard::{settings::DatabaseSettings, Statement, Store};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let mut store = Store::open(&DatabaseSettings::at(dir.path().join("state.db")))?;
    /// store.execute(&Statement::new("CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)"))?;
    /// let results = store.execute_group(&[
    ///     Statement::new("INSERT INTO kv VALUES ('a', 1)"),
    ///     Statement::new("INSERT INTO kv VALUES ('a', 2)"), // duplicate key
    ///     Statement::new("INSERT INTO kv VALUES ('b', 3)"),
    /// ]);
    /// assert!(results[0].is_ok() && results[1].is_err() && results[2].is_ok());
    /// assert_eq!(store.durability().commits(), 2); // CREATE TABLE + the group
    /// assert_eq!(store.durability().writes(), 3); // CREATE TABLE + 2 inserts
    /// Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn execute_group(&mut self, stmts: &[Statement]) -> Vec<Result<usize>> {
        let mut results = Vec::with_capacity(stmts.len());
        let mut start = 0;
        for (i, stmt) in stmts.iter().enumerate() {
            if needs_own_transaction(&stmt.sql) {
                self.run_group(&stmts[start..i], &mut results);
                self.run_group(std::slice::from_ref(stmt), &mut results);
                start = i + 1;
            }
        }
        self.run_group(&stmts[start..], &mut results);
        results
    }

    fn run_group(&mut self, group: &[Statement], out: &mut Vec<Result<usize>>) {
        if group.is_empty() {
            return;
        }
        self.group.groups += 1;
        self.group.writes += group.len() as u64;
        self.group.largest = self.group.largest.max(group.len());
        if group.len() == 1 || !self.conn.is_autocommit() {
            // Alone; or a transaction is somehow open (every method closes
            // its own), so a group cannot begin: one by one keeps each
            // statement's own result.
            out.extend(group.iter().map(|stmt| self.execute(stmt)));
            return;
        }
        if let Pass::Done(results) = self.group_pass(group, false) {
            out.extend(results);
            return;
        }
        self.group.savepoint_reruns += 1;
        if let Pass::Done(results) = self.group_pass(group, true) {
            out.extend(results);
            return;
        }
        self.group.one_by_one_reruns += 1;
        out.extend(group.iter().map(|stmt| self.execute(stmt)));
    }

    /// One pass over a group in one `BEGIN IMMEDIATE` transaction, with or
    /// without a savepoint around each statement.
    fn group_pass(&mut self, group: &[Statement], savepoints: bool) -> Pass {
        if let Err(e) = self.control("BEGIN IMMEDIATE") {
            // Nothing ran (typically another process holds the write lock
            // past busy_timeout): every write gets that error.
            return Pass::Done(
                group
                    .iter()
                    .map(|_| {
                        Err(Error::TransactionControl {
                            step: "begin",
                            source: copy_error(&e),
                        })
                    })
                    .collect(),
            );
        }
        let savepoint = format!("SAVEPOINT {GROUP_SAVEPOINT}");
        let release = format!("RELEASE {GROUP_SAVEPOINT}");
        let rollback_to = format!("ROLLBACK TO {GROUP_SAVEPOINT}");
        let mut results = Vec::with_capacity(group.len());
        let mut writes = 0;
        for stmt in group {
            if savepoints && self.control(&savepoint).is_err() {
                self.rollback_quietly();
                return Pass::Rerun;
            }
            match self.run_statement(stmt) {
                Ok((changed, readonly)) => {
                    if savepoints && self.control(&release).is_err() {
                        self.rollback_quietly();
                        return Pass::Rerun;
                    }
                    writes += u64::from(!readonly);
                    results.push(Ok(changed));
                }
                Err(e) => {
                    // Without savepoints the failed statement cannot be
                    // undone alone; with them, SQLite may still have rolled
                    // back the whole transaction (then autocommit is back on).
                    if !savepoints || self.conn.is_autocommit() {
                        self.rollback_quietly();
                        return Pass::Rerun;
                    }
                    if self
                        .control(&rollback_to)
                        .and_then(|()| self.control(&release))
                        .is_err()
                    {
                        self.rollback_quietly();
                        return Pass::Rerun;
                    }
                    results.push(Err(e));
                }
            }
        }
        if let Err(e) = self.control("COMMIT") {
            self.rollback_quietly();
            // Nothing of the group was written.
            return Pass::Done(
                results
                    .into_iter()
                    .map(|r| {
                        r.and_then(|_| {
                            Err(Error::TransactionControl {
                                step: "commit",
                                source: copy_error(&e),
                            })
                        })
                    })
                    .collect(),
            );
        }
        if writes > 0 {
            self.record_commit(writes);
        }
        Pass::Done(results)
    }

    /// Runs several statements as one atomic transaction (`BEGIN
    /// IMMEDIATE`). Either all are committed or none. Returns the rows
    /// changed by each.
    ///
    /// # Errors
    ///
    /// [`Error::Transaction`] naming the failing statement and its position;
    /// the transaction was rolled back. [`Error::TransactionControl`] when
    /// `BEGIN` or `COMMIT` itself failed.
    pub fn transaction(&mut self, stmts: &[Statement]) -> Result<Vec<usize>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|source| Error::TransactionControl {
                step: "begin",
                source,
            })?;
        let mut changed = Vec::with_capacity(stmts.len());
        for (index, stmt) in stmts.iter().enumerate() {
            let n = tx
                .prepare_cached(&stmt.sql)
                .and_then(|mut p| p.execute(params_from_iter(&stmt.params)))
                .map_err(|source| Error::Transaction {
                    index,
                    sql: sql_for_error(&stmt.sql),
                    source,
                })?;
            changed.push(n);
        }
        tx.commit().map_err(|source| Error::TransactionControl {
            step: "commit",
            source,
        })?;
        self.record_commit(1);
        Ok(changed)
    }

    /// Runs a read query and collects its rows.
    ///
    /// # Errors
    ///
    /// [`Error::Statement`] naming the SQL.
    pub fn query(&self, stmt: &Statement) -> Result<ResultSet> {
        let err = |source| Error::Statement {
            sql: sql_for_error(&stmt.sql),
            source,
        };
        let mut prepared = self.conn.prepare_cached(&stmt.sql).map_err(err)?;
        let columns: Vec<String> = prepared.column_names().map(str::to_owned).collect();
        let width = columns.len();
        let rows = prepared
            .query_map(params_from_iter(&stmt.params), |row| {
                (0..width)
                    .map(|i| row.get::<_, Value>(i))
                    .collect::<rusqlite::Result<Vec<Value>>>()
            })
            .map_err(err)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(err)?;
        Ok(ResultSet { columns, rows })
    }

    /// Runs a closure against the connection, for whatever the typed
    /// messages do not cover.
    ///
    /// The closure must leave no transaction open: checkpoints run between
    /// transactions. One left open is rolled back and reported as an error.
    /// A closure that changed rows counts as one commit for
    /// [`Store::durability`].
    ///
    /// # Errors
    ///
    /// [`Error::Call`] with what the closure returned, or when it left a
    /// transaction open.
    pub fn call<R>(&mut self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<R>) -> Result<R> {
        let before = self.conn.total_changes();
        let result = f(&mut self.conn);
        if !self.conn.is_autocommit() {
            let rollback = self.conn.execute_batch("ROLLBACK");
            return Err(Error::Call {
                source: rollback.err().unwrap_or_else(|| {
                    rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISUSE),
                        Some("the closure left a transaction open; it was rolled back".to_owned()),
                    )
                }),
            });
        }
        if self.conn.total_changes() != before {
            self.record_commit(1);
        }
        result.map_err(|source| Error::Call { source })
    }

    /// Runs a checkpoint now, on this connection, between transactions.
    /// Never fails: a failure is [`CheckpointOutcome::Failed`] in the report.
    pub fn checkpoint(
        &mut self,
        mode: CheckpointMode,
        reason: CheckpointReason,
    ) -> CheckpointReport {
        self.checkpoint_by(mode, reason, |conn| checkpoint::run(conn, mode, reason))
    }

    /// The bookkeeping around every checkpoint: a reopen still pending
    /// after an I/O error comes first, the durable point moves on a
    /// completed one, and an I/O failure leads to a reopen.
    fn checkpoint_by(
        &mut self,
        mode: CheckpointMode,
        reason: CheckpointReason,
        run: impl FnOnce(&Connection) -> CheckpointReport,
    ) -> CheckpointReport {
        if let Err(e) = self.reopen_if_pending() {
            return CheckpointReport::failed(mode, reason, Duration::ZERO, &e);
        }
        let before = self.counts;
        let report = run(&self.conn);
        self.note_checkpoint(&report, before);
        self.reopen_after_io_error(&report);
        report
    }

    /// Takes the size-triggered checkpoint over from SQLite: with `frames`
    /// above zero, sets `wal_autocheckpoint=0` on this connection and
    /// installs a WAL hook (`sqlite3_wal_hook`, which SQLite's own
    /// auto-checkpoint also uses: they cannot both be on) that records the
    /// frames in the WAL after each commit. [`Store::checkpoint_if_due`]
    /// then runs a PASSIVE checkpoint, reason
    /// [`CheckpointReason::Size`], after a commit that leaves `frames` or
    /// more in the WAL, and returns its report, so no checkpoint runs
    /// unmeasured inside a COMMIT. `0` gives the job back to SQLite with the
    /// `wal_autocheckpoint` of the settings.
    ///
    /// With no reader holding the WAL, a completed checkpoint lets the next
    /// commit restart the WAL from its start, so it stays within `frames`
    /// plus the frames of one commit. A reader that holds it makes the
    /// checkpoint partial; the next one is then due `frames` later, not at
    /// every commit.
    ///
    /// A closure ([`Store::call`]) that sets `PRAGMA wal_autocheckpoint`
    /// replaces the hook; call this again afterwards.
    ///
    /// # Errors
    ///
    /// [`Error::Pragma`] when `wal_autocheckpoint` or the hook cannot be set.
    pub fn set_size_threshold(&mut self, frames: u32) -> Result<()> {
        let pragma_err = |source| Error::Pragma {
            path: self.settings.path.clone(),
            pragma: "wal_autocheckpoint",
            source,
        };
        if frames == 0 {
            // Setting the pragma installs SQLite's own hook again.
            self.conn
                .pragma_update(None, "wal_autocheckpoint", self.settings.wal_autocheckpoint)
                .map_err(pragma_err)?;
            self.wal = None;
            return Ok(());
        }
        // The pragma first: it replaces whatever WAL hook is installed.
        self.conn
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(pragma_err)?;
        let hook = Arc::new(HookState::default());
        let state = Arc::clone(&hook);
        self.conn
            .wal_hook(Some(
                move |wal: &mut rusqlite::hooks::Wal, frames: std::ffi::c_int| {
                    // Only the main database: an attached one has its own WAL.
                    if wal.name() == c"main" {
                        state
                            .frames
                            .store(u32::try_from(frames).unwrap_or(0), Ordering::Relaxed);
                        state.fresh.store(true, Ordering::Release);
                    }
                    Ok(())
                },
            ))
            .map_err(|source| Error::Pragma {
                path: self.settings.path.clone(),
                pragma: "wal_hook",
                source,
            })?;
        let (last, peak, size_checkpoints) = self
            .wal
            .as_ref()
            .map_or((0, 0, 0), |w| (w.last, w.peak, w.size_checkpoints));
        self.wal = Some(WalWatch {
            hook,
            threshold: frames,
            next_due: frames,
            last,
            peak,
            size_checkpoints,
        });
        Ok(())
    }

    /// The WAL frames the hook saw, when [`Store::set_size_threshold`] is on.
    #[must_use]
    pub fn wal_frames(&self) -> Option<WalFrames> {
        self.wal.as_ref().map(|w| {
            let current = w.hook.frames.load(Ordering::Relaxed);
            WalFrames {
                current,
                peak: w.peak.max(current),
                threshold: w.threshold,
                size_checkpoints: w.size_checkpoints,
            }
        })
    }

    /// Runs the size-triggered PASSIVE checkpoint when the last commit left
    /// the WAL at or above the threshold of [`Store::set_size_threshold`];
    /// `None` when none was due (or the threshold is off). Call it after
    /// each write; it costs two atomic loads when nothing is due.
    pub fn checkpoint_if_due(&mut self) -> Option<CheckpointReport> {
        let watch = self.wal.as_mut()?;
        if !watch.hook.fresh.swap(false, Ordering::Acquire) {
            return None;
        }
        let frames = watch.hook.frames.load(Ordering::Relaxed);
        if frames < watch.last {
            // The WAL restarted from its start since the last look.
            watch.next_due = watch.threshold;
        }
        watch.last = frames;
        watch.peak = watch.peak.max(frames);
        if frames < watch.next_due || !self.conn.is_autocommit() {
            return None;
        }
        let report = self.checkpoint(CheckpointMode::Passive, CheckpointReason::Size);
        if let Some(watch) = self.wal.as_mut() {
            watch.size_checkpoints += 1;
            let log = u32::try_from(report.log_frames()).unwrap_or(frames);
            watch.next_due = frames.max(log).saturating_add(watch.threshold);
        }
        Some(report)
    }

    /// Runs a checkpoint that returns within about `deadline` whatever other
    /// connections hold: the busy timeout is lowered to `deadline` and
    /// `sqlite3_interrupt` is the hard stop. Used for the shutdown TRUNCATE.
    pub fn checkpoint_with_deadline(
        &mut self,
        mode: CheckpointMode,
        reason: CheckpointReason,
        deadline: Duration,
    ) -> CheckpointReport {
        let busy_timeout = deadline.min(self.settings.busy_timeout);
        let restore = self.settings.busy_timeout;
        self.checkpoint_by(mode, reason, |conn| {
            checkpoint::run_with_deadline(conn, mode, reason, busy_timeout, restore)
        })
    }

    /// The answer to a checkpoint that failed on an I/O error, as the
    /// [checkpoint policy](crate::checkpoint) explains: close the connection
    /// without its close-time checkpoint (`SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`)
    /// and open it again, so the WAL index is rebuilt and the next
    /// checkpoint copies every frame again. Logged, never fatal: until the
    /// index is rebuilt, every later checkpoint call tries it again instead
    /// of checkpointing.
    fn reopen_after_io_error(&mut self, report: &CheckpointReport) {
        if !report.io_error() {
            return;
        }
        self.reopen_pending = true;
        match self.reopen_if_pending() {
            Ok(()) => tracing::warn!(
                target: "walguard::db",
                path = %self.settings.path.display(),
                outcome = %report.outcome(),
                "checkpoint failed on an I/O error; reopened the database without checkpointing on close"
            ),
            Err(e) => tracing::error!(
                target: "walguard::db",
                path = %self.settings.path.display(),
                outcome = %report.outcome(),
                error = %checkpoint::error_chain(&e),
                "checkpoint failed on an I/O error and the WAL index is not rebuilt yet; no checkpoint runs until it is"
            ),
        }
    }

    /// Closes the connection without checkpointing and opens a new one, when
    /// a reopen is pending.
    fn reopen_if_pending(&mut self) -> Result<()> {
        if !self.reopen_pending {
            return Ok(());
        }
        let path = self.settings.path.clone();
        // Never checkpoint from the stale backfill count on the way out.
        self.conn
            .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(|source| Error::Pragma {
                path: path.clone(),
                pragma: "SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE",
                source,
            })?;
        // The WAL index is rebuilt only if no connection of ours is open
        // when the new one opens: close first, with a stand-in in place.
        let stand_in = refusing_connection().map_err(|source| Error::Open {
            path: path.clone(),
            source,
        })?;
        let old = std::mem::replace(&mut self.conn, stand_in);
        if let Err((old, source)) = old.close() {
            self.conn = old;
            return Err(Error::Close { path, source });
        }
        self.conn = open_connection(&self.settings, self.vfs.as_deref())?;
        let threshold = self.wal.as_ref().map_or(0, |w| w.threshold);
        // Installs the size hook again, and turns SQLite's own
        // auto-checkpoint off on the writer when the threshold is on.
        self.set_size_threshold(threshold)?;
        // A NOOP checkpoint copies nothing and reports the frames SQLite
        // counts as copied. The rebuilt index counts none; a count above zero
        // means another connection kept the old index alive.
        let copied: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(NOOP)", [], |row| row.get(2))
            .map_err(|source| Error::Pragma {
                path: path.clone(),
                pragma: "wal_checkpoint",
                source,
            })?;
        if copied > 0 {
            // No checkpoint from the stale count may run, not even SQLite's
            // own inside a COMMIT: the WAL must not be reset.
            self.conn
                .pragma_update(None, "wal_autocheckpoint", 0)
                .map_err(|source| Error::Pragma {
                    path: path.clone(),
                    pragma: "wal_autocheckpoint",
                    source,
                })?;
            return Err(Error::StaleWalIndex { path });
        }
        self.reopen_pending = false;
        Ok(())
    }

    fn note_checkpoint(&mut self, report: &CheckpointReport, before: Counts) {
        if *report.outcome() != CheckpointOutcome::Completed {
            return;
        }
        let counts = &mut self.counts;
        if before.commits > counts.durable_commits {
            counts.durable_commits = before.commits;
            counts.durable_writes = before.writes;
            counts.durable_at = Some(Instant::now());
        } else if counts.durable_at.is_none() {
            counts.durable_at = Some(Instant::now());
        }
    }

    /// A handle that can interrupt whatever the connection runs, from any
    /// thread.
    #[must_use]
    pub fn interrupt_handle(&self) -> rusqlite::InterruptHandle {
        self.conn.get_interrupt_handle()
    }

    /// Closes the connection. With no other connection open, SQLite
    /// checkpoints and deletes the WAL on close.
    ///
    /// # Errors
    ///
    /// [`Error::Close`]; the store comes back with it so nothing is lost and
    /// the caller can retry.
    // Like rusqlite's `Connection::close`, the store comes back by value on
    // failure; the Err is large, but closing happens once per session.
    #[allow(clippy::result_large_err)]
    pub fn close(self) -> std::result::Result<(), (Self, Error)> {
        let path = self.settings.path.clone();
        self.conn.close().map_err(|(conn, source)| {
            // Everything but the connection is still in `self`.
            (Self { conn, ..self }, Error::Close { path, source })
        })
    }
}

/// Whether a statement must run alone rather than inside a group commit:
/// it controls transactions (`BEGIN`, `COMMIT`, `END`, `ROLLBACK`,
/// `SAVEPOINT`, `RELEASE`), cannot run inside one (`VACUUM`, `ATTACH`,
/// `DETACH`), or is a `PRAGMA` (several refuse to run in a transaction, e.g.
/// a `journal_mode` change). Judged by the first keyword, after whitespace
/// and comments.
fn needs_own_transaction(sql: &str) -> bool {
    const ALONE: [&str; 10] = [
        "BEGIN",
        "COMMIT",
        "END",
        "ROLLBACK",
        "SAVEPOINT",
        "RELEASE",
        "VACUUM",
        "ATTACH",
        "DETACH",
        "PRAGMA",
    ];
    let keyword = first_keyword(sql);
    ALONE.iter().any(|k| keyword.eq_ignore_ascii_case(k))
}

/// The first keyword of `sql`, skipping whitespace, `--` and `/* */`
/// comments.
fn first_keyword(sql: &str) -> &str {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.find('\n').map_or("", |i| &after[i + 1..]);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |i| &after[i + 2..]);
        } else {
            break;
        }
    }
    let end = rest
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(rest.len());
    &rest[..end]
}

/// A copy of an SQLite error, for the several writes of a group that share
/// one failed BEGIN or COMMIT (`rusqlite::Error` is not `Clone`).
fn copy_error(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    }
}

/// Opens and configures the write connection (see [`Store::open`]), through
/// `vfs` when given.
fn open_connection(settings: &DatabaseSettings, vfs: Option<&str>) -> Result<Connection> {
    let path = settings.path.clone();
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.is_dir()
    {
        return Err(Error::Open {
            source: rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                Some(format!("directory {} does not exist", parent.display())),
            ),
            path,
        });
    }
    create_private_file(&path);
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let opened = match vfs {
        Some(vfs) => Connection::open_with_flags_and_vfs(&path, flags, vfs),
        None => Connection::open_with_flags(&path, flags),
    };
    let conn = opened.map_err(|source| Error::Open {
        path: path.clone(),
        source,
    })?;
    configure(&conn, settings)?;
    Ok(conn)
}

/// Creates `path` with owner-only permissions when it does not exist yet, so
/// SQLite (which copies the database file's mode to `-wal` and `-shm`) keeps
/// the state private. Failure is not an error here: SQLite's own open then
/// reports the real problem with its path.
fn create_private_file(path: &Path) {
    // `:memory:` is SQLite's name for an in-memory database, not a file:
    // creating it would leave a stray file in the working directory.
    if path.as_os_str() == ":memory:" {
        return;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        if !path.exists() {
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(NEW_FILE_MODE)
                .open(path);
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// The stand-in connection while a reopen is pending: an in-memory database
/// whose authorizer refuses every statement (`SQLITE_AUTH`), so nothing is
/// ever read from or written to the wrong place.
fn refusing_connection() -> rusqlite::Result<Connection> {
    let mut conn = Connection::open_in_memory()?;
    conn.authorizer(Some(|_: rusqlite::hooks::AuthContext<'_>| {
        rusqlite::hooks::Authorization::Deny
    }))?;
    Ok(conn)
}

fn configure(conn: &Connection, settings: &DatabaseSettings) -> Result<()> {
    let path = &settings.path;
    let pragma_err = |pragma: &'static str| {
        move |source: rusqlite::Error| {
            if source.sqlite_error_code() == Some(ErrorCode::NotADatabase) {
                Error::NotADatabase {
                    path: path.clone(),
                    source,
                }
            } else {
                Error::Pragma {
                    path: path.clone(),
                    pragma,
                    source,
                }
            }
        }
    };
    // busy_timeout first: switching to WAL takes a lock.
    conn.busy_timeout(settings.busy_timeout)
        .map_err(pragma_err("busy_timeout"))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(pragma_err("journal_mode"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::NotWal {
            path: path.clone(),
            mode,
        });
    }
    // Values below come from typed settings (enums and integers), never from
    // user text.
    conn.pragma_update(None, "synchronous", settings.synchronous.as_str())
        .map_err(pragma_err("synchronous"))?;
    let limit = settings
        .journal_size_limit
        .map_or(-1, |bytes| i64::try_from(bytes).unwrap_or(i64::MAX));
    conn.pragma_update(None, "journal_size_limit", limit)
        .map_err(pragma_err("journal_size_limit"))?;
    conn.pragma_update(None, "wal_autocheckpoint", settings.wal_autocheckpoint)
        .map_err(pragma_err("wal_autocheckpoint"))?;
    let synchronous: i64 = conn
        .pragma_query_value(None, "synchronous", |row| row.get(0))
        .map_err(pragma_err("synchronous"))?;
    if synchronous != settings.synchronous.level() {
        return Err(Error::Pragma {
            path: path.clone(),
            pragma: "synchronous",
            source: rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
                Some(format!(
                    "asked for {}, SQLite reports level {synchronous}",
                    settings.synchronous
                )),
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_in(dir: &tempfile::TempDir) -> Store {
        let mut store = Store::open(&DatabaseSettings::at(dir.path().join("state.db"))).unwrap();
        store
            .execute(&Statement::new(
                "CREATE TABLE kv (id INTEGER PRIMARY KEY, v BLOB NOT NULL)",
            ))
            .unwrap();
        store
    }

    fn insert(id: i64) -> Statement {
        Statement::new("INSERT INTO kv (id, v) VALUES (?1, ?2)")
            .bind(id)
            .bind(vec![7u8; 100])
    }

    fn ids(store: &Store) -> Vec<i64> {
        store
            .query(&Statement::new("SELECT id FROM kv ORDER BY id"))
            .unwrap()
            .into_rows()
            .into_iter()
            .map(|row| match row[0] {
                Value::Integer(i) => i,
                ref other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn first_keyword_skips_space_and_comments() {
        assert_eq!(first_keyword("  begin immediate"), "begin");
        assert_eq!(
            first_keyword("-- note\n  /* x */ PRAGMA user_version"),
            "PRAGMA"
        );
        assert_eq!(first_keyword("/* unterminated"), "");
        assert!(needs_own_transaction("vacuum"));
        assert!(needs_own_transaction("\n\tCommit"));
        assert!(!needs_own_transaction("INSERT INTO t VALUES (1)"));
        assert!(!needs_own_transaction("BEGINNING")); // a word, not BEGIN
    }

    #[test]
    fn a_group_is_one_commit_with_one_write_per_statement_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store_in(&dir);
        let group: Vec<Statement> = (1..=50).map(insert).collect();
        let results = store.execute_group(&group);
        assert!(results.iter().all(|r| matches!(r, Ok(1))), "{results:?}");
        assert_eq!(ids(&store), (1..=50).collect::<Vec<_>>());
        let d = store.durability();
        assert_eq!((d.commits(), d.writes()), (2, 51), "{d:?}");
        let stats = store.group_stats();
        assert_eq!((stats.groups, stats.writes, stats.largest), (1, 50, 50));
        assert_eq!(stats.savepoint_reruns, 0);
    }

    #[test]
    fn a_failing_write_fails_alone_and_its_neighbours_commit() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store_in(&dir);
        store.execute(&insert(3)).unwrap();
        let group = [
            insert(1),
            insert(2),
            insert(3), // duplicate
            Statement::new("INSERT INTO nowhere VALUES (1)"),
            insert(4),
            Statement::new("SELECT count(*) FROM kv"), // read-only: not a write
        ];
        let results = store.execute_group(&group);
        assert!(matches!(results[0], Ok(1)));
        assert!(matches!(results[1], Ok(1)));
        let Err(Error::Statement { sql, source }) = &results[2] else {
            panic!("{:?}", results[2]);
        };
        assert_eq!(sql, group[2].sql());
        assert_eq!(
            source.sqlite_error_code(),
            Some(ErrorCode::ConstraintViolation)
        );
        assert!(matches!(results[3], Err(Error::Statement { .. })));
        assert!(matches!(results[4], Ok(1)));
        assert!(
            results[5].is_err(),
            "execute of a query returns rows: an error as alone"
        );
        assert_eq!(ids(&store), vec![1, 2, 3, 4]);
        let d = store.durability();
        assert_eq!((d.commits(), d.writes()), (3, 5), "{d:?}");
        assert_eq!(store.group_stats().savepoint_reruns, 1);
        assert_eq!(store.group_stats().one_by_one_reruns, 0);
    }

    #[test]
    fn a_write_that_rolls_back_the_transaction_is_run_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store_in(&dir);
        store.execute(&insert(2)).unwrap();
        let group = [
            insert(1),
            Statement::new("INSERT OR ROLLBACK INTO kv (id, v) VALUES (2, x'00')"),
            insert(3),
        ];
        let results = store.execute_group(&group);
        assert!(matches!(results[0], Ok(1)));
        assert!(results[1].is_err());
        assert!(matches!(results[2], Ok(1)));
        assert_eq!(ids(&store), vec![1, 2, 3]);
        assert_eq!(store.group_stats().one_by_one_reruns, 1);
        assert!(store.conn.is_autocommit());
    }

    #[test]
    fn statements_that_need_their_own_transaction_run_alone_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store_in(&dir);
        let group = [
            insert(1),
            Statement::new("PRAGMA user_version = 7"),
            insert(2),
            Statement::new("VACUUM"),
            insert(3),
        ];
        let results = store.execute_group(&group);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(ids(&store), vec![1, 2, 3]);
        let version: i64 = store
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 7);
        assert_eq!(store.group_stats().groups, 5);
    }

    #[test]
    fn the_size_threshold_bounds_the_wal_by_frames() {
        const THRESHOLD: u32 = 100;
        let dir = tempfile::tempdir().unwrap();
        let mut store = store_in(&dir);
        store.set_size_threshold(THRESHOLD).unwrap();
        let autocheckpoint: i64 = store
            .conn
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
            .unwrap();
        assert_eq!(autocheckpoint, 0, "SQLite's own auto-checkpoint is off");

        let mut reports = Vec::new();
        let mut largest_commit = 0;
        let mut id = 0;
        for n in 0..400 {
            // Groups of 1 to 40 writes.
            let group: Vec<Statement> = (0..=(n % 40))
                .map(|_| {
                    id += 1;
                    insert(id)
                })
                .collect();
            let before = store.wal_frames().unwrap().current;
            assert!(store.execute_group(&group).iter().all(Result::is_ok));
            let after = store.wal_frames().unwrap().current;
            largest_commit = largest_commit.max(after.saturating_sub(before));
            reports.extend(store.checkpoint_if_due());
        }
        let frames = store.wal_frames().unwrap();
        assert!(!reports.is_empty());
        assert_eq!(frames.size_checkpoints, reports.len() as u64);
        for report in &reports {
            assert_eq!(report.reason(), CheckpointReason::Size);
            assert_eq!(report.mode(), CheckpointMode::Passive);
            assert_eq!(*report.outcome(), CheckpointOutcome::Completed);
            assert!(report.log_frames() >= i64::from(THRESHOLD));
        }
        assert!(
            frames.peak < THRESHOLD + largest_commit,
            "peak {} frames, threshold {THRESHOLD}, largest commit {largest_commit} frames",
            frames.peak
        );
        // Every size checkpoint completed: everything before it is durable.
        assert!(store.durability().durable_writes() > 0);
        let wal = std::fs::metadata(dir.path().join("state.db-wal"))
            .unwrap()
            .len();
        let page = 4096 + 24;
        assert!(
            wal <= 32 + u64::from(THRESHOLD + largest_commit) * page,
            "{wal} bytes"
        );
    }

    #[test]
    fn a_reader_pinning_the_wal_gets_one_checkpoint_per_threshold_not_per_commit() {
        const THRESHOLD: u32 = 50;
        let dir = tempfile::tempdir().unwrap();
        let mut store = store_in(&dir);
        store.set_size_threshold(THRESHOLD).unwrap();
        let reader = Connection::open(dir.path().join("state.db")).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader
            .query_row("SELECT count(*) FROM kv", [], |r| r.get(0))
            .unwrap();
        let mut reports = Vec::new();
        for id in 0..2000 {
            store.execute(&insert(id)).unwrap();
            reports.extend(store.checkpoint_if_due());
        }
        let frames = store.wal_frames().unwrap();
        assert!(
            reports
                .iter()
                .all(|r| *r.outcome() != CheckpointOutcome::Completed || r.log_frames() == 0)
        );
        let most = u64::from(frames.peak / THRESHOLD) + 1;
        assert!(
            (1..=most).contains(&frames.size_checkpoints),
            "{} checkpoints for {} frames",
            frames.size_checkpoints,
            frames.peak
        );
        reader.execute_batch("COMMIT").unwrap();
    }

    #[test]
    fn threshold_zero_gives_the_job_back_to_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store_in(&dir);
        store.set_size_threshold(10).unwrap();
        store.set_size_threshold(0).unwrap();
        assert!(store.wal_frames().is_none());
        let autocheckpoint: i64 = store
            .conn
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
            .unwrap();
        assert_eq!(autocheckpoint, 1000);
        store.execute(&insert(1)).unwrap();
        assert!(store.checkpoint_if_due().is_none());
    }

    #[test]
    fn durability_counts_writes_and_commits() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store_in(&dir);
        let _ = store.execute_group(&[insert(1), insert(2), insert(3)]);
        let d = store.durability();
        assert_eq!((d.commits(), d.writes()), (2, 4));
        assert_eq!((d.exposed_commits(), d.exposed_writes()), (2, 4));
        let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
        assert_eq!(*report.outcome(), CheckpointOutcome::Completed);
        let d = store.durability();
        assert_eq!((d.exposed_commits(), d.exposed_writes()), (0, 0));
        assert_eq!(d.durable_writes(), 4);
    }
}
