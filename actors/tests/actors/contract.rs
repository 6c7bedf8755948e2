//! The writer's contract, second round: no SQL from a caller changes what
//! walguard promises. Each test names the kind it covers
//! (docs/reliability.md, "Neighbours"), through the real actors, with a
//! negative control that shows its check can fail.

use std::time::Duration;

use rusqlite::Connection;
use rusqlite::hooks::{AuthContext, Authorization};
use rusqlite::types::Value;
use walguard::settings::Synchronous;
use walguard::testing::PowerLossVfs;
use walguard::{Settings, Statement};
use walguard_actors::{DbHandle, Error, Placement, WalGuard};

use crate::common::{create_table, insert, settings, start_here};

const MINUTE: Duration = Duration::from_secs(60);

/// Every guarded setting, as the connection reads it back.
const GUARDED: [&str; 9] = [
    "synchronous",
    "journal_mode",
    "locking_mode",
    "wal_autocheckpoint",
    "fullfsync",
    "checkpoint_fullfsync",
    "query_only",
    "busy_timeout",
    "journal_size_limit",
];

/// Statements that change a guarded setting, in many spellings: each one
/// changes it on a plain connection (the negative control below).
const WEAKENING: [&str; 16] = [
    "PRAGMA synchronous = OFF",
    "pragma SYNCHRONOUS=0",
    "PRAGMA main.synchronous = OFF",
    "PRAGMA \"synchronous\" = 'off'",
    "PRAGMA synchronous(0)",
    "EXPLAIN PRAGMA synchronous = OFF",
    "/* a comment */ PRAGMA synchronous = NORMAL",
    "PRAGMA journal_mode = DELETE",
    "PRAGMA main.journal_mode = MEMORY",
    "PRAGMA locking_mode = EXCLUSIVE",
    "PRAGMA wal_autocheckpoint = 1",
    "PRAGMA fullfsync = 1",
    "PRAGMA checkpoint_fullfsync = 1",
    "PRAGMA query_only = 1",
    "PRAGMA busy_timeout = 0",
    "PRAGMA journal_size_limit = 0",
];

/// The guarded settings through the writer (reading is allowed).
async fn guarded_settings(db: &DbHandle) -> Vec<(String, String)> {
    db.call(|c| {
        GUARDED
            .iter()
            .map(|name| {
                let v: Value = c.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))?;
                Ok(((*name).to_owned(), format!("{v:?}").to_ascii_lowercase()))
            })
            .collect()
    })
    .await
    .unwrap()
}

fn plain_settings(conn: &Connection) -> Vec<(String, String)> {
    GUARDED
        .iter()
        .map(|name| {
            let v: Value = conn
                .query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
                .unwrap();
            ((*name).to_owned(), format!("{v:?}").to_ascii_lowercase())
        })
        .collect()
}

fn full(dir: &std::path::Path) -> Settings {
    let mut s = settings(dir, MINUTE);
    s.database.synchronous = Synchronous::Full;
    s
}

/// Kind: a caller's PRAGMA changes a setting walguard's promises rest on
/// (FACTS.md, "Preparing is not harmless"). Every spelling, through every
/// entry point (`execute`, `transaction`, `query`, a statement a `call`
/// closure prepares), is refused with `GuardedSetting` naming the setting,
/// and the connection's settings are the same afterwards. Control: each
/// statement does change a setting on a plain connection, so the check
/// would see it.
#[actix_rt::test]
async fn no_entry_point_changes_a_guarded_setting() {
    let dir = tempfile::tempdir().unwrap();
    let guard = start_here(full(dir.path())).await;
    let db = guard.db();
    let before = guarded_settings(db).await;
    for sql in WEAKENING {
        let refused = |what: &str, err: &Error| {
            assert!(
                matches!(err, Error::Db(walguard::Error::GuardedSetting { pragma, .. }) if sql.to_ascii_lowercase().contains(pragma)),
                "{what} {sql:?}: {err:?}"
            );
        };
        refused("execute", &db.execute(sql).await.unwrap_err());
        refused(
            "transaction",
            &db.transaction(vec![insert(900), Statement::new(sql)])
                .await
                .unwrap_err(),
        );
        // `query` runs on a read connection: refused there before SQLite
        // applies it (the writer's settings are not even in reach).
        let err = db.query(sql).await.unwrap_err();
        assert!(
            matches!(&err, Error::Db(walguard::Error::ReadRefused { what, would: "changes a guarded setting" }) if what == sql),
            "query {sql:?}: {err:?}"
        );
        let owned = sql.to_owned();
        refused(
            "call",
            &db.call(move |c| c.execute_batch(&owned)).await.unwrap_err(),
        );
        assert_eq!(guarded_settings(db).await, before, "after {sql:?}");
        // Another connection sees the file still in WAL mode.
        let other = Connection::open(dir.path().join("state.db")).unwrap();
        let mode: String = other
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal", "after {sql:?}");
    }
    // The refused transaction wrote nothing; the writer still writes.
    db.execute(insert(1)).await.unwrap();
    let d = db.durability().await.unwrap().unwrap();
    assert_eq!(d.exposed_commits(), 0, "under full every commit is durable");
    assert_eq!(d.commits(), 2, "CREATE TABLE + 1 insert");
    guard.shutdown().await.unwrap();

    // Control: on a plain connection each statement changes a setting.
    for sql in WEAKENING {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("plain.db")).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
            .unwrap();
        let before = plain_settings(&conn);
        // Prepared (and stepped where it has rows): some apply while compiling.
        let mut stmt = conn.prepare(sql).unwrap();
        let _ = stmt.query([]).unwrap().next();
        drop(stmt);
        assert_ne!(plain_settings(&conn), before, "{sql:?} changes nothing?");
    }
}

/// Kind: a `call` closure removes walguard's authorizer and changes a
/// guarded setting anyway. After it returns the setting is back, the guard
/// is installed again, and the caller hears `SettingRestored`.
#[actix_rt::test]
async fn a_closure_that_changes_a_setting_finds_it_set_back() {
    let dir = tempfile::tempdir().unwrap();
    let guard = start_here(full(dir.path())).await;
    let db = guard.db();
    let before = guarded_settings(db).await;
    for sql in [
        "PRAGMA synchronous = OFF",
        "PRAGMA locking_mode = EXCLUSIVE",
        "PRAGMA wal_autocheckpoint = 5",
        "PRAGMA query_only = 1",
        "PRAGMA busy_timeout = 1",
        "PRAGMA journal_size_limit = 7",
    ] {
        let owned = sql.to_owned();
        let err = db
            .call(move |c| {
                c.authorizer(None::<fn(AuthContext<'_>) -> Authorization>)?;
                c.execute_batch(&owned)
            })
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Db(walguard::Error::SettingRestored { .. })),
            "{sql:?}: {err:?}"
        );
        assert_eq!(guarded_settings(db).await, before, "after {sql:?}");
        // The guard is back: the plain entry point refuses again.
        assert!(matches!(
            db.execute("PRAGMA synchronous = OFF").await.unwrap_err(),
            Error::Db(walguard::Error::GuardedSetting { .. })
        ));
    }
    db.execute(insert(1)).await.unwrap();
    guard.shutdown().await.unwrap();
}

/// Kind: the durability report under a caller's `synchronous = OFF`
/// (the strace check of issue 21, with the power-loss shim counting the
/// syncs). Under `full`, writes after a refused `PRAGMA synchronous = OFF`
/// and after a closure that forced it still sync at every commit, and the
/// commit the closure made under `OFF` counts as exposed, not durable.
/// Control: the same count on a plain connection under `OFF` is 0 syncs per
/// commit, so the count would show a weakened writer.
#[actix_rt::test]
async fn a_callers_synchronous_off_changes_neither_fsyncs_nor_the_report() {
    const WRITES: i64 = 50;
    let vfs = PowerLossVfs::register().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut s = full(dir.path());
    s.checkpoint.size_threshold_frames = 0;
    let guard = WalGuard::builder(s)
        .db_placement(Placement::Current)
        .vfs(vfs.name())
        .start()
        .unwrap();
    create_table(&guard).await;
    let db = guard.db();
    // The syncs of `WRITES` single-row writes.
    let syncs_per_write = |from: i64| {
        let db = db.clone();
        let vfs = &vfs;
        async move {
            let start = vfs.stats().syncs;
            for i in from..from + WRITES {
                db.execute(insert(i)).await.unwrap();
            }
            vfs.stats().syncs - start
        }
    };
    let baseline = syncs_per_write(0).await;
    assert!(
        baseline >= WRITES.unsigned_abs(),
        "full syncs each commit: {baseline}"
    );

    assert!(db.execute("PRAGMA synchronous = OFF").await.is_err());
    assert_eq!(syncs_per_write(100).await, baseline);

    let err = db
        .call(|c| {
            c.authorizer(None::<fn(AuthContext<'_>) -> Authorization>)?;
            c.execute_batch(
                "PRAGMA synchronous = OFF; INSERT INTO kv (id, v) VALUES (1000, x'00');",
            )
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Db(walguard::Error::SettingRestored { changed }) if changed.contains("synchronous")),
        "{err:?}"
    );
    let d = db.durability().await.unwrap().unwrap();
    assert_eq!(
        d.exposed_commits(),
        1,
        "the closure's commit under OFF is exposed: {d:?}"
    );
    assert_eq!(syncs_per_write(200).await, baseline);
    // The next commit's WAL fsync covers the frames before it.
    let d = db.durability().await.unwrap().unwrap();
    assert_eq!(d.exposed_commits(), 0, "{d:?}");
    guard.shutdown().await.unwrap();

    // Control: synchronous=OFF on a plain connection through the same shim.
    let conn = vfs
        .open(
            dir.path().join("control.db"),
            rusqlite::OpenFlags::default(),
        )
        .unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; CREATE TABLE kv (id INTEGER PRIMARY KEY, v BLOB)",
    )
    .unwrap();
    let start = vfs.stats().syncs;
    for i in 0..WRITES {
        conn.execute("INSERT INTO kv VALUES (?1, x'00')", [i])
            .unwrap();
    }
    assert_eq!(vfs.stats().syncs - start, 0, "OFF syncs nothing per commit");
}

/// Kind: `query` is handed something that is not a read. Transaction
/// control, writes (`RETURNING` included, and a text `execute` already
/// prepared), `ATTACH`, a pragma that changes something: each is refused
/// on the read connection (`ReadRefused` naming it), the next caller's write
/// commits, and no
/// uncounted row lands. Reads, including pragmas that read with an
/// argument, still work. Control: `sqlite3_stmt_readonly` alone calls
/// `BEGIN`, `SAVEPOINT` and `ATTACH` read-only.
#[actix_rt::test]
async fn query_runs_reads_only() {
    let dir = tempfile::tempdir().unwrap();
    let guard = start_here(settings(dir.path(), MINUTE)).await;
    let db = guard.db();
    // Prepared once by execute (a counted write: the row is removed
    // below): the statement cache must not let it through query.
    assert_eq!(
        db.execute("INSERT INTO kv (id, v) VALUES (1, x'00') RETURNING id")
            .await
            .unwrap(),
        1
    );
    db.execute("DELETE FROM kv").await.unwrap();
    let not_reads = [
        "BEGIN",
        "begin deferred transaction",
        "/* x */ SAVEPOINT s",
        "BEGIN IMMEDIATE",
        "COMMIT",
        "INSERT INTO kv (id, v) VALUES (1, x'00') RETURNING id",
        "INSERT INTO kv (id, v) VALUES (2, x'00')",
        "UPDATE kv SET v = x'01' RETURNING id",
        "DELETE FROM kv RETURNING id",
        "CREATE TABLE other (x)",
        "ATTACH ':memory:' AS other",
        "PRAGMA user_version = 7",
        "PRAGMA wal_checkpoint(TRUNCATE)",
        "VACUUM",
    ];
    for sql in not_reads {
        // On a read connection: refused, naming the statement.
        let err = db.query(sql).await.unwrap_err();
        assert!(
            matches!(&err, Error::Db(walguard::Error::ReadRefused { what, .. }) if what == sql),
            "{sql:?}: {err:?}"
        );
        // The next caller's write commits (no transaction left open).
        db.execute(Statement::new(
            "INSERT OR REPLACE INTO kv (id, v) VALUES (100, x'00')",
        ))
        .await
        .unwrap();
    }
    let other = Connection::open(dir.path().join("state.db")).unwrap();
    let ids: Vec<i64> = other
        .prepare("SELECT id FROM kv ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ids, vec![100], "no uncounted row");
    let user_version: i64 = other
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(user_version, 0);
    for read in [
        "SELECT count(*) FROM kv",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) SELECT i FROM n",
        "PRAGMA table_info(kv)",
        "PRAGMA journal_mode",
        "PRAGMA synchronous",
        "PRAGMA integrity_check",
    ] {
        db.query(read)
            .await
            .unwrap_or_else(|e| panic!("{read:?}: {e:?}"));
    }
    let report = guard.shutdown().await.unwrap();
    // CREATE TABLE, the RETURNING insert, the DELETE, one insert per
    // refused query.
    assert_eq!(report.db.writes_acknowledged, 3 + not_reads.len() as u64);

    // Control: the read-only flag alone would let these through.
    for sql in ["BEGIN", "SAVEPOINT s", "ATTACH ':memory:' AS x"] {
        assert!(other.prepare(sql).unwrap().readonly(), "{sql:?}");
    }
}

/// The columns and rows a query returned, as names and widths.
async fn shape(db: &DbHandle, sql: &str) -> (Vec<String>, Vec<usize>) {
    let rows = db.query(sql).await.unwrap();
    (
        rows.columns().to_vec(),
        rows.rows().iter().map(Vec::len).collect(),
    )
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Kind: a schema change between two reads of the same text (rusqlite#1371).
/// Add, rename and drop a column, drop and re-create a table, by the
/// writer's own `execute` and by another connection: each next query
/// returns the current columns, and every row has one value per column.
/// Control: a cached statement read before its first step, as the store
/// did, returns the old names.
#[actix_rt::test]
async fn query_results_describe_the_current_schema() {
    for by_other in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let guard = start_here(settings(dir.path(), MINUTE)).await;
        let db = guard.db();
        let other = Connection::open(dir.path().join("state.db")).unwrap();
        let change = |sql: &'static str| {
            let db = db.clone();
            let other = &other;
            async move {
                if by_other {
                    other.execute_batch(sql).unwrap();
                } else {
                    db.execute(sql).await.unwrap();
                }
            }
        };
        change("CREATE TABLE t (a, b, c)").await;
        change("INSERT INTO t VALUES (1, 2, 3)").await;
        let q = "SELECT * FROM t";
        assert_eq!(shape(db, q).await, (names(&["a", "b", "c"]), vec![3]));
        change("ALTER TABLE t ADD COLUMN d").await;
        assert_eq!(shape(db, q).await, (names(&["a", "b", "c", "d"]), vec![4]));
        change("ALTER TABLE t RENAME COLUMN a TO z").await;
        assert_eq!(shape(db, q).await, (names(&["z", "b", "c", "d"]), vec![4]));
        change("ALTER TABLE t DROP COLUMN d").await;
        assert_eq!(shape(db, q).await, (names(&["z", "b", "c"]), vec![3]));
        change("DROP TABLE t").await;
        change("CREATE TABLE t (only_one)").await;
        // An empty result still names the current columns.
        assert_eq!(shape(db, q).await, (names(&["only_one"]), vec![]));
        guard.shutdown().await.unwrap();
    }

    // Control: the names of a cached statement before its first step.
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(dir.path().join("c.db")).unwrap();
    conn.execute_batch("CREATE TABLE t (a, b, c)").unwrap();
    let first: Vec<String> = conn
        .prepare_cached("SELECT * FROM t")
        .unwrap()
        .column_names()
        .map(str::to_owned)
        .collect();
    assert_eq!(first, names(&["a", "b", "c"]));
    let other = Connection::open(dir.path().join("c.db")).unwrap();
    other.execute_batch("ALTER TABLE t ADD COLUMN d").unwrap();
    let stale = conn
        .prepare_cached("SELECT * FROM t")
        .unwrap()
        .column_count();
    assert_eq!(stale, 3, "before the first step the names are the old ones");
}

/// Whether the last checkpoint of the session was a size checkpoint (the
/// loop is off here: nothing else checkpoints).
async fn size_checkpoints(guard: &WalGuard) -> usize {
    let report = guard.report().await.unwrap();
    usize::from(
        report
            .last_checkpoint
            .is_some_and(|r| r.reason() == walguard::CheckpointReason::Size),
    )
}

/// Kind: a `call` closure replaces walguard's WAL hook through rusqlite's
/// `wal_hook` without touching `wal_autocheckpoint`, so no setting shows
/// it. After the call the caller hears `SettingRestored` naming the WAL
/// hook, and the hook is walguard's again: the next commit past
/// `checkpoint.size_threshold_frames` runs a size checkpoint. Negative
/// control, in the same run: while the closure's hook is on (the commits
/// the closure makes), the WAL passes the threshold and no size
/// checkpoint follows.
#[actix_rt::test]
async fn a_closure_that_replaces_the_wal_hook_finds_it_set_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(dir.path(), MINUTE);
    s.checkpoint.size_threshold_frames = 20;
    // On the writer: the report is there when the write's answer is.
    s.checkpoint.size_checkpoint = walguard::SizeCheckpoint::OnWriter;
    let guard = start_here(s).await;
    let db = guard.db();
    let err = db
        .call(|c| {
            c.wal_hook(Some(|_: &mut rusqlite::hooks::Wal, _| Ok(())))?;
            for i in 0..40 {
                c.execute(
                    "INSERT INTO kv (id, v) VALUES (?1, zeroblob(4000))",
                    [1000 + i],
                )?;
            }
            Ok(())
        })
        .await
        .unwrap_err();
    match &err {
        Error::Db(walguard::Error::SettingRestored { changed }) => {
            assert!(changed.contains("WAL hook"), "{changed}");
        }
        other => panic!("{other:?}"),
    }
    let frames: i64 = db
        .call(|c| c.query_row("PRAGMA wal_checkpoint(NOOP)", [], |r| r.get(1)))
        .await
        .unwrap();
    assert!(
        frames >= 40,
        "the closure's commits passed the threshold: {frames}"
    );
    assert_eq!(
        size_checkpoints(&guard).await,
        0,
        "no size checkpoint under the closure's hook"
    );
    db.execute(insert(1)).await.unwrap();
    assert_eq!(size_checkpoints(&guard).await, 1, "walguard's hook is back");
    guard.shutdown().await.unwrap();
}
