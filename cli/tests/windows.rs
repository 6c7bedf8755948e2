//! Windows: the console close the seed was written for, and the process
//! kill it feared. Built and run on Windows only (under Wine in CI,
//! `.ci/windows.sh`); elsewhere this test binary is empty.
//!
//! - CONSOLE CLOSE: `CTRL_CLOSE_EVENT` delivered to `walguard run` and to an
//!   engine using the library hook (`walguard_actors::console`): the clean
//!   shutdown runs inside Windows' 5 s, every acknowledged write is in the
//!   file, the WAL is empty, `integrity_check` is ok.
//! - PROCESS KILL: `TerminateProcess` of an engine mid-write (what Windows
//!   does when the 5 s run out): every acknowledged write survives.
//! - A FILE THAT IS GONE: SQLite's Windows VFS opens the database without
//!   `FILE_SHARE_DELETE`, so it cannot be deleted, renamed or replaced
//!   while the engine has it open.
//!
//! The close event is delivered the way Windows itself delivers it: a thread
//! in the target process started on `kernel32!CtrlRoutine` with the event
//! as its argument. `GenerateConsoleCtrlEvent`, the documented way, needs a
//! console shared with the target, which a headless run does not have.
//! The engines print each row id once its write was acknowledged, and the
//! parent checks those ids against the file.

#![cfg(windows)]
// `deliver_console_event` is the one piece of FFI here: CreateRemoteThread
// on CtrlRoutine, which no safe wrapper offers. Each unsafe block says why
// it is sound.
#![allow(unsafe_code)]

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader};
use std::os::windows::io::AsRawHandle as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use walguard::{Settings, Statement};
use walguard_actors::WalGuard;
use walguard_actors::console::{self, ConsoleEvents};
use windows_sys::Win32::Foundation::{CloseHandle, WAIT_OBJECT_0};
use windows_sys::Win32::System::Console::CTRL_CLOSE_EVENT;
use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleA, GetProcAddress};
use windows_sys::Win32::System::Threading::{
    CreateRemoteThread, LPTHREAD_START_ROUTINE, WaitForSingleObject,
};

/// Set in a child's environment: run as an engine on this database.
const CHILD_DB_ENV: &str = "WALGUARD_WINDOWS_CHILD_DB";
/// Set in a child's environment: `hook` (stop on a console event through
/// the library hook) or `write` (write until killed).
const CHILD_MODE_ENV: &str = "WALGUARD_WINDOWS_CHILD_MODE";

/// Markers of the protocol on a child's stdout. A marker may follow the
/// test harness's own `test windows_child ... ` on the same line.
const ACK: &str = "walguard-ack ";
const REPORT: &str = "walguard-report ";

/// Acknowledged writes to wait for before the event or the kill.
const WRITES_BEFORE_STOP: usize = 200;
/// Longest the parent waits for a child to get there, or to exit.
const PATIENCE: Duration = Duration::from_secs(60);
/// Kills in the `TerminateProcess` test, on one file.
const KILLS: usize = 3;

const TABLE_SQL: &str =
    "CREATE TABLE IF NOT EXISTS acked (id INTEGER PRIMARY KEY, body TEXT NOT NULL)";

// ---------------------------------------------------------------------------
// The console close
// ---------------------------------------------------------------------------

/// `CTRL_CLOSE_EVENT` to `walguard run`: the summary says `console-close`,
/// the shutdown fits in Windows' 5 s, and the file holds exactly the writes
/// the summary counts, with an empty WAL.
#[test]
fn console_close_stops_walguard_run_within_the_windows_budget() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_walguard"))
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .args(["run", "--interval", "200ms", "--log-format", "json"])
        .arg("--db")
        .arg(&db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = drain(child.stderr.take().unwrap());

    // The session is live once the engine's rows are there.
    wait_for(&mut child, || demo_events(&db) >= WRITES_BEFORE_STOP as i64);

    let sent = Instant::now();
    deliver_console_event(&child, CTRL_CLOSE_EVENT);
    let status = wait_exit(&mut child);
    let took = sent.elapsed();
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    let stderr = stderr.join().unwrap();

    assert!(status.success(), "exit {status:?}\n{stdout}\n{stderr}");
    assert!(
        took < walguard::settings::SHUTDOWN_BUDGET,
        "took {took:?}\n{stderr}"
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["stopped_by"], "console-close", "{summary}");
    assert_eq!(summary["shutdown_outcome"], "completed", "{summary}");
    assert_eq!(summary["write_errors"], 0, "{summary}");
    assert_eq!(summary["exposed_commits"], 0, "{summary}");
    assert!(wal_is_empty(&db), "WAL left behind");
    assert_eq!(integrity(&db), "ok");
    // The demo writes one event row per acknowledged write.
    assert_eq!(
        Some(demo_events(&db)),
        summary["writes"].as_i64(),
        "{summary}"
    );
}

/// `CTRL_CLOSE_EVENT` to an engine that uses the library hook
/// (`console::shutdown_on_console_event`): every id it was told was written
/// is in the file, nothing else is, the WAL is empty, the report says so.
#[test]
fn console_close_runs_the_library_hook_and_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hook.db");
    let mut child = spawn_child(&db, "hook");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = BTreeSet::new();
    while acked.len() < WRITES_BEFORE_STOP {
        let line = lines.next().expect("child exited early").unwrap();
        if let Some(id) = ack_in(&line) {
            acked.insert(id);
        }
    }

    let sent = Instant::now();
    deliver_console_event(&child, CTRL_CLOSE_EVENT);
    let mut report = None;
    for line in lines {
        let line = line.unwrap();
        if let Some(id) = ack_in(&line) {
            acked.insert(id);
        } else if let Some(rest) = line.split_once(REPORT).map(|(_, rest)| rest) {
            report = Some(rest.to_owned());
        }
    }
    let status = wait_exit(&mut child);
    let took = sent.elapsed();

    assert!(status.success(), "exit {status:?}");
    assert!(took < walguard::settings::SHUTDOWN_BUDGET, "took {took:?}");
    let report = report.expect("no report line");
    assert!(
        report.contains("event=console-close") && report.contains("truncate=completed"),
        "{report}"
    );
    let rows = rows(&db);
    let lost: Vec<_> = acked.difference(&rows).collect();
    assert!(lost.is_empty(), "acknowledged and lost: {lost:?}");
    let unacked: Vec<_> = rows.difference(&acked).collect();
    assert!(
        unacked.is_empty(),
        "in the file, never acknowledged: {unacked:?}"
    );
    assert!(
        report.contains(&format!("rows={}", rows.len())),
        "{report} vs {} rows",
        rows.len()
    );
    assert!(wal_is_empty(&db), "WAL left behind");
    assert_eq!(integrity(&db), "ok");
}

// ---------------------------------------------------------------------------
// The kill
// ---------------------------------------------------------------------------

/// PROCESS KILL: `TerminateProcess` mid-write, three times on one file (the
/// seed's incident: Windows ending the process when its 5 s run out). Each
/// engine recovers the last one's WAL on open; after each kill every
/// acknowledged id is in the file and `integrity_check` is ok.
#[test]
fn terminate_process_mid_write_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("killed.db");
    let mut acked = BTreeSet::new();
    for kill in 0..KILLS {
        let mut child = spawn_child(&db, "write");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut this_run = 0;
        while this_run < WRITES_BEFORE_STOP + 50 * kill {
            let line = lines.next().expect("child exited early").unwrap();
            if let Some(id) = ack_in(&line) {
                acked.insert(id);
                this_run += 1;
            }
        }
        child.kill().unwrap(); // TerminateProcess
        // What the child printed before it died was acknowledged too.
        for line in lines {
            if let Some(id) = ack_in(&line.unwrap()) {
                acked.insert(id);
            }
        }
        let status = child.wait().unwrap();
        assert!(!status.success(), "kill {kill}: the child was not killed");

        assert_eq!(integrity(&db), "ok", "kill {kill}");
        let rows = rows(&db);
        let lost: Vec<_> = acked.difference(&rows).collect();
        assert!(
            lost.is_empty(),
            "kill {kill}: acknowledged and lost: {lost:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// A file that is gone
// ---------------------------------------------------------------------------

/// On Windows the open database cannot go away: SQLite opens it without
/// `FILE_SHARE_DELETE`, so deleting, renaming or replacing it fails while
/// `WalGuard` runs, and writes go on to the file at the path.
#[actix_rt::test]
async fn the_open_database_cannot_be_deleted_renamed_or_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("held.db");
    let guard = WalGuard::start(Settings::for_database(&db)).unwrap();
    guard.db().execute(TABLE_SQL).await.unwrap();

    let other = dir.path().join("other.db");
    std::fs::write(&other, b"not this one").unwrap();
    assert!(std::fs::remove_file(&db).is_err(), "deleted while open");
    assert!(
        std::fs::rename(&db, dir.path().join("moved.db")).is_err(),
        "renamed while open"
    );
    assert!(std::fs::rename(&other, &db).is_err(), "replaced while open");

    guard
        .db()
        .execute(Statement::new(
            "INSERT INTO acked (id, body) VALUES (1, 'row 1')",
        ))
        .await
        .unwrap();
    let report = guard.shutdown().await.unwrap();
    assert!(!report.db.file_gone, "{report}");
    assert_eq!(rows(&db), BTreeSet::from([1]));
}

// ---------------------------------------------------------------------------
// The children
// ---------------------------------------------------------------------------

/// Not a test on its own: the engine a parent test runs in a child process
/// (this binary again, with [`CHILD_DB_ENV`] set). It writes rows one by
/// one and prints `ack ID` after each acknowledged write; in `hook` mode it
/// stops on a console event through the library hook and prints the report.
#[test]
#[ignore = "the child process of the console-event tests"]
fn windows_child() {
    let Some(db) = std::env::var_os(CHILD_DB_ENV) else {
        return;
    };
    let mode = std::env::var(CHILD_MODE_ENV).unwrap();
    let db = PathBuf::from(db);
    actix::System::new().block_on(async move {
        let events = ConsoleEvents::listen().unwrap();
        let guard = WalGuard::start(Settings::for_database(&db)).unwrap();
        guard.start_checkpoint_loop();
        let handle = guard.db().clone();
        handle.execute(TABLE_SQL).await.unwrap();
        let writer = actix::spawn(async move {
            let last = handle
                .query("SELECT coalesce(max(id), 0) FROM acked")
                .await
                .unwrap();
            let rusqlite::types::Value::Integer(mut id) = last.rows()[0][0] else {
                panic!("max(id) is not an integer");
            };
            loop {
                id += 1;
                let insert = Statement::new("INSERT INTO acked (id, body) VALUES (?1, ?2)")
                    .bind(id)
                    .bind(format!("row {id}"));
                if handle.execute(insert).await.is_err() {
                    // Shut down: no more writes are taken.
                    return;
                }
                println!("{ACK}{id}");
            }
        });
        if mode == "hook" {
            let stopped = console::shutdown_on_console_event(guard, events)
                .await
                .unwrap();
            let _ = writer.await;
            let truncate = stopped
                .report
                .shutdown_checkpoint
                .as_ref()
                .map_or("none", |r| r.outcome().as_str());
            let rows = stopped.report.db.writes_acknowledged - 1; // the CREATE TABLE
            println!(
                "{REPORT}event={} truncate={truncate} rows={rows} took_ms={}",
                stopped.event,
                stopped.took.as_millis()
            );
        } else {
            let _ = writer.await;
        }
    });
}

fn spawn_child(db: &Path, mode: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "windows_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB_ENV, db)
        .env(CHILD_MODE_ENV, mode)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Delivers a console control `event` to `child` the way Windows does: a
/// thread in the child started on `kernel32!CtrlRoutine` with the event as
/// its argument. Waits until that thread has called the child's handlers
/// (tokio's never returns from a close event: then until it is parked).
fn deliver_console_event(child: &Child, event: u32) {
    // SAFETY: both names are NUL-terminated literals; kernel32 is loaded in
    // every Windows process, and the handle it returns needs no closing.
    let routine = unsafe {
        let kernel32 = GetModuleHandleA(c"kernel32.dll".as_ptr().cast());
        assert!(!kernel32.is_null(), "kernel32 is not loaded");
        GetProcAddress(kernel32, c"CtrlRoutine".as_ptr().cast())
    };
    let routine = routine.expect("kernel32 exports no CtrlRoutine");
    // SAFETY: `CtrlRoutine` has the shape of a thread start routine
    // (`DWORD WINAPI CtrlRoutine(LPVOID)`), which is how Windows itself
    // starts it in a process that gets a console event.
    let start: LPTHREAD_START_ROUTINE = Some(unsafe {
        std::mem::transmute::<
            unsafe extern "system" fn() -> isize,
            unsafe extern "system" fn(*mut std::ffi::c_void) -> u32,
        >(routine)
    });
    // SAFETY: `child` owns a live process handle with all access rights
    // (std creates it); kernel32, and so `CtrlRoutine`, is mapped at the
    // same address in every process of this session; the argument is the
    // event code itself, not a pointer; the thread handle is closed below.
    let thread = unsafe {
        CreateRemoteThread(
            child.as_raw_handle(),
            std::ptr::null(),
            0,
            start,
            event as usize as *const std::ffi::c_void,
            0,
            std::ptr::null_mut(),
        )
    };
    assert!(
        !thread.is_null(),
        "CreateRemoteThread: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: `thread` is the live handle just returned, closed once.
    unsafe {
        // The handler thread never returns for a close event; a short wait
        // only lets it start.
        let _ = WaitForSingleObject(thread, 100) == WAIT_OBJECT_0;
        CloseHandle(thread);
    }
}

/// The row id of an `ack` line.
fn ack_in(line: &str) -> Option<i64> {
    line.split_once(ACK)
        .map(|(_, id)| id.trim().parse().unwrap())
}

/// Waits for `child` to exit, at most [`PATIENCE`].
fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > PATIENCE {
            let _ = child.kill();
            panic!("the child did not exit within {PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `ready` holds, at most [`PATIENCE`], checking that `child`
/// is still running.
fn wait_for(child: &mut Child, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the child exited early: {status:?}");
        }
        if started.elapsed() > PATIENCE {
            let _ = child.kill();
            panic!("the child did not get ready within {PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads a child's stderr to the end on a thread of its own, so the child
/// never blocks on a full pipe.
fn drain(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// Opens `db` read-only, closed again before returning (an open reader
/// would keep the writer from removing its WAL at close).
fn reader(db: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

/// Rows of the `walguard run` demo's event table; 0 until it exists.
fn demo_events(db: &Path) -> i64 {
    if !db.exists() {
        return 0;
    }
    reader(db)
        .query_row("SELECT count(*) FROM walguard_demo_events", [], |r| {
            r.get(0)
        })
        .unwrap_or(0)
}

fn rows(db: &Path) -> BTreeSet<i64> {
    let conn = reader(db);
    let mut stmt = conn.prepare("SELECT id, body FROM acked").unwrap();
    stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
        .map(|row| {
            let (id, body) = row.unwrap();
            assert_eq!(body, format!("row {id}"), "torn row");
            id
        })
        .collect()
}

fn integrity(db: &Path) -> String {
    reader(db)
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

fn wal_is_empty(db: &Path) -> bool {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(PathBuf::from(wal)).map_or(true, |m| m.len() == 0)
}
