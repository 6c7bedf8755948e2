//! Writes: one statement as its own transaction ([`Store::execute`]) and
//! an atomic batch ([`Store::transaction`]), with the statement plumbing
//! group commit shares (prepare, run, roll back).

use rusqlite::{TransactionBehavior, params_from_iter};

use super::{Effect, Prepared, Statement, Store, position};
use crate::error::{Error, Result, sql_for_error};

impl Store {
    /// Prepares (cached) and runs one statement; the rows changed and
    /// whether it is read-only. Commits nothing by itself.
    pub(super) fn run_statement(&self, stmt: &Statement) -> Result<(usize, bool)> {
        let mut prepared = self.prepare(stmt)?;
        self.run_prepared(&mut prepared, stmt)
    }

    /// Takes `stmt`'s prepared statement from the connection's cache (or
    /// prepares it); it goes back to the cache when dropped.
    pub(super) fn prepare<'a>(&'a self, stmt: &'a Statement) -> Result<Prepared<'a>> {
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
    pub(super) fn run_prepared(
        &self,
        prepared: &mut Prepared<'_>,
        stmt: &Statement,
    ) -> Result<(usize, bool)> {
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
    pub(super) fn control(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.prepare_cached(sql)?.execute([]).map(drop)
    }

    /// Rolls back the open transaction, if SQLite has not already done so.
    pub(super) fn rollback_quietly(&self) {
        if !self.conn.is_autocommit()
            && let Err(e) = self.control("ROLLBACK")
        {
            tracing::warn!(target: "walguard::db", error = %e, "rolling back a group commit failed");
        }
    }

    /// Rolls back a transaction that `what` (a statement or a closure) left
    /// open, and says so: [`Error::LeftTransactionOpen`], or
    /// [`Error::RollbackFailed`] when the rollback itself failed.
    pub(super) fn roll_back_left_open(&self, what: String) -> Error {
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
}
