//! The reopen after a checkpoint I/O error, as the
//! [checkpoint policy](crate::checkpoint) explains ("Failed fsync").

use rusqlite::Connection;
use rusqlite::config::DbConfig;

use crate::checkpoint::CheckpointReport;
use crate::error::{Error, Result};

use super::Store;
use super::open::open_connection;

impl Store {
    /// The answer to a checkpoint that failed on an I/O error, as the
    /// [checkpoint policy](crate::checkpoint) explains: close the connection
    /// without its close-time checkpoint (`SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`)
    /// and open it again, so the WAL index is rebuilt and the next
    /// checkpoint copies every frame again. Logged, never fatal: until the
    /// index is rebuilt, every later checkpoint call tries it again instead
    /// of checkpointing.
    pub(super) fn reopen_after_io_error(&mut self, report: &CheckpointReport) {
        if !report.io_error() {
            return;
        }
        self.reopen_pending = true;
        match self.reopen_if_pending() {
            Ok(()) => tracing::warn!(
                target: "walguard::db",
                path = %self.settings.path.display(),
                outcome = %report.outcome(),
                "checkpoint failed on an I/O error; reopened the database without checkpointing on close"
            ),
            Err(e) => tracing::error!(
                target: "walguard::db",
                path = %self.settings.path.display(),
                outcome = %report.outcome(),
                error = %crate::error::error_chain(&e),
                "checkpoint failed on an I/O error and the WAL index is not rebuilt yet; no checkpoint runs until it is"
            ),
        }
    }

    /// Closes the connection without checkpointing and opens a new one, when
    /// a reopen is pending.
    pub(super) fn reopen_if_pending(&mut self) -> Result<()> {
        if !self.reopen_pending {
            return Ok(());
        }
        let path = self.settings.path.clone();
        // No other connection of ours may be open for the index to be
        // rebuilt: a phase 1 still in flight is stopped and joined first
        // (`checkpoint_by` has normally joined it already).
        if let Some((report, _)) = self.join_backfill(true) {
            report.log();
        }
        // Never checkpoint from the stale backfill count on the way out.
        self.conn
            .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(|source| Error::Pragma {
                path: path.clone(),
                pragma: "SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE",
                source,
            })?;
        // The WAL index is rebuilt only if no connection of ours is open
        // when the new one opens: close first, with a stand-in in place.
        let stand_in = refusing_connection().map_err(|source| Error::Open {
            path: path.clone(),
            source,
        })?;
        let old = std::mem::replace(&mut self.conn, stand_in);
        if let Err((old, source)) = old.close() {
            self.conn = old;
            return Err(Error::Close { path, source });
        }
        self.conn = open_connection(&self.settings, self.vfs.as_deref())?;
        // The WAL hook again, on the new connection.
        self.install_wal_hook()?;
        // And the guard.
        self.install_guard()?;
        // A NOOP checkpoint copies nothing and reports the frames SQLite
        // counts as copied. The rebuilt index counts none; a count above zero
        // means another connection kept the old index alive.
        let copied: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(NOOP)", [], |row| row.get(2))
            .map_err(|source| Error::Pragma {
                path: path.clone(),
                pragma: "wal_checkpoint",
                source,
            })?;
        if copied > 0 {
            // No checkpoint from the stale count may run, not even the
            // auto-checkpoint inside a COMMIT: the WAL must not be reset.
            self.stop_auto_checkpoint();
            return Err(Error::StaleWalIndex { path });
        }
        self.reopen_pending = false;
        Ok(())
    }
}

/// The stand-in connection while a reopen is pending: an in-memory database
/// whose authorizer refuses every statement (`SQLITE_AUTH`), so nothing is
/// ever read from or written to the wrong place.
pub(super) fn refusing_connection() -> rusqlite::Result<Connection> {
    let mut conn = Connection::open_in_memory()?;
    conn.authorizer(Some(|_: rusqlite::hooks::AuthContext<'_>| {
        rusqlite::hooks::Authorization::Deny
    }))?;
    Ok(conn)
}
