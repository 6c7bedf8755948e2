//! An engine that keeps its live state in walguard.
//!
//! It opens (or creates) `walguard-example.db` in the working directory, or
//! the path given as the first argument, brings its schema to the latest
//! version with [`Migrations`] (applied at start, in one transaction, before
//! the first request), runs a short session in which
//! "orders" are upserted and "events" appended through `DbActor` messages
//! while the checkpoint loop runs every 250 ms, then shuts down cleanly and
//! prints the end-of-session report.
//!
//! ```text
//! cargo run -p walguard-actors --example engine [PATH]
//! ```

use std::time::Duration;

use walguard::{Migrations, Settings, Statement};
use walguard_actors::WalGuard;

/// How long the example session runs.
const SESSION: Duration = Duration::from_secs(2);

/// The engine's schema, one migration per release; only ever appended to.
/// Migration 1 says `IF NOT EXISTS` so that it adopts a database made by
/// an earlier version of this example, before it had migrations.
const MIGRATIONS: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, qty INTEGER NOT NULL, updated_ms INTEGER NOT NULL);\n\
     CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, order_id INTEGER NOT NULL, kind TEXT NOT NULL);",
    "CREATE INDEX IF NOT EXISTS events_by_order ON events (order_id)",
];

#[actix::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Logs to stderr; stdout carries the result (the session report).
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "walguard-example.db".to_owned());
    let mut settings = Settings::for_database(path);
    settings.checkpoint.interval = Duration::from_millis(250);

    // The schema is at the latest version before anything is served; a
    // database a newer build has changed is refused, untouched.
    let guard = WalGuard::start_with_migrations(settings, Migrations::new(MIGRATIONS))?;
    let db = guard.db().clone();
    // The engine's startup turns the loop on; building the system did not.
    guard.start_checkpoint_loop();

    let started = std::time::Instant::now();
    let mut n: i64 = 0;
    while started.elapsed() < SESSION {
        let order = n % 100;
        // One fill: the order's state and its event, atomically.
        db.transaction(vec![
            Statement::new(
                "INSERT INTO orders (id, qty, updated_ms) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(id) DO UPDATE SET qty = qty + excluded.qty, updated_ms = excluded.updated_ms",
            )
            .bind(order)
            .bind(1)
            .bind(started.elapsed().as_millis() as i64),
            Statement::new("INSERT INTO events (order_id, kind) VALUES (?1, 'fill')").bind(order),
        ])
        .await?;
        n += 1;
    }

    let report = guard.shutdown().await?;
    println!("{report}");
    Ok(())
}
