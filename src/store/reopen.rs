//! The reopen after a checkpoint I/O error, as the
//! [checkpoint policy](crate::checkpoint) explains ("Failed fsync"), and
//! the readers it pauses around it ([`PausableReaders`]).

use std::sync::Arc;

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
        // Nor a reader of ours: the attached readers close their
        // connections until the guard drops, after the new connection is
        // open (or on an early return). Should they not close in time, the
        // reopen is not tried: it would fail on their connections.
        let _paused = match &self.readers {
            Some(readers) => Some(Paused::new(Arc::clone(readers))?),
            None => None,
        };
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

/// Readers of the same database that can close their connections for the
/// writer's reopen after a checkpoint I/O error, and open them again after
/// it ([`Store::attach_readers`]). The rebuild of the WAL index that the
/// reopen is for needs every connection to the database closed at that
/// moment (see "Failed fsync" in the [checkpoint policy](crate::checkpoint)).
///
/// [`ReadPool`](crate::read::ReadPool) implements it.
pub trait PausableReaders: Send + Sync + std::fmt::Debug {
    /// Closes every read connection, holding new reads until
    /// [`PausableReaders::resume`], and returns once they are all closed.
    /// On an error nothing stays paused.
    ///
    /// # Errors
    ///
    /// When a connection did not close in time: the reopen is then not
    /// tried, and the next checkpoint call tries it again.
    fn pause(&self) -> Result<()>;

    /// Opens the read connections again and serves the reads held
    /// meanwhile. Called once for each [`PausableReaders::pause`] that
    /// succeeded.
    fn resume(&self);
}

impl Store {
    /// Attaches readers of the same database (the actors layer's
    /// [`ReadPool`](crate::read::ReadPool)), so that the reopen after a
    /// checkpoint I/O error pauses them around the close and the open of
    /// the write connection: without it, their connections keep the stale
    /// WAL index alive and every checkpoint is refused
    /// ([`Error::StaleWalIndex`]) until they close. The store keeps the
    /// `Arc` until it closes.
    pub fn attach_readers(&mut self, readers: Arc<dyn PausableReaders>) {
        self.readers = Some(readers);
    }
}

/// The readers paused for a reopen: resumed when dropped, after the new
/// connection is open or on any early return, so that nothing leaves them
/// paused.
struct Paused(Arc<dyn PausableReaders>);

impl Paused {
    fn new(readers: Arc<dyn PausableReaders>) -> Result<Self> {
        readers.pause()?;
        Ok(Self(readers))
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        self.0.resume();
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
