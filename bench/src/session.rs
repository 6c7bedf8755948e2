//! How every measured run begins (the system started, the table created)
//! and ends (the rows checked, the writer's figures read, the shutdown), in
//! the closed loop and the open loop alike.

use std::path::Path;

use walguard::{SessionReport, Settings};
use walguard_actors::{DbHandle, WalGuard};

use crate::{BenchError, CREATE_TABLE_SQL, Progress, wal_file, without_replication};

/// Starts the subsystem on `settings` and creates the benchmark's table:
/// how every measured run begins. The replication section is ignored
/// ([`without_replication`]): a benchmark database is throwaway, and
/// replicating it would write it into the replica of the database the
/// settings were made for.
///
/// # Errors
///
/// [`BenchError::Actors`] naming the step that failed.
pub(crate) async fn start_with_table(settings: Settings) -> Result<WalGuard, BenchError> {
    let settings = without_replication(settings);
    let path = settings.database.path.clone();
    let guard = WalGuard::start(settings).map_err(BenchError::actors(&path, "start the system"))?;
    guard
        .db()
        .execute(CREATE_TABLE_SQL)
        .await
        .map_err(BenchError::actors(&path, "create the table"))?;
    Ok(guard)
}

/// What a measured run reads at its end.
pub(crate) struct Ending {
    /// Writes acknowledged.
    pub(crate) writes: u64,
    /// The writer's figures.
    pub(crate) stats: walguard_actors::messages::WriterStats,
    /// The `-wal` file's size before the shutdown, in bytes.
    pub(crate) wal_file_bytes: u64,
    /// The checkpoints of the run, read after the loop stopped.
    pub(crate) checkpoints: SessionReport,
    /// The shutdown's report.
    pub(crate) session: SessionReport,
}

/// How every measured run ends, in this order: the rows checked against
/// the acknowledged writes, the writer's figures, the WAL file's size, the
/// loop stopped and its report read, then the shutdown.
///
/// # Errors
///
/// [`BenchError`] naming the step that failed.
pub(crate) async fn finish(
    guard: WalGuard,
    path: &Path,
    progress: &Progress,
) -> Result<Ending, BenchError> {
    let actors = |what| BenchError::actors(path, what);
    let writes = progress.writes();
    check_rows(guard.db(), path, writes).await?;
    let stats = guard
        .db()
        .writer_stats()
        .await
        .map_err(actors("read the writer's figures"))?;
    let wal_file_bytes = std::fs::metadata(wal_file(path)).map_or(0, |m| m.len());
    guard.stop_checkpoint_loop();
    let checkpoints = guard
        .report()
        .await
        .map_err(actors("read the checkpoint report"))?;
    let session = guard.shutdown().await.map_err(actors("shut down"))?;
    Ok(Ending {
        writes,
        stats,
        wal_file_bytes,
        checkpoints,
        session,
    })
}

/// Checks that the table holds one row per acknowledged write.
async fn check_rows(db: &DbHandle, path: &Path, writes: u64) -> Result<(), BenchError> {
    let rows = db
        .query("SELECT count(*) FROM kv")
        .await
        .map_err(|source| BenchError::Actors {
            what: "count the rows",
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
    let found = match rows.rows().first().and_then(|r| r.first()) {
        Some(rusqlite::types::Value::Integer(n)) => u64::try_from(*n).unwrap_or(0),
        _ => 0,
    };
    if found == writes {
        Ok(())
    } else {
        Err(BenchError::RowCount {
            path: path.to_path_buf(),
            expected: writes,
            found,
        })
    }
}
