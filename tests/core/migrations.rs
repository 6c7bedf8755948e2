//! Schema migrations: versions in `user_version`, all pending ones in one
//! transaction, a database from the future refused untouched.

use std::path::Path;

use rusqlite::Connection;
use walguard::settings::DatabaseSettings;
use walguard::{CheckpointOutcome, CheckpointReason, Error, Migrations, Statement, Store};

use crate::support::{count, integrity, temp_db, wal_path};

/// Version 1: the table; version 2: a column; version 3: an index and a
/// second table.
const V1: &str = "CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT NOT NULL)";
const V2: &str = "ALTER TABLE orders ADD COLUMN qty INTEGER NOT NULL DEFAULT 1";
const V3: &str = "CREATE INDEX orders_item ON orders (item);\n\
                  CREATE TABLE audit (id INTEGER PRIMARY KEY, note TEXT);\n\
                  INSERT INTO audit (note) VALUES ('migrated to 3');";

fn three() -> Migrations {
    Migrations::new(vec![V1, V2, V3])
}

/// `user_version` and the names in `sqlite_schema`, read by a plain
/// connection.
fn version_and_schema(path: &Path) -> (i64, Vec<String>) {
    let conn = Connection::open(path).unwrap();
    assert_eq!(integrity(&conn), "ok");
    let version = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let names = conn
        .prepare("SELECT name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    (version, names)
}

fn migrate_once(
    path: &Path,
    migrations: &Migrations,
) -> walguard::Result<walguard::MigrationReport> {
    let mut store = Store::open(&DatabaseSettings::at(path))?;
    let report = store.migrate(migrations);
    store.close().map_err(|(_, e)| e)?;
    report
}

fn put_order(store: &mut Store, item: &str) {
    store
        .execute(&Statement::new("INSERT INTO orders (item) VALUES (?1)").bind(item))
        .unwrap();
}

#[test]
fn a_fresh_database_reaches_the_latest_version_and_the_wal_is_emptied() {
    let (_dir, path) = temp_db();
    let mut store = Store::open(&DatabaseSettings::at(&path)).unwrap();
    assert_eq!(store.schema_version().unwrap(), 0);
    let report = store.migrate(&three()).unwrap();
    assert_eq!((report.from(), report.to()), (0, 3));
    assert_eq!(
        report.applied(),
        ["migration 1", "migration 2", "migration 3"]
    );
    let ckpt = report.checkpoint().expect("a truncate ran");
    assert_eq!(ckpt.reason(), CheckpointReason::Migration);
    assert_eq!(*ckpt.outcome(), CheckpointOutcome::Completed);
    assert_eq!(std::fs::metadata(wal_path(&path)).unwrap().len(), 0);
    assert_eq!(store.schema_version().unwrap(), 3);
    assert_eq!(count(&store, "audit"), 1);
    // One commit, durable, of no write.
    let d = store.durability();
    assert_eq!((d.commits(), d.writes(), d.exposed_commits()), (1, 0, 0));
    // Nothing pending: nothing runs, no checkpoint.
    let again = store.migrate(&three()).unwrap();
    assert_eq!((again.from(), again.to(), again.applied().len()), (3, 3, 0));
    assert!(again.checkpoint().is_none());
    assert_eq!(count(&store, "audit"), 1);
    store.close().map_err(|(_, e)| e).unwrap();
    let (version, names) = version_and_schema(&path);
    assert_eq!(version, 3);
    assert_eq!(names, ["audit", "orders", "orders_item"]);
}

#[test]
fn an_upgrade_across_versions_keeps_the_rows() {
    let (_dir, path) = temp_db();
    let mut store = Store::open(&DatabaseSettings::at(&path)).unwrap();
    store.migrate(&Migrations::new(vec![V1])).unwrap();
    for item in ["tea", "rice", "salt"] {
        put_order(&mut store, item);
    }
    store.close().map_err(|(_, e)| e).unwrap();

    let report = migrate_once(&path, &three()).unwrap();
    assert_eq!((report.from(), report.to()), (1, 3));
    assert_eq!(report.applied(), ["migration 2", "migration 3"]);
    let conn = Connection::open(&path).unwrap();
    let rows: Vec<(String, i64)> = conn
        .prepare("SELECT item, qty FROM orders ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(
        rows,
        [("tea".into(), 1), ("rice".into(), 1), ("salt".into(), 1)]
    );
}

/// Bytes of every file in `dir`, by name.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn assert_from_the_future(err: &Error, found: i64, known: usize) {
    assert!(
        matches!(err, Error::SchemaFromTheFuture { found: f, known: k, .. } if *f == found && *k == known),
        "{err:?}"
    );
    let shown = err.to_string();
    assert!(
        shown.contains(&format!("schema version {found}"))
            && shown.contains(&format!("only {known} migrations")),
        "{shown}"
    );
}

#[test]
fn a_database_from_the_future_is_refused_and_left_byte_for_byte() {
    let (dir, path) = temp_db();
    migrate_once(&path, &three()).unwrap();
    let before = snapshot(dir.path());
    let older = Migrations::new(vec![V1, V2]);
    let err = older
        .refuse_future(&DatabaseSettings::at(&path), None)
        .unwrap_err();
    assert_from_the_future(&err, 3, 2);
    assert_eq!(snapshot(dir.path()), before, "the refusal changed a file");
    // The write connection refuses it too, before writing anything.
    let err = migrate_once(&path, &older).unwrap_err();
    assert_from_the_future(&err, 3, 2);
    assert_eq!(version_and_schema(&path).0, 3);
}

/// Siblings: a file another tool left in rollback-journal mode (the write
/// connection would switch it to WAL, changing its header), and one with a
/// `-wal` still beside it (its header is stale: SQLite must be asked).
#[test]
fn a_future_database_in_rollback_mode_or_with_a_wal_is_refused_untouched() {
    let (dir, path) = temp_db();
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (x); PRAGMA user_version = 7;")
            .unwrap();
    }
    let before = snapshot(dir.path());
    let err = three()
        .refuse_future(&DatabaseSettings::at(&path), None)
        .unwrap_err();
    assert_from_the_future(&err, 7, 3);
    assert_eq!(snapshot(dir.path()), before);

    let (dir, path) = temp_db();
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.execute_batch("CREATE TABLE t (x)").unwrap();
    // The version change is only in the WAL; the header says 0.
    conn.execute_batch("PRAGMA user_version = 9").unwrap();
    walguard_testing_leave_wal(conn);
    let db_before = std::fs::read(&path).unwrap();
    let err = three()
        .refuse_future(&DatabaseSettings::at(&path), None)
        .unwrap_err();
    assert_from_the_future(&err, 9, 3);
    assert_eq!(std::fs::read(&path).unwrap(), db_before);
    assert!(std::fs::metadata(wal_path(&path)).unwrap().len() > 0);
    drop(dir);
}

/// Closes `conn` without its close-time checkpoint, so the WAL stays.
fn walguard_testing_leave_wal(conn: Connection) {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .unwrap();
    conn.close().map_err(|(_, e)| e).unwrap();
}

#[test]
fn a_migration_failing_halfway_through_its_text_applies_nothing() {
    let (_dir, path) = temp_db();
    migrate_once(&path, &Migrations::new(vec![V1])).unwrap();
    {
        let mut store = Store::open(&DatabaseSettings::at(&path)).unwrap();
        put_order(&mut store, "tea");
        store.close().map_err(|(_, e)| e).unwrap();
    }
    let before = version_and_schema(&path);
    // Migration 2 is fine; migration 3 creates a table, then fails.
    let failing = "CREATE TABLE audit (id INTEGER PRIMARY KEY);\n\
                   INSERT INTO audit (id) VALUES (1);\n\
                   INSERT INTO nowhere (id) VALUES (1);\n\
                   CREATE TABLE never (x);";
    let err = migrate_once(&path, &Migrations::new(vec![V1, V2, failing])).unwrap_err();
    let Error::MigrationFailed {
        number,
        file,
        sql,
        message,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!((*number, file.as_deref()), (3, None));
    assert_eq!(sql, "INSERT INTO nowhere (id) VALUES (1);");
    assert!(message.contains("no such table: nowhere"), "{message}");
    let shown = err.to_string();
    assert!(
        shown.contains("migration 3") && shown.contains("no such table: nowhere"),
        "{shown}"
    );
    // Version 1, the schema of version 1 (migration 2's column is not
    // there either), the row kept.
    assert_eq!(version_and_schema(&path), before);
    let conn = Connection::open(&path).unwrap();
    let columns: i64 = conn
        .query_row(
            "SELECT count(*) FROM pragma_table_info('orders') WHERE name = 'qty'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(columns, 0);
    assert_eq!(
        conn.query_row("SELECT count(*) FROM orders", [], |r| r.get::<_, i64>(0))
            .unwrap(),
        1
    );
    drop(conn);
    // Fixed, the same start applies all of it.
    let fixed = "CREATE TABLE audit (id INTEGER PRIMARY KEY); INSERT INTO audit (id) VALUES (1);";
    let report = migrate_once(&path, &Migrations::new(vec![V1, V2, fixed])).unwrap();
    assert_eq!((report.from(), report.to()), (1, 3));
}

/// Siblings of the failure: a syntax error in the first statement, a
/// constraint violation, SQL that cannot run in a transaction, parameters,
/// a change of a setting the store guards.
#[test]
fn every_kind_of_failing_statement_applies_nothing() {
    let cases = [
        ("CREAT TABLE x (y)", "syntax error"),
        (
            "INSERT INTO orders (id, item) VALUES (1, 'a'); INSERT INTO orders (id, item) VALUES (1, 'b');",
            "UNIQUE constraint failed",
        ),
        ("VACUUM", "VACUUM"),
        ("INSERT INTO orders (item) VALUES (?1)", "no parameters"),
        // walguard's own settings stay walguard's (the store's guard).
        ("PRAGMA synchronous = OFF", "database.synchronous"),
        ("PRAGMA journal_mode = DELETE", "journal_mode"),
    ];
    for (sql, expected) in cases {
        let (_dir, path) = temp_db();
        let err = migrate_once(&path, &Migrations::new(vec![V1, V2, sql])).unwrap_err();
        assert!(
            matches!(err, Error::MigrationFailed { number: 3, .. }),
            "{sql}: {err:?}"
        );
        assert!(err.to_string().contains(expected), "{sql}: {err}");
        assert_eq!(version_and_schema(&path), (0, vec![]), "{sql}");
    }
}

#[test]
fn a_migration_that_ends_or_opens_a_transaction_is_refused() {
    let splitting = [
        "COMMIT",
        "END TRANSACTION",
        "/* done */ commit",
        "ROLLBACK",
        "BEGIN",
        "BEGIN IMMEDIATE",
        "SAVEPOINT s",
        "RELEASE s",
    ];
    for control in splitting {
        let (_dir, path) = temp_db();
        let text =
            format!("CREATE TABLE before_split (x);\n{control};\nCREATE TABLE after_split (x);");
        let err = migrate_once(&path, &Migrations::new(vec![V1, &text])).unwrap_err();
        assert!(
            matches!(&err, Error::MigrationSplitsTransaction { number: 2, sql, .. } if sql.contains(control.trim_start_matches("/* done */ "))),
            "{control}: {err:?}"
        );
        assert_eq!(version_and_schema(&path), (0, vec![]), "{control}");
    }
    // A trigger's BEGIN ... END is no transaction control.
    let (_dir, path) = temp_db();
    // Nor is a `;` inside a string or a trigger's body a boundary.
    let trigger = "CREATE TABLE log (n INTEGER, note TEXT);\n\
                   CREATE TRIGGER orders_log AFTER INSERT ON orders BEGIN INSERT INTO log VALUES (new.id, 'a; COMMIT;'); END;\n\
                   INSERT INTO orders (item) VALUES ('x; COMMIT; y');";
    migrate_once(&path, &Migrations::new(vec![V1, trigger])).unwrap();
    assert_eq!(version_and_schema(&path).0, 2);
    let conn = Connection::open(&path).unwrap();
    let logged: (String, String) = conn
        .query_row(
            "SELECT item, note FROM orders JOIN log ON log.n = orders.id",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(logged, ("x; COMMIT; y".to_owned(), "a; COMMIT;".to_owned()));
}

fn write(dir: &Path, name: &str, sql: &str) {
    std::fs::write(dir.join(name), sql).unwrap();
}

#[test]
fn a_directory_is_applied_in_numeric_order() {
    for names in [
        ["0001_orders.sql", "0002_qty.sql", "0010_audit.sql"],
        // Without padding, a name order would put 10 before 2.
        ["1_orders.sql", "2_qty.sql", "10_audit.sql"],
    ] {
        let (dir, path) = temp_db();
        let migrations_dir = dir.path().join("migrations");
        std::fs::create_dir(&migrations_dir).unwrap();
        // Each depends on the one before it.
        write(&migrations_dir, names[2], V3);
        write(&migrations_dir, names[0], V1);
        write(&migrations_dir, names[1], V2);
        write(&migrations_dir, "README.md", "not a migration");
        let migrations = Migrations::from_directory(&migrations_dir).unwrap();
        assert_eq!(migrations.len(), 3);
        let report = migrate_once(&path, &migrations).unwrap();
        let expected: Vec<String> = names
            .iter()
            .map(|n| n.trim_end_matches(".sql").to_owned())
            .collect();
        assert_eq!(report.applied(), expected.as_slice());
        assert_eq!(version_and_schema(&path).0, 3);
    }
}

#[test]
fn a_failing_file_is_named_and_bad_names_are_refused() {
    let (dir, path) = temp_db();
    let migrations_dir = dir.path().join("migrations");
    std::fs::create_dir(&migrations_dir).unwrap();
    write(&migrations_dir, "0001_orders.sql", V1);
    write(
        &migrations_dir,
        "0007_broken.sql",
        "ALTER TABLE nowhere ADD COLUMN x",
    );
    let err =
        migrate_once(&path, &Migrations::from_directory(&migrations_dir).unwrap()).unwrap_err();
    let shown = err.to_string();
    assert!(
        matches!(&err, Error::MigrationFailed { number: 2, file: Some(f), .. } if f.ends_with("0007_broken.sql")),
        "{err:?}"
    );
    assert!(
        shown.contains("0007_broken.sql") && shown.contains("no such table"),
        "{shown}"
    );
    assert_eq!(version_and_schema(&path), (0, vec![]));

    for (bad, why) in [("orders.sql", "number"), ("0001_again.sql", "also")] {
        write(&migrations_dir, bad, V1);
        let err = Migrations::from_directory(&migrations_dir).unwrap_err();
        assert!(matches!(err, Error::MigrationFileName { .. }), "{err:?}");
        assert!(err.to_string().contains(why), "{err}");
        std::fs::remove_file(migrations_dir.join(bad)).unwrap();
    }
    let err = Migrations::from_directory(dir.path().join("absent")).unwrap_err();
    assert!(matches!(err, Error::MigrationsDirectory { .. }), "{err:?}");
}

/// Without the TRUNCATE (replication on), the commit is durable all the
/// same: it was fsynced under `synchronous=FULL`, whatever the setting.
#[test]
fn leaving_the_wal_the_migrations_are_durable_at_commit() {
    let (_dir, path) = temp_db();
    let mut store = Store::open(&DatabaseSettings::at(&path)).unwrap();
    let report = store.migrate_leaving_wal(&three()).unwrap();
    assert!(report.checkpoint().is_none());
    assert!(std::fs::metadata(wal_path(&path)).unwrap().len() > 0);
    let d = store.durability();
    assert_eq!((d.commits(), d.exposed_commits()), (1, 0));
    // The connection is back at the configured level.
    let level: i64 = store
        .call(|conn| conn.query_row("PRAGMA synchronous", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(level, DatabaseSettings::at(&path).synchronous.level());
    store.close().map_err(|(_, e)| e).unwrap();
}
