//! The replica's position: with replication on, every commit the store
//! makes adds one to this start's count of commits in the identity table
//! (issue 20, "a copy from the same session"), inside the commit itself.
//!
//! The count is what tells, at the next start, a local file behind its own
//! replica from one at or ahead of it
//! ([`crate::replication::identity::judge`]): identity tokens are stamped
//! once per start, so they cannot tell positions within a session apart.
//! One `UPDATE` of one row per commit (per group of a group commit, not
//! per write), only with replication on. Its cost is the page it dirties:
//! one more WAL frame per commit (the statement itself measured free;
//! docs/operations.md, "What the identity check costs").
//!
//! Where each kind of commit counts:
//! - a group ([`Store::execute_group`]) and a transaction
//!   ([`Store::transaction`]): before their `COMMIT`;
//! - a single write ([`Store::execute`]) that can run inside a
//!   transaction: wrapped in `BEGIN IMMEDIATE` … `COMMIT` with the count;
//!   one that cannot (`VACUUM`, a `PRAGMA` that must run outside one): in a
//!   commit of its own right after it;
//! - a closure that changed rows ([`Store::call`]): in a commit of its own
//!   right after it returns (it commits its own transactions, which the
//!   store does not open);
//! - migrations ([`Store::migrate`]) before their `COMMIT` (those at
//!   start run before the token is stamped, and count nowhere).

use rusqlite::Connection;

use crate::replication::identity::BUMP_SQL;

use super::Store;

/// Adds one to the count of the token at `seq` (see the module docs).
pub(super) fn bump(conn: &Connection, seq: Option<i64>) -> rusqlite::Result<()> {
    match seq {
        Some(seq) => conn.prepare_cached(BUMP_SQL)?.execute([seq]).map(drop),
        None => Ok(()),
    }
}

impl Store {
    /// From now on, every commit also counts itself under the identity
    /// token whose row is `seq` (what
    /// [`identity::stamp`](crate::replication::identity::stamp) returned):
    /// replication is on, and this start's token is stamped. See
    /// [`crate::replication::identity`].
    pub fn count_commits_in_identity(&mut self, seq: i64) {
        self.position = Some(seq);
    }

    /// The count of a commit that could not carry it (a statement that
    /// runs outside a transaction, a closure): a commit of its own. A
    /// failure is logged, not returned: the write it counts is committed.
    pub(super) fn bump_alone(&self) {
        if let Err(e) = bump(&self.conn, self.position) {
            tracing::warn!(target: "walguard::db", error = %e, "cannot count a commit in the replica's identity; a copy of the database taken now would look one commit behind what it holds");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::replication::identity;
    use crate::settings::DatabaseSettings;
    use crate::{Statement, Store};

    fn count(store: &mut Store) -> u64 {
        store
            .call(|c| identity::tokens(c))
            .unwrap()
            .unwrap()
            .last()
            .unwrap()
            .commits
    }

    /// Every kind of commit counts once, a failed write not at all, and
    /// nothing counts before the store is told the row.
    #[test]
    fn every_commit_path_counts_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&DatabaseSettings::at(dir.path().join("p.db"))).unwrap();
        store
            .execute(&Statement::new("CREATE TABLE t (k INTEGER PRIMARY KEY)"))
            .unwrap();
        let stamped = store.call(|c| identity::stamp(c)).unwrap();
        store
            .execute(&Statement::new("INSERT INTO t VALUES (1)"))
            .unwrap();
        assert_eq!(count(&mut store), 0, "not counting before it is told");
        store.count_commits_in_identity(stamped.seq);
        let insert = |k: i64| Statement::new("INSERT INTO t VALUES (?1)").bind(k);
        let mut expected = 0;
        // A single write; one that fails (a duplicate key) does not count.
        store.execute(&insert(2)).unwrap();
        expected += 1;
        assert!(store.execute(&insert(2)).is_err());
        assert_eq!(count(&mut store), expected);
        // A transaction.
        store.transaction(&[insert(3), insert(4)]).unwrap();
        expected += 1;
        assert_eq!(count(&mut store), expected);
        // A group: one commit, one count, whatever its size.
        let results = store.execute_group(&[insert(5), insert(6), insert(7)]);
        assert!(results.iter().all(Result::is_ok));
        expected += 1;
        assert_eq!(count(&mut store), expected);
        // A closure that wrote; one that only read does not count.
        let one: i64 = store
            .call(|c| c.query_row("SELECT 1", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(one, 1);
        assert_eq!(count(&mut store), expected);
        store
            .call(|c| c.execute("INSERT INTO t VALUES (8)", []))
            .unwrap();
        expected += 1;
        assert_eq!(count(&mut store), expected);
        // A statement that must run outside a transaction: counted in a
        // commit of its own.
        store.execute(&Statement::new("VACUUM")).unwrap();
        expected += 1;
        assert_eq!(count(&mut store), expected);
        // Migrations: one commit, however many.
        let migrations = crate::Migrations::new(["CREATE TABLE m1 (x)", "CREATE TABLE m2 (x)"]);
        assert_eq!(store.migrate(&migrations).unwrap().applied().len(), 2);
        expected += 1;
        assert_eq!(count(&mut store), expected);
        let rows: i64 = store
            .call(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(rows, 8);
    }
}
