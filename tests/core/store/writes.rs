//! Writes: failures that name the SQL, no transaction left open, atomic
//! batches, a full disk.

use super::*;

#[test]
fn failed_writes_name_the_sql_and_the_store_keeps_writing() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    put(&mut store, "taken", 1);

    let cases = [
        (
            "bad SQL",
            Statement::new("INSERT INTO kv VALUS ('x', 1)"),
            None,
        ),
        (
            "constraint violation",
            Statement::new("INSERT INTO kv (k, v) VALUES (?1, ?2)")
                .bind("taken")
                .bind(2),
            Some(ErrorCode::ConstraintViolation),
        ),
        (
            "not null violation",
            Statement::new("INSERT INTO kv (k, v) VALUES (?1, NULL)").bind("null"),
            Some(ErrorCode::ConstraintViolation),
        ),
        (
            "too few parameters",
            Statement::new("INSERT INTO kv (k, v) VALUES (?1, ?2)").bind("few"),
            None,
        ),
        (
            "too many parameters",
            Statement::new("INSERT INTO kv (k, v) VALUES (?1, ?2)")
                .bind("many")
                .bind(1)
                .bind(2),
            None,
        ),
    ];
    for (i, (what, stmt, code)) in cases.iter().enumerate() {
        let commits = store.durability().commits();
        let err = store.execute(stmt).unwrap_err();
        match &err {
            Error::Statement { sql, .. } => assert_eq!(sql, stmt.sql(), "{what}"),
            other => panic!("{what}: expected Error::Statement, got {other:?}"),
        }
        assert!(err.to_string().contains(stmt.sql()), "{what}: {err}");
        if let Some(code) = code {
            assert_eq!(
                sqlite_cause(&err).and_then(rusqlite::Error::sqlite_error_code),
                Some(*code),
                "{what}: {}",
                chain(&err)
            );
        }
        assert_eq!(
            store.durability().commits(),
            commits,
            "{what}: a failed write is no commit"
        );
        assert_eq!(
            count(&store, "kv"),
            1 + i as i64,
            "{what}: nothing was written"
        );

        // The next write goes through.
        put(&mut store, &format!("after-{i}"), 1);
        assert_eq!(store.durability().commits(), commits + 1, "{what}");
        assert_eq!(count(&store, "kv"), 2 + i as i64, "{what}");
    }
}

/// A `BEGIN` sent as a single statement used to leave a transaction open,
/// and every later checkpoint then failed with `SQLITE_LOCKED`.
#[test]
fn a_single_statement_may_not_leave_a_transaction_open() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    for sql in ["BEGIN", "BEGIN IMMEDIATE", "SAVEPOINT s1"] {
        let err = store.execute(&Statement::new(sql)).unwrap_err();
        assert!(
            matches!(&err, Error::LeftTransactionOpen { what } if what.contains(sql)),
            "{err:?}"
        );
        assert!(
            chain(&err).contains("left a transaction open"),
            "{}",
            chain(&err)
        );
    }
    put(&mut store, "after", 1);
    let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
    assert_eq!(
        *report.outcome(),
        CheckpointOutcome::Completed,
        "{report:?}"
    );
    assert_eq!(count(&store, "kv"), 1);
}

#[test]
fn transaction_commits_every_statement_at_once() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    let commits = store.durability().commits();
    let changed = store
        .transaction(&[
            Statement::new("INSERT INTO kv (k, v) VALUES ('a', 1)"),
            Statement::new("INSERT INTO kv (k, v) VALUES ('b', 2)"),
            Statement::new("UPDATE kv SET v = v + 10"),
        ])
        .unwrap();
    assert_eq!(changed, vec![1, 1, 2]);
    assert_eq!(count(&store, "kv"), 2);
    assert_eq!(
        store.durability().commits(),
        commits + 1,
        "one batch is one commit"
    );
}

#[test]
fn transaction_with_a_failing_statement_rolls_back_all_of_it() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    put(&mut store, "taken", 1);
    let commits = store.durability().commits();

    let batch = [
        Statement::new("INSERT INTO kv (k, v) VALUES (?1, ?2)")
            .bind("first")
            .bind(1),
        Statement::new("UPDATE kv SET v = 99"),
        Statement::new("INSERT INTO kv (k, v) VALUES (?1, ?2)")
            .bind("taken")
            .bind(2),
        Statement::new("INSERT INTO kv (k, v) VALUES (?1, ?2)")
            .bind("last")
            .bind(3),
    ];
    let err = store.transaction(&batch).unwrap_err();
    match &err {
        Error::Transaction { index, sql, .. } => {
            assert_eq!(*index, 2);
            assert_eq!(sql, batch[2].sql());
        }
        other => panic!("expected Error::Transaction, got {other:?}"),
    }
    let shown = err.to_string();
    assert!(shown.contains("statement 2"), "{shown}");
    assert!(shown.contains(batch[2].sql()), "{shown}");
    assert_eq!(
        sqlite_cause(&err).and_then(rusqlite::Error::sqlite_error_code),
        Some(ErrorCode::ConstraintViolation)
    );

    // Nothing of the batch survived: not the insert, not the update.
    let rows = store
        .query(&Statement::new("SELECT k, v FROM kv ORDER BY k"))
        .unwrap();
    assert_eq!(
        rows.rows(),
        &[vec![Value::Text("taken".into()), Value::Integer(1)]]
    );
    assert_eq!(store.durability().commits(), commits);
    // And the store is out of the transaction: the next batch commits.
    store
        .transaction(&[Statement::new("INSERT INTO kv (k, v) VALUES ('next', 4)")])
        .unwrap();
    assert_eq!(count(&store, "kv"), 2);
    assert_eq!(store.durability().commits(), commits + 1);
}

#[test]
fn full_disk_is_a_clear_error_and_the_store_keeps_serving() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    store
        .execute(&Statement::new(
            "CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB)",
        ))
        .unwrap();
    put(&mut store, "before", 1);
    let pages: i64 = store
        .call(|c| c.pragma_query_value(None, "page_count", |r| r.get(0)))
        .unwrap();
    let limit = pages + 16;
    let set: i64 = store
        .call(|c| {
            c.query_row(&format!("PRAGMA max_page_count = {limit}"), [], |r| {
                r.get(0)
            })
        })
        .unwrap();
    assert_eq!(set, limit);

    let insert = Statement::new("INSERT INTO blobs (body) VALUES (zeroblob(32768))");
    let mut stored = 0;
    let err = loop {
        match store.execute(&insert) {
            Ok(_) => stored += 1,
            Err(e) => break e,
        }
        assert!(stored < 100, "max_page_count did not stop the writes");
    };
    assert!(
        matches!(&err, Error::Statement { sql, .. } if sql == insert.sql()),
        "{err:?}"
    );
    assert_eq!(
        sqlite_cause(&err).and_then(rusqlite::Error::sqlite_error_code),
        Some(ErrorCode::DiskFull),
        "{}",
        chain(&err)
    );
    assert!(chain(&err).contains("full"), "{}", chain(&err));

    // Reads go on, and nothing half-written is visible.
    assert_eq!(count(&store, "blobs"), stored);
    assert_eq!(count(&store, "kv"), 1);
    let ok = store
        .query(&Statement::new("PRAGMA integrity_check"))
        .unwrap();
    assert_eq!(ok.rows(), &[vec![Value::Text("ok".into())]]);
    // A small write that fits still goes through, and the file checks out.
    store.execute(&Statement::new("DELETE FROM blobs")).unwrap();
    put(&mut store, "after", 2);
    store.close().map_err(|(_, e)| e).unwrap();
    let conn = Connection::open(&path).unwrap();
    assert_eq!(integrity(&conn), "ok");
    let n: i64 = conn
        .query_row("SELECT count(*) FROM kv", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
}
