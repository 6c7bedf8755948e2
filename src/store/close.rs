//! Closing the write connection ([`Store::close`], and the same order on
//! a drop): phase 1 first, the replica's frames kept, no close-time
//! checkpoint from a stale WAL index.

use rusqlite::config::DbConfig;

use super::{Store, reopen};
use crate::error::Error;

impl Store {
    /// Closes the connection. With no other connection open, SQLite
    /// checkpoints and deletes the WAL on close.
    ///
    /// # Errors
    ///
    /// [`Error::Close`]; the store comes back with it so nothing is lost and
    /// the caller can retry.
    // Like rusqlite's `Connection::close`, the store comes back by value on
    // failure; the Err is large, but closing happens once per session.
    #[allow(clippy::result_large_err)]
    pub fn close(mut self) -> std::result::Result<(), (Self, Error)> {
        // Phase 1 goes first: the last connection's close checkpoints and
        // deletes the WAL, and must be the writer's.
        self.before_close();
        let path = self.settings.path.clone();
        let stand_in = match reopen::refusing_connection() {
            Ok(conn) => conn,
            Err(source) => return Err((self, Error::Close { path, source })),
        };
        let conn = std::mem::replace(&mut self.conn, stand_in);
        match conn.close() {
            Ok(()) => Ok(()),
            Err((conn, source)) => {
                self.conn = conn;
                Err((self, Error::Close { path, source }))
            }
        }
    }

    /// What must happen before the writer's connection closes, by `close`
    /// or by a drop: a phase 1 in flight is stopped and joined (its
    /// connection closes first), and while a reopen after an I/O error is
    /// pending (phase 1's included) the close must not checkpoint from the
    /// stale WAL index (see "Failed fsync" in the
    /// [checkpoint policy](crate::checkpoint)): the WAL stays, and the next
    /// open rebuilds the index from it.
    pub(super) fn before_close(&mut self) {
        if let Some((report, _)) = self.join_backfill(true) {
            report.log();
        }
        // The replica lacks commits: the close must not checkpoint and
        // delete the WAL under them (Litestream reads them on its return).
        let keep_for_replica = !self.replica_caught_up();
        if keep_for_replica {
            tracing::info!(target: "walguard::replication", "the wal stays on close: the replica lacks commits in it");
        }
        // The hold's connection closes first, so the writer's close is the
        // last one.
        self.replica = None;
        if (self.reopen_pending || keep_for_replica)
            && let Err(e) = self
                .conn
                .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        {
            tracing::error!(target: "walguard::db", error = %e, "cannot turn off the close-time checkpoint (a stale wal index, or frames the replica lacks)");
        }
    }
}

impl Drop for Store {
    /// A store dropped without [`Store::close`] closes in the same order.
    fn drop(&mut self) {
        self.before_close();
    }
}
