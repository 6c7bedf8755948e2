//! The write connection: one SQLite connection in WAL mode that owns every
//! write, and the checkpoints that run on it.
//!
//! [`Store`] is a plain struct with blocking methods; it knows nothing about
//! actors. `walguard-actors` puts it on its own thread behind `DbActor`.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior, params_from_iter};

use crate::checkpoint::{self, CheckpointMode, CheckpointOutcome, CheckpointReason};
use crate::error::{Error, Result, sql_for_error};
use crate::settings::{DatabaseSettings, Synchronous};
use crate::CheckpointReport;

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
into_value_via_from!(i8, i16, i32, i64, u8, u16, u32, f32, f64, bool, String, Vec<u8>);

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
/// Counted in commits made through this store. A commit is durable once a
/// checkpoint that fully caught up (busy = 0, `checkpointed == log`) has run
/// after it, or at once under `synchronous=FULL`/`EXTRA`. SQLite's own
/// auto-checkpoints are not seen here, so the figure is conservative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durability {
    commits: u64,
    durable_commits: u64,
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
    /// When the durable point last moved (`None`: not since open).
    #[must_use]
    pub fn durable_at(&self) -> Option<Instant> {
        self.durable_at
    }
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
    commits: u64,
    durable_commits: u64,
    durable_at: Option<Instant>,
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
        let conn = Connection::open_with_flags(&path, flags).map_err(|source| Error::Open {
            path: path.clone(),
            source,
        })?;
        configure(&conn, settings)?;
        let durable_at = None;
        Ok(Self {
            conn,
            settings: settings.clone(),
            commits: 0,
            durable_commits: 0,
            durable_at,
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
        Durability {
            commits: self.commits,
            durable_commits: self.durable_commits,
            durable_at: self.durable_at,
        }
    }

    fn every_commit_is_synced(&self) -> bool {
        matches!(
            self.settings.synchronous,
            Synchronous::Full | Synchronous::Extra
        )
    }

    fn record_commits(&mut self, n: u64) {
        self.commits += n;
        if self.every_commit_is_synced() {
            self.durable_commits = self.commits;
            self.durable_at = Some(Instant::now());
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
    pub fn execute(&mut self, stmt: &Statement) -> Result<usize> {
        let err = |source| Error::Statement {
            sql: sql_for_error(&stmt.sql),
            source,
        };
        let mut prepared = self.conn.prepare_cached(&stmt.sql).map_err(err)?;
        let readonly = prepared.readonly();
        let changed = prepared.execute(params_from_iter(&stmt.params)).map_err(err)?;
        drop(prepared);
        if !readonly && self.conn.is_autocommit() {
            self.record_commits(1);
        }
        Ok(changed)
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
        self.record_commits(1);
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
        let columns: Vec<String> = prepared
            .column_names()
            .map(str::to_owned)
            .collect();
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
    pub fn call<R>(
        &mut self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<R>,
    ) -> Result<R> {
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
            self.record_commits(1);
        }
        result.map_err(|source| Error::Call { source })
    }

    /// Runs a checkpoint now, on this connection, between transactions.
    /// Never fails: a failure is [`CheckpointOutcome::Failed`] in the report.
    pub fn checkpoint(&mut self, mode: CheckpointMode, reason: CheckpointReason) -> CheckpointReport {
        let commits = self.commits;
        let report = checkpoint::run(&self.conn, mode, reason);
        self.note_checkpoint(&report, commits);
        report
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
        let commits = self.commits;
        let busy_timeout = deadline.min(self.settings.busy_timeout);
        let report = checkpoint::run_with_deadline(
            &self.conn,
            mode,
            reason,
            busy_timeout,
            self.settings.busy_timeout,
        );
        self.note_checkpoint(&report, commits);
        report
    }

    fn note_checkpoint(&mut self, report: &CheckpointReport, commits_before: u64) {
        if *report.outcome() == CheckpointOutcome::Completed && commits_before > self.durable_commits
        {
            self.durable_commits = commits_before;
            self.durable_at = Some(Instant::now());
        } else if *report.outcome() == CheckpointOutcome::Completed && self.durable_at.is_none() {
            self.durable_at = Some(Instant::now());
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
        let Self {
            conn,
            settings,
            commits,
            durable_commits,
            durable_at,
        } = self;
        conn.close().map_err(|(conn, source)| {
            let path = settings.path.clone();
            (
                Self {
                    conn,
                    settings,
                    commits,
                    durable_commits,
                    durable_at,
                },
                Error::Close { path, source },
            )
        })
    }
}

/// Creates `path` with owner-only permissions when it does not exist yet, so
/// SQLite (which copies the database file's mode to `-wal` and `-shm`) keeps
/// the state private. Failure is not an error here: SQLite's own open then
/// reports the real problem with its path.
fn create_private_file(path: &Path) {
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
