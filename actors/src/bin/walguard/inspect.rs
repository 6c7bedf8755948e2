//! `walguard inspect PATH`: a report that changes nothing.
//!
//! The file is checked before SQLite sees it ([`dbfile::check`]), then
//! opened with `SQLITE_OPEN_READ_ONLY`. A read-only connection to a WAL
//! database still creates the `-wal` and `-shm` files when they are missing
//! (and leaves them behind), so when there is no `-wal` (the database was
//! closed cleanly and holds everything) the file is opened `immutable=1`:
//! no lock, no side file. When a `-wal` exists it is part of the database
//! and the open is a normal read-only one.

use std::fmt::Write as _;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::dbfile;
use crate::error::CliError;

/// Most `quick_check` problems listed.
const MAX_PROBLEMS_SHOWN: usize = 5;

/// Runs `inspect` and prints the report to stdout.
pub(crate) fn run(path: &Path) -> Result<(), CliError> {
    let report = inspect(path)?;
    print!("{report}");
    Ok(())
}

/// Builds the report.
pub(crate) fn inspect(path: &Path) -> Result<String, CliError> {
    let header = dbfile::check(path)?;
    let wal_path = dbfile::sibling(path, "-wal");
    let shm_path = dbfile::sibling(path, "-shm");
    let wal_len = dbfile::len(&wal_path);
    let shm_present = shm_path.exists();

    let conn = open_read_only(path, wal_len.is_some())?;
    let sqlite = |what| {
        let path = path.to_path_buf();
        move |source| CliError::Sqlite { what, path, source }
    };
    let pragma_i64 = |name: &'static str| -> Result<i64, CliError> {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .map_err(sqlite(name))
    };
    let page_count = pragma_i64("page_count")?;
    let freelist = pragma_i64("freelist_count")?;
    let synchronous = pragma_i64("synchronous")?;
    let problems: Vec<String> = {
        let mut stmt = conn
            .prepare("PRAGMA quick_check")
            .map_err(sqlite("quick_check"))?;
        stmt.query_map([], |r| r.get::<_, String>(0))
            .and_then(Iterator::collect)
            .map_err(sqlite("quick_check"))?
    };
    let tables = tables(&conn).map_err(sqlite("list tables"))?;

    let mut out = String::new();
    let mut line = |key: &str, value: String| {
        let _ = writeln!(out, "{key:<18} {value}");
    };
    line("database", path.display().to_string());
    line("sqlite", rusqlite::version().to_owned());
    line(
        "journal mode",
        if header.wal {
            "wal"
        } else {
            "rollback journal (not wal)"
        }
        .to_owned(),
    );
    line("page size", format!("{} bytes", header.page_size));
    line(
        "database size",
        format!(
            "{} bytes ({page_count} pages, {freelist} free)",
            dbfile::len(path).unwrap_or(0)
        ),
    );
    line("wal", wal_summary(&conn, &wal_path, wal_len));
    line(
        "shm",
        if shm_present { "present" } else { "absent" }.to_owned(),
    );
    line(
        "synchronous",
        format!(
            "{} (a new connection's default; each writer sets its own, walguard's from database.synchronous)",
            synchronous_name(synchronous)
        ),
    );
    line("quick check", quick_check_summary(&problems));
    if tables.is_empty() {
        line("tables", "none".to_owned());
    } else {
        let list: Vec<String> = tables
            .iter()
            .map(|(name, rows)| format!("{name} ({rows} rows)"))
            .collect();
        line("tables", list.join(", "));
    }
    drop(conn);
    Ok(out)
}

fn open_read_only(path: &Path, wal_present: bool) -> Result<Connection, CliError> {
    let err = |source| CliError::Sqlite {
        what: "open read-only",
        path: path.to_path_buf(),
        source,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    match (wal_present, immutable_uri(path)) {
        (false, Some(uri)) => {
            Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI).map_err(err)
        }
        _ => Connection::open_with_flags(path, flags).map_err(err),
    }
}

/// `file:PATH?mode=ro&immutable=1`, with the path percent-encoded; `None`
/// for a path that is not UTF-8.
fn immutable_uri(path: &Path) -> Option<String> {
    let text = path.to_str()?;
    let mut uri = String::from("file:");
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"/-_.~".contains(&byte) {
            uri.push(char::from(byte));
        } else {
            let _ = write!(uri, "%{byte:02X}");
        }
    }
    uri.push_str("?mode=ro&immutable=1");
    Some(uri)
}

/// The `-wal` line: its size and frames. SQLite's own count (a NOOP
/// checkpoint, which copies nothing) when the read-only connection allows
/// it, else a scan of the file.
fn wal_summary(conn: &Connection, wal_path: &Path, wal_len: Option<u64>) -> String {
    let Some(len) = wal_len else {
        return "absent (everything is in the database file)".to_owned();
    };
    let noop = conn.query_row("PRAGMA wal_checkpoint(NOOP)", [], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    });
    let frames = match noop {
        Ok((_, log, checkpointed)) if log >= 0 => {
            format!("{log} frames, {checkpointed} already checkpointed")
        }
        _ => match std::fs::read(wal_path) {
            Ok(bytes) => {
                let scan = dbfile::scan_wal(&bytes);
                format!(
                    "{} frames ({} committed), counted from the file",
                    scan.frames, scan.committed
                )
            }
            Err(e) => format!("frames unknown ({e})"),
        },
    };
    format!("{len} bytes, {frames}")
}

fn synchronous_name(level: i64) -> &'static str {
    match level {
        0 => "off",
        1 => "normal",
        2 => "full",
        3 => "extra",
        _ => "unknown",
    }
}

fn quick_check_summary(problems: &[String]) -> String {
    if problems.len() == 1 && problems[0] == "ok" {
        return "ok".to_owned();
    }
    let shown: Vec<&str> = problems
        .iter()
        .take(MAX_PROBLEMS_SHOWN)
        .map(String::as_str)
        .collect();
    let more = problems.len().saturating_sub(MAX_PROBLEMS_SHOWN);
    let mut text = format!("{} problem(s): {}", problems.len(), shown.join("; "));
    if more > 0 {
        let _ = write!(text, "; and {more} more");
    }
    text
}

/// User tables and their row counts.
fn tables(conn: &Connection) -> rusqlite::Result<Vec<(String, i64)>> {
    let names: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    names
        .into_iter()
        .map(|name| {
            let quoted = name.replace('"', "\"\"");
            let rows = conn.query_row(&format!("SELECT count(*) FROM \"{quoted}\""), [], |r| {
                r.get(0)
            })?;
            Ok((name, rows))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_cleanly_closed_database_is_inspected_without_any_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clean db%?.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "journal_mode", "WAL").unwrap();
            conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1), (2);")
                .unwrap();
        }
        assert_eq!(files_in(dir.path()), vec!["clean db%?.db"]);
        let report = inspect(&path).unwrap();
        assert!(report.contains("journal mode       wal"), "{report}");
        assert!(report.contains("wal                absent"), "{report}");
        assert!(report.contains("quick check        ok"), "{report}");
        assert!(report.contains("t (2 rows)"), "{report}");
        assert_eq!(files_in(dir.path()), vec!["clean db%?.db"]);
    }

    #[test]
    fn a_live_wal_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.db");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        let log: i64 = conn
            .query_row("PRAGMA wal_checkpoint(NOOP)", [], |r| r.get(1))
            .unwrap();
        let report = inspect(&path).unwrap();
        assert!(report.contains(&format!("{log} frames")), "{report}");
        assert!(report.contains("t (1 rows)"), "{report}");
    }
}
