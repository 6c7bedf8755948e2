//! Helpers shared by the actor tests.

use std::path::Path;
use std::time::Duration;

use walguard::{Settings, Statement};
use walguard_actors::{Placement, WalGuard};

/// Settings for a database in `dir` with the given interval.
pub(crate) fn settings(dir: &Path, interval: Duration) -> Settings {
    let mut settings = Settings::for_database(dir.join("state.db"));
    settings.checkpoint.interval = interval;
    settings
}

/// Starts the system with `DbActor` on the current arbiter (needed on a
/// paused clock) and creates the test table.
pub(crate) async fn start_here(settings: Settings) -> WalGuard {
    let guard = WalGuard::builder(settings)
        .db_placement(Placement::Current)
        .start()
        .expect("start");
    create_table(&guard).await;
    guard
}

/// Creates `kv(id INTEGER PRIMARY KEY, v BLOB NOT NULL)`.
pub(crate) async fn create_table(guard: &WalGuard) {
    guard
        .db()
        .execute("CREATE TABLE IF NOT EXISTS kv (id INTEGER PRIMARY KEY, v BLOB NOT NULL)")
        .await
        .expect("create table");
}

/// Inserts row `id` with a 100-byte value.
pub(crate) fn insert(id: i64) -> Statement {
    Statement::new("INSERT INTO kv (id, v) VALUES (?1, ?2)")
        .bind(id)
        .bind(vec![7u8; 100])
}

/// Opens a plain connection and returns (`integrity_check`, row count).
pub(crate) fn integrity_and_count(path: &Path) -> (String, i64) {
    let conn = rusqlite::Connection::open(path).expect("reopen");
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    let count: i64 = conn
        .query_row("SELECT count(*) FROM kv", [], |r| r.get(0))
        .expect("count");
    (integrity, count)
}

/// The `-wal` file beside a database (the core's one rule for the name).
pub(crate) use walguard::files::wal_path;
