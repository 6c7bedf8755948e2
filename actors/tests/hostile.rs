//! Bad input and hostile conditions, seen from where a user stands: what
//! `WalGuard::start` or a `DbHandle` request answers. Each test names the
//! case of `docs/reliability.md` it covers; the cases other test files
//! already cover are listed there with their tests.

// Its hostile conditions are made with Unix means (a mode-0555 directory,
// `/sys`, a child process holding POSIX locks, `/proc` for memory), so it
// is built and run on Unix only; tests/windows.rs covers Windows.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rusqlite::ErrorCode;
use rusqlite::limits::Limit;
use walguard::{Settings, Statement};
use walguard_actors::{Error, Placement, WalGuard};

/// Writes in the overload burst.
// The burst's probe is a hook of feature `testing`.
#[cfg(feature = "testing")]
const BURST_WRITES: u64 = 100_000;
/// Concurrent senders in the burst: twice the mailbox, so it fills.
// The burst's probe is a hook of feature `testing`.
#[cfg(feature = "testing")]
const BURST_SENDERS: u64 = 2_048;
/// Body of each burst write.
// The burst's probe is a hook of feature `testing`.
#[cfg(feature = "testing")]
const BURST_BODY_BYTES: usize = 1_024;
/// What the burst may add to the process's peak resident memory. Were the
/// 100,000 writes queued without bound, their bodies alone would take about
/// 100 MiB.
// The burst's probe is a hook of feature `testing`.
#[cfg(feature = "testing")]
const BURST_MEMORY_BOUND_KIB: u64 = 48 * 1024;

/// Set in the lock holder's environment: the database to lock.
const LOCK_HOLDER_ENV: &str = "WALGUARD_HOSTILE_LOCK_DB";

fn settings_at(path: &Path) -> Settings {
    let mut settings = Settings::for_database(path);
    settings.database.busy_timeout = Duration::from_millis(100);
    settings
}

/// The SQLite error code at the bottom of an error from the actors.
fn code_of(err: &(dyn std::error::Error + 'static)) -> Option<ErrorCode> {
    let mut source = Some(err);
    while let Some(e) = source {
        if let Some(sqlite) = e.downcast_ref::<rusqlite::Error>() {
            return sqlite.sqlite_error_code();
        }
        source = e.source();
    }
    None
}

/// Cases "path in a missing directory", "path in a read-only directory" and
/// "a file that is not SQLite": `WalGuard::start` fails with an error that
/// names the path, and touches nothing.
#[actix_rt::test]
async fn unusable_paths_fail_start_and_name_the_path() {
    let dir = tempfile::tempdir().unwrap();

    let missing = dir.path().join("no-such-dir").join("state.db");
    let err = WalGuard::start(settings_at(&missing)).unwrap_err();
    assert!(
        matches!(&err, Error::Db(walguard::Error::MissingDirectory { path, .. }) if *path == missing),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );

    let read_only = read_only_dir(dir.path()).join("state.db");
    let err = WalGuard::start(settings_at(&read_only)).unwrap_err();
    assert!(
        matches!(&err, Error::Db(walguard::Error::EngineLock { path, .. })
            if *path == walguard::files::engine_lock_path(&read_only)),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&read_only.display().to_string()),
        "{err}"
    );
    assert!(!read_only.exists());

    let junk = dir.path().join("junk.db");
    let bytes: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&junk, &bytes).unwrap();
    let err = WalGuard::start(settings_at(&junk)).unwrap_err();
    assert!(
        matches!(&err, Error::Db(walguard::Error::NotADatabase { path, .. }) if *path == junk),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("is not an SQLite database"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&junk).unwrap(),
        bytes,
        "the file is left alone"
    );
}

/// A directory this process cannot create files in: a fresh one with mode
/// 0555, or, when the process ignores permissions (root), `/sys`, where even
/// root cannot create a file.
fn read_only_dir(parent: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = parent.join("read-only");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let probe = dir.join("probe");
    if std::fs::write(&probe, b"").is_ok() {
        let _ = std::fs::remove_file(&probe);
        eprintln!("permissions are not enforced for this process (root): using /sys instead");
        return Path::new("/sys").to_path_buf();
    }
    dir
}

/// Case "oversized blob": above SQLite's hard limit (`SQLITE_MAX_LENGTH`,
/// 1,000,000,000 bytes by default) and above a limit lowered on the
/// connection (`Connection::set_limit`), the write fails with
/// `SQLITE_TOOBIG` naming the statement, nothing is written, and the actor
/// keeps serving.
#[actix_rt::test]
async fn an_oversized_blob_is_refused_and_the_actor_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let guard = WalGuard::builder(settings_at(&dir.path().join("state.db")))
        .db_placement(Placement::Current)
        .start()
        .unwrap();
    let db = guard.db();
    db.execute("CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
        .await
        .unwrap();

    // zeroblob() is never materialized: this costs no memory.
    let huge = Statement::new("INSERT INTO blobs (body) VALUES (zeroblob(2000000000))");
    let err = db.execute(huge).await.unwrap_err();
    assert!(
        matches!(&err, Error::Db(walguard::Error::Statement { .. })),
        "{err:?}"
    );
    assert_eq!(code_of(&err), Some(ErrorCode::TooBig), "{err:?}");
    assert!(err.to_string().contains("zeroblob(2000000000)"), "{err}");

    let previous = db
        .call(|conn| conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, 1_000_000))
        .await
        .unwrap();
    assert_eq!(previous, 1_000_000_000);
    let bound = Statement::new("INSERT INTO blobs (body) VALUES (?1)").bind(vec![7u8; 2_000_000]);
    let err = db.execute(bound).await.unwrap_err();
    assert_eq!(code_of(&err), Some(ErrorCode::TooBig), "{err:?}");

    db.execute(Statement::new("INSERT INTO blobs (body) VALUES (?1)").bind(vec![7u8; 1000]))
        .await
        .unwrap();
    let count = db.query("SELECT count(*) FROM blobs").await.unwrap();
    assert_eq!(count.rows()[0][0], rusqlite::types::Value::Integer(1));
    let report = guard.shutdown().await.unwrap();
    assert_eq!(report.db.writes_failed, 2);
}

/// Case "a settings value that would be interpolated into a PRAGMA":
/// settings are typed, so SQL in a value is a parse error naming the key,
/// never text pasted into SQL. A path is a file name, whatever it contains.
#[actix_rt::test]
async fn settings_values_are_typed_never_pasted_into_sql() {
    for (var, value, key) in [
        (
            "WALGUARD__DATABASE__SYNCHRONOUS",
            "normal; DROP TABLE x",
            "database.synchronous",
        ),
        (
            "WALGUARD__DATABASE__JOURNAL_SIZE_LIMIT",
            "1; DROP TABLE x",
            "database.journal_size_limit",
        ),
        (
            "WALGUARD__CHECKPOINT__INTERVAL",
            "1s; DROP TABLE x",
            "checkpoint.interval",
        ),
    ] {
        let env = [(var.to_owned(), value.to_owned())];
        let err = Settings::load_from(None, env).unwrap_err();
        let walguard::Error::Settings { source, .. } = &err else {
            panic!("{var}: expected a settings error, got {err:?}");
        };
        assert_eq!(source.key(), Some(key), "{var}: {err:?}");
        let chain = walguard::error::error_chain(&err);
        assert!(chain.contains(key), "{var}: {chain}");
    }

    // The path goes to SQLite's open as a file name, never into SQL.
    let dir = tempfile::tempdir().unwrap();
    let odd = dir.path().join("x.db'; DROP TABLE t; --");
    let guard = WalGuard::builder(settings_at(&odd))
        .db_placement(Placement::Current)
        .start()
        .unwrap();
    guard.db().execute("CREATE TABLE t (x)").await.unwrap();
    guard.shutdown().await.unwrap();
    assert!(odd.is_file(), "the file has exactly the configured name");
}

/// Peak resident memory of this process so far, in KiB (`VmHWM`).
// The burst's probe is a hook of feature `testing`.
#[cfg(feature = "testing")]
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

/// Case "overload burst": 100,000 writes from 2,048 concurrent senders
/// (twice the mailbox) at `DbActor` on its own thread. The lane fills
/// (a probe meets it full), senders wait instead of queueing without
/// bound, every write is acknowledged and committed, and the process's peak
/// memory grows by less than half of what the writes' bodies alone would
/// take queued. The probe sends without waiting (`DbHandle::try_execute`,
/// a hook of feature `testing`).
#[cfg(all(target_os = "linux", feature = "testing"))]
#[actix_rt::test]
async fn an_overload_burst_is_backpressured_and_every_write_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let guard = WalGuard::start(settings_at(&path)).unwrap();
    let db = guard.db().clone();
    db.execute("CREATE TABLE burst (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
        .await
        .unwrap();
    db.execute("CREATE TABLE probe (id INTEGER PRIMARY KEY)")
        .await
        .unwrap();
    let capacity = guard.settings().database.mailbox_capacity as u64;
    assert!(BURST_SENDERS > capacity);
    let before = peak_rss_kib();
    let started = Instant::now();

    let per_sender = BURST_WRITES / BURST_SENDERS;
    let extra = BURST_WRITES % BURST_SENDERS;
    let senders: Vec<_> = (0..BURST_SENDERS)
        .map(|s| {
            let db = db.clone();
            let writes = per_sender + u64::from(s < extra);
            actix_rt::spawn(async move {
                let mut acked = 0u64;
                for i in 0..writes {
                    let id = (s + i * BURST_SENDERS) as i64;
                    let stmt = Statement::new("INSERT INTO burst (id, body) VALUES (?1, ?2)")
                        .bind(id)
                        .bind(vec![(id % 251) as u8; BURST_BODY_BYTES]);
                    if db.execute(stmt).await.is_ok() {
                        acked += 1;
                    }
                }
                acked
            })
        })
        .collect();

    // A probe that does not wait: once the lane is full, its next request
    // is refused.
    let mut full_seen = false;
    for id in 0..10_000 {
        tokio::task::yield_now().await;
        let stmt = Statement::new("INSERT INTO probe (id) VALUES (?1)").bind(id);
        if db.try_execute(stmt).is_err() {
            full_seen = true;
            break;
        }
    }

    let mut acked = 0;
    for sender in senders {
        acked += sender.await.unwrap();
    }
    let took = started.elapsed();
    let grew = peak_rss_kib().saturating_sub(before);
    eprintln!(
        "burst: {acked} writes acknowledged in {took:.1?}; peak memory grew by {grew} KiB; \
         mailbox full seen: {full_seen}"
    );
    assert_eq!(acked, BURST_WRITES);
    assert!(full_seen, "the probe never found the mailbox full");
    assert!(
        grew < BURST_MEMORY_BOUND_KIB,
        "peak memory grew by {grew} KiB (bound {BURST_MEMORY_BOUND_KIB} KiB)"
    );
    let count = db.query("SELECT count(*) FROM burst").await.unwrap();
    assert_eq!(
        count.rows()[0][0],
        rusqlite::types::Value::Integer(BURST_WRITES as i64)
    );

    // Negative control: the same burst, every write spawned at once as a
    // task of its own (the lane bounds what waits inside it, not the
    // senders a program makes), queues without bound, and the measurement
    // sees it. The writes go to a table that does not exist, so draining
    // them costs no disk work.
    let before = peak_rss_kib();
    let unbounded_writes: Vec<_> = (0..BURST_WRITES)
        .map(|id| {
            let stmt = Statement::new("INSERT INTO unbounded (id, body) VALUES (?1, ?2)")
                .bind(id as i64)
                .bind(vec![(id % 251) as u8; BURST_BODY_BYTES]);
            let db = db.clone();
            actix_rt::spawn(async move { db.execute(stmt).await })
        })
        .collect();
    let unbounded = peak_rss_kib().saturating_sub(before);
    eprintln!("the same burst spawned at once: peak memory grew by {unbounded} KiB");
    assert!(
        unbounded > BURST_MEMORY_BOUND_KIB,
        "spawning at once grew the peak by only {unbounded} KiB: the measurement cannot tell"
    );
    for write in unbounded_writes {
        let _ = write.await.unwrap();
    }
    let report = guard.shutdown().await.unwrap();
    assert_eq!(report.db.writes_failed, BURST_WRITES);
}

/// Case "database locked exclusively by another process": a child process
/// holds the file in `locking_mode=EXCLUSIVE` after a write. `WalGuard::start`
/// fails after the busy timeout and well before twice it, with
/// `SQLITE_BUSY` and the path named; once the holder is gone, the same
/// settings start.
#[cfg(unix)]
#[actix_rt::test]
async fn a_database_locked_by_another_process_fails_start_within_the_busy_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut holder = spawn_holder(
        "lock_holder",
        LOCK_HOLDER_ENV,
        &path,
        "walguard-hostile: locked",
    );

    let mut settings = settings_at(&path);
    settings.database.busy_timeout = Duration::from_millis(500);
    let timeout = settings.database.busy_timeout;
    let started = Instant::now();
    let err = WalGuard::start(settings.clone()).unwrap_err();
    let took = started.elapsed();
    assert!(
        took >= timeout,
        "start gave up after {took:?}, before the busy timeout"
    );
    // A hang guard only: load can stretch the wait past a tight bound;
    // the exact timeout is `tests/core` `store::open::open_on_an_exclusively_locked_database_fails_within_the_busy_timeout`'s.
    assert!(took < 20 * timeout, "start took {took:?}: it hung");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert_eq!(code_of(&err), Some(ErrorCode::DatabaseBusy), "{err:?}");

    drop(holder.stdin.take()); // the holder exits on EOF
    holder.wait().unwrap();
    let guard = WalGuard::start(settings).unwrap();
    guard.shutdown().await.unwrap();
}

/// Starts this test binary again as a child that runs the ignored test
/// `test` with `env` set to `path`, and waits until it prints `ready` on
/// stderr. The child exits when its stdin closes (or is killed).
// The caller waits for the child it gets back.
#[allow(clippy::zombie_processes)]
fn spawn_holder(test: &str, env: &str, path: &Path, ready: &str) -> std::process::Child {
    let mut holder = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            test,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(env, path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(holder.stderr.take().unwrap());
    for line in stderr.lines() {
        if line.unwrap() == ready {
            return holder;
        }
    }
    panic!("the child {test} never printed {ready:?}");
}

/// The lock holder of the test above; does nothing unless its parent set
/// the environment.
#[test]
#[ignore = "the child process of a hostile test"]
fn lock_holder() {
    let Some(path) = std::env::var_os(LOCK_HOLDER_ENV) else {
        return;
    };
    let conn = rusqlite::Connection::open(path).unwrap();
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.execute_batch(
        "PRAGMA locking_mode=EXCLUSIVE; CREATE TABLE t (x); INSERT INTO t VALUES (1);",
    )
    .unwrap();
    eprintln!("walguard-hostile: locked");
    let mut sink = String::new();
    while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
}

/// The environment variable that makes `engine_holder` serve a database.
const ENGINE_HOLDER_ENV: &str = "WALGUARD_HOSTILE_ENGINE_DB";

/// Issue "neighbours", one engine per file, across processes: a child
/// process serves the database with `WalGuard`. A second engine here fails
/// at once with the path and the child's pid; readers and a plain SQLite
/// connection (what the `sqlite3` shell does) keep working; once the child
/// is killed with SIGKILL, the lock is gone and the engine starts.
#[cfg(unix)]
#[actix_rt::test]
async fn a_second_engine_in_another_process_is_refused_until_it_dies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut holder = spawn_holder(
        "engine_holder",
        ENGINE_HOLDER_ENV,
        &path,
        "walguard-hostile: serving",
    );

    // Refused at once, not after waiting on the file: with a busy timeout
    // of a minute, a start that waited cannot come in under half of it,
    // and a start that did not is far below it however loaded the machine.
    let mut settings = settings_at(&path);
    settings.database.busy_timeout = Duration::from_secs(60);
    let started = Instant::now();
    let err = WalGuard::start(settings).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "not at once: {:?}",
        started.elapsed()
    );
    match &err {
        Error::Db(walguard::Error::AlreadyServed { path: p, pid, .. }) => {
            assert_eq!(p, &path);
            assert_eq!(*pid, Some(holder.id()));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().contains(&format!("pid {}", holder.id())),
        "{err}"
    );
    // Readers keep working beside the served file.
    let reader = rusqlite::Connection::open(&path).unwrap();
    let rows: i64 = reader
        .query_row("SELECT count(*) FROM served", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1);
    drop(reader);

    // SIGKILL: the OS drops the lock with the process.
    holder.kill().unwrap();
    holder.wait().unwrap();
    let guard = WalGuard::start(settings_at(&path)).unwrap();
    let rows = guard
        .db()
        .query("SELECT count(*) FROM served")
        .await
        .unwrap();
    assert_eq!(rows.rows()[0][0], rusqlite::types::Value::Integer(1));
    guard.shutdown().await.unwrap();
}

/// The engine holder of the test above; does nothing unless its parent set
/// the environment. Serves the database until killed.
#[test]
#[ignore = "the child process of a hostile test"]
fn engine_holder() {
    let Some(path) = std::env::var_os(ENGINE_HOLDER_ENV) else {
        return;
    };
    actix::System::new().block_on(async move {
        let guard = WalGuard::start(settings_at(Path::new(&path))).unwrap();
        guard.db().execute("CREATE TABLE served (x)").await.unwrap();
        guard
            .db()
            .execute("INSERT INTO served VALUES (1)")
            .await
            .unwrap();
        eprintln!("walguard-hostile: serving");
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
        guard.shutdown().await.unwrap();
    });
}
