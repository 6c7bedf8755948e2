//! The synthetic engine: state traffic the way a real engine sends it.
//!
//! Each write is one transaction through [`DbHandle`]: an upsert of a keyed
//! record (the live state, e.g. an order) and an appended event (its
//! history). Keys repeat, so `walguard_demo_records` stays small while
//! `walguard_demo_events` grows by exactly one row per acknowledged write.
//!
//! The engine writes only into a database that is new or holds nothing but
//! its own `walguard_demo_*` objects ([`check_target`]), so pointing
//! `walguard run` at a real database by mistake changes nothing.

use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use walguard::files;

use rusqlite::Connection;
use tokio::time::{Instant, MissedTickBehavior};
use walguard::Statement;
use walguard::settings::DatabaseSettings;
use walguard_actors::DbHandle;

use crate::dbfile;
use crate::demo::{DEMO_PREFIX, SCHEMA};
use crate::error::{self, CliError};

/// Distinct record keys the engine updates.
const KEYS: u64 = 1000;

/// How often the pacer wakes: writes due since the last wake go out then.
const PACE_TICK: Duration = Duration::from_millis(10);

/// What `run` says about a write lock held elsewhere.
const LOCKED: &str = "walguard run would wait on it for every write; stop that writer first";

/// Checks, before a single write, that the engine may write to `path`:
///
/// - a path that does not exist is new (unless a `-wal` or `-journal` of
///   that name is left from another database);
/// - an existing file must be an SQLite database in WAL mode (the command
///   never converts a rollback-journal database), hold nothing but
///   `walguard_demo_*` tables and their indexes and triggers (read through
///   [`dbfile::open_read_only`], which changes nothing), and not be
///   write-locked by another connection ([`dbfile::probe_write_lock`]).
///
/// # Errors
///
/// [`CliError::Remains`], [`CliError::NotWal`], [`CliError::NotDemo`],
/// [`CliError::Locked`], or whatever [`dbfile::check`] refuses.
pub(crate) fn check_target(path: &Path) -> Result<(), CliError> {
    if path.symlink_metadata().is_err() {
        for sibling in [files::wal_path(path), files::journal_path(path)] {
            if sibling.symlink_metadata().is_ok() {
                return Err(CliError::Remains {
                    path: path.to_path_buf(),
                    sibling,
                });
            }
        }
        return Ok(());
    }
    let header = dbfile::check(path)?;
    if !header.wal {
        return Err(CliError::NotWal {
            path: path.to_path_buf(),
        });
    }
    let (conn, _) = dbfile::open_read_only(path, header)?;
    let found =
        foreign_objects(&conn).map_err(dbfile::sqlite_error(path, "read the schema", LOCKED))?;
    drop(conn);
    if !found.is_empty() {
        return Err(CliError::NotDemo {
            path: path.to_path_buf(),
            found: describe(&found),
        });
    }
    dbfile::probe_write_lock(path, LOCKED)
}

/// Schema objects that are not the engine's: `(type, name)`, in order.
/// Litestream's own bookkeeping tables (`_litestream_seq`,
/// `_litestream_lock`), which it adds to every database it replicates, and
/// walguard's replica identity are not foreign.
fn foreign_objects(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare(
        "SELECT type, name FROM sqlite_schema
         WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
           AND name NOT IN ('_litestream_seq', '_litestream_lock', ?2)
           AND (substr(name, 1, length(?1)) <> ?1 OR substr(tbl_name, 1, length(?1)) <> ?1)
         ORDER BY type, name",
    )?;
    let rows = stmt.query_map(
        [DEMO_PREFIX, walguard::replication::identity::IDENTITY_TABLE],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    rows.collect()
}

/// `table events, index events_by_key` (the first few, then a count).
fn describe(found: &[(String, String)]) -> String {
    const SHOWN: usize = 5;
    let mut text: Vec<String> = found
        .iter()
        .take(SHOWN)
        .map(|(kind, name)| format!("{kind} {name}"))
        .collect();
    if found.len() > SHOWN {
        text.push(format!("and {} more", found.len() - SHOWN));
    }
    text.join(", ")
}

/// Creates the schema on a short-lived connection.
///
/// # Errors
///
/// The core error naming what failed (open, statement, close).
pub(crate) fn prepare(settings: &DatabaseSettings) -> Result<(), walguard::Error> {
    let mut store = walguard::Store::open(settings)?;
    for sql in SCHEMA {
        store.execute(&Statement::new(*sql))?;
    }
    store.close().map_err(|(_, e)| e)
}

/// Counts shared between the engine task and the status display (both run
/// on the system's thread).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) acknowledged: Cell<u64>,
    pub(crate) failed: Cell<u64>,
    stop: Cell<bool>,
}

impl Counters {
    /// Asks the engine to stop after the write in flight.
    pub(crate) fn stop(&self) {
        self.stop.set(true);
    }
}

/// Sends `rate` writes per second until [`Counters::stop`].
pub(crate) async fn run(db: DbHandle, rate: u32, counters: Rc<Counters>) {
    if rate == 0 {
        return;
    }
    let start = Instant::now();
    let mut pacer = tokio::time::interval(PACE_TICK);
    pacer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut rng = SplitMix64::new(seed());
    let mut sent: u64 = 0;
    let mut last_error_logged: Option<Instant> = None;
    while !counters.stop.get() {
        pacer.tick().await;
        let due = (start.elapsed().as_secs_f64() * f64::from(rate)) as u64;
        while sent < due && !counters.stop.get() {
            sent += 1;
            match db.transaction(write(&mut rng, sent)).await {
                Ok(_) => counters.acknowledged.set(counters.acknowledged.get() + 1),
                Err(e) => {
                    counters.failed.set(counters.failed.get() + 1);
                    // One line per second at most: a full disk fails every
                    // write, and the log should stay readable.
                    if last_error_logged.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                        last_error_logged = Some(Instant::now());
                        tracing::warn!(
                            target: "walguard::engine",
                            error = %error::render(&e),
                            failed = counters.failed.get(),
                            "write failed; the engine goes on"
                        );
                    }
                }
            }
        }
    }
}

/// One write: upsert a record, append its event.
fn write(rng: &mut SplitMix64, seq: u64) -> Vec<Statement> {
    let key = format!("order-{:04}", rng.next() % KEYS);
    let kind = ["placed", "filled", "amended", "cancelled"][(rng.next() % 4) as usize];
    let qty = rng.next() % 1000 + 1;
    let price = 10_000 + rng.next() % 5_000;
    let value = format!(r#"{{"seq":{seq},"status":"{kind}","qty":{qty},"price_cents":{price}}}"#);
    let now = now_ms();
    vec![
        Statement::new(
            "INSERT INTO walguard_demo_records (key, value, version, updated_at_ms) VALUES (?1, ?2, 1, ?3)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value,
                 version = walguard_demo_records.version + 1, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(key.as_str())
        .bind(value.as_str())
        .bind(now),
        Statement::new(
            "INSERT INTO walguard_demo_events (key, kind, payload, at_ms) VALUES (?1, ?2, ?3, ?4)",
        )
            .bind(key)
            .bind(kind)
            .bind(value)
            .bind(now),
    ]
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0x5eed, |d| d.as_nanos() as u64)
}

/// `SplitMix64`: enough randomness for keys and quantities, no dependency.
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_write_is_an_upsert_and_an_event() {
        let mut rng = SplitMix64::new(1);
        let stmts = write(&mut rng, 7);
        assert_eq!(stmts.len(), 2);
        assert!(stmts[0].sql().contains("ON CONFLICT(key)"));
        assert_eq!(stmts[1].params().len(), 4);
    }

    #[test]
    fn the_schema_and_a_write_run_on_a_real_file() {
        let dir = tempfile::tempdir().unwrap();
        let settings = DatabaseSettings::at(dir.path().join("e.db"));
        prepare(&settings).unwrap();
        // Twice: the schema is idempotent.
        prepare(&settings).unwrap();
        let mut store = walguard::Store::open(&settings).unwrap();
        let mut rng = SplitMix64::new(2);
        for seq in 1..=3 {
            store.transaction(&write(&mut rng, seq)).unwrap();
        }
        let rows = store
            .query(&Statement::new("SELECT count(*) FROM walguard_demo_events"))
            .unwrap();
        assert_eq!(rows.rows()[0][0], rusqlite::types::Value::Integer(3));
    }
}
