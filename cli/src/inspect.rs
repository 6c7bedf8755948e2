//! `walguard inspect PATH`: a report that changes nothing.
//!
//! The file is checked before SQLite sees it ([`dbfile::check`]), then
//! opened read-only by [`dbfile::open_read_only`]: `immutable=1` only for a
//! WAL database with neither `-wal` nor `-journal` beside it (nobody has it
//! open, and the open leaves no side file), else a normal read-only open
//! that takes SQLite's shared lock. Everything is read in one read
//! transaction, so the report is one consistent snapshot; a writer holding
//! a rollback-journal database is reported ([`CliError::Locked`]), never
//! read around.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::dbfile::{self, Header, ReadMode};
use crate::error::CliError;

/// Most `quick_check` problems listed.
const MAX_PROBLEMS_SHOWN: usize = 5;

/// What `inspect` tells the user about a lock it will not wait for.
const LOCKED: &str = "inspect reads under SQLite's shared lock and will not read around a writer; \
                      try again when it has committed";

/// Runs `inspect` and prints the report to stdout, as text or one JSON
/// object.
pub(crate) fn run(path: &Path, json: bool) -> Result<(), CliError> {
    let report = inspect(path)?;
    if json {
        println!("{}", report.json());
    } else {
        print!("{}", report.text());
    }
    Ok(())
}

/// What `inspect` found.
#[derive(Debug)]
pub(crate) struct Report {
    path: PathBuf,
    header: Header,
    read: ReadMode,
    database_bytes: u64,
    page_count: i64,
    freelist: i64,
    wal: Option<Wal>,
    shm: bool,
    journal: bool,
    synchronous: i64,
    /// `PRAGMA user_version`: the migrations applied
    /// (`walguard::Migrations`).
    schema_version: i64,
    problems: Vec<String>,
    tables: Vec<(String, i64)>,
}

/// The `-wal` file: its size and its frames.
#[derive(Debug)]
struct Wal {
    bytes: u64,
    frames: Frames,
}

/// Frames in the `-wal`, by whoever could count them.
#[derive(Debug)]
enum Frames {
    /// SQLite's own count (a NOOP checkpoint, which copies nothing).
    Sqlite { log: i64, checkpointed: i64 },
    /// A scan of the file, when the read-only connection cannot ask.
    File { frames: u64, committed: u64 },
    /// Neither worked.
    Unknown(String),
}

/// Builds the report.
pub(crate) fn inspect(path: &Path) -> Result<Report, CliError> {
    let header = dbfile::check(path)?;
    let (conn, read) = dbfile::open_read_only(path, header)?;
    let report = read_report(path, header, &conn, read)?;
    drop(conn);
    // An immutable read is valid only if no writer started meanwhile: a
    // WAL writer creates the `-wal` before it touches the database file.
    if read == ReadMode::Immutable && !dbfile::still_immutable(path, header) {
        let (conn, read) = dbfile::open_read_only(path, header)?;
        return read_report(path, header, &conn, read);
    }
    Ok(report)
}

fn read_report(
    path: &Path,
    header: Header,
    conn: &Connection,
    read: ReadMode,
) -> Result<Report, CliError> {
    let sqlite = |what| dbfile::sqlite_error(path, what, LOCKED);
    // One read transaction: SQLite's shared lock (or WAL snapshot) is held
    // from the first read to the COMMIT, so the figures agree.
    conn.execute_batch("BEGIN")
        .map_err(sqlite("begin a read transaction"))?;
    let pragma_i64 = |name: &str, what: &'static str| -> Result<i64, CliError> {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .map_err(sqlite(what))
    };
    let page_count = pragma_i64("page_count", "read the page count")?;
    let freelist = pragma_i64("freelist_count", "read the freelist count")?;
    let synchronous = pragma_i64("synchronous", "read synchronous")?;
    let schema_version = pragma_i64("user_version", "read the schema version")?;
    let problems: Vec<String> = {
        let mut stmt = conn
            .prepare("PRAGMA quick_check")
            .map_err(sqlite("run quick_check"))?;
        stmt.query_map([], |r| r.get::<_, String>(0))
            .and_then(Iterator::collect)
            .map_err(sqlite("run quick_check"))?
    };
    let tables = tables(conn).map_err(sqlite("list the tables"))?;
    conn.execute_batch("COMMIT")
        .map_err(sqlite("end the read transaction"))?;
    // After the COMMIT: a checkpoint, even a NOOP, fails inside a
    // transaction.
    let wal_path = walguard::files::wal_path(path);
    let wal = dbfile::len(&wal_path).map(|bytes| Wal {
        bytes,
        frames: wal_frames(conn, &wal_path),
    });
    Ok(Report {
        path: path.to_path_buf(),
        header,
        read,
        database_bytes: dbfile::len(path).unwrap_or(0),
        page_count,
        freelist,
        wal,
        shm: walguard::files::shm_path(path).exists(),
        journal: walguard::files::journal_path(path).exists(),
        synchronous,
        schema_version,
        problems,
        tables,
    })
}

/// SQLite's own count (a NOOP checkpoint, which copies nothing) when the
/// read-only connection allows it, else a scan of the file.
fn wal_frames(conn: &Connection, wal_path: &Path) -> Frames {
    let noop = conn.query_row("PRAGMA wal_checkpoint(NOOP)", [], |r| {
        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    });
    match noop {
        Ok((log, checkpointed)) if log >= 0 => Frames::Sqlite { log, checkpointed },
        _ => match std::fs::read(wal_path) {
            Ok(bytes) => {
                let scan = dbfile::scan_wal(&bytes);
                Frames::File {
                    frames: scan.frames,
                    committed: scan.committed,
                }
            }
            Err(e) => Frames::Unknown(e.to_string()),
        },
    }
}

impl Report {
    /// The report for people: one `key  value` line each.
    pub(crate) fn text(&self) -> String {
        let mut out = String::new();
        let mut line = |key: &str, value: String| {
            let _ = writeln!(out, "{key:<18} {value}");
        };
        line("database", self.path.display().to_string());
        line("sqlite", rusqlite::version().to_owned());
        line(
            "journal mode",
            if self.header.wal {
                "wal"
            } else {
                "rollback journal (not wal)"
            }
            .to_owned(),
        );
        line(
            "read",
            match self.read {
                ReadMode::Immutable => "immutable (no -wal, no -journal: nobody has it open)",
                ReadMode::Shared => "read-only, under SQLite's shared lock",
            }
            .to_owned(),
        );
        line("page size", format!("{} bytes", self.header.page_size));
        line(
            "database size",
            format!(
                "{} bytes ({} pages, {} free)",
                self.database_bytes, self.page_count, self.freelist
            ),
        );
        line("wal", self.wal_text());
        line("shm", present(self.shm));
        if !self.header.wal || self.journal {
            line("journal", present(self.journal));
        }
        line(
            "synchronous",
            format!(
                "{} (a new connection's default; each writer sets its own, walguard's from database.synchronous)",
                synchronous_name(self.synchronous)
            ),
        );
        line(
            "schema version",
            format!(
                "{} (PRAGMA user_version: the migrations applied)",
                self.schema_version
            ),
        );
        line("quick check", quick_check_summary(&self.problems));
        if self.tables.is_empty() {
            line("tables", "none".to_owned());
        } else {
            let list: Vec<String> = self
                .tables
                .iter()
                .map(|(name, rows)| format!("{name} ({rows} rows)"))
                .collect();
            line("tables", list.join(", "));
        }
        out
    }

    fn wal_text(&self) -> String {
        let Some(wal) = &self.wal else {
            return "absent (everything is in the database file)".to_owned();
        };
        let frames = match &wal.frames {
            Frames::Sqlite { log, checkpointed } => {
                format!("{log} frames, {checkpointed} already checkpointed")
            }
            Frames::File { frames, committed } => {
                format!("{frames} frames ({committed} committed), counted from the file")
            }
            Frames::Unknown(why) => format!("frames unknown ({why})"),
        };
        format!("{} bytes, {frames}", wal.bytes)
    }

    /// The report as one JSON object; the same facts as [`Report::text`].
    pub(crate) fn json(&self) -> serde_json::Value {
        let wal = self.wal.as_ref().map(|wal| {
            let mut object = serde_json::json!({ "bytes": wal.bytes });
            match &wal.frames {
                Frames::Sqlite { log, checkpointed } => {
                    object["frames"] = (*log).into();
                    object["checkpointed"] = (*checkpointed).into();
                    object["counted_by"] = "sqlite".into();
                }
                Frames::File { frames, committed } => {
                    object["frames"] = (*frames).into();
                    object["committed"] = (*committed).into();
                    object["counted_by"] = "file".into();
                }
                Frames::Unknown(why) => object["error"] = why.as_str().into(),
            }
            object
        });
        let tables: Vec<serde_json::Value> = self
            .tables
            .iter()
            .map(|(name, rows)| serde_json::json!({ "name": name, "rows": rows }))
            .collect();
        let ok = self.problems.len() == 1 && self.problems[0] == "ok";
        serde_json::json!({
            "database": self.path.display().to_string(),
            "sqlite": rusqlite::version(),
            "journal_mode": if self.header.wal { "wal" } else { "rollback" },
            "read": match self.read {
                ReadMode::Immutable => "immutable",
                ReadMode::Shared => "shared",
            },
            "page_size": self.header.page_size,
            "database_bytes": self.database_bytes,
            "page_count": self.page_count,
            "freelist_count": self.freelist,
            "wal": wal,
            "shm": self.shm,
            "journal": self.journal,
            "synchronous": synchronous_name(self.synchronous),
            "schema_version": self.schema_version,
            "quick_check": if ok { "ok" } else { "problems" },
            "problems": if ok { &[][..] } else { &self.problems[..] },
            "tables": tables,
        })
    }
}

fn present(yes: bool) -> String {
    if yes { "present" } else { "absent" }.to_owned()
}

fn synchronous_name(level: i64) -> &'static str {
    walguard::settings::Synchronous::from_level(level).map_or("unknown", |s| s.as_str())
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

    /// A name with characters that mean something in an SQLite URI. Windows
    /// allows no `?` in a file name; `#` is as special there.
    #[cfg(not(windows))]
    const URI_HOSTILE_NAME: &str = "clean db%?.db";
    #[cfg(windows)]
    const URI_HOSTILE_NAME: &str = "clean db%#.db";

    #[test]
    fn a_cleanly_closed_database_is_inspected_without_any_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(URI_HOSTILE_NAME);
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "journal_mode", "WAL").unwrap();
            conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1), (2);")
                .unwrap();
        }
        assert_eq!(files_in(dir.path()), vec![URI_HOSTILE_NAME]);
        let report = inspect(&path).unwrap().text();
        assert!(report.contains("journal mode       wal"), "{report}");
        assert!(report.contains("wal                absent"), "{report}");
        assert!(report.contains("quick check        ok"), "{report}");
        assert!(report.contains("schema version     0 "), "{report}");
        assert!(report.contains("t (2 rows)"), "{report}");
        assert_eq!(files_in(dir.path()), vec![URI_HOSTILE_NAME]);
    }

    #[test]
    fn a_live_wal_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("live.db");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn.execute_batch(
            "CREATE TABLE t (x); INSERT INTO t VALUES (1); PRAGMA user_version = 4;",
        )
        .unwrap();
        let log: i64 = conn
            .query_row("PRAGMA wal_checkpoint(NOOP)", [], |r| r.get(1))
            .unwrap();
        let report = inspect(&path).unwrap().text();
        assert!(report.contains(&format!("{log} frames")), "{report}");
        assert!(report.contains("t (1 rows)"), "{report}");
        // The version still in the WAL, read through SQLite.
        assert!(report.contains("schema version     4 "), "{report}");
        let json = inspect(&path).unwrap().json();
        assert_eq!(json["schema_version"], 4, "{json}");
    }
}
