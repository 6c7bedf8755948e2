//! The database file is still the one the store opened.
//!
//! In WAL mode SQLite keeps writing to a database file that was deleted,
//! renamed or replaced under it, without any error (FACTS.md, "A moved or
//! deleted file"): every commit then goes to a file nobody can open again.
//! SQLite's unix VFS answers `SQLITE_FCNTL_HAS_MOVED` by comparing the
//! inode behind the path with the one it opened; the store does the same
//! from Rust, with no `unsafe`: it notes the file's identity right after
//! opening and compares it at every checkpoint ([`Store::check_file`]).
//!
//! The identity is the device and inode on Unix. On Windows the OS itself
//! keeps the file in place: SQLite's Windows VFS opens the database without
//! `FILE_SHARE_DELETE` (`winOpen`), so deleting, renaming or replacing it
//! fails with a sharing violation while the store has it open
//! (`cli/tests/windows.rs` shows it), and the check there only looks
//! for the path going missing. The creation time, the obvious stand-in for
//! an inode, is no identity on Windows: NTFS gives a file created in the
//! place of a deleted one the old creation time (file system tunnelling),
//! and Wine 8 on Linux reports a creation time that writes move.

use std::path::Path;

use crate::error::{Error, Result};

use super::Store;

/// What identifies the file behind a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileIdentity {
    #[cfg(unix)]
    device: u64,
    #[cfg(unix)]
    inode: u64,
}

impl FileIdentity {
    /// The identity of the file at `path` now.
    pub(super) fn of(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Ok(Self {
                device: meta.dev(),
                inode: meta.ino(),
            })
        }
        // Only that the path exists (see the module docs).
        #[cfg(not(unix))]
        {
            let _ = meta;
            Ok(Self {})
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::MetadataExt as _;

    use super::FileIdentity;

    /// The identity is the device and the inode, both read from the file:
    /// an inode number is unique only within its file system, so a file
    /// on another device with the same inode is another file.
    #[test]
    fn the_identity_is_the_device_and_the_inode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        std::fs::write(&path, b"x").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        let (device, inode) = (meta.dev(), meta.ino());
        let id = FileIdentity::of(&path).unwrap();
        assert_eq!(id, FileIdentity { device, inode });
        let same_inode_other_device = FileIdentity {
            device: device ^ 1,
            inode,
        };
        assert_ne!(id, same_inode_other_device);
    }
}

/// How the database file went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gone {
    /// Nothing is at the path any more.
    Deleted,
    /// Another file is at the path (renamed away, replaced, restored).
    Replaced,
}

impl Gone {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Deleted => "deleted or renamed",
            Self::Replaced => "replaced by another file",
        }
    }
}

impl Store {
    /// Checks that the database file is still the one the store opened:
    /// not deleted, renamed or replaced. Every checkpoint runs it first.
    /// While the file is gone, the store refuses every write and every
    /// checkpoint with [`Error::DatabaseGone`], and the durable point does
    /// not move; each time the file goes, it is logged once at `ERROR`
    /// (target `walguard::db`). Should the very same file come back to its
    /// path (a directory renamed and renamed back), the store serves again:
    /// nothing was written while it was away.
    ///
    /// # Errors
    ///
    /// [`Error::DatabaseGone`] naming the path and what happened.
    pub fn check_file(&mut self) -> Result<()> {
        if let Some(opened) = self.identity {
            let now = match FileIdentity::of(&self.settings.path) {
                Ok(now) if now == opened => None,
                Ok(_) => Some(Gone::Replaced),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(Gone::Deleted),
                // Cannot look (permissions on the directory...): not proof.
                Err(_) => self.gone,
            };
            if let Some(gone) = now
                && self.gone.is_none()
            {
                tracing::error!(
                    target: "walguard::db",
                    path = %self.settings.path.display(),
                    how = gone.as_str(),
                    "the database file was {} while walguard had it open; writes and checkpoints are refused",
                    gone.as_str()
                );
                self.gone_ever = true;
            }
            if now.is_none()
                && let Some(was) = self.gone
            {
                tracing::warn!(
                    target: "walguard::db",
                    path = %self.settings.path.display(),
                    "the database file that was {} is back at its path (the same file): writes and checkpoints resume",
                    was.as_str()
                );
            }
            self.gone = now;
        }
        self.refuse_if_gone()
    }

    /// Whether [`Store::check_file`] has ever found the database file
    /// gone since the store opened (it may have come back since: see
    /// [`Store::file_is_gone`]).
    #[must_use]
    pub fn file_was_gone(&self) -> bool {
        self.gone_ever
    }

    /// Whether the last [`Store::check_file`] found the database file gone:
    /// deleted, renamed away, or another file at its path. Then what was
    /// acknowledged is not where the path leads. False again once the very
    /// file the store opened is back at its path (renamed back): then
    /// everything acknowledged is in the file at the path.
    #[must_use]
    pub fn file_is_gone(&self) -> bool {
        self.gone.is_some()
    }

    /// [`Error::DatabaseGone`] once [`Store::check_file`] has found the file
    /// gone.
    pub(super) fn refuse_if_gone(&self) -> Result<()> {
        match self.gone {
            None => Ok(()),
            Some(gone) => Err(Error::DatabaseGone {
                path: self.settings.path.clone(),
                how: gone.as_str(),
            }),
        }
    }
}
