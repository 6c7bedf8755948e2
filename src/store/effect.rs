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
//! `EXPLAIN <sql>` while the store's authorizer (the guard, `guard.rs`)
//! records what it sees, and
//!
//! - the authorizer sees `SQLITE_TRANSACTION` or `SQLITE_SAVEPOINT`, and the
//!   program holds an `AutoCommit` or `Savepoint` opcode: transaction
//!   control;
//! - the authorizer sees `SQLITE_PRAGMA`, `SQLITE_ATTACH` or
//!   `SQLITE_DETACH`, or the program holds a `Vacuum` opcode: a statement
//!   that cannot run inside a transaction, or may refuse to (VACUUM,
//!   ATTACH, DETACH, a `journal_mode` or `synchronous` change...).
//!
//! Nothing runs: `EXPLAIN` only lists the program, and the guard denies a
//! change of a guarded PRAGMA, which SQLite would otherwise apply while
//! compiling it (FACTS.md, "Preparing is not harmless"). The answer is
//! cached per SQL text ([`EFFECT_CACHE_ENTRIES`]), so a statement sent
//! again costs a map lookup. The same record tells [`Store::query`] whether
//! a statement only reads.

use std::cell::RefCell;
use std::collections::HashMap;

use super::Store;
use super::guard::Seen;

#[cfg(doc)]
use crate::Error;

/// SQL texts whose effect is remembered; the cache starts over when full.
pub(crate) const EFFECT_CACHE_ENTRIES: usize = 512;

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

/// What SQLite said each SQL text does, by SQL text.
#[derive(Debug, Default)]
pub(super) struct EffectCache(RefCell<HashMap<String, Seen>>);

impl Store {
    /// What `sql` does to a transaction (see the [module docs](self)). SQL
    /// that does not compile is [`Effect::Plain`]: running it reports the
    /// real error.
    pub(super) fn effect_of(&self, sql: &str) -> Effect {
        let seen = self.seen_of(sql);
        if seen.transaction_control {
            Effect::TransactionControl
        } else if seen.outside_transaction || seen.guarded.is_some() {
            Effect::OutsideTransaction
        } else {
            Effect::Plain
        }
    }

    /// Everything SQLite's authorizer and the compiled program say about
    /// `sql` (cached by SQL text). SQL that does not compile records
    /// nothing and is not cached (a table it names may exist later), unless
    /// the guard denied it.
    pub(super) fn seen_of(&self, sql: &str) -> Seen {
        if let Some(seen) = self.effects.0.borrow().get(sql) {
            return *seen;
        }
        let (compiled, seen) = self.ask_sqlite(sql);
        if compiled || seen.guarded.is_some() {
            let mut cache = self.effects.0.borrow_mut();
            if cache.len() >= EFFECT_CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(sql.to_owned(), seen);
        }
        seen
    }

    /// Compiles `EXPLAIN <sql>` under the recording guard: whether it
    /// compiled, and what was seen. The guard denies a guarded PRAGMA
    /// change before SQLite applies it (which it would do while compiling).
    fn ask_sqlite(&self, sql: &str) -> (bool, Seen) {
        let conn = &self.conn;
        let (opcodes, mut seen) = self.guard.record(|| {
            // SQL that does not compile (bad SQL, or an `EXPLAIN` of the
            // caller's own: `EXPLAIN EXPLAIN` does not parse) is plain.
            let mut explain = conn.prepare(&format!("EXPLAIN {sql}")).ok()?;
            let mut opcodes = Vec::new();
            if let Ok(rows) = explain.query_map([], |row| row.get::<_, String>(1)) {
                opcodes.extend(rows.flatten());
            }
            Some(opcodes)
        });
        // The recording authorizer denied a guarded change: not a denial of
        // the caller's next statement.
        self.guard.clear_denied();
        let Some(opcodes) = opcodes else {
            return (false, seen);
        };
        let has = |name: &str| opcodes.iter().any(|op| op == name);
        if has("AutoCommit") || has("Savepoint") {
            seen.transaction_control = true;
        }
        if has("Vacuum") {
            seen.outside_transaction = true;
            seen.writes = true;
        }
        (true, seen)
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
        let store = store_in(&dir);
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
