//! The files SQLite keeps beside a database, and their names.
//!
//! In WAL mode a database `state.db` has two companions in its directory:
//! `state.db-wal`, the write-ahead log, and `state.db-shm`, the WAL index
//! (shared memory). In rollback-journal mode a transaction keeps
//! `state.db-journal` instead. SQLite forms each name by appending the
//! suffix to the database path as given (`sqlite3WalOpen`, `pager.c`); this
//! module is the one place walguard does the same.

use std::path::{Path, PathBuf};

/// Suffix of the write-ahead log: `state.db-wal`.
pub const WAL_SUFFIX: &str = "-wal";
/// Suffix of the WAL index (shared memory): `state.db-shm`.
pub const SHM_SUFFIX: &str = "-shm";
/// Suffix of the rollback journal: `state.db-journal`.
pub const JOURNAL_SUFFIX: &str = "-journal";

/// The path of `database` with `suffix` appended to its file name
/// (`state.db` + `-wal` = `state.db-wal`).
#[must_use]
pub fn sibling(database: &Path, suffix: &str) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The write-ahead log beside `database`.
#[must_use]
pub fn wal_path(database: &Path) -> PathBuf {
    sibling(database, WAL_SUFFIX)
}

/// The WAL index (shared memory) beside `database`.
#[must_use]
pub fn shm_path(database: &Path) -> PathBuf {
    sibling(database, SHM_SUFFIX)
}

/// The rollback journal beside `database`.
#[must_use]
pub fn journal_path(database: &Path) -> PathBuf {
    sibling(database, JOURNAL_SUFFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn companions_append_their_suffix_to_the_whole_name() {
        let db = Path::new("dir/state.db");
        assert_eq!(wal_path(db), Path::new("dir/state.db-wal"));
        assert_eq!(shm_path(db), Path::new("dir/state.db-shm"));
        assert_eq!(journal_path(db), Path::new("dir/state.db-journal"));
        // Not an extension: a name without one gets the suffix too.
        assert_eq!(wal_path(Path::new("state")), Path::new("state-wal"));
    }
}
