//! One engine per database file.
//!
//! walguard's promises (one writer, its deadlines, "durable through") hold
//! only while one engine serves a file. [`EngineLock`] is how the engine
//! makes sure: an exclusive OS lock (`flock` on Unix, `LockFileEx` on
//! Windows, through std's [`File::try_lock`]) on a small file beside the
//! database, [`files::engine_lock_path`].
//! It is a separate file, so SQLite's own locks on the database are
//! untouched: readers in other processes and the `sqlite3` shell keep
//! working. The OS drops the lock when the process ends, however it ends
//! (`kill -9` included), and a lock taken twice in one process conflicts
//! too (it belongs to the open file, not to the process).
//!
//! The holder writes its process id into the file, so a second engine can
//! say who serves the database. On Unix the holder removes the file when it
//! lets go, while it still holds the lock; and whoever takes the lock checks
//! that the path still leads to the file it locked (and tries again when
//! it does not), so a removal never lets two engines in. Elsewhere the file
//! stays behind (Windows cannot remove an open file), which is harmless.

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
    database: PathBuf,
}

impl EngineLock {
    /// Takes the engine lock of `database`, without waiting.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyServed`] when another engine (in this process or
    /// another) holds it, with that process's id when the lock file tells;
    /// [`Error::EngineLock`] when the lock file cannot be created or locked
    /// (permissions, a file system without locks);
    /// [`Error::MissingDirectory`] when the database's directory is missing.
    pub fn acquire(database: &Path) -> Result<Self> {
        if let Some(directory) = database.parent()
            && !directory.as_os_str().is_empty()
            && !directory.is_dir()
        {
            return Err(Error::MissingDirectory {
                path: database.to_owned(),
                directory: directory.to_owned(),
            });
        }
        let path = files::engine_lock_path(database);
        let io_err = |source| Error::EngineLock {
            path: path.clone(),
            source,
        };
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut file = open_lock_file(&path).map_err(io_err)?;
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
            // A holder that let go removed the path after we opened it: our
            // lock is on a file nobody else will look at. Take it again.
            if !still_at_path(&file, &path) && attempts < LOCK_ATTEMPTS {
                continue;
            }
            // Ours now: say who holds it.
            file.set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| writeln!(file, "{}", std::process::id()))
                .map_err(io_err)?;
            return Ok(Self {
                file,
                path,
                database: database.to_owned(),
            });
        }
    }

    /// The lock file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The database this lock is for, as given to [`EngineLock::acquire`].
    #[must_use]
    pub fn database(&self) -> &Path {
        &self.database
    }
}

impl Drop for EngineLock {
    fn drop(&mut self) {
        // Remove the path while the lock is still held, so the next engine
        // creates a fresh file (see the module docs); then let go.
        #[cfg(unix)]
        if still_at_path(&self.file, &self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
        let _ = self.file.unlock();
    }
}

/// How often [`EngineLock::acquire`] tries again after finding the path
/// removed under it.
const LOCK_ATTEMPTS: u32 = 3;

fn open_lock_file(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(crate::store::NEW_FILE_MODE);
    }
    options.open(path)
}

/// Whether `path` still leads to the open `file` (same device and inode).
/// Always true where the OS gives no inode: nothing removes the file there.
fn still_at_path(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}
