//! The rows both campaigns write, and the check of what survived.
//!
//! Row `id` (1, 2, 3...) belongs to write request `req` (one `Execute`, or
//! one `Transaction` of `rows` rows) and carries a body whose length and
//! bytes depend only on `id`: 16 bytes to about 20 KiB (overflow pages
//! included), so that a torn or misplaced page shows up as a damaged body.

use std::path::Path;

use rusqlite::Connection;
use rusqlite::config::DbConfig;
use walguard::Statement;

/// The campaign table.
pub(crate) const TABLE_SQL: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, \
     req INTEGER NOT NULL, rows INTEGER NOT NULL, body BLOB NOT NULL)";

/// Body length of row `id`: mostly small, some a few pages, one in sixteen
/// spilling onto overflow pages.
pub(crate) fn body_len(id: u64) -> usize {
    let spread = (id.wrapping_mul(2_654_435_761) >> 7) as usize;
    match id % 16 {
        0 => 12_000 + spread % 9_000,
        1..=3 => 1_000 + spread % 3_000,
        _ => 16 + spread % 500,
    }
}

/// The body of row `id`: every byte depends on the id and its position.
pub(crate) fn body(id: u64) -> Vec<u8> {
    let key = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..body_len(id))
        .map(|i| (key.rotate_left((i % 64) as u32) >> 11) as u8 ^ (i / 64) as u8)
        .collect()
}

/// The insert of row `id` of request `req`, which holds `rows` rows.
pub(crate) fn insert(id: u64, req: u64, rows: u64) -> Statement {
    Statement::new("INSERT INTO t (id, req, rows, body) VALUES (?1, ?2, ?3, ?4)")
        .bind(id as i64)
        .bind(req as i64)
        .bind(rows as i64)
        .bind(body(id))
}

/// What a database holds after a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Survivors {
    /// Rows `1..=rows` are there, every one intact.
    pub(crate) rows: u64,
}

/// Opens `path` with SQLite's default VFS (recovering the WAL), and checks:
/// `PRAGMA integrity_check` is ok; the table exists; its rows are exactly
/// `1..=k` for some `k`, each with its own body; and every request present
/// is present whole (a transaction boundary). Returns `k`.
///
/// With `keep_wal` the connection closes without its checkpoint
/// (`SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`), so the WAL stays as the crash left
/// it (the kill campaign goes on with the same file).
pub(crate) fn survivors(path: &Path, keep_wal: bool) -> Result<Survivors, String> {
    let conn = Connection::open(path).map_err(|e| format!("reopen: {e}"))?;
    if keep_wal {
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(|e| format!("no checkpoint on close: {e}"))?;
    }
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .map_err(|e| format!("integrity_check: {e}"))?;
    if check != "ok" {
        return Err(format!("integrity_check: {check}"));
    }
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 't'",
            [],
            |row| row.get(0),
        )
        .map_err(|e| format!("schema: {e}"))?;
    if tables == 0 {
        return Err("table t is gone".to_owned());
    }
    let mut stmt = conn
        .prepare("SELECT id, req, rows, body FROM t ORDER BY id")
        .map_err(|e| e.to_string())?;
    let rows = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, i64>(0)? as u64,
                row.get::<_, i64>(1)? as u64,
                row.get::<_, i64>(2)? as u64,
                row.get::<_, Vec<u8>>(3)?,
            ))
        })
        .map_err(|e| e.to_string())?;
    let mut expected_id = 1;
    // The request being read and how many of its rows were seen.
    let mut current: Option<(u64, u64, u64)> = None;
    for row in rows {
        let (id, req, in_req, data) = row.map_err(|e| format!("read: {e}"))?;
        if id != expected_id {
            return Err(format!(
                "row {expected_id} is missing but row {id} survived"
            ));
        }
        if data != body(id) {
            return Err(format!("row {id} has a damaged body"));
        }
        current = match current {
            Some((r, rows, seen)) if r == req => Some((r, rows, seen + 1)),
            Some((r, rows, seen)) if seen != rows => {
                return Err(format!(
                    "request {r} survived in part: {seen} of {rows} rows"
                ));
            }
            _ => Some((req, in_req, 1)),
        };
        expected_id += 1;
    }
    if let Some((r, rows, seen)) = current
        && seen != rows
    {
        return Err(format!(
            "request {r} survived in part: {seen} of {rows} rows"
        ));
    }
    Ok(Survivors {
        rows: expected_id - 1,
    })
}
