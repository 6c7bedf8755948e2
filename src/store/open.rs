//! Open and configure: the write connection's file, mode and pragmas.

use std::path::Path;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::error::{Error, Result};
use crate::settings::DatabaseSettings;

/// File mode for database files walguard creates: owner read/write only.
#[cfg(unix)]
pub const NEW_FILE_MODE: u32 = 0o600;

/// Opens and configures the write connection (see [`Store::open`]), through
/// `vfs` when given.
pub(super) fn open_connection(
    settings: &DatabaseSettings,
    vfs: Option<&str>,
) -> Result<Connection> {
    let path = settings.path.clone();
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.is_dir()
    {
        return Err(Error::MissingDirectory {
            directory: parent.to_owned(),
            path,
        });
    }
    create_private_file(&path);
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let opened = match vfs {
        Some(vfs) => Connection::open_with_flags_and_vfs(&path, flags, vfs),
        None => Connection::open_with_flags(&path, flags),
    };
    let conn = opened.map_err(|source| Error::Open {
        path: path.clone(),
        source,
    })?;
    configure(&conn, settings)?;
    Ok(conn)
}

/// Creates `path` with owner-only permissions when it does not exist yet, so
/// SQLite (which copies the database file's mode to `-wal` and `-shm`) keeps
/// the state private. Failure is not an error here: SQLite's own open then
/// reports the real problem with its path.
/// Opens a connection beside the writer (phase 1 of the size checkpoint, a
/// reader): `flags`, through `vfs` when given, with SQLite's checkpoint on
/// close turned off (only the writer checkpoints) and `busy_timeout`.
///
/// # Errors
///
/// [`Error::Open`] when SQLite cannot open `path`; [`Error::Pragma`] naming
/// the setting that could not be applied.
pub(crate) fn open_side_connection(
    path: &Path,
    vfs: Option<&str>,
    flags: OpenFlags,
    busy_timeout: Duration,
) -> Result<Connection> {
    let conn = match vfs {
        Some(vfs) => Connection::open_with_flags_and_vfs(path, flags, vfs),
        None => Connection::open_with_flags(path, flags),
    }
    .map_err(|source| Error::Open {
        path: path.to_owned(),
        source,
    })?;
    let pragma = |pragma: &'static str| {
        move |source| Error::Pragma {
            path: path.to_owned(),
            pragma,
            source,
        }
    };
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .map_err(pragma("SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE"))?;
    conn.busy_timeout(busy_timeout)
        .map_err(pragma("busy_timeout"))?;
    Ok(conn)
}

fn create_private_file(path: &Path) {
    // `:memory:` is SQLite's name for an in-memory database, not a file:
    // creating it would leave a stray file in the working directory.
    if path.as_os_str() == ":memory:" {
        return;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        if !path.exists() {
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(NEW_FILE_MODE)
                .open(path);
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

fn configure(conn: &Connection, settings: &DatabaseSettings) -> Result<()> {
    let path = &settings.path;
    let pragma_err = |pragma: &'static str| {
        move |source: rusqlite::Error| {
            if source.sqlite_error_code() == Some(ErrorCode::NotADatabase) {
                Error::NotADatabase {
                    path: path.clone(),
                    source,
                }
            } else {
                Error::Pragma {
                    path: path.clone(),
                    pragma,
                    source,
                }
            }
        }
    };
    // busy_timeout first: switching to WAL takes a lock.
    conn.busy_timeout(settings.busy_timeout)
        .map_err(pragma_err("busy_timeout"))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(pragma_err("journal_mode"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::NotWal {
            path: path.clone(),
            mode,
        });
    }
    // Values below come from typed settings (enums and integers), never from
    // user text.
    conn.pragma_update(None, "synchronous", settings.synchronous.as_str())
        .map_err(pragma_err("synchronous"))?;
    let limit = settings
        .journal_size_limit
        .map_or(-1, |bytes| i64::try_from(bytes).unwrap_or(i64::MAX));
    conn.pragma_update(None, "journal_size_limit", limit)
        .map_err(pragma_err("journal_size_limit"))?;
    conn.pragma_update(None, "wal_autocheckpoint", settings.wal_autocheckpoint)
        .map_err(pragma_err("wal_autocheckpoint"))?;
    let synchronous: i64 = conn
        .pragma_query_value(None, "synchronous", |row| row.get(0))
        .map_err(pragma_err("synchronous"))?;
    if synchronous != settings.synchronous.level() {
        return Err(Error::SynchronousMismatch {
            path: path.clone(),
            asked: settings.synchronous,
            reported: synchronous,
        });
    }
    Ok(())
}
