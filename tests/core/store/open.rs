//! Opening: WAL mode, the pragmas, private files, and the errors that name
//! the path (a missing directory, not a database, locked, in memory).

use super::*;

#[test]
fn open_creates_the_file_in_wal_mode() {
    let (_dir, path) = temp_db();
    assert!(!path.exists());
    let mut store = store_with_kv(&path);
    put(&mut store, "a", 1);
    assert!(path.is_file(), "open must create {}", path.display());
    assert_eq!(store.path(), path.as_path());

    // A second connection sees the persistent journal mode.
    let other = Connection::open(&path).unwrap();
    let mode: String = other
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    assert!(
        wal_path(&path).is_file(),
        "a committed write lives in the -wal file"
    );
}

/// Set in the environment of [`private_files_child`]: the directory to
/// create its files in.
#[cfg(unix)]
const PRIVATE_FILES_CHILD_DIR: &str = "WALGUARD_PRIVATE_FILES_CHILD_DIR";

/// New database files are `0600`: the database, and the `-wal` and `-shm`
/// files SQLite creates beside it, under a permissive umask (022) that
/// would give a plain new file `0644`. The umask is process-wide, so the
/// check runs in a child process (this test binary again, run by `sh` after
/// `umask 022`), never in the test process, where it would change the
/// modes of the files other tests create meanwhile.
#[cfg(unix)]
#[test]
fn open_creates_files_readable_by_the_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new("sh")
        .args([
            "-c",
            r#"umask 022 && exec "$0" --exact store::open::private_files_child --ignored --nocapture --test-threads=1"#,
        ])
        .arg(std::env::current_exe().unwrap())
        .env(PRIVATE_FILES_CHILD_DIR, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("private files: checked"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The child process of the test above; does nothing unless its parent set
/// the environment.
#[cfg(unix)]
#[test]
#[ignore = "the child process of open_creates_files_readable_by_the_owner_only"]
fn private_files_child() {
    use std::os::unix::fs::PermissionsExt;

    let Some(dir) = std::env::var_os(PRIVATE_FILES_CHILD_DIR) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let mode =
        |file: &std::path::Path| std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
    // The umask is permissive: without walguard, a new file is readable by
    // everyone, so the check below can fail.
    let plain = dir.join("plain");
    std::fs::write(&plain, b"x").unwrap();
    assert_eq!(mode(&plain), 0o644, "the umask is not 022");

    let path = dir.join("state.db");
    let mut store = store_with_kv(&path);
    put(&mut store, "a", 1);
    let shm = std::path::PathBuf::from(format!("{}-shm", path.display()));
    for file in [path.clone(), wal_path(&path), shm] {
        assert_eq!(
            mode(&file),
            0o600,
            "{} has mode {:o}",
            file.display(),
            mode(&file)
        );
    }
    println!("private files: checked");
}

fn pragma_i64(store: &mut Store, name: &str) -> i64 {
    store
        .call(|c| c.pragma_query_value(None, name, |r| r.get(0)))
        .unwrap()
}

#[test]
fn open_applies_the_configured_pragmas() {
    let (_dir, path) = temp_db();
    let mut settings = DatabaseSettings::at(&path);
    settings.busy_timeout = Duration::from_millis(1234);
    settings.synchronous = Synchronous::Full;
    settings.journal_size_limit = Some(1 << 20);
    settings.wal_autocheckpoint = 0;
    let mut store = Store::open(&settings).unwrap();
    assert_eq!(pragma_i64(&mut store, "busy_timeout"), 1234);
    assert_eq!(pragma_i64(&mut store, "synchronous"), 2);
    assert_eq!(pragma_i64(&mut store, "journal_size_limit"), 1 << 20);
    assert_eq!(pragma_i64(&mut store, "wal_autocheckpoint"), 0);
    store.close().map_err(|(_, e)| e).unwrap();

    // Other values, on the same file: nothing sticks from the first open.
    let mut settings = DatabaseSettings::at(&path);
    settings.busy_timeout = Duration::from_secs(7);
    settings.synchronous = Synchronous::Normal;
    settings.journal_size_limit = None;
    settings.wal_autocheckpoint = 250;
    let mut store = Store::open(&settings).unwrap();
    assert_eq!(pragma_i64(&mut store, "busy_timeout"), 7000);
    assert_eq!(pragma_i64(&mut store, "synchronous"), 1);
    assert_eq!(pragma_i64(&mut store, "journal_size_limit"), -1);
    // The store's WAL hook holds the slot SQLite's auto-checkpoint uses and
    // runs SQLite's rule itself (store/wal_watch.rs tests the 250 frames).
    assert_eq!(pragma_i64(&mut store, "wal_autocheckpoint"), 0);
}

#[test]
fn open_in_a_missing_directory_names_the_path() {
    let (dir, _) = temp_db();
    let path = dir.path().join("no-such-dir").join("state.db");
    let err = Store::open(&DatabaseSettings::at(&path)).unwrap_err();
    assert!(
        matches!(&err, Error::MissingDirectory { path: p, directory } if *p == path && directory == path.parent().unwrap()),
        "expected Error::MissingDirectory, got {err:?}"
    );
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert!(
        !path.parent().unwrap().exists(),
        "open must not create directories"
    );
}

#[test]
fn open_on_a_file_that_is_not_a_database_names_the_path() {
    let (_dir, path) = temp_db();
    let junk: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &junk).unwrap();
    let err = Store::open(&DatabaseSettings::at(&path)).unwrap_err();
    assert!(
        matches!(&err, Error::NotADatabase { path: p, .. } if *p == path),
        "expected Error::NotADatabase, got {err:?}"
    );
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        junk,
        "the file must be left alone"
    );
}

/// Another connection holds the file in `locking_mode=EXCLUSIVE` after a
/// write: opening must fail with the path named, after the busy timeout
/// and well before twice it (it waits, and only once).
fn assert_open_fails_while_locked(wal_first: bool) {
    let (_dir, path) = temp_db();
    let holder = Connection::open(&path).unwrap();
    if wal_first {
        holder.pragma_update(None, "journal_mode", "WAL").unwrap();
    }
    holder
        .execute_batch(
            "PRAGMA locking_mode=EXCLUSIVE; CREATE TABLE t (x); INSERT INTO t VALUES (1);",
        )
        .unwrap();

    let mut settings = DatabaseSettings::at(&path);
    settings.busy_timeout = Duration::from_millis(500);
    let start = Instant::now();
    let err = Store::open(&settings).unwrap_err();
    let elapsed = start.elapsed();
    assert!(
        elapsed >= settings.busy_timeout,
        "open gave up after {elapsed:?}, before the busy timeout"
    );
    // Only a hang guard above: a loaded machine can stretch the wait past
    // any tight bound. The exact timeout is read back below.
    assert!(
        elapsed < 20 * settings.busy_timeout,
        "open took {elapsed:?}: it hung"
    );
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "the error must name the path: {}",
        chain(&err)
    );
    assert_eq!(
        sqlite_cause(&err).and_then(rusqlite::Error::sqlite_error_code),
        Some(ErrorCode::DatabaseBusy),
        "{}",
        chain(&err)
    );
    drop(holder);
    // Once the holder is gone the same settings open fine, with exactly
    // the busy timeout asked for (no clock involved).
    let mut store = Store::open(&settings).unwrap();
    let busy_timeout_ms = store
        .call(|c| c.query_row("PRAGMA busy_timeout", [], |r| r.get::<_, i64>(0)))
        .unwrap();
    assert_eq!(busy_timeout_ms, 500);
}

#[test]
fn open_on_an_exclusively_locked_database_fails_within_the_busy_timeout() {
    assert_open_fails_while_locked(false);
}

#[test]
fn open_on_an_exclusively_locked_wal_database_fails_within_the_busy_timeout() {
    assert_open_fails_while_locked(true);
}

#[test]
fn memory_database_is_rejected() {
    let err = Settings::for_database(":memory:").validate().unwrap_err();
    assert!(
        matches!(&err, Error::InvalidSetting { key, value, .. } if key == "database.path" && value == ":memory:"),
        "{err:?}"
    );
    assert!(chain(&err).contains("database.path"), "{err}");

    // Store::open does not validate, but SQLite reports the journal mode back.
    let err = Store::open(&DatabaseSettings::at(":memory:")).unwrap_err();
    assert!(
        matches!(&err, Error::NotWal { mode, .. } if mode == "memory"),
        "{err:?}"
    );
    // Regression: open used to create a stray file called `:memory:` in the
    // working directory before SQLite opened the in-memory database.
    assert!(
        !std::path::Path::new(":memory:").exists(),
        "Store::open created a file named :memory: in the working directory"
    );
}
