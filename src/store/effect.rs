//! What a statement does to a transaction, as SQLite says before it runs.
//!
//! walguard opens transactions of its own (an atomic
//! [`Store::transaction`], one group commit) and runs the caller's
//! statements inside them. A `COMMIT`, `END`, `ROLLBACK`, `SAVEPOINT`,
//! `RELEASE` or `ROLLBACK TO` among them would end or split that
//! transaction: the statements before it would commit on their own
//! (FACTS.md, "Transaction control inside a batch"). Whether a statement
//! does that is not read off its first keyword, which a comment or odd
//! spacing defeats, but asked of SQLite: the statement is compiled as
//! `EXPLAIN <sql>` with a recording authorizer installed, and
//!
//! - the authorizer sees `SQLITE_TRANSACTION` or `SQLITE_SAVEPOINT`, and the
//!   program holds an `AutoCommit` or `Savepoint` opcode: transaction
//!   control;
//! - the authorizer sees `SQLITE_PRAGMA`, `SQLITE_ATTACH` or
//!   `SQLITE_DETACH`, or the program holds a `Vacuum` opcode: a statement
//!   that cannot run inside a transaction, or may refuse to (VACUUM,
//!   ATTACH, DETACH, a `journal_mode` or `synchronous` change...).
//!
//! Nothing runs: `EXPLAIN` only lists the program. The answer is cached per
//! SQL text ([`EFFECT_CACHE_ENTRIES`]), so a statement sent again costs a
//! map lookup. Installing an authorizer expires the connection's prepared
//! statements (`sqlite3_set_authorizer`), which SQLite then prepares again
//! on their next use: a cost paid once per new SQL text.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

use super::Store;

#[cfg(doc)]
use crate::Error;

/// SQL texts whose effect is remembered; the cache starts over when full.
pub const EFFECT_CACHE_ENTRIES: usize = 512;

/// What a statement does to the transaction it runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Effect {
    /// Reads or writes inside the transaction like any other statement.
    Plain,
    /// Begins, ends or splits a transaction: `BEGIN`, `COMMIT`/`END`,
    /// `ROLLBACK`, `SAVEPOINT`, `RELEASE`, `ROLLBACK TO`.
    TransactionControl,
    /// Cannot run inside a transaction, or may refuse to: `VACUUM`,
    /// `ATTACH`, `DETACH`, `PRAGMA`.
    OutsideTransaction,
}

/// The effects already asked for, by SQL text.
#[derive(Debug, Default)]
pub(super) struct EffectCache(HashMap<String, Effect>);

/// What the recording authorizer saw while SQLite compiled a statement.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    transaction_control: bool,
    outside_transaction: bool,
}

impl Store {
    /// What `sql` does to a transaction (see the [module docs](self)). SQL
    /// that does not compile is [`Effect::Plain`]: running it reports the
    /// real error.
    pub(super) fn effect_of(&mut self, sql: &str) -> Effect {
        if let Some(effect) = self.effects.0.get(sql) {
            return *effect;
        }
        let effect = self.ask_sqlite(sql);
        if self.effects.0.len() >= EFFECT_CACHE_ENTRIES {
            self.effects.0.clear();
        }
        self.effects.0.insert(sql.to_owned(), effect);
        effect
    }

    fn ask_sqlite(&mut self, sql: &str) -> Effect {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let record = Arc::clone(&seen);
        let installed = self.conn.authorizer(Some(move |ctx: AuthContext<'_>| {
            let mut seen = record.lock().unwrap_or_else(PoisonError::into_inner);
            match ctx.action {
                AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => {
                    seen.transaction_control = true;
                }
                AuthAction::Pragma { .. }
                | AuthAction::Attach { .. }
                | AuthAction::Detach { .. } => {
                    seen.outside_transaction = true;
                }
                _ => {}
            }
            Authorization::Allow
        }));
        let mut opcodes = Vec::new();
        let mut compiled = false;
        if installed.is_ok() {
            // SQL that does not compile (bad SQL, or an `EXPLAIN` of the
            // caller's own: `EXPLAIN EXPLAIN` does not parse) is plain.
            if let Ok(mut explain) = self.conn.prepare(&format!("EXPLAIN {sql}")) {
                compiled = true;
                if let Ok(rows) = explain.query_map([], |row| row.get::<_, String>(1)) {
                    opcodes.extend(rows.flatten());
                }
            }
            let _ = self
                .conn
                .authorizer(None::<fn(AuthContext<'_>) -> Authorization>);
        }
        if !compiled {
            return Effect::Plain;
        }
        let seen = *seen.lock().unwrap_or_else(PoisonError::into_inner);
        let has = |name: &str| opcodes.iter().any(|op| op == name);
        if seen.transaction_control || has("AutoCommit") || has("Savepoint") {
            Effect::TransactionControl
        } else if seen.outside_transaction || has("Vacuum") {
            Effect::OutsideTransaction
        } else {
            Effect::Plain
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Effect;
    use crate::store::test_support::store_in;

    /// What SQLite says, whatever the spelling: comments, case, odd spacing.
    #[test]
    fn sqlite_names_the_effect_whatever_the_spelling() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store_in(&dir);
        let table: [(&str, Effect); 22] = [
            ("INSERT INTO kv (id, v) VALUES (?1, ?2)", Effect::Plain),
            ("SELECT count(*) FROM kv", Effect::Plain),
            ("UPDATE kv SET v = x'00' WHERE id = 1", Effect::Plain),
            ("CREATE TABLE IF NOT EXISTS other (x)", Effect::Plain),
            ("COMMIT", Effect::TransactionControl),
            ("commit transaction", Effect::TransactionControl),
            ("END", Effect::TransactionControl),
            ("\n\tEnd  Transaction", Effect::TransactionControl),
            ("/* a comment */ COMMIT", Effect::TransactionControl),
            ("-- a line comment\nROLLBACK", Effect::TransactionControl),
            ("BEGIN IMMEDIATE", Effect::TransactionControl),
            ("SAVEPOINT s1", Effect::TransactionControl),
            ("RELEASE s1", Effect::TransactionControl),
            (
                "RELEASE SAVEPOINT walguard_write",
                Effect::TransactionControl,
            ),
            ("ROLLBACK TO s1", Effect::TransactionControl),
            ("VACUUM", Effect::OutsideTransaction),
            ("PRAGMA user_version = 7", Effect::OutsideTransaction),
            ("pragma journal_mode", Effect::OutsideTransaction),
            ("ATTACH ':memory:' AS other", Effect::OutsideTransaction),
            ("DETACH other", Effect::OutsideTransaction),
            // Not SQL: running it reports the syntax error.
            ("BEGINNING", Effect::Plain),
            ("EXPLAIN COMMIT", Effect::Plain),
        ];
        for (sql, expected) in table {
            assert_eq!(store.effect_of(sql), expected, "{sql:?}");
            // The cached answer is the same.
            assert_eq!(store.effect_of(sql), expected, "{sql:?} (cached)");
        }
    }
}
