//! The errors of the power-loss shim, carried by
//! [`Error::Vfs`](crate::Error::Vfs).

use std::path::PathBuf;

/// What the power-loss shim can fail on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VfsError {
    /// The power-loss shim found no default SQLite VFS
    /// to wrap.
    #[error("sqlite has no default vfs to wrap")]
    NoDefault,

    /// `sqlite3_vfs_register` refused the power-loss shim.
    #[error("cannot register vfs {name} (sqlite code {code})")]
    Register {
        /// The name the shim tried to register.
        name: String,
        /// The SQLite result code.
        code: i32,
    },

    /// `PowerLossVfs::restore_durable_images` was
    /// called while files opened through the shim were still open.
    #[error("{open} files opened through the power-loss vfs are still open")]
    FilesOpen {
        /// How many file handles are open.
        open: usize,
    },

    /// Writing a durable image back to disk failed .
    #[error("cannot restore {}", path.display())]
    Restore {
        /// The file being restored.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
