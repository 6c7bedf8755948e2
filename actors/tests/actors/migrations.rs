//! `WalGuard::start_with_migrations`: the schema is at the latest version
//! before the writer serves anything; a refused or failed start changes
//! nothing and leaves the database free for the next start.

use std::path::Path;

use walguard::{Error as CoreError, Migrations, Settings};
use walguard_actors::{Error, WalGuard};

const V1: &str = "CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT NOT NULL)";
const V2: &str = "ALTER TABLE orders ADD COLUMN qty INTEGER NOT NULL DEFAULT 1";

fn version(path: &Path) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[actix_rt::test]
async fn a_start_with_migrations_serves_the_latest_schema_and_keeps_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("engine.db");
    let settings = Settings::for_database(&path);

    let guard =
        WalGuard::start_with_migrations(settings.clone(), Migrations::new(vec![V1])).unwrap();
    guard
        .db()
        .execute("INSERT INTO orders (item) VALUES ('tea')")
        .await
        .unwrap();
    let report = guard.shutdown().await.unwrap();
    assert_eq!(
        report.migrations.as_ref().map(|m| (m.from(), m.to())),
        Some((0, 1))
    );

    let guard =
        WalGuard::start_with_migrations(settings.clone(), Migrations::new(vec![V1, V2])).unwrap();
    // The first request already sees version 2.
    let rows = guard
        .db()
        .query("SELECT item, qty FROM orders")
        .await
        .unwrap();
    assert_eq!(rows.rows().len(), 1);
    let report = guard.shutdown().await.unwrap();
    let migrated = report.migrations.expect("migrations ran");
    assert_eq!((migrated.from(), migrated.to()), (1, 2));
    assert_eq!(migrated.applied(), ["migration 2"]);
    let ckpt = migrated.checkpoint().expect("a truncate after the commit");
    assert_eq!(ckpt.outcome().as_str(), "completed");
    assert_eq!(version(&path), 2);
}

#[actix_rt::test]
async fn a_refused_or_failed_start_changes_nothing_and_releases_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("engine.db");
    let settings = Settings::for_database(&path);
    let guard =
        WalGuard::start_with_migrations(settings.clone(), Migrations::new(vec![V1, V2])).unwrap();
    guard.shutdown().await.unwrap();
    let before = std::fs::read(&path).unwrap();

    // From the future: an older build with one migration.
    let err =
        WalGuard::start_with_migrations(settings.clone(), Migrations::new(vec![V1])).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Db(CoreError::SchemaFromTheFuture {
                found: 2,
                known: 1,
                ..
            })
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("schema version 2"), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the refused file changed"
    );

    // A failing third migration: nothing applied.
    let failing = Migrations::new(vec![
        V1,
        V2,
        "CREATE TABLE audit (x); SELECT * FROM nowhere;",
    ]);
    let err = WalGuard::start_with_migrations(settings.clone(), failing).unwrap_err();
    assert!(
        matches!(err, Error::Db(CoreError::MigrationFailed { number: 3, .. })),
        "{err:?}"
    );
    assert_eq!(version(&path), 2);

    // The engine lock went with the failed start.
    let guard = WalGuard::start_with_migrations(settings, Migrations::new(vec![V1, V2])).unwrap();
    let report = guard.shutdown().await.unwrap();
    assert_eq!(report.migrations.map(|m| m.applied().len()), Some(0));
}
