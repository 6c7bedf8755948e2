//! Reads (`Store::query`) and closures on the connection (`Store::call`).

use super::*;

#[test]
fn query_returns_columns_and_rows() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    put(&mut store, "b", 2);
    put(&mut store, "a", 1);
    let commits = store.durability().commits();
    let rows = store
        .query(
            &Statement::new(
                "SELECT k AS key, v * ?1 AS doubled, NULL AS absent FROM kv ORDER BY k",
            )
            .bind(2),
        )
        .unwrap();
    assert_eq!(rows.columns(), ["key", "doubled", "absent"]);
    assert_eq!(rows.len(), 2);
    assert!(!rows.is_empty());
    assert_eq!(
        rows.rows(),
        &[
            vec![Value::Text("a".into()), Value::Integer(2), Value::Null],
            vec![Value::Text("b".into()), Value::Integer(4), Value::Null],
        ]
    );
    let empty = store
        .query(&Statement::new("SELECT k FROM kv WHERE v > 100"))
        .unwrap();
    assert_eq!(empty.columns(), ["k"]);
    assert!(empty.is_empty());
    let err = store
        .query(&Statement::new("SELECT nope FROM kv"))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Statement { sql, .. } if sql == "SELECT nope FROM kv"),
        "{err:?}"
    );
    assert_eq!(
        store.durability().commits(),
        commits,
        "reads are no commits"
    );
}

#[test]
fn call_runs_a_closure_on_the_write_connection() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    let commits = store.durability().commits();

    let inserted = store
        .call(|c| {
            let tx = c.transaction()?;
            for i in 0..3 {
                tx.execute(
                    "INSERT INTO kv (k, v) VALUES (?1, ?2)",
                    (format!("k{i}"), i),
                )?;
            }
            tx.commit()?;
            Ok(3)
        })
        .unwrap();
    assert_eq!(inserted, 3);
    assert_eq!(count(&store, "kv"), 3);
    assert_eq!(store.durability().commits(), commits + 1);

    // A read-only closure is no commit.
    let n: i64 = store
        .call(|c| c.query_row("SELECT sum(v) FROM kv", [], |r| r.get(0)))
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(store.durability().commits(), commits + 1);

    // A closure's own error comes back as Error::Call.
    let err = store
        .call(|c| c.execute("INSERT INTO nope VALUES (1)", []))
        .unwrap_err();
    assert!(matches!(err, Error::Call { .. }), "{err:?}");
    assert!(chain(&err).contains("nope"), "{}", chain(&err));
}

#[test]
fn call_leaving_a_transaction_open_is_an_error_and_is_rolled_back() {
    let (_dir, path) = temp_db();
    let mut store = store_with_kv(&path);
    put(&mut store, "kept", 1);
    let commits = store.durability().commits();

    let err = store
        .call(|c| {
            c.execute_batch("BEGIN; INSERT INTO kv (k, v) VALUES ('lost', 2);")?;
            Ok(())
        })
        .unwrap_err();
    assert!(
        matches!(&err, Error::LeftTransactionOpen { what } if what == "closure"),
        "{err:?}"
    );
    assert!(chain(&err).contains("transaction open"), "{}", chain(&err));
    assert!(
        store.call(|c| Ok(c.is_autocommit())).unwrap(),
        "the transaction must be closed"
    );
    assert_eq!(
        count(&store, "kv"),
        1,
        "the open transaction was rolled back"
    );
    assert_eq!(store.durability().commits(), commits);

    // The store goes on: a write and a checkpoint work.
    put(&mut store, "next", 3);
    let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
    assert_eq!(
        *report.outcome(),
        CheckpointOutcome::Completed,
        "{report:?}"
    );
}
