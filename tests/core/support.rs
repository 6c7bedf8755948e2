//! Shared helpers: stores in temp dirs, a second connection that pins a read snapshot, error chains and seeds.

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use tempfile::TempDir;
use walguard::settings::DatabaseSettings;
use walguard::{Statement, Store};

/// The `-wal` file beside a database (its one home is the core).
pub(crate) use walguard::files::wal_path;

/// The seed used when `WALGUARD_TEST_SEED` is not set.
const DEFAULT_SEED: u64 = 0x5EED_2024_0601;

/// The seed for random tests: `WALGUARD_TEST_SEED` when set, else a fixed
/// one. Tests print it in every assertion message.
pub(crate) fn seed() -> u64 {
    std::env::var("WALGUARD_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED)
}

/// A fresh temp dir and a database path inside it (not created yet). Keep the
/// dir alive for as long as the path is used.
pub(crate) fn temp_db() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("create temp dir");
    let path = dir.path().join("state.db");
    (dir, path)
}

/// Opens a store at `path` with default settings and a `kv` table.
pub(crate) fn store_with_kv(path: &Path) -> Store {
    store_with_kv_using(&DatabaseSettings::at(path))
}

/// Opens a store with `settings` and creates a `kv` table (one commit).
pub(crate) fn store_with_kv_using(settings: &DatabaseSettings) -> Store {
    let mut store = Store::open(settings).expect("open store");
    store
        .execute(&Statement::new(
            "CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)",
        ))
        .expect("create kv");
    store
}

/// Inserts `(k, v)` into `kv` as one commit.
pub(crate) fn put(store: &mut Store, k: &str, v: i64) {
    store
        .execute(
            &Statement::new("INSERT INTO kv (k, v) VALUES (?1, ?2)")
                .bind(k)
                .bind(v),
        )
        .expect("insert into kv");
}

/// Rows in `table`, read through the store.
pub(crate) fn count(store: &Store, table: &str) -> i64 {
    let rows = store
        .query(&Statement::new(format!("SELECT count(*) FROM {table}")))
        .expect("count rows");
    match rows.rows()[0][0] {
        rusqlite::types::Value::Integer(n) => n,
        ref other => panic!("count(*) returned {other:?}"),
    }
}

/// `PRAGMA integrity_check` through a connection: `ok` when healthy.
pub(crate) fn integrity(conn: &Connection) -> String {
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check")
}

/// A second connection holding a read transaction open on `path` (`BEGIN`
/// then a `SELECT`), so it pins its snapshot of the WAL until dropped.
pub(crate) fn pin_reader(path: &Path) -> Connection {
    let reader = Connection::open(path).expect("open reader");
    reader.execute_batch("BEGIN").expect("begin read");
    let _: i64 = reader
        .query_row("SELECT count(*) FROM kv", [], |r| r.get(0))
        .expect("read inside the transaction");
    assert!(
        !reader.is_autocommit(),
        "the reader must keep its transaction open"
    );
    reader
}

/// An error and all its sources, joined with `": "` (every cause printed, no
/// de-duplication), as a user reading a log would see them.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The rusqlite error at the bottom of `err`'s source chain.
pub(crate) fn sqlite_cause(err: &walguard::Error) -> Option<&rusqlite::Error> {
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if let Some(e) = cause.downcast_ref::<rusqlite::Error>() {
            return Some(e);
        }
        source = cause.source();
    }
    None
}
