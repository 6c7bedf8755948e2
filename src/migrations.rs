//! The engine's schema: versioned migrations, applied at start.
//!
//! An engine's state outlives its code. Every release that adds a table or
//! a column brings yesterday's database along with a migration, and an old
//! build must never write into a database a newer one has changed.
//!
//! # The model
//!
//! - [`Migrations`] is an ordered list of SQL texts: [`Migrations::new`]
//!   from strings, [`Migrations::from_directory`] from files named
//!   `NNNN_name.sql`, in numeric order. A text may hold several statements.
//! - The schema version is `PRAGMA user_version`: the number of migrations
//!   applied. A new database is at 0. Migrations are only ever appended:
//!   never edit, reorder, insert or remove one that a database may have
//!   run, or the count no longer says which ones it has.
//! - [`Store::migrate`] applies every pending migration **in one
//!   transaction** (`BEGIN IMMEDIATE`, each statement in turn, `PRAGMA
//!   user_version = N`, `COMMIT`): a start either reaches the latest
//!   version or changes nothing, as `rusqlite_migration`'s `to_latest`
//!   does. The commit runs under `synchronous=FULL` (the WAL is fsynced at
//!   commit, FACTS.md "Power loss"), so the new schema is durable before the
//!   store serves anything, whatever `database.synchronous` says; a
//!   TRUNCATE checkpoint then moves it into the database file and empties
//!   the WAL ([`CheckpointReason::Migration`]).
//! - **A database from the future is refused**: a `user_version` above the
//!   number of migrations given means a newer build has changed the file.
//!   [`Error::SchemaFromTheFuture`] names both numbers, and the file is left
//!   byte for byte as it was: [`Migrations::refuse_future`] reads the
//!   version before the write connection opens (which would switch a
//!   rollback-journal file to WAL).
//! - **A failed migration applies nothing**: [`Error::MigrationFailed`]
//!   names the migration (its 1-based number, and its file when it came
//!   from a directory), the statement and SQLite's message; the whole
//!   transaction is rolled back, the pending migrations before the failing
//!   one included.
//! - **A migration is never split**: a statement that would end or open a
//!   transaction (`COMMIT`, `BEGIN`, `SAVEPOINT`, `RELEASE`, `ROLLBACK`...)
//!   is refused with [`Error::MigrationSplitsTransaction`], by the same
//!   classifier that guards [`Store::transaction`] (SQLite is asked, not
//!   the first keyword). Statements that cannot run inside a transaction
//!   (`VACUUM`) fail with SQLite's own error; a `PRAGMA` that is a no-op
//!   inside one (`foreign_keys`) stays a no-op.
//!
//! # Why not a crate
//!
//! `rusqlite_migration` 2.6 has this model but links rusqlite 0.40, and
//! `refinery-core` 0.10 accepts rusqlite up to 0.41; walguard pins rusqlite
//! 0.43 for SQLite >= 3.51.3 (FACTS.md), and two SQLite builds in one binary
//! are not an option. The runner is small: see `docs/design.md`, "Schema
//! migrations".

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

use crate::checkpoint::CheckpointReport;
use crate::error::{Error, Result};
use crate::settings::DatabaseSettings;

#[cfg(doc)]
#[cfg(doc)]
use crate::{CheckpointReason, Store};

/// The extension of a migration file in [`Migrations::from_directory`].
pub const MIGRATION_FILE_EXTENSION: &str = "sql";

/// Offset of `user_version` in the 100-byte SQLite database header (a
/// big-endian 32-bit integer; fileformat2.html, "The Database Header").
const HEADER_USER_VERSION_OFFSET: usize = 60;

/// The first 16 bytes of every SQLite database file.
const HEADER_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// One migration: its place in the list and its SQL text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    number: usize,
    name: String,
    file: Option<PathBuf>,
    sql: String,
}

impl Migration {
    /// Its 1-based place in the list: the schema version once it is applied.
    #[must_use]
    pub fn number(&self) -> usize {
        self.number
    }

    /// Its name: the file name without `.sql` (`0002_add_qty`), or
    /// `migration N` for one given as text.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file it was read from ([`Migrations::from_directory`]).
    #[must_use]
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Its SQL text (one or more statements).
    #[must_use]
    pub fn sql(&self) -> &str {
        &self.sql
    }
}

/// The ordered migrations of an engine's schema (see the
/// [module docs](self)).
///
/// ```
/// use walguard::{Migrations, Settings, Statement, Store};
///
/// let dir = tempfile::tempdir()?;
/// let settings = Settings::for_database(dir.path().join("state.db"));
/// let migrations = Migrations::new(vec![
///     "CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT NOT NULL)",
///     "ALTER TABLE orders ADD COLUMN qty INTEGER NOT NULL DEFAULT 1",
/// ]);
/// let mut store = Store::open(&settings.database)?;
/// let report = store.migrate(&migrations)?;
/// assert_eq!((report.from(), report.to()), (0, 2));
/// store.execute(&Statement::new("INSERT INTO orders (item, qty) VALUES ('tea', 3)"))?;
/// assert_eq!(store.migrate(&migrations)?.applied().len(), 0); // nothing pending
/// store.close().map_err(|(_, e)| e)?;
/// Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Migrations {
    list: Vec<Migration>,
}

impl Migrations {
    /// Migrations from SQL texts, applied in the order given; the first is
    /// migration 1. A text may hold several statements.
    pub fn new<I, S>(texts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let list = texts
            .into_iter()
            .enumerate()
            .map(|(i, sql)| Migration {
                number: i + 1,
                name: format!("migration {}", i + 1),
                file: None,
                sql: sql.into(),
            })
            .collect();
        Self { list }
    }

    /// Migrations from the files `NNNN_name.sql` of `directory`, in numeric
    /// order of `NNNN` (`0002` before `0010`); the first is migration 1
    /// whatever its number, and gaps are allowed. Other files (a `README`)
    /// and subdirectories are ignored.
    ///
    /// # Errors
    ///
    /// [`Error::MigrationsDirectory`] when the directory cannot be read;
    /// [`Error::MigrationFileName`] for a `.sql` file not named
    /// `NNNN_name.sql`, or two files with the same number;
    /// [`Error::MigrationFile`] when a file cannot be read or is not UTF-8.
    pub fn from_directory(directory: impl AsRef<Path>) -> Result<Self> {
        let directory = directory.as_ref();
        let dir_err = |source| Error::MigrationsDirectory {
            path: directory.to_owned(),
            source,
        };
        let mut found: Vec<(u64, String, PathBuf)> = Vec::new();
        for entry in std::fs::read_dir(directory).map_err(dir_err)? {
            let path = entry.map_err(dir_err)?.path();
            if path.extension().and_then(|e| e.to_str()) != Some(MIGRATION_FILE_EXTENSION)
                || !path.is_file()
            {
                continue;
            }
            let (number, name) = parse_file_name(&path)?;
            if let Some((_, _, first)) = found.iter().find(|(n, _, _)| *n == number) {
                return Err(Error::MigrationFileName {
                    path,
                    reason: format!("its number {number} is also {}'s", first.display()),
                });
            }
            found.push((number, name, path));
        }
        found.sort_by_key(|(number, _, _)| *number);
        let mut list = Vec::with_capacity(found.len());
        for (i, (_, name, path)) in found.into_iter().enumerate() {
            let sql = std::fs::read_to_string(&path).map_err(|source| Error::MigrationFile {
                path: path.clone(),
                source,
            })?;
            list.push(Migration {
                number: i + 1,
                name,
                file: Some(path),
                sql,
            });
        }
        Ok(Self { list })
    }

    /// How many migrations: the latest schema version.
    #[must_use]
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// No migration at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The migrations, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Migration> {
        self.list.iter()
    }

    /// The migrations after schema version `version`.
    pub(crate) fn pending(&self, version: usize) -> &[Migration] {
        self.list.get(version..).unwrap_or(&[])
    }

    /// Refuses a database from the future **before** the write connection
    /// opens it, so that a refused file stays byte for byte as it was (the
    /// open would switch a rollback-journal file to WAL). A missing or
    /// empty file is at version 0. With no `-wal` and no `-journal` beside
    /// it the version is read from the file's header (nothing else can
    /// hold a newer one); otherwise a connection asks SQLite, through `vfs`
    /// when given, and closes without a checkpoint, so the database file is
    /// not written. [`Store::migrate`] checks again on the write connection.
    ///
    /// # Errors
    ///
    /// [`Error::SchemaFromTheFuture`] when the file's `user_version` is
    /// above [`Migrations::len`]; [`Error::Open`] or
    /// [`Error::NotADatabase`] when it cannot be read.
    pub fn refuse_future(&self, database: &DatabaseSettings, vfs: Option<&str>) -> Result<()> {
        let found = version_before_open(database, vfs)?;
        self.check_version(&database.path, found)
    }

    /// [`Error::SchemaFromTheFuture`] when `found` is above the number of
    /// migrations.
    pub(crate) fn check_version(&self, path: &Path, found: i64) -> Result<()> {
        if found < 0 || found > self.list.len() as i64 {
            return Err(Error::SchemaFromTheFuture {
                path: path.to_owned(),
                found,
                known: self.list.len(),
            });
        }
        Ok(())
    }
}

/// `NNNN_name.sql` → (`NNNN`, `NNNN_name`).
fn parse_file_name(path: &Path) -> Result<(u64, String)> {
    let bad = |reason: &str| Error::MigrationFileName {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| bad("the name is not UTF-8"))?;
    let digits = stem.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(bad("it does not start with a number (NNNN_name.sql)"));
    }
    if stem.as_bytes().get(digits) != Some(&b'_') || stem.len() == digits + 1 {
        return Err(bad(
            "the number is not followed by _ and a name (NNNN_name.sql)",
        ));
    }
    let number = stem[..digits]
        .parse::<u64>()
        .map_err(|_| bad("its number is too large"))?;
    Ok((number, stem.to_owned()))
}

/// The database's `user_version` without changing the file (see
/// [`Migrations::refuse_future`]).
fn version_before_open(database: &DatabaseSettings, vfs: Option<&str>) -> Result<i64> {
    let path = &database.path;
    let len = std::fs::metadata(path).map_or(0, |m| m.len());
    if len == 0 {
        return Ok(0);
    }
    let side_files =
        crate::files::wal_path(path).exists() || crate::files::journal_path(path).exists();
    if !side_files && let Some(version) = header_user_version(path) {
        return Ok(version);
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let opened = match vfs {
        Some(vfs) => Connection::open_with_flags_and_vfs(path, flags, vfs),
        None => Connection::open_with_flags(path, flags),
    };
    let open_err = |source: rusqlite::Error| {
        if source.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) {
            Error::NotADatabase {
                path: path.clone(),
                source,
            }
        } else {
            Error::Open {
                path: path.clone(),
                source,
            }
        }
    };
    let conn = opened.map_err(open_err)?;
    // Reading writes nothing; closing must not checkpoint a WAL another
    // build left either.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .map_err(open_err)?;
    conn.busy_timeout(database.busy_timeout).map_err(open_err)?;
    let version = conn
        .pragma_query_value(None, "user_version", |row| row.get::<_, i64>(0))
        .map_err(open_err)?;
    conn.close().map_err(|(_, source)| open_err(source))?;
    Ok(version)
}

/// `user_version` from the header of a database file that nothing else
/// holds (no `-wal`, no `-journal`); `None` when the file is not a
/// database (the open then says so).
fn header_user_version(path: &Path) -> Option<i64> {
    let mut header = [0u8; 100];
    std::fs::File::open(path)
        .ok()?
        .read_exact(&mut header)
        .ok()?;
    if &header[..16] != HEADER_MAGIC {
        return None;
    }
    let at = HEADER_USER_VERSION_OFFSET;
    let bytes = [header[at], header[at + 1], header[at + 2], header[at + 3]];
    Some(i64::from(i32::from_be_bytes(bytes)))
}

/// What [`Store::migrate`] did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MigrationReport {
    from: usize,
    to: usize,
    applied: Vec<String>,
    elapsed: Duration,
    checkpoint: Option<CheckpointReport>,
}

impl MigrationReport {
    pub(crate) fn new(
        from: usize,
        to: usize,
        applied: Vec<String>,
        elapsed: Duration,
        checkpoint: Option<CheckpointReport>,
    ) -> Self {
        Self {
            from,
            to,
            applied,
            elapsed,
            checkpoint,
        }
    }

    /// The schema version found.
    #[must_use]
    pub fn from(&self) -> usize {
        self.from
    }

    /// The schema version now.
    #[must_use]
    pub fn to(&self) -> usize {
        self.to
    }

    /// The names of the migrations applied, in order ([`Migration::name`]);
    /// empty when none was pending.
    #[must_use]
    pub fn applied(&self) -> &[String] {
        &self.applied
    }

    /// How long applying them took, the commit and the TRUNCATE included.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// `elapsed` in milliseconds, to the microsecond (the rule of the
    /// session event's other `_ms` fields).
    #[must_use]
    pub fn elapsed_ms(&self) -> f64 {
        crate::settings::duration_ms(self.elapsed)
    }

    /// The TRUNCATE checkpoint after the commit (`None` when nothing was
    /// applied, or the caller left the WAL in place:
    /// [`Store::migrate_leaving_wal`]).
    #[must_use]
    pub fn checkpoint(&self) -> Option<&CheckpointReport> {
        self.checkpoint.as_ref()
    }

    /// `0002_add_qty, 0003_index`, or `none`: which migrations ran.
    #[must_use]
    pub fn applied_list(&self) -> String {
        if self.applied.is_empty() {
            "none".to_owned()
        } else {
            self.applied.join(", ")
        }
    }
}

impl fmt::Display for MigrationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.applied.is_empty() {
            write!(f, "schema version {}: no migration pending", self.to)
        } else {
            write!(
                f,
                "schema version {} -> {}: applied {} in {:.3}ms",
                self.from,
                self.to,
                self.applied_list(),
                self.elapsed_ms()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_parsed_or_refused_with_a_reason() {
        let ok = parse_file_name(Path::new("m/0010_add_index.sql")).unwrap();
        assert_eq!(ok, (10, "0010_add_index".to_owned()));
        for bad in ["m/add.sql", "m/0001.sql", "m/0001_.sql", "m/0001-x.sql"] {
            let err = parse_file_name(Path::new(bad)).unwrap_err();
            assert!(
                matches!(err, Error::MigrationFileName { .. }),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains(bad), "{err}");
        }
    }
}
