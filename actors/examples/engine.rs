//! An engine that keeps its live state in walguard.
//!
//! It opens (or creates) `walguard-example.db` in the working directory, or
//! the path given as the first argument, brings its schema to the latest
//! version with [`Migrations`] (applied at start, in one transaction, before
//! the first request), runs a short session in which
//! "orders" are upserted and "events" appended through the writer while
//! the checkpoint loop runs every 250 ms, and, beside the writes, a
//! dashboard reads the totals on a read connection every 100 ms (reads
//! never wait for the writes, nor writes for them; a read after a write's
//! answer sees it), then shuts down cleanly and prints the end-of-session
//! report, with the reads served.
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

    // The dashboard: a read every 100 ms, on the read connections, one
    // snapshot per read (both figures from the same moment).
    let dashboard = {
        let db = db.clone();
        actix::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                let totals = db
                    .read(|conn| {
                        let qty: i64 =
                            conn.query_row("SELECT coalesce(sum(qty), 0) FROM orders", [], |r| {
                                r.get(0)
                            })?;
                        let events: i64 =
                            conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
                        Ok((qty, events))
                    })
                    .await;
                match totals {
                    Ok((qty, events)) => tracing::info!(qty, events, "dashboard"),
                    // After the shutdown: the session is over.
                    Err(_) => break,
                }
            }
        })
    };

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
    // Read your writes: every fill answered above is in this read.
    let events: i64 = db
        .read(|conn| conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0)))
        .await?;
    println!("fills this session: {n}; events in the database: {events}");
    dashboard.abort();

    let report = guard.shutdown().await?;
    println!("{report}");
    Ok(())
}
