//! The migration runner on the write connection: every pending migration
//! in one transaction (see [`crate::migrations`] for the model).

use std::time::Instant;

use rusqlite::fallible_iterator::FallibleIterator;

use super::Store;
use super::effect::Effect;
use crate::checkpoint::{CheckpointMode, CheckpointReason};
use crate::error::{Error, Result, sql_for_error};
use crate::migrations::{Migration, MigrationReport, Migrations};
use crate::settings::Synchronous;

/// Whether the TRUNCATE runs after the migrations' commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    Truncate,
    LeaveWal,
}

impl Store {
    /// Brings the schema to the latest version: every migration after the
    /// database's `PRAGMA user_version`, in one transaction whose commit is
    /// fsynced (`synchronous=FULL` for that commit; it counts as one
    /// durable commit of no write in [`Store::durability`]), then a TRUNCATE
    /// checkpoint (reason [`CheckpointReason::Migration`], bounded by
    /// `database.checkpoint_busy_timeout`; its outcome is in the report,
    /// and a busy one is no failure: the commit is already durable). See
    /// [`crate::migrations`].
    ///
    /// # Errors
    ///
    /// [`Error::SchemaFromTheFuture`] when `user_version` is above
    /// [`Migrations::len`] (nothing is written);
    /// [`Error::MigrationFailed`] when a statement of a migration fails and
    /// [`Error::MigrationSplitsTransaction`] when one would end or open a
    /// transaction: in both cases nothing of any migration is applied and
    /// `user_version` is as it was. [`Error::Pragma`] when `user_version`
    /// or `synchronous` cannot be read or set, [`Error::MigrationCommit`]
    /// when `BEGIN` or `COMMIT` fails (nothing applied either).
    pub fn migrate(&mut self, migrations: &Migrations) -> Result<MigrationReport> {
        self.migrate_then(migrations, After::Truncate)
    }

    /// Like [`Store::migrate`], without the TRUNCATE: the migrations'
    /// frames stay in the WAL (the commit is fsynced all the same). For a
    /// replicated database: Litestream must read every frame before a
    /// checkpoint moves it out of the WAL (FACTS.md, Litestream), and it is
    /// not running yet at start.
    ///
    /// # Errors
    ///
    /// As [`Store::migrate`].
    pub fn migrate_leaving_wal(&mut self, migrations: &Migrations) -> Result<MigrationReport> {
        self.migrate_then(migrations, After::LeaveWal)
    }

    /// The schema version: `PRAGMA user_version`.
    ///
    /// # Errors
    ///
    /// [`Error::Pragma`] when SQLite cannot read it.
    pub fn schema_version(&self) -> Result<i64> {
        self.conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|source| self.pragma_error("user_version", source))
    }

    fn pragma_error(&self, pragma: &'static str, source: rusqlite::Error) -> Error {
        Error::Pragma {
            path: self.settings.path.clone(),
            pragma,
            source,
        }
    }

    fn migrate_then(&mut self, migrations: &Migrations, after: After) -> Result<MigrationReport> {
        self.refuse_if_gone()?;
        let start = Instant::now();
        let found = self.schema_version()?;
        migrations.check_version(&self.settings.path, found)?;
        let from = usize::try_from(found).unwrap_or(0);
        let pending = migrations.pending(from);
        if pending.is_empty() {
            return Ok(MigrationReport::new(
                from,
                from,
                Vec::new(),
                start.elapsed(),
                None,
            ));
        }
        let to = migrations.len();
        // The one commit is fsynced whatever database.synchronous says
        // (walguard's own PRAGMA: the guard lets it through).
        self.guard
            .own(|| {
                self.conn
                    .pragma_update(None, "synchronous", Synchronous::Full.as_str())
            })
            .map_err(|source| self.pragma_error("synchronous", source))?;
        let applied = self.apply_all(pending, to);
        let level = self.settings.synchronous.as_str();
        let restored = self
            .guard
            .own(|| self.conn.pragma_update(None, "synchronous", level))
            .map_err(|source| self.pragma_error("synchronous", source));
        applied?;
        restored?;
        // One commit of no write, fsynced at once: counted, so that the
        // replica hold (replication on) waits for the replica to have it
        // before the WAL may restart, like any other commit.
        if self.take_wal_restart() {
            let before = self.durability;
            self.durability.durable_through(before);
        }
        self.durability.record_commit(0, true);
        let checkpoint = match after {
            After::Truncate => {
                let wait = self.settings.checkpoint_busy_timeout;
                let report = self.checkpoint_with_deadline(
                    CheckpointMode::Truncate,
                    CheckpointReason::Migration,
                    wait,
                );
                report.log();
                Some(report)
            }
            After::LeaveWal => None,
        };
        let names = pending.iter().map(|m| m.name().to_owned()).collect();
        let report = MigrationReport::new(from, to, names, start.elapsed(), checkpoint);
        tracing::info!(
            target: "walguard::db",
            from,
            to,
            migrations = %report.applied_list(),
            elapsed_ms = report.elapsed_ms(),
            "schema migrated"
        );
        Ok(report)
    }

    /// `BEGIN IMMEDIATE`, every pending migration, `user_version = to`,
    /// `COMMIT`; rolled back whole on any failure.
    fn apply_all(&mut self, pending: &[Migration], to: usize) -> Result<()> {
        let commit_err = |step: &'static str, path: &std::path::Path| {
            let path = path.to_owned();
            move |source| Error::MigrationCommit {
                path,
                step,
                to,
                source,
            }
        };
        let path = self.settings.path.clone();
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(commit_err("begin", &path))?;
        let run = pending
            .iter()
            .try_for_each(|migration| self.apply_one(migration))
            .and_then(|()| {
                self.guard
                    .own(|| self.conn.pragma_update(None, "user_version", to as i64))
                    .map_err(|source| self.pragma_error("user_version", source))
            })
            .and_then(|()| {
                // With replication on, counted in the replica's identity
                // inside the commit, as every commit is (`position`).
                super::position::bump(&self.conn, self.position)
                    .and_then(|()| self.conn.execute_batch("COMMIT"))
                    .map_err(commit_err("commit", &path))
            });
        if run.is_err()
            && !self.conn.is_autocommit()
            && let Err(e) = self.conn.execute_batch("ROLLBACK")
        {
            tracing::error!(target: "walguard::db", error = %e, "rolling back the migrations failed");
        }
        run
    }

    /// Runs one migration's statements in turn, inside the open
    /// transaction. Each statement is split off by SQLite's own parser (it
    /// compiles the first statement of the text and says where it ended),
    /// asked what it does to the transaction ([`Store::effect_of`], the
    /// classifier of the atomic batches), then run.
    fn apply_one(&mut self, migration: &Migration) -> Result<()> {
        let fail = |sql: &str, message: String| Error::MigrationFailed {
            number: migration.number(),
            file: migration.file().map(ToOwned::to_owned),
            sql: sql_for_error(sql),
            message,
        };
        let text = migration.sql();
        let mut at = skip_empty(text, 0);
        while at < text.len() {
            let rest = &text[at..];
            self.guard.clear_denied();
            let statement = {
                let mut batch = rusqlite::Batch::new(&self.conn, rest);
                match batch.next() {
                    Ok(Some(stmt)) => {
                        if stmt.parameter_count() > 0 {
                            return Err(fail(
                                first_line(rest),
                                "a migration takes no parameters (?, :name)".to_owned(),
                            ));
                        }
                        stmt.expanded_sql()
                    }
                    Ok(None) => return Ok(()),
                    Err(e) => return Err(fail(first_line(rest), self.why(first_line(rest), e))),
                }
            };
            // With no parameters SQLite's text of the statement is the
            // exact piece of `rest` it compiled, from its start.
            let Some(piece) = statement.filter(|piece| rest.starts_with(piece.as_str())) else {
                return Err(fail(
                    first_line(rest),
                    "sqlite did not say where this statement ends".to_owned(),
                ));
            };
            if piece.is_empty() {
                return Ok(());
            }
            if self.effect_of(&piece) == Effect::TransactionControl {
                return Err(Error::MigrationSplitsTransaction {
                    number: migration.number(),
                    file: migration.file().map(ToOwned::to_owned),
                    sql: sql_for_error(&piece),
                });
            }
            self.guard.clear_denied();
            self.conn
                .execute_batch(&piece)
                .map_err(|e| fail(&piece, self.why(&piece, e)))?;
            at = skip_empty(text, at + piece.len());
        }
        Ok(())
    }
}

impl Store {
    /// What a failed migration statement's error says: SQLite's message, or
    /// the guard's refusal when it denied a change of a guarded setting
    /// (`PRAGMA synchronous = OFF` in a migration is refused like anywhere
    /// else).
    fn why(&self, sql: &str, source: rusqlite::Error) -> String {
        match self.statement_error(sql, source) {
            Error::Statement { source, .. } => source.to_string(),
            guarded => guarded.to_string(),
        }
    }
}

/// The first line of `sql`, for an error about a statement SQLite could not
/// compile (its end is unknown then).
fn first_line(sql: &str) -> &str {
    sql.lines().next().unwrap_or(sql)
}

/// The offset past whitespace, comments and empty statements (`;`) from
/// `at`: SQLite's parser skips them without returning a statement, so the
/// next statement it returns starts exactly there.
fn skip_empty(text: &str, mut at: usize) -> usize {
    let bytes = text.as_bytes();
    while at < bytes.len() {
        match bytes[at] {
            // SQLite's whitespace (sqlite3Isspace).
            b' ' | b'\t' | b'\n' | b'\x0c' | b'\r' | b';' => at += 1,
            b'-' if bytes.get(at + 1) == Some(&b'-') => {
                at = text[at..].find('\n').map_or(bytes.len(), |n| at + n + 1);
            }
            b'/' if bytes.get(at + 1) == Some(&b'*') => {
                at = text[at + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |n| at + 2 + n + 2);
            }
            _ => break,
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::skip_empty;

    #[test]
    fn empty_statements_and_comments_are_skipped_exactly() {
        let text = " ;\n-- a -- b;\n/* c; */ ;CREATE TABLE t (x); /* end";
        let at = skip_empty(text, 0);
        assert!(text[at..].starts_with("CREATE TABLE"), "{:?}", &text[at..]);
        let end = text.find(';').map(|_| text.rfind(" /*").unwrap()).unwrap();
        assert_eq!(skip_empty(text, end), text.len());
        assert_eq!(skip_empty("", 0), 0);
    }
}
