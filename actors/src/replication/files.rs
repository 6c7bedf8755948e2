//! The files walguard keeps for Litestream beside the database: its
//! config (mode 0600) and its control socket; the refusal of a second
//! Litestream, and the orphans a killed walguard left.

use std::path::{Path, PathBuf};
use std::time::Duration;

use walguard::replication::{CheckpointHandover, SftpLogin};
use walguard::settings::ReplicationSettings;

use super::child::Child;
use super::processes::{litestream_holding, stop_litestreams_with_arg};
use crate::error::ReplicationError;

/// The longest Unix socket path (`sun_path` holds 108 bytes on Linux, one
/// of them the terminating NUL).
pub(crate) const MAX_SOCKET_PATH_BYTES: usize = 107;

/// The files walguard keeps for Litestream beside the database `db`: its
/// config (`<db>-litestream.yml`) and its control socket
/// (`.<name>-litestream.sock`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    /// The database, as an absolute path (Litestream matches `/sync`
    /// requests by path).
    pub db: PathBuf,
    /// The config walguard writes.
    pub config: PathBuf,
    /// The control socket.
    pub socket: PathBuf,
}

impl Files {
    /// The files for `db`, with the socket at `socket` when given.
    ///
    /// # Errors
    ///
    /// [`ReplicationError::File`] when the database's directory cannot be
    /// resolved.
    pub fn for_db(db: &Path, socket: Option<&Path>) -> Result<Self, ReplicationError> {
        let db = std::path::absolute(db).map_err(|source| ReplicationError::File {
            action: "resolve the database path",
            path: db.to_path_buf(),
            source,
        })?;
        let name = db
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = db.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(Self {
            config: dir.join(format!("{name}-litestream.yml")),
            socket: socket.map_or_else(
                || dir.join(format!(".{name}-litestream.sock")),
                Path::to_path_buf,
            ),
            db,
        })
    }

    /// Writes the config for `settings` and `handover`, mode 0600 (it names
    /// the replica).
    ///
    /// # Errors
    ///
    /// [`ReplicationError::File`] when it cannot be written.
    pub fn write_config(
        &self,
        settings: &ReplicationSettings,
        handover: CheckpointHandover,
    ) -> Result<(), ReplicationError> {
        let text = walguard::replication::litestream_config(
            &self.db,
            &self.socket,
            settings,
            handover,
            &SftpLogin::from_env(),
        );
        let err = |source| ReplicationError::File {
            action: "write the litestream config",
            path: self.config.clone(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
            options.mode(0o600);
            // An older file keeps its mode on open: set it again.
            if self.config.exists() {
                std::fs::set_permissions(&self.config, std::fs::Permissions::from_mode(0o600))
                    .map_err(err)?;
            }
        }
        let mut file = options.open(&self.config).map_err(err)?;
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(err)
    }

    /// Refuses a socket path too long for a Unix socket.
    ///
    /// # Errors
    ///
    /// [`ReplicationError::SocketPathTooLong`].
    pub fn check_socket_path(&self) -> Result<(), ReplicationError> {
        let len = self.socket.as_os_str().len();
        if len > MAX_SOCKET_PATH_BYTES {
            return Err(ReplicationError::SocketPathTooLong {
                socket: self.socket.clone(),
                len,
                max: MAX_SOCKET_PATH_BYTES,
            });
        }
        Ok(())
    }

    /// Refuses to start a second Litestream for this database: one that
    /// answers on the socket, or (on Linux) a `litestream` process that
    /// holds the database or its WAL open, whatever its socket or config.
    ///
    /// # Errors
    ///
    /// [`ReplicationError::AlreadyRunning`] or
    /// [`ReplicationError::AlreadyReplicating`].
    pub fn check_no_other(&self) -> Result<(), ReplicationError> {
        #[cfg(unix)]
        if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
            return Err(ReplicationError::AlreadyRunning {
                socket: self.socket.clone(),
                db: self.db.clone(),
            });
        }
        if let Some(pid) = litestream_holding(&self.db) {
            return Err(ReplicationError::AlreadyReplicating {
                pid,
                db: self.db.clone(),
            });
        }
        Ok(())
    }
}

/// How long an orphaned Litestream gets to exit after SIGTERM before
/// SIGKILL: 2 s (within the start's budget; its last upload is not
/// needed, the new Litestream resumes from its files).
pub(crate) const ORPHAN_STOP_TIMEOUT: Duration = Duration::from_secs(2);

impl Files {
    /// Stops every Litestream left behind for this database by a walguard
    /// that did not stop (killed, crashed): a `litestream replicate` whose
    /// command line names this database's config file, which only a
    /// walguard writes. Called under the engine lock, so no walguard
    /// serving this database owns it. SIGTERM, then SIGKILL after
    /// `ORPHAN_STOP_TIMEOUT` (2 s); then the stale socket goes. The pids
    /// stopped. Linux only (elsewhere there is no `/proc` to find them).
    #[must_use = "the pids of the orphans stopped"]
    pub fn stop_orphans(&self) -> Vec<u32> {
        let orphans = stop_litestreams_with_arg(&self.config);
        if !orphans.is_empty() || !Child::socket_open(self) {
            // A socket file nothing answers on is a leftover too.
            let _ = std::fs::remove_file(&self.socket);
        }
        orphans
    }
}
