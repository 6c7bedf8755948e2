//! POWER LOSS and PROCESS KILL in the middle of the migrations at start.
//!
//! A database at schema version 1 (with rows) is started with three
//! migrations; migration 2 adds a column, a table and enough rows to take
//! many I/O operations (or, for the kill, a good part of a second), and
//! migration 3 builds an index on them.
//!
//! - **Power loss** ([`power_campaign`]): through `walguard::testing`'s VFS
//!   shim, the power is cut at every I/O operation of the start in turn
//!   (the same steps as `WalGuardBuilder::start`: the future check, the
//!   open, [`Store::migrate`] and its TRUNCATE), and the durable images are
//!   put back, exactly or torn.
//! - **Process kill** ([`kill_campaign`]): a child process (this test
//!   binary, run again as the ignored test `migration_kill_child`) runs
//!   `WalGuard::start_with_migrations`; the parent waits a random time,
//!   freezes it, reads from `/proc/locks` whether it held SQLite's WAL write
//!   lock (the migrations' transaction) at that instant, and SIGKILLs it.
//!
//! After each cut or kill the file is checked with SQLite's default VFS
//! ([`check`]): integrity is ok, the version is 1 or 3 and never between,
//! the schema is exactly that version's, the rows of version 1 are intact.
//! Then a new start ([`rerun`]) brings it to version 3 and migration 2 runs
//! again whole: exactly its rows, once.

// The kill campaign is Linux-only (it reads /proc/locks and uses the kill
// lab's helpers); elsewhere its pieces are unused.
#![cfg_attr(not(target_os = "linux"), allow(dead_code, unused_imports))]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::Connection;
use walguard::settings::DatabaseSettings;
use walguard::testing::{PowerLossVfs, RestoreMode};
use walguard::{Migrations, Settings, Statement, Store};

/// Rows of version 1, written before the migrations.
const BASE_ROWS: i64 = 20;

/// Rows migration 2 adds under the power-cut campaign (a few hundred I/O
/// operations in all).
pub(crate) const POWER_ITEMS: i64 = 1_500;

/// Rows migration 2 adds under the kill campaign (a few hundred
/// milliseconds of migration in a debug build).
const KILL_ITEMS: i64 = 150_000;

/// Set in the child's environment: the database path.
pub(crate) const CHILD_DB_ENV: &str = "WALGUARD_MIGRATION_CHILD_DB";

/// Prefix of the child's protocol lines on stderr.
const PREFIX: &str = "walguard-migration-lab:";

/// Longest a child may live, should its parent never kill it.
const CHILD_LIFETIME: Duration = Duration::from_secs(60);

/// Longest the parent waits for a line of the child.
const LINE_TIMEOUT: Duration = Duration::from_secs(60);

/// The engine's migrations: version 1, 2 (`items`, `POWER_ITEMS` or
/// `KILL_ITEMS` rows), 3.
pub(crate) fn migrations(items: i64) -> Migrations {
    Migrations::new(vec![
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT NOT NULL)".to_owned(),
        format!(
            "ALTER TABLE orders ADD COLUMN qty INTEGER NOT NULL DEFAULT 1;\n\
             CREATE TABLE items (id INTEGER PRIMARY KEY, body BLOB NOT NULL);\n\
             INSERT INTO items (id, body)\n\
               WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {items})\n\
               SELECT i, zeroblob(64) || CAST(i AS BLOB) FROM n;"
        ),
        "CREATE INDEX items_body ON items (body)".to_owned(),
    ])
}

/// A database at version 1 with [`BASE_ROWS`] rows, closed cleanly.
pub(crate) fn base(path: &Path) -> walguard::Result<()> {
    let mut store = Store::open(&DatabaseSettings::at(path))?;
    let first = Migrations::new(migrations(0).iter().take(1).map(|m| m.sql().to_owned()));
    store.migrate(&first)?;
    for i in 1..=BASE_ROWS {
        store.execute(
            &Statement::new("INSERT INTO orders (id, item) VALUES (?1, ?2)")
                .bind(i)
                .bind(format!("order {i}")),
        )?;
    }
    store.close().map_err(|(_, e)| e)
}

fn query_i64(conn: &Connection, sql: &str) -> Result<i64, String> {
    conn.query_row(sql, [], |r| r.get(0))
        .map_err(|e| format!("{sql}: {e}"))
}

/// What a cut or a kill left, checked with SQLite's default VFS: the
/// schema version (1 or 3), or why the file is wrong.
pub(crate) fn check(path: &Path, items: i64) -> Result<i64, String> {
    let conn = Connection::open(path).map_err(|e| e.to_string())?;
    // Leave the WAL as it is: the next start recovers it itself.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .map_err(|e| e.to_string())?;
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if integrity != "ok" {
        return Err(format!("integrity_check: {integrity}"));
    }
    let version = query_i64(&conn, "PRAGMA user_version")?;
    let has = |kind: &str, name: &str| {
        query_i64(
            &conn,
            &format!(
                "SELECT count(*) FROM sqlite_schema WHERE type = '{kind}' AND name = '{name}'"
            ),
        )
    };
    let qty = query_i64(
        &conn,
        "SELECT count(*) FROM pragma_table_info('orders') WHERE name = 'qty'",
    )?;
    let schema = (qty, has("table", "items")?, has("index", "items_body")?);
    match (version, schema) {
        (1, (0, 0, 0)) => {}
        (3, (1, 1, 1)) => {
            let n = query_i64(&conn, "SELECT count(*) FROM items")?;
            if n != items {
                return Err(format!("version 3 with {n} items, not {items}"));
            }
        }
        _ => {
            return Err(format!(
                "version {version} and schema (qty column, items table, index) {schema:?} disagree"
            ));
        }
    }
    let orders = query_i64(&conn, "SELECT count(*) FROM orders")?;
    let intact = query_i64(
        &conn,
        "SELECT count(*) FROM orders WHERE item = 'order ' || id",
    )?;
    if orders != BASE_ROWS || intact != BASE_ROWS {
        return Err(format!("{orders} orders, {intact} intact, not {BASE_ROWS}"));
    }
    Ok(version)
}

/// A new start after the cut: from `found` to 3, migration 2 whole.
pub(crate) fn rerun(path: &Path, found: i64, items: i64) -> Result<(), String> {
    let mut store = Store::open(&DatabaseSettings::at(path)).map_err(|e| e.to_string())?;
    let report = store
        .migrate(&migrations(items))
        .map_err(|e| e.to_string())?;
    store.close().map_err(|(_, e)| e.to_string())?;
    if (report.from() as i64, report.to()) != (found, 3) {
        return Err(format!(
            "the rerun went {} -> {}",
            report.from(),
            report.to()
        ));
    }
    match check(path, items)? {
        3 => Ok(()),
        v => Err(format!("after the rerun: version {v}")),
    }
}

/// What a power-cut campaign saw.
#[derive(Debug, Default)]
pub(crate) struct PowerSummary {
    pub(crate) cuts: u64,
    /// Cuts after which the file was still at version 1.
    pub(crate) at_version_1: u64,
    /// Cuts after which the migrations were all there.
    pub(crate) at_version_3: u64,
    pub(crate) torn: u64,
    pub(crate) failures: Vec<String>,
}

/// The start's steps, through the shim: the future check, the open, the
/// migrations and their TRUNCATE.
fn start_through(vfs: &PowerLossVfs, path: &Path, items: i64) -> walguard::Result<()> {
    let settings = DatabaseSettings::at(path);
    let migrations = migrations(items);
    migrations.refuse_future(&settings, Some(vfs.name()))?;
    let mut store = Store::open_with_vfs(&settings, vfs.name())?;
    let result = store.migrate(&migrations).map(drop);
    drop(store);
    result
}

/// Cuts the power at every I/O operation of the start in turn (one in
/// `stride`), on a fresh copy of the version-1 database each time;
/// alternate cuts restore torn images.
pub(crate) fn power_campaign(seed: u64, items: i64, stride: u64) -> PowerSummary {
    let mut summary = PowerSummary::default();
    let fail = |summary: &mut PowerSummary, what: String| summary.failures.push(what);
    let Ok(dir) = tempfile::tempdir() else {
        fail(&mut summary, "no temp dir".to_owned());
        return summary;
    };
    let template = dir.path().join("template.db");
    if let Err(e) = base(&template) {
        fail(&mut summary, format!("base: {e}"));
        return summary;
    }
    // Count the start's operations once.
    let total = {
        let path = dir.path().join("count.db");
        let vfs = PowerLossVfs::register().expect("register the shim");
        std::fs::copy(&template, &path).expect("copy");
        if let Err(e) = start_through(&vfs, &path, items) {
            fail(&mut summary, format!("uncut start: {e}"));
            return summary;
        }
        vfs.io_ops()
    };
    let mut rng = StdRng::seed_from_u64(seed);
    for cut in (1..=total).step_by(stride.max(1) as usize) {
        summary.cuts += 1;
        let path = dir.path().join(format!("cut-{cut}.db"));
        std::fs::copy(&template, &path).expect("copy");
        let vfs = PowerLossVfs::register().expect("register the shim");
        vfs.crash_at(cut);
        let _ = start_through(&vfs, &path, items);
        let torn = rng.random_bool(0.5);
        let mode = if torn {
            summary.torn += 1;
            RestoreMode::Torn { seed: rng.random() }
        } else {
            RestoreMode::Exact
        };
        if let Err(e) = vfs.restore_durable_images_with(mode) {
            fail(&mut summary, format!("cut {cut}: restore: {e}"));
            continue;
        }
        drop(vfs);
        let outcome = check(&path, items).and_then(|version| {
            rerun(&path, version, items)?;
            Ok(version)
        });
        match outcome {
            Ok(1) => summary.at_version_1 += 1,
            Ok(_) => summary.at_version_3 += 1,
            Err(e) => fail(
                &mut summary,
                format!("cut {cut} of {total} (seed {seed}, torn: {torn}): {e}"),
            ),
        }
        let _ = std::fs::remove_file(&path);
    }
    summary
}

/// The child: starts with the migrations, says so, and waits to be killed.
#[cfg(target_os = "linux")]
pub(crate) fn child_main(path: &Path) {
    crate::kill::exit_with_parent(CHILD_LIFETIME);
    let settings = Settings::for_database(path);
    actix::System::new().block_on(async move {
        eprintln!("{PREFIX} starting");
        let started = Instant::now();
        let guard =
            walguard_actors::WalGuard::start_with_migrations(settings, migrations(KILL_ITEMS))
                .expect("start with migrations");
        eprintln!("{PREFIX} migrated {}", started.elapsed().as_micros());
        // Serve until killed.
        std::future::pending::<()>().await;
        drop(guard);
    });
}

/// What a kill campaign saw.
#[derive(Debug, Default)]
pub(crate) struct KillSummary {
    pub(crate) kills: u64,
    /// Kills while the child held the WAL write lock: inside the
    /// migrations' transaction (or the TRUNCATE after it, which takes the
    /// lock too).
    pub(crate) in_migration: u64,
    pub(crate) at_version_1: u64,
    pub(crate) at_version_3: u64,
    pub(crate) failures: Vec<String>,
}

/// Runs one child on `path` and waits for `line` (a prefix), or gives up.
#[cfg(target_os = "linux")]
struct Child {
    guard: crate::kill::ChildGuard,
    pid: u32,
    lines: mpsc::Receiver<String>,
}

#[cfg(target_os = "linux")]
impl Child {
    fn spawn(path: &Path) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .args([
                "--exact",
                "migration_kill_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DB_ENV, path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn: {e}"))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let pid = child.id();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Self {
            guard: crate::kill::ChildGuard(child),
            pid,
            lines,
        })
    }

    /// The rest of the first protocol line starting with `word`.
    fn wait_for(&self, word: &str) -> Result<String, String> {
        let deadline = Instant::now() + LINE_TIMEOUT;
        let want = format!("{PREFIX} {word}");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(&want) {
                        return Ok(rest.trim().to_owned());
                    }
                }
                Err(e) => return Err(format!("no {word:?} line from the child: {e}")),
            }
        }
    }
}

/// Starts a child on `path`, kills it `delay` after it said `starting`,
/// checks the file and starts again: whether the kill landed inside the
/// migrations' transaction, and the version it left.
#[cfg(target_os = "linux")]
fn kill_once(path: &Path, delay: Duration) -> Result<(bool, i64), String> {
    let child = Child::spawn(path)?;
    child.wait_for("starting")?;
    std::thread::sleep(delay);
    let (in_write, _) = crate::kill::freeze_and_look(child.pid, path)?;
    drop(child.guard); // SIGKILL, then reap
    let version = check(path, KILL_ITEMS)?;
    rerun(path, version, KILL_ITEMS)?;
    Ok((in_write, version))
}

/// Kills `kills` children in the middle of their start, each on a fresh
/// copy of the version-1 database; the delays are spread over how long an
/// unkilled start took to migrate.
#[cfg(target_os = "linux")]
pub(crate) fn kill_campaign(seed: u64, kills: u64) -> KillSummary {
    let mut summary = KillSummary::default();
    let Ok(dir) = tempfile::tempdir() else {
        summary.failures.push("no temp dir".to_owned());
        return summary;
    };
    let template = dir.path().join("template.db");
    if let Err(e) = base(&template) {
        summary.failures.push(format!("base: {e}"));
        return summary;
    }
    // One start, not killed: how long the migrations take from "starting".
    let span = {
        let path = dir.path().join("unkilled.db");
        std::fs::copy(&template, &path).expect("copy");
        let measured = Child::spawn(&path).and_then(|child| {
            child.wait_for("starting")?;
            let micros = child.wait_for("migrated")?;
            micros
                .parse::<u64>()
                .map_err(|e| format!("bad line {micros:?}: {e}"))
        });
        match measured {
            Ok(micros) => Duration::from_micros(micros),
            Err(e) => {
                summary.failures.push(format!("unkilled start: {e}"));
                return summary;
            }
        }
    };
    let mut rng = StdRng::seed_from_u64(seed);
    for i in 0..kills {
        summary.kills += 1;
        let path = dir.path().join(format!("kill-{i}.db"));
        std::fs::copy(&template, &path).expect("copy");
        let delay = span.mul_f64(rng.random_range(0.0..0.9));
        match kill_once(&path, delay) {
            Ok((in_write, version)) => {
                summary.in_migration += u64::from(in_write);
                if version == 1 {
                    summary.at_version_1 += 1;
                } else {
                    summary.at_version_3 += 1;
                }
            }
            Err(e) => summary.failures.push(format!(
                "kill {i} (seed {seed}, file {}): {e}",
                path.display()
            )),
        }
        let _ = std::fs::remove_file(&path);
    }
    summary
}

/// Migrations that returned are durable, even when the TRUNCATE after them
/// could not complete: a reader pins the database, the start returns, the
/// power goes out at once. The commit was fsynced (`synchronous=FULL` for
/// it), so version 3 and every row of migration 2 survive.
pub(crate) fn durable_when_returned(items: i64) -> Result<String, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("pinned.db");
    base(&path).map_err(|e| e.to_string())?;
    let reader = Connection::open(&path).map_err(|e| e.to_string())?;
    reader
        .execute_batch("BEGIN; SELECT count(*) FROM orders;")
        .map_err(|e| e.to_string())?;
    let vfs = PowerLossVfs::register().map_err(|e| e.to_string())?;
    let settings = DatabaseSettings::at(&path);
    let mut store = Store::open_with_vfs(&settings, vfs.name()).map_err(|e| e.to_string())?;
    let report = store
        .migrate(&migrations(items))
        .map_err(|e| e.to_string())?;
    let outcome = report
        .checkpoint()
        .map_or("none", |c| c.outcome().as_str())
        .to_owned();
    if outcome == "completed" {
        return Err("the pinned reader did not hold the truncate back".to_owned());
    }
    vfs.crash_now();
    drop(store);
    drop(reader);
    vfs.restore_durable_images().map_err(|e| e.to_string())?;
    match check(&path, items)? {
        3 => Ok(outcome),
        v => Err(format!(
            "migrations acknowledged at version 3, version {v} after the power cut"
        )),
    }
}
