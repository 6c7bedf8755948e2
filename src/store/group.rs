//! Group commit: independent writes in one transaction, each with its own
//! result ([`Store::execute_group`]).

use std::sync::Arc;

use crate::error::{Error, Result};

use super::{Effect, Prepared, Statement, Store};

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

impl Store {
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
    /// `SAVEPOINT`, `VACUUM`, `ATTACH`, `PRAGMA`...), as SQLite itself
    /// says when it compiles them (not their first keyword), run alone, in
    /// their place in the order. A group of one is a plain [`Store::execute`].
    ///
    /// A statement of a group that runs again runs twice; its first run was
    /// rolled back, so the database sees it once, but a statement with a
    /// side effect outside SQLite (an application-defined function) would
    /// see two calls.
    ///
    /// Durability counts the group as one commit holding one write per
    /// statement that succeeded and is not read-only ([`Durability`](super::Durability)).
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
        if self.refuse_if_gone().is_err() {
            // Every write gets its own copy of the refusal.
            return stmts
                .iter()
                .map(|_| self.refuse_if_gone().map(|()| 0))
                .collect();
        }
        let mut results = Vec::with_capacity(stmts.len());
        let mut start = 0;
        // The effect of the previous SQL text: a run of the same statement
        // asks the effect cache once, not once per write.
        let mut last: Option<(&str, Effect)> = None;
        for (i, stmt) in stmts.iter().enumerate() {
            let effect = match last {
                Some((sql, effect)) if sql == stmt.sql() => effect,
                _ => {
                    let effect = self.effect_of(stmt.sql());
                    last = Some((stmt.sql(), effect));
                    effect
                }
            };
            if effect != Effect::Plain {
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
        if let Err(e) = self.control("BEGIN IMMEDIATE").map_err(Arc::new) {
            // Nothing ran (typically another process holds the write lock
            // past busy_timeout): every write gets that error.
            return Pass::Done(
                group
                    .iter()
                    .map(|_| {
                        Err(Error::GroupControl {
                            step: "begin",
                            writes: group.len(),
                            source: Arc::clone(&e),
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
        // The statement of the previous write, kept while the next ones
        // have the same SQL text (the common case: one INSERT sent many
        // times). Asking the connection's cache for it per write would
        // cost a hash, an allocation of its key and a reinsert each time.
        let mut current: Option<Prepared<'_>> = None;
        for stmt in group {
            if savepoints && self.control(&savepoint).is_err() {
                self.rollback_quietly();
                return Pass::Rerun;
            }
            let ran = match &mut current {
                Some(p) if p.sql == stmt.sql() => self.run_prepared(p, stmt),
                _ => {
                    current = None;
                    match self.prepare(stmt) {
                        Ok(p) => self.run_prepared(current.insert(p), stmt),
                        Err(e) => Err(e),
                    }
                }
            };
            match ran {
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
                        drop(current);
                        self.rollback_quietly();
                        return Pass::Rerun;
                    }
                    if self
                        .control(&rollback_to)
                        .and_then(|()| self.control(&release))
                        .is_err()
                    {
                        drop(current);
                        self.rollback_quietly();
                        return Pass::Rerun;
                    }
                    results.push(Err(e));
                }
            }
        }
        // Back to the connection's cache before COMMIT: a statement still
        // held is still a reset, idle statement, but the cache is its home.
        drop(current);
        // With replication on, the group counts itself in the replica's
        // identity inside its own commit (`position`).
        let counted = if writes > 0 {
            super::position::bump(&self.conn, self.position)
        } else {
            Ok(())
        };
        if let Err(e) = counted
            .and_then(|()| self.control("COMMIT"))
            .map_err(Arc::new)
        {
            self.rollback_quietly();
            // Nothing of the group was written.
            return Pass::Done(
                results
                    .into_iter()
                    .map(|r| {
                        r.and_then(|_| {
                            Err(Error::GroupControl {
                                step: "commit",
                                writes: group.len(),
                                source: Arc::clone(&e),
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
}

#[cfg(test)]
mod tests {
    use crate::Error;
    use crate::Statement;
    use crate::store::test_support::{ids, insert, store_in};
    use rusqlite::ErrorCode;

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

    /// The prepared statement is reused across a run of the same SQL text
    /// (issue 12): each write still binds its own parameters, a different
    /// text in between takes its own statement, and a write of the same text
    /// with the wrong parameter count fails alone.
    #[test]
    fn a_reused_statement_binds_each_writes_own_parameters() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store_in(&dir);
        let other = "INSERT INTO kv (id, v) VALUES (?1, x'00')";
        let group = [
            insert(1),
            insert(2),
            Statement::new(other).bind(10),
            insert(3),
            Statement::new("INSERT INTO kv (id, v) VALUES (?1, ?2)").bind(4), // one parameter short
            insert(5),
            Statement::new(other).bind(11),
        ];
        let results = store.execute_group(&group);
        assert!(
            matches!(results[4], Err(Error::Statement { .. })),
            "{results:?}"
        );
        for (i, r) in results.iter().enumerate() {
            if i != 4 {
                assert!(matches!(r, Ok(1)), "{i}: {r:?}");
            }
        }
        assert_eq!(ids(&store), vec![1, 2, 3, 5, 10, 11]);
        let v: Vec<u8> = store
            .conn
            .query_row("SELECT v FROM kv WHERE id = 5", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, vec![7u8; 100]);
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
}
