//! The write connection: one SQLite connection in WAL mode that owns every
//! write, and the checkpoints that run on it.
//!
//! [`Store`] is a plain struct with blocking methods; it knows nothing about
//! actors. `walguard-actors` puts it on its own thread behind `DbActor`.
//!
//! One concern per file:
//!
//! - `statement`: [`Statement`], [`IntoValue`] and [`ResultSet`], the values
//!   that travel in a message;
//! - `durability`: [`Durability`], the durable point of the commits;
//! - `effect`: what a statement does to a transaction, as SQLite says;
//! - `guard`: the connection's settings are walguard's (the authorizer
//!   that refuses a change of them, and the check after a closure);
//! - `group`: group commit ([`Store::execute_group`], [`GroupStats`]);
//! - `wal_watch`: the WAL hook and the size-triggered checkpoint
//!   ([`Store::set_size_threshold`], [`WalFrames`]);
//! - `identity`: the database file is still the one the store opened;
//! - `migrate`: the schema migrations ([`Store::migrate`]);
//! - `open`: opening the file and configuring the connection;
//! - `reopen`: the reopen after a checkpoint I/O error;
//! - `backfill`: phase 1 of the two-phase size checkpoint, on a second
//!   connection and its own thread.
//!
//! This file holds [`Store`] itself: single statements, atomic
//! transactions, reads, closures, checkpoints and close.

mod backfill;
mod durability;
mod effect;
mod group;
mod guard;
mod identity;
mod migrate;
mod open;
mod position;
mod reopen;
mod replica_hold;
mod statement;
mod wal_watch;

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::types::Value;
use rusqlite::{Connection, TransactionBehavior, params_from_iter};

use crate::checkpoint::{
    self, CheckpointMode, CheckpointOutcome, CheckpointReason, CheckpointReport,
};
use crate::error::{Error, Result, sql_for_error};
use crate::settings::DatabaseSettings;

pub use backfill::{BACKFILL_BUSY_TIMEOUT, BACKFILL_THREAD_NAME};
pub use durability::Durability;
pub use effect::EFFECT_CACHE_ENTRIES;
pub use group::GroupStats;
pub use guard::{GUARDED_PRAGMAS, GuardedPragma};
#[cfg(unix)]
pub use open::NEW_FILE_MODE;
pub use replica_hold::ReplicaHoldState;
pub use statement::{IntoValue, ResultSet, Statement};
pub use wal_watch::{BACKSTOP_PERCENT, SizeCheckpoint, WalFrames};

use effect::{Effect, EffectCache};
use guard::{Guard, Snapshot};

/// A statement taken from the connection's cache, with the SQL text it was
/// prepared from (the key to reuse it for the next write of a group).
struct Prepared<'a> {
    sql: &'a str,
    readonly: bool,
    statement: rusqlite::CachedStatement<'a>,
}
use backfill::Backfill;
use identity::{FileIdentity, Gone};
use replica_hold::ReplicaHold;
use wal_watch::WalWatch;

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
    /// Phase 1 of a two-phase size checkpoint in flight (joined before
    /// `conn` closes: [`Store::close`] and `Drop`).
    backfill: Option<Backfill>,
    conn: Connection,
    settings: DatabaseSettings,
    durability: Durability,
    group: GroupStats,
    wal: WalWatch,
    /// What SQLite said each statement does to a transaction.
    effects: EffectCache,
    /// The authorizer that keeps the connection's settings walguard's.
    guard: Guard,
    /// The guarded settings as the connection held them once opened.
    baseline: Snapshot,
    /// The connection's own `synchronous` fsyncs the WAL at each commit
    /// (read from the connection, not from the settings).
    synced: bool,
    /// Why no commit counts as durable any more (a setting a closure
    /// changed could not be set back).
    weakened: Option<String>,
    /// The database file as opened (`None`: it could not be read).
    identity: Option<FileIdentity>,
    /// The database file was found deleted or replaced: writes refused.
    gone: Option<Gone>,
    /// The file was found gone at least once.
    gone_ever: bool,
    /// The VFS the store opened through (`None`: SQLite's default), for
    /// the reopen after a checkpoint I/O error.
    vfs: Option<String>,
    /// A checkpoint failed on an I/O error and the WAL index has not been
    /// rebuilt yet: no checkpoint may run. `conn` is a stand-in that refuses
    /// every statement if the reopen itself failed.
    reopen_pending: bool,
    /// With replication on: the pin that keeps frames the replica may not
    /// have from leaving the WAL ([`Store::hold_for_replica`]).
    replica: Option<ReplicaHold>,
    /// With replication on: the identity row every commit counts itself
    /// in ([`Store::count_commits_in_identity`]).
    position: Option<i64>,
}

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
        let conn = open::open_connection(settings, vfs)?;
        let mut store = Self {
            backfill: None,
            conn,
            settings: settings.clone(),
            durability: Durability::default(),
            group: GroupStats::default(),
            wal: WalWatch::new(),
            effects: EffectCache::default(),
            guard: Guard::default(),
            synced: false,
            baseline: Snapshot::default(),
            weakened: None,
            identity: FileIdentity::of(&settings.path).ok(),
            gone: None,
            gone_ever: false,
            vfs: vfs.map(str::to_owned),
            reopen_pending: false,
            replica: None,
            position: None,
        };
        store.install_wal_hook()?;
        store.install_guard()?;
        // What the connection holds now is walguard's: the baseline a
        // closure is checked against, and the level commits are counted by.
        store.baseline = Snapshot::read(&store.conn).map_err(|source| Error::Pragma {
            path: settings.path.clone(),
            pragma: "synchronous",
            source,
        })?;
        store.synced = guard::syncs_every_commit(&store.baseline);
        Ok(store)
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
        self.durability
    }

    /// Batch sizes and reruns of [`Store::execute_group`] so far.
    #[must_use]
    pub fn group_stats(&self) -> GroupStats {
        self.group
    }

    /// Why no commit counts as durable any more, if so: a
    /// [`Store::call`] closure changed a setting walguard's promises rest on
    /// and setting it back failed ([`Error::SettingLost`]). `None` while
    /// the connection's settings are walguard's.
    #[must_use]
    pub fn weakened(&self) -> Option<&str> {
        self.weakened.as_deref()
    }

    /// Whether every commit fsyncs the WAL, so it is durable as soon as it
    /// returns: the connection's own `synchronous` reads FULL or EXTRA (read
    /// back from the connection at open and after every closure, never
    /// taken from the settings alone), and no setting was lost.
    fn every_commit_is_synced(&self) -> bool {
        self.synced && self.weakened.is_none()
    }

    /// One commit, holding `writes` acknowledged writes. A WAL restart the
    /// hook saw in it first makes every earlier commit durable (see the
    /// [WAL watch](wal_watch)).
    fn record_commit(&mut self, writes: u64) {
        if self.take_wal_restart() && self.weakened.is_none() {
            let before = self.durability;
            self.durability.durable_through(before);
        }
        let synced = self.every_commit_is_synced();
        self.durability.record_commit(writes, synced);
    }

    /// Prepares (cached) and runs one statement; the rows changed and
    /// whether it is read-only. Commits nothing by itself.
    fn run_statement(&self, stmt: &Statement) -> Result<(usize, bool)> {
        let mut prepared = self.prepare(stmt)?;
        self.run_prepared(&mut prepared, stmt)
    }

    /// Takes `stmt`'s prepared statement from the connection's cache (or
    /// prepares it); it goes back to the cache when dropped.
    fn prepare<'a>(&'a self, stmt: &'a Statement) -> Result<Prepared<'a>> {
        self.guard.clear_denied();
        let prepared = self
            .conn
            .prepare_cached(stmt.sql())
            .map_err(|source| self.statement_error(stmt.sql(), source))?;
        Ok(Prepared {
            sql: stmt.sql(),
            readonly: prepared.readonly(),
            statement: prepared,
        })
    }

    /// Runs `stmt`'s parameters through a statement prepared from the same
    /// SQL text; the rows changed and whether it is read-only. Every
    /// parameter is bound again (rusqlite checks the count), so nothing of
    /// an earlier run carries over.
    ///
    /// A write that returns rows (`INSERT ... RETURNING`) is stepped to its
    /// end, its rows dropped: rusqlite's `execute` would step it once (the
    /// write done, and committed outside a transaction) and then call it an
    /// error, a write nobody counts.
    fn run_prepared(&self, prepared: &mut Prepared<'_>, stmt: &Statement) -> Result<(usize, bool)> {
        let err = |source| Error::Statement {
            sql: sql_for_error(stmt.sql()),
            source,
        };
        let params = params_from_iter(stmt.params());
        let changed = if !prepared.readonly && prepared.statement.column_count() > 0 {
            let mut rows = prepared.statement.query(params).map_err(err)?;
            while rows.next().map_err(err)?.is_some() {}
            usize::try_from(self.conn.changes()).unwrap_or(usize::MAX)
        } else {
            prepared.statement.execute(params).map_err(err)?
        };
        Ok((changed, prepared.readonly))
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

    /// Rolls back a transaction that `what` (a statement or a closure) left
    /// open, and says so: [`Error::LeftTransactionOpen`], or
    /// [`Error::RollbackFailed`] when the rollback itself failed.
    fn roll_back_left_open(&self, what: String) -> Error {
        match self.conn.execute_batch("ROLLBACK") {
            Ok(()) => Error::LeftTransactionOpen { what },
            Err(source) => Error::RollbackFailed { what, source },
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
    ///
    /// [`Error::GuardedSetting`] for a statement that would change a setting
    /// walguard's promises rest on (`PRAGMA synchronous = OFF`, in any
    /// spelling): refused before it ran, the connection unchanged.
    ///
    /// [`Error::LeftTransactionOpen`] for a statement that opens a
    /// transaction and leaves it open (`BEGIN`, `SAVEPOINT`): it is rolled
    /// back and refused, because checkpoints run between transactions and
    /// an atomic batch is what [`Store::transaction`] is for.
    pub fn execute(&mut self, stmt: &Statement) -> Result<usize> {
        self.refuse_if_gone()?;
        if self.position.is_some() && self.effect_of(stmt.sql()) == Effect::Plain {
            return self.execute_counted(stmt);
        }
        let (changed, readonly) = self.run_statement(stmt)?;
        if !self.conn.is_autocommit() {
            return Err(
                self.roll_back_left_open(format!("statement {}", sql_for_error(stmt.sql())))
            );
        }
        if !readonly {
            self.record_commit(1);
            self.bump_alone();
        }
        Ok(changed)
    }

    /// [`Store::execute`] with replication on, for a statement that can
    /// run inside a transaction: in one, with the commit's count
    /// ([`position`]).
    fn execute_counted(&mut self, stmt: &Statement) -> Result<usize> {
        self.control("BEGIN IMMEDIATE")
            .map_err(|source| Error::TransactionControl {
                step: "begin",
                source,
            })?;
        let (changed, readonly) = match self.run_statement(stmt) {
            Ok(ran) => ran,
            Err(e) => {
                self.rollback_quietly();
                return Err(e);
            }
        };
        let counted = if readonly {
            Ok(())
        } else {
            position::bump(&self.conn, self.position)
        };
        if let Err(source) = counted.and_then(|()| self.control("COMMIT")) {
            self.rollback_quietly();
            return Err(Error::TransactionControl {
                step: "commit",
                source,
            });
        }
        if !readonly {
            self.record_commit(1);
        }
        Ok(changed)
    }

    /// Runs several statements as one atomic transaction (`BEGIN
    /// IMMEDIATE`). Either all are committed or none. Returns the rows
    /// changed by each.
    ///
    /// # Errors
    ///
    /// [`Error::GuardedSetting`], before anything runs, when a statement
    /// would change a setting walguard's promises rest on.
    /// [`Error::SplitsTransaction`], before anything runs, when a statement
    /// would end or split the transaction (`COMMIT`, `ROLLBACK`,
    /// `SAVEPOINT`, `RELEASE`...), as SQLite says when it compiles it.
    /// [`Error::Transaction`] naming the failing statement and its position;
    /// the transaction was rolled back. [`Error::TransactionControl`] when
    /// `BEGIN` or `COMMIT` itself failed.
    pub fn transaction(&mut self, stmts: &[Statement]) -> Result<Vec<usize>> {
        self.refuse_if_gone()?;
        for (index, stmt) in stmts.iter().enumerate() {
            self.refuse_guarded(stmt.sql())?;
            if self.effect_of(stmt.sql()) == Effect::TransactionControl {
                return Err(Error::SplitsTransaction {
                    index,
                    sql: sql_for_error(stmt.sql()),
                });
            }
        }
        let guard = &self.guard;
        let position = self.position;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|source| Error::TransactionControl {
                step: "begin",
                source,
            })?;
        let mut changed = Vec::with_capacity(stmts.len());
        for (index, stmt) in stmts.iter().enumerate() {
            guard.clear_denied();
            let n = tx
                .prepare_cached(stmt.sql())
                .and_then(|mut p| {
                    if !p.readonly() && p.column_count() > 0 {
                        // A write that returns rows, stepped to its end
                        // (see `run_prepared`).
                        let mut rows = p.query(params_from_iter(stmt.params()))?;
                        while rows.next()?.is_some() {}
                        Ok(usize::try_from(tx.changes()).unwrap_or(usize::MAX))
                    } else {
                        p.execute(params_from_iter(stmt.params()))
                    }
                })
                .map_err(|source| match guard.take_denied() {
                    Some(g) => Error::GuardedSetting {
                        sql: sql_for_error(stmt.sql()),
                        pragma: g.name,
                        instead: g.instead,
                    },
                    None => Error::Transaction {
                        index,
                        sql: sql_for_error(stmt.sql()),
                        source,
                    },
                })?;
            changed.push(n);
        }
        position::bump(&tx, position)
            .and_then(|()| tx.commit())
            .map_err(|source| Error::TransactionControl {
                step: "commit",
                source,
            })?;
        self.record_commit(1);
        Ok(changed)
    }

    /// Runs a read query and collects its rows. The column names are those
    /// of the schema as it is now, after any schema change by anyone: they
    /// are read after the first step, when SQLite has prepared an expired
    /// statement again (FACTS.md, rusqlite#1371).
    ///
    /// Reads only: what a statement does is asked of SQLite before it runs
    /// (the effect classifier, and `sqlite3_stmt_readonly`, which alone
    /// calls `BEGIN`, `SAVEPOINT` and `ATTACH` read-only). Writes go through
    /// [`Store::execute`] or [`Store::transaction`], where they are counted.
    ///
    /// # Errors
    ///
    /// [`Error::NotARead`], before anything runs, for a statement that
    /// writes (`INSERT ... RETURNING` included), controls a transaction
    /// (`BEGIN`, `SAVEPOINT`...), attaches or detaches a database, or runs
    /// a PRAGMA that changes something; [`Error::GuardedSetting`] for a
    /// guarded PRAGMA change; [`Error::Statement`] naming the SQL.
    pub fn query(&self, stmt: &Statement) -> Result<ResultSet> {
        self.refuse_guarded(stmt.sql())?;
        let seen = self.seen_of(stmt.sql());
        let not_a_read = |what| {
            Err(Error::NotARead {
                sql: sql_for_error(stmt.sql()),
                what,
            })
        };
        if seen.transaction_control {
            return not_a_read("controls a transaction");
        }
        if seen.attach {
            return not_a_read("attaches or detaches a database");
        }
        if seen.writes {
            return not_a_read("writes");
        }
        if seen.pragma_acts {
            return not_a_read("runs a pragma that changes something");
        }
        self.guard.clear_denied();
        let mut prepared = self
            .conn
            .prepare_cached(stmt.sql())
            .map_err(|source| self.statement_error(stmt.sql(), source))?;
        // `PRAGMA journal_mode` reads, yet its program is not read-only
        // (`OP_JournalMode`): a pragma the classifier saw only read passes.
        let pragma_read = seen.outside_transaction && !seen.attach;
        if !prepared.readonly() && !pragma_read {
            return not_a_read("writes");
        }
        let err = |source| Error::Statement {
            sql: sql_for_error(stmt.sql()),
            source,
        };
        let mut rows = Vec::new();
        {
            let mut cursor = prepared
                .query(params_from_iter(stmt.params()))
                .map_err(err)?;
            // The width of each row from the statement as stepped, not as
            // cached: a schema change makes SQLite prepare it again at the
            // first step.
            while let Some(row) = cursor.next().map_err(err)? {
                let width = row.as_ref().column_count();
                let values = (0..width)
                    .map(|i| row.get::<_, Value>(i))
                    .collect::<rusqlite::Result<Vec<Value>>>()
                    .map_err(err)?;
                rows.push(values);
            }
        }
        let columns: Vec<String> = prepared.column_names().map(str::to_owned).collect();
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
    /// The connection's settings stay walguard's: a PRAGMA the closure
    /// prepares that would change a guarded setting is denied (the closure
    /// sees SQLite's `not authorized`, and the call ends with
    /// [`Error::GuardedSetting`] if the closure returns that error). A
    /// closure that removes the authorizer and changes one anyway finds it
    /// set back after it returns (see the `guard` module of the store).
    ///
    /// # Errors
    ///
    /// [`Error::SettingRestored`] when the closure changed a guarded
    /// setting: it was set back, and what the closure committed counts as
    /// exposed until the next checkpoint that catches up;
    /// [`Error::SettingLost`] when setting it back failed.
    /// [`Error::Panic`] when the closure panicked: the panic is caught, a
    /// transaction it left open is rolled back, and the store keeps
    /// serving. [`Error::Call`] with what the closure returned;
    /// [`Error::LeftTransactionOpen`] when it left a transaction open (it
    /// was rolled back).
    pub fn call<R>(&mut self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<R>) -> Result<R> {
        self.refuse_if_gone()?;
        let before = self.conn.total_changes();
        self.guard.clear_denied();
        // The closure is the caller's code: a panic in it must not take the
        // writer down. The connection it held is still sound (SQLite's
        // state is only changed by SQLite calls, which do not unwind), and
        // a transaction it left open is rolled back below.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut self.conn)));
        let result = match result {
            Ok(result) => result,
            Err(payload) => {
                let message = crate::error::panic_message(payload.as_ref());
                if !self.conn.is_autocommit()
                    && let Err(e) = self.conn.execute_batch("ROLLBACK")
                {
                    return Err(Error::RollbackFailed {
                        what: format!("closure that panicked ({message})"),
                        source: e,
                    });
                }
                let committed = self.conn.total_changes() != before;
                let settings = self.check_settings_after_call();
                if committed {
                    // It committed before it panicked.
                    self.durability
                        .record_commit(1, settings.is_ok() && self.every_commit_is_synced());
                    self.bump_alone();
                }
                settings?;
                return Err(Error::Panic { message });
            }
        };
        if !self.conn.is_autocommit() {
            let left_open = self.roll_back_left_open("closure".to_owned());
            self.check_settings_after_call()?;
            return Err(left_open);
        }
        let changed_rows = self.conn.total_changes() != before;
        if let Err(e) = self.check_settings_after_call() {
            // What the closure committed ran under the settings it set: not
            // durable until a checkpoint catches up.
            if changed_rows {
                self.durability.record_commit(1, false);
                self.bump_alone();
            }
            return Err(e);
        }
        if changed_rows {
            self.record_commit(1);
            self.bump_alone();
        }
        result.map_err(|source| match self.guard.take_denied() {
            Some(g) => Error::GuardedSetting {
                sql: "a statement the closure prepared".to_owned(),
                pragma: g.name,
                instead: g.instead,
            },
            None => Error::Call { source },
        })
    }

    /// Runs a checkpoint now, on this connection, between transactions.
    /// Never fails: a failure is [`CheckpointOutcome::Failed`] in the report.
    ///
    /// PASSIVE never waits. FULL, RESTART and TRUNCATE wait on readers and
    /// other writers at most `database.checkpoint_busy_timeout` (default
    /// [`DEFAULT_CHECKPOINT_BUSY_TIMEOUT`](crate::settings::DEFAULT_CHECKPOINT_BUSY_TIMEOUT),
    /// 250 ms), then end `busy` ([`Store::checkpoint_with_deadline`]):
    /// while they wait, every write waits behind them.
    pub fn checkpoint(
        &mut self,
        mode: CheckpointMode,
        reason: CheckpointReason,
    ) -> CheckpointReport {
        if mode == CheckpointMode::Passive {
            return self.checkpoint_by(mode, reason, |conn| checkpoint::run(conn, mode, reason));
        }
        // A blocking mode holds the write lock while it waits on readers:
        // bounded by its own busy timeout, with the interrupt as the stop.
        let wait = self.settings.checkpoint_busy_timeout;
        self.checkpoint_with_deadline(mode, reason, wait)
    }

    /// The bookkeeping around every checkpoint: the file must still be the
    /// one opened ([`Store::check_file`]), a reopen still pending after an
    /// I/O error comes next, the durable point moves on a completed one,
    /// and an I/O failure leads to a reopen.
    fn checkpoint_by(
        &mut self,
        mode: CheckpointMode,
        reason: CheckpointReason,
        run: impl FnOnce(&Connection) -> CheckpointReport,
    ) -> CheckpointReport {
        // A phase 1 in flight finishes first (interrupted at shutdown): it
        // holds the checkpointer lock, and its report rides on this one.
        let phase1 = self.join_backfill(reason == CheckpointReason::Shutdown);
        let report = self.checkpoint_on_writer(mode, reason, run);
        match phase1 {
            Some((phase1, waited)) => report.with_backfill(phase1, waited),
            None => report,
        }
    }

    fn checkpoint_on_writer(
        &mut self,
        mode: CheckpointMode,
        reason: CheckpointReason,
        run: impl FnOnce(&Connection) -> CheckpointReport,
    ) -> CheckpointReport {
        if let Err(e) = self.check_file() {
            return CheckpointReport::failed(mode, reason, Duration::ZERO, &e);
        }
        if let Err(e) = self.reopen_if_pending() {
            return CheckpointReport::failed(mode, reason, Duration::ZERO, &e);
        }
        if let Some(report) = self.hold_before_checkpoint(mode, reason) {
            return report;
        }
        let before = self.durability;
        let report = run(&self.conn);
        if *report.outcome() == CheckpointOutcome::Completed && self.weakened.is_none() {
            self.durability.durable_through(before);
        }
        self.reopen_after_io_error(&report);
        report
    }

    /// With the replica hold on ([`Store::hold_for_replica`]): pins the
    /// WAL before a checkpoint that restarts nothing, and answers a
    /// RESTART or TRUNCATE `busy` at once, without running it, while the
    /// replica lacks commits (it would restart the WAL under them, or
    /// wait out its busy timeout on the pin). `None`: run it.
    fn hold_before_checkpoint(
        &mut self,
        mode: CheckpointMode,
        reason: CheckpointReason,
    ) -> Option<CheckpointReport> {
        let commits = self.durability.commits();
        let hold = self.replica.as_mut()?;
        if matches!(mode, CheckpointMode::Restart | CheckpointMode::Truncate) {
            if hold.release_if_caught_up(commits) {
                return None;
            }
            tracing::info!(
                target: "walguard::replication",
                mode = mode.as_str(),
                reason = reason.as_str(),
                not_replicated = commits.saturating_sub(hold.state().replicated_commits),
                "checkpoint held back: the replica lacks commits it would take out of the wal"
            );
            return Some(CheckpointReport::from_row(
                mode,
                reason,
                (true, -1, -1),
                Duration::ZERO,
            ));
        }
        match hold.pin(commits) {
            Ok(()) => None,
            Err(source) => Some(CheckpointReport::failed(
                mode,
                reason,
                Duration::ZERO,
                &Error::ReplicaHold {
                    path: self.settings.path.clone(),
                    source,
                },
            )),
        }
    }

    /// Turns the replica hold on (replication through Litestream): from
    /// now on every checkpoint this store runs first pins the WAL, and the
    /// pin lasts until [`Store::replicated_through`] says the replica holds
    /// every commit made before it; RESTART, TRUNCATE and the close-time
    /// checkpoint wait until the replica holds every commit. See
    /// `src/store/replica_hold.rs` for why and what it costs.
    ///
    /// # Errors
    ///
    /// [`Error::Open`] when the hold's read-only connection cannot be
    /// opened.
    pub fn hold_for_replica(&mut self) -> Result<()> {
        if self.replica.is_none() {
            self.replica = Some(ReplicaHold::open(&self.settings.path, self.vfs.as_deref())?);
        }
        Ok(())
    }

    /// The replica holds every commit up to `commits` (this session's
    /// count, [`Durability::commits`]): a pin it covers is released.
    pub fn replicated_through(&mut self, commits: u64) {
        if let Some(hold) = self.replica.as_mut() {
            hold.replicated_through(commits);
        }
    }

    /// Whether the replica holds every commit of this session; `true`
    /// without the replica hold.
    #[must_use]
    pub fn replica_caught_up(&self) -> bool {
        self.replica
            .as_ref()
            .is_none_or(|h| h.caught_up(self.durability.commits()))
    }

    /// What the replica hold holds; `None` without it.
    #[must_use]
    pub fn replica_hold(&self) -> Option<ReplicaHoldState> {
        self.replica.as_ref().map(ReplicaHold::state)
    }

    /// Waits for a phase 1 in flight (interrupting it first when
    /// `interrupt`): its report and how long the writer waited. Its
    /// connection is closed by then; an I/O error in it makes the reopen
    /// pending, as one on the writer would (see "Failed fsync" in the
    /// [checkpoint policy](crate::checkpoint)).
    fn join_backfill(&mut self, interrupt: bool) -> Option<(CheckpointReport, Duration)> {
        let backfill = self.backfill.take()?;
        let start = Instant::now();
        let report = backfill.join(interrupt);
        if report.io_error() {
            self.reopen_pending = true;
        }
        Some((report, start.elapsed()))
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
    pub fn close(mut self) -> std::result::Result<(), (Self, Error)> {
        // Phase 1 goes first: the last connection's close checkpoints and
        // deletes the WAL, and must be the writer's.
        self.before_close();
        let path = self.settings.path.clone();
        let stand_in = match reopen::refusing_connection() {
            Ok(conn) => conn,
            Err(source) => return Err((self, Error::Close { path, source })),
        };
        let conn = std::mem::replace(&mut self.conn, stand_in);
        match conn.close() {
            Ok(()) => Ok(()),
            Err((conn, source)) => {
                self.conn = conn;
                Err((self, Error::Close { path, source }))
            }
        }
    }

    /// What must happen before the writer's connection closes, by `close`
    /// or by a drop: a phase 1 in flight is stopped and joined (its
    /// connection closes first), and while a reopen after an I/O error is
    /// pending (phase 1's included) the close must not checkpoint from the
    /// stale WAL index (see "Failed fsync" in the
    /// [checkpoint policy](crate::checkpoint)): the WAL stays, and the next
    /// open rebuilds the index from it.
    fn before_close(&mut self) {
        if let Some((report, _)) = self.join_backfill(true) {
            report.log();
        }
        // The replica lacks commits: the close must not checkpoint and
        // delete the WAL under them (Litestream reads them on its return).
        let keep_for_replica = !self.replica_caught_up();
        if keep_for_replica {
            tracing::info!(target: "walguard::replication", "the wal stays on close: the replica lacks commits in it");
        }
        // The hold's connection closes first, so the writer's close is the
        // last one.
        self.replica = None;
        if (self.reopen_pending || keep_for_replica)
            && let Err(e) = self
                .conn
                .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        {
            tracing::error!(target: "walguard::db", error = %e, "cannot turn off the close-time checkpoint (a stale wal index, or frames the replica lacks)");
        }
    }
}

impl Drop for Store {
    /// A store dropped without [`Store::close`] closes in the same order.
    fn drop(&mut self) {
        self.before_close();
    }
}

/// Helpers shared by the unit tests of the store's files.
#[cfg(test)]
mod test_support {
    use rusqlite::types::Value;

    use super::{Statement, Store};
    use crate::settings::DatabaseSettings;

    pub(super) fn store_in(dir: &tempfile::TempDir) -> Store {
        let mut store = Store::open(&DatabaseSettings::at(dir.path().join("state.db"))).unwrap();
        store
            .execute(&Statement::new(
                "CREATE TABLE kv (id INTEGER PRIMARY KEY, v BLOB NOT NULL)",
            ))
            .unwrap();
        store
    }

    pub(super) fn insert(id: i64) -> Statement {
        Statement::new("INSERT INTO kv (id, v) VALUES (?1, ?2)")
            .bind(id)
            .bind(vec![7u8; 100])
    }

    pub(super) fn ids(store: &Store) -> Vec<i64> {
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
}
