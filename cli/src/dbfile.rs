//! Checks on a database path made before SQLite touches it (that it exists,
//! is a regular file and starts with the SQLite header), the read-only open
//! that `inspect` and the checks before `run` share, and the probe for a
//! write lock held elsewhere. No command may create or convert a file it
//! was only asked to look at.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Read as _;
use std::path::Path;
use std::time::Duration;
use walguard::files;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::error::CliError;

/// How long a read or the write-lock probe waits for a lock held by another
/// connection before saying so: long enough to ride over someone's commit,
/// short enough that a lock held for good is reported at once.
pub(crate) const LOCK_WAIT: Duration = Duration::from_millis(500);

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

/// How [`open_read_only`] opened the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadMode {
    /// `immutable=1`: no lock and no side file. Only for a WAL database
    /// with neither `-wal` nor `-journal` beside it.
    Immutable,
    /// `SQLITE_OPEN_READ_ONLY`: SQLite's shared lock while reading.
    Shared,
}

/// Opens `path` read-only, for a report that changes nothing.
///
/// A read-only connection to a WAL database creates the `-wal` and `-shm`
/// files when they are missing, and leaves them behind. A WAL database with
/// no `-wal` beside it was closed cleanly and nobody has it open (a WAL
/// connection creates the `-wal` on its first read, and a writer writes the
/// `-wal` before the database file), so it is opened `immutable=1`: no
/// lock, no side file. [`still_immutable`] checks after the read that no
/// `-wal` appeared meanwhile. Everything else (a rollback-journal database,
/// a `-journal` beside it, a live `-wal`) gets a normal read-only open,
/// which takes SQLite's shared lock while it reads and waits at most
/// [`LOCK_WAIT`] for it: a writer holding the database is reported, never
/// read around.
pub(crate) fn open_read_only(
    path: &Path,
    header: Header,
) -> Result<(Connection, ReadMode), CliError> {
    let err = |source| CliError::Sqlite {
        what: "open read-only",
        path: path.to_path_buf(),
        source,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if still_immutable(path, header)
        && let Some(uri) = immutable_uri(path)
    {
        let conn =
            Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI).map_err(err)?;
        return Ok((conn, ReadMode::Immutable));
    }
    let conn = Connection::open_with_flags(path, flags).map_err(err)?;
    conn.busy_timeout(LOCK_WAIT).map_err(err)?;
    Ok((conn, ReadMode::Shared))
}

/// Whether an `immutable=1` open of `path` is safe: a WAL database with no
/// `-wal` and no `-journal` beside it.
pub(crate) fn still_immutable(path: &Path, header: Header) -> bool {
    header.wal && !files::wal_path(path).exists() && !files::journal_path(path).exists()
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

/// The error for a failed SQLite call on `path`: [`CliError::Locked`] when
/// another connection holds the lock it needed, [`CliError::HotJournal`]
/// when a read-only open met a hot journal, else [`CliError::Sqlite`].
pub(crate) fn sqlite_error(
    path: &Path,
    what: &'static str,
    consequence: &'static str,
) -> impl Fn(rusqlite::Error) -> CliError {
    move |source| match source.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => CliError::Locked {
            path: path.to_path_buf(),
            holder: holder(path),
            consequence,
        },
        _ if source.sqlite_extended_error_code()
            == Some(rusqlite::ffi::SQLITE_READONLY_ROLLBACK) =>
        {
            CliError::HotJournal {
                path: path.to_path_buf(),
            }
        }
        _ => CliError::Sqlite {
            what,
            path: path.to_path_buf(),
            source,
        },
    }
}

/// Fails with [`CliError::Locked`] when another connection holds the write
/// lock of the WAL database at `path`: `BEGIN IMMEDIATE` on a connection of
/// its own, waiting at most [`LOCK_WAIT`], then `ROLLBACK`. Writes nothing
/// and changes no mode; the file must exist and be in WAL mode.
pub(crate) fn probe_write_lock(path: &Path, consequence: &'static str) -> Result<(), CliError> {
    let err = sqlite_error(path, "probe the write lock", consequence);
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(&err)?;
    conn.busy_timeout(LOCK_WAIT).map_err(&err)?;
    conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
        .map_err(&err)?;
    conn.close().map_err(|(_, e)| err(e))
}

/// Who holds a lock on `path`: `another process (pid N)` when
/// `/proc/locks` names one, else `another connection`.
fn holder(path: &Path) -> String {
    match lock_holders(path).as_slice() {
        [] => "another connection".to_owned(),
        [pid] => format!("another process (pid {pid})"),
        pids => format!(
            "other processes (pids {})",
            pids.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Byte of the `-shm` file that carries the WAL write lock:
/// `WALINDEX_LOCK_OFFSET` (120) plus slot 0 (`WAL_WRITE_LOCK`), as the unix
/// VFS maps it (`UNIX_SHM_BASE` in `os_unix.c`).
#[cfg(target_os = "linux")]
const SHM_WRITE_LOCK_BYTE: u64 = 120;

/// Pids of other processes that hold a write lock on `path` (a rollback
/// journal's RESERVED, PENDING or EXCLUSIVE lock) or the WAL write lock in
/// its `-shm`, from `/proc/locks`. Matched by inode; best effort: empty when
/// the file cannot be read or on other systems.
#[cfg(target_os = "linux")]
fn lock_holders(path: &Path) -> Vec<u32> {
    use std::os::unix::fs::MetadataExt as _;
    let inode = |p: &Path| std::fs::metadata(p).ok().map(|m| m.ino());
    let (db, shm) = (inode(path), inode(&files::shm_path(path)));
    let Ok(locks) = std::fs::read_to_string("/proc/locks") else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut pids: Vec<u32> = locks
        .lines()
        .filter_map(|line| {
            // `1: POSIX  ADVISORY  WRITE 4711 08:01:1234 120 120`; a waiter
            // has `->` after the id and holds nothing.
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(1) == Some(&"->") || fields.get(3) != Some(&"WRITE") {
                return None;
            }
            let pid: u32 = fields.get(4)?.parse().ok()?;
            let ino: u64 = fields.get(5)?.rsplit(':').next()?.parse().ok()?;
            let start: u64 = fields.get(6)?.parse().ok()?;
            let on_db = Some(ino) == db;
            let on_write_lock = Some(ino) == shm && start == SHM_WRITE_LOCK_BYTE;
            (pid != me && (on_db || on_write_lock)).then_some(pid)
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

#[cfg(not(target_os = "linux"))]
fn lock_holders(_path: &Path) -> Vec<u32> {
    Vec::new()
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
        let wal = std::fs::read(files::wal_path(&path)).unwrap();
        let scan = scan_wal(&wal);
        assert_eq!(scan.frames, log as u64);
        assert_eq!(scan.committed, scan.frames);
        // After a RESTART the old frames stay on disk with stale salts.
        conn.execute_batch("PRAGMA wal_checkpoint(RESTART); INSERT INTO t VALUES (3);")
            .unwrap();
        let log: i64 = conn
            .query_row("PRAGMA wal_checkpoint(NOOP)", [], |r| r.get(1))
            .unwrap();
        let wal = std::fs::read(files::wal_path(&path)).unwrap();
        assert!(log < scan.frames as i64);
        assert_eq!(scan_wal(&wal).frames, log as u64);
    }
}
