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

/// Holds the writer (on its own thread) inside a closure until the sender
/// returned is used or dropped; returns once the closure runs, with the
/// task that awaits its answer.
pub(crate) async fn hold_writer(
    db: &walguard_actors::DbHandle,
) -> (
    actix_rt::task::JoinHandle<walguard_actors::Result<()>>,
    std::sync::mpsc::Sender<()>,
) {
    let (started_tx, started) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let held = {
        let db = db.clone();
        actix_rt::spawn(async move {
            db.call(move |_| {
                started_tx.send(()).unwrap();
                // Released, or the test gave up: go on either way.
                let _ = released.recv();
                Ok(())
            })
            .await
        })
    };
    while started.try_recv().is_err() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    (held, release)
}

/// One write spawned at once, to be awaited later: spawned one after the
/// other, a burst of them is on the lane, in order, before `DbActor` looks
/// (on the test's own thread, it runs only once they all have been sent).
pub(crate) fn sent_at_once(
    db: &walguard_actors::DbHandle,
    stmt: impl Into<Statement>,
) -> actix_rt::task::JoinHandle<walguard_actors::Result<usize>> {
    let (db, stmt) = (db.clone(), stmt.into());
    actix_rt::spawn(async move { db.execute(stmt).await })
}
