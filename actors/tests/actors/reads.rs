//! The read side through the actors: `DbHandle::read` and `query` on the
//! read pool, beside the writer's lane; read your writes; the shutdown
//! closing the readers before its TRUNCATE; the snapshot-age bound and the
//! checkpoints it frees.
//!
//! Real threads here (`Placement::OwnArbiter`, the pool's own threads):
//! concurrency is the point. Every time bound is one a loaded machine
//! cannot cross in the wrong direction: a read that never ends on its own
//! is what the bound or the shutdown must stop.
use std::sync::mpsc;
use std::time::{Duration, Instant};

use walguard::{CheckpointMode, CheckpointOutcome, Settings};
use walguard_actors::{DbHandle, Error, Placement, WalGuard};

use crate::common::{create_table, hold_writer, insert, settings, wal_path};

#[path = "reads/bound.rs"]
mod bound;
#[path = "reads/latency.rs"]
mod latency;
#[path = "reads/lifecycle.rs"]
mod lifecycle;
#[cfg(feature = "testing")]
#[path = "reads/reopen.rs"]
mod reopen;
#[path = "reads/serving.rs"]
mod serving;

const MINUTE: Duration = Duration::from_secs(60);

/// A statement that never ends on its own: only an interrupt stops it.
const ENDLESS: &str =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";

async fn start_threaded(settings: Settings) -> WalGuard {
    let guard = WalGuard::builder(settings)
        .db_placement(Placement::OwnArbiter)
        .start()
        .expect("start");
    create_table(&guard).await;
    guard
}

/// Starts a read that takes its snapshot (one `SELECT`), says so, then
/// runs [`ENDLESS`]; returns once the snapshot is taken, with the task
/// awaiting the read's answer.
async fn pin_snapshot(db: &DbHandle) -> actix_rt::task::JoinHandle<walguard_actors::Result<i64>> {
    let (started_tx, started) = mpsc::channel();
    let db = db.clone();
    let task = actix_rt::spawn(async move {
        db.read(move |conn| {
            let _: i64 = conn.query_row("SELECT count(*) FROM kv", [], |r| r.get(0))?;
            let _ = started_tx.send(());
            conn.query_row(ENDLESS, [], |r| r.get(0))
        })
        .await
    });
    let waited = tokio::task::spawn_blocking(move || started.recv_timeout(MINUTE))
        .await
        .unwrap();
    waited.expect("the read took its snapshot");
    task
}
