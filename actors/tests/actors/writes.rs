use std::time::Duration;

use walguard::{Error as CoreError, Statement};
use walguard_actors::Error;

use crate::common::{insert, settings, start_here};

fn statement_error(err: Error) -> String {
    match err {
        Error::Db(CoreError::Statement { sql, .. }) => sql,
        other => panic!("expected a statement error, got {other:?}"),
    }
}

#[actix_rt::test]
async fn bad_writes_return_errors_and_the_actor_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let guard = start_here(settings(dir.path(), Duration::from_secs(60))).await;
    let db = guard.db();
    db.execute(insert(1)).await.unwrap();

    let bad_sql = db
        .execute("INSERT INTO nowhere VALUES (1)")
        .await
        .unwrap_err();
    assert!(std::error::Error::source(&bad_sql).is_some_and(|s| s.to_string().contains("nowhere")));
    assert_eq!(statement_error(bad_sql), "INSERT INTO nowhere VALUES (1)");

    let duplicate = db.execute(insert(1)).await.unwrap_err();
    let chain = walguard::error::error_chain(&duplicate);
    assert!(chain.contains("UNIQUE constraint failed"), "{chain}");
    statement_error(duplicate);

    let missing_param = db
        .execute(Statement::new("INSERT INTO kv (id, v) VALUES (?1, ?2)").bind(5))
        .await
        .unwrap_err();
    let chain = walguard::error::error_chain(&missing_param);
    assert!(chain.contains("parameter"), "{chain}");
    statement_error(missing_param);

    db.execute(insert(2)).await.unwrap();
    let rows = db.query("SELECT id FROM kv ORDER BY id").await.unwrap();
    assert_eq!(rows.columns(), ["id"]);
    assert_eq!(rows.len(), 2);
    let report = guard.shutdown().await.unwrap();
    assert_eq!(report.db.writes_failed, 3);
    assert_eq!(report.db.writes_acknowledged, 3); // CREATE TABLE + 2 inserts
}

#[actix_rt::test]
async fn a_transaction_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let guard = start_here(settings(dir.path(), Duration::from_secs(60))).await;
    let db = guard.db();
    let err = db
        .transaction(vec![insert(1), insert(2), insert(1), insert(3)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Db(CoreError::Transaction { index: 2, .. })),
        "{err:?}"
    );
    let count = db.query("SELECT count(*) FROM kv").await.unwrap();
    assert_eq!(count.rows()[0][0], rusqlite::types::Value::Integer(0));

    let changed = db.transaction(vec![insert(1), insert(2)]).await.unwrap();
    assert_eq!(changed, vec![1, 1]);
    guard.shutdown().await.unwrap();
}

#[actix_rt::test]
async fn typed_closures_reach_rusqlite_directly() {
    let dir = tempfile::tempdir().unwrap();
    let guard = start_here(settings(dir.path(), Duration::from_secs(60))).await;
    let db = guard.db();
    let ids: Vec<i64> = db
        .call(|conn| {
            let tx = conn.transaction()?;
            for id in [10, 20, 30] {
                tx.execute("INSERT INTO kv (id, v) VALUES (?1, x'00')", [id])?;
            }
            tx.commit()?;
            let mut stmt = conn.prepare("SELECT id FROM kv ORDER BY id")?;
            stmt.query_map([], |r| r.get(0))?.collect()
        })
        .await
        .unwrap();
    assert_eq!(ids, vec![10, 20, 30]);

    let err = db
        .call(|conn| conn.execute("INSERT INTO kv (id, v) VALUES (10, x'00')", []))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Db(CoreError::Call { .. })), "{err:?}");
    let durability = db.durability().await.unwrap().unwrap();
    assert_eq!(durability.commits(), 2, "{durability:?}"); // CREATE TABLE + closure
    guard.shutdown().await.unwrap();
}
