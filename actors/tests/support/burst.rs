//! Writes sent at once: the one helper the test crates share for making a
//! group commit on purpose.

/// One write spawned at once, to be awaited later: a burst of them is on
/// the lane before `DbActor` looks, so it becomes one group commit.
pub(crate) fn sent_at_once(
    db: &walguard_actors::DbHandle,
    stmt: walguard::Statement,
) -> actix_rt::task::JoinHandle<walguard_actors::Result<usize>> {
    let db = db.clone();
    actix_rt::spawn(async move { db.execute(stmt).await })
}
