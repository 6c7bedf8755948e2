//! Reads on the write connection ([`Store::query`]): refused unless SQLite
//! says the statement only reads.

use rusqlite::params_from_iter;
use rusqlite::types::Value;

use super::{ResultSet, Statement, Store};
use crate::error::{Error, Result, sql_for_error};

impl Store {
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
}
