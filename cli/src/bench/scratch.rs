//! The benchmark's database: always a new file, removed with its `-wal` and
//! `-shm` files after every run, on an error and on Ctrl-C.

use std::path::{Path, PathBuf};

use walguard::Settings;

use crate::cli::BenchArgs;
use crate::error::CliError;

/// The benchmark database: `--db` when it names no existing file (nor a
/// `-wal`/`-shm` beside it), else a new `walguard-bench-<pid>[-n].db`
/// beside `database.path`.
pub(super) fn bench_path(db: Option<&Path>, database: &Path) -> Result<PathBuf, CliError> {
    let taken = |p: &Path| {
        [
            p.to_path_buf(),
            walguard::files::wal_path(p),
            walguard::files::shm_path(p),
        ]
        .into_iter()
        .find(|f| f.symlink_metadata().is_ok())
    };
    if let Some(db) = db {
        return match taken(db) {
            Some(path) => Err(CliError::BenchPathExists { path }),
            None => Ok(db.to_path_buf()),
        };
    }
    let dir = match database.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let pid = std::process::id();
    let mut path = dir.join(format!("walguard-bench-{pid}.db"));
    let mut n = 0u64;
    while taken(&path).is_some() {
        n += 1;
        path = dir.join(format!("walguard-bench-{pid}-{n}.db"));
    }
    Ok(path)
}

/// The benchmark database and its companions, removed on drop (and between
/// runs). Removal is best effort: a file that is already gone is fine.
pub(super) struct Scratch(pub(super) PathBuf);

impl Scratch {
    pub(super) fn remove(path: &Path) {
        for file in [
            path.to_path_buf(),
            walguard::files::wal_path(path),
            walguard::files::shm_path(path),
            walguard::files::journal_path(path),
        ] {
            let _ = std::fs::remove_file(file);
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        Self::remove(&self.0);
    }
}

/// What the benchmark database is called in the table.
pub(super) fn scratch_name(args: &BenchArgs, settings: &Settings) -> String {
    if let Some(db) = &args.db {
        return db.display().to_string();
    }
    let dir = settings
        .database
        .path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    format!("a new file in {}", dir.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn an_existing_path_is_refused_and_a_default_name_is_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.db");
        std::fs::write(&db, b"keep").unwrap();
        assert!(matches!(
            bench_path(Some(&db), &db),
            Err(CliError::BenchPathExists { .. })
        ));
        let fresh = bench_path(None, &db).unwrap();
        assert_eq!(fresh.parent(), Some(dir.path()));
        assert!(!fresh.exists());
        std::fs::write(&fresh, b"").unwrap();
        let next = bench_path(None, &db).unwrap();
        assert_ne!(next, fresh);
    }
}
