//! Checks on a database path made before SQLite touches it: that it exists,
//! is a regular file and starts with the SQLite header. `inspect` and
//! `checkpoint` must never create or convert a file.

use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use crate::error::CliError;

/// The first 16 bytes of every SQLite database file.
const MAGIC: &[u8; 16] = b"SQLite format 3\0";
/// Length of the database header.
const HEADER_LEN: usize = 100;
/// Bytes 18 and 19 of the header: file format write/read version; 2 is WAL.
const FORMAT_WAL: u8 = 2;

/// What the header of a database file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// Page size in bytes.
    pub(crate) page_size: u32,
    /// Whether the file is in WAL mode (persistent in the header).
    pub(crate) wal: bool,
}

/// Checks that `path` is an existing SQLite database file and reads its
/// header. Reads only.
pub(crate) fn check(path: &Path) -> Result<Header, CliError> {
    let meta = std::fs::metadata(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            CliError::NoSuchFile {
                path: path.to_path_buf(),
            }
        } else {
            CliError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    if !meta.is_file() {
        return Err(CliError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let io = |source| CliError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut header = Vec::with_capacity(HEADER_LEN);
    File::open(path)
        .map_err(io)?
        .take(HEADER_LEN as u64)
        .read_to_end(&mut header)
        .map_err(io)?;
    let not_db = |why| CliError::NotADatabase {
        path: path.to_path_buf(),
        why,
    };
    if header.is_empty() {
        return Err(not_db("the file is empty"));
    }
    if header.len() < HEADER_LEN || !header.starts_with(MAGIC) {
        return Err(not_db("it does not start with the SQLite header"));
    }
    // Stored big-endian; 1 means 65536.
    let raw = u16::from_be_bytes([header[16], header[17]]);
    let page_size = if raw == 1 { 65_536 } else { u32::from(raw) };
    Ok(Header {
        page_size,
        wal: header[18] == FORMAT_WAL && header[19] == FORMAT_WAL,
    })
}

/// A file beside the database: `-wal` or `-shm`.
pub(crate) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// The size of a file, `None` when it does not exist.
pub(crate) fn len(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

/// What a scan of the `-wal` file finds, without SQLite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct WalScan {
    /// Frames that belong to the current WAL (their salts match the header).
    pub(crate) frames: u64,
    /// Of those, frames up to and including the last commit frame.
    pub(crate) committed: u64,
}

/// WAL header length, and frame header length, in bytes (`wal.c`).
const WAL_HEADER_LEN: usize = 32;
const WAL_FRAME_HEADER_LEN: usize = 24;

/// Counts the frames of the current WAL generation in `wal`: a frame
/// belongs to it when its two salts equal the WAL header's (a reset WAL
/// keeps its old frames on disk, with stale salts). Checksums are not
/// verified, so a torn last frame may be counted; SQLite's own count comes
/// from the `-shm` index when a connection is live.
pub(crate) fn scan_wal(wal: &[u8]) -> WalScan {
    let mut scan = WalScan::default();
    if wal.len() < WAL_HEADER_LEN {
        return scan;
    }
    let page_size = u32::from_be_bytes([wal[8], wal[9], wal[10], wal[11]]) as usize;
    if page_size < 512 || !page_size.is_power_of_two() {
        return scan;
    }
    let salts = &wal[16..24];
    let frame_len = WAL_FRAME_HEADER_LEN + page_size;
    let mut offset = WAL_HEADER_LEN;
    while offset + frame_len <= wal.len() {
        let frame = &wal[offset..offset + WAL_FRAME_HEADER_LEN];
        if &frame[8..16] != salts {
            break;
        }
        scan.frames += 1;
        let db_size_after_commit = u32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        if db_size_after_commit != 0 {
            scan.committed = scan.frames;
        }
        offset += frame_len;
    }
    scan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_empty_and_foreign_files_are_refused_without_creating_anything() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.db");
        assert!(matches!(check(&missing), Err(CliError::NoSuchFile { .. })));
        assert!(!missing.exists());
        assert!(matches!(check(dir.path()), Err(CliError::NotAFile { .. })));
        let empty = dir.path().join("empty.db");
        std::fs::write(&empty, b"").unwrap();
        assert!(matches!(check(&empty), Err(CliError::NotADatabase { .. })));
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "not a database at all, just some words".repeat(5)).unwrap();
        assert!(matches!(check(&text), Err(CliError::NotADatabase { .. })));
    }

    #[test]
    fn header_and_wal_scan_match_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn.execute_batch(
            "CREATE TABLE t (x); INSERT INTO t VALUES (1); INSERT INTO t VALUES (2);",
        )
        .unwrap();
        let header = check(&path).unwrap();
        assert!(header.wal);
        assert_eq!(header.page_size, 4096);
        let (log, _): (i64, i64) = conn
            .query_row("PRAGMA wal_checkpoint(NOOP)", [], |r| {
                Ok((r.get(1)?, r.get(2)?))
            })
            .unwrap();
        let wal = std::fs::read(sibling(&path, "-wal")).unwrap();
        let scan = scan_wal(&wal);
        assert_eq!(scan.frames, log as u64);
        assert_eq!(scan.committed, scan.frames);
        // After a RESTART the old frames stay on disk with stale salts.
        conn.execute_batch("PRAGMA wal_checkpoint(RESTART); INSERT INTO t VALUES (3);")
            .unwrap();
        let log: i64 = conn
            .query_row("PRAGMA wal_checkpoint(NOOP)", [], |r| r.get(1))
            .unwrap();
        let wal = std::fs::read(sibling(&path, "-wal")).unwrap();
        assert!(log < scan.frames as i64);
        assert_eq!(scan_wal(&wal).frames, log as u64);
    }
}
