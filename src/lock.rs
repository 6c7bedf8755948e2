//! One engine per database file.
//!
//! walguard's promises (one writer, its deadlines, "durable through") hold
//! only while one engine serves a file. [`EngineLock`] is how the engine
//! makes sure: an exclusive OS lock (`flock` on Unix, `LockFileEx` on
//! Windows, through std's [`File::try_lock`]) on a small file beside the
//! database, [`files::engine_lock_path`](crate::files::engine_lock_path).
//! It is a separate file, so SQLite's own locks on the database are
//! untouched: readers in other processes and the `sqlite3` shell keep
//! working. The OS drops the lock when the process ends, however it ends
//! (`kill -9` included), and a lock taken twice in one process conflicts
//! too (it belongs to the open file, not to the process).
//!
//! The holder writes its process id into the file, so a second engine can
//! say who serves the database. The file stays behind after a clean stop:
//! removing it could race with the next engine taking it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::files;

/// The engine lock on one database file, held until dropped.
#[derive(Debug)]
pub struct EngineLock {
    file: File,
    path: PathBuf,
}

impl EngineLock {
    /// Takes the engine lock of `database`, without waiting.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyServed`] when another engine (in this process or
    /// another) holds it, with that process's id when the lock file tells;
    /// [`Error::EngineLock`] when the lock file cannot be created or locked
    /// (a missing directory, permissions, a file system without locks).
    pub fn acquire(database: &Path) -> Result<Self> {
        let path = files::engine_lock_path(database);
        let io_err = |source| Error::EngineLock {
            path: path.clone(),
            source,
        };
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(crate::store::NEW_FILE_MODE);
        }
        let mut file = options.open(&path).map_err(io_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let holder = file
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| text.trim().parse().ok());
                return Err(Error::AlreadyServed {
                    path: database.to_owned(),
                    pid: holder,
                    lock: path,
                });
            }
            Err(TryLockError::Error(source)) => return Err(io_err(source)),
        }
        // Ours now: say who holds it.
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .map_err(io_err)?;
        Ok(Self { file, path })
    }

    /// The lock file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for EngineLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first says so.
        let _ = self.file.unlock();
    }
}
