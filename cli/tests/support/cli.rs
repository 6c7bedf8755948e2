//! Helpers shared by the process tests of the `walguard` binary.

use std::path::Path;
use std::process::Command;

/// The binary with a clean environment (no `RUST_LOG`, `NO_COLOR` or
/// `WALGUARD__*` overrides from the developer's shell), working directory
/// `dir`.
///
/// `WALGUARD_TEST_BIN=/path/to/walguard` runs the tests against another
/// build, e.g. an older one, to see which of them it fails.
pub(crate) fn walguard(dir: &Path) -> Command {
    let bin = std::env::var_os("WALGUARD_TEST_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_walguard").into());
    let mut cmd = Command::new(bin);
    cmd.current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("WALGUARD__") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Process output as text.
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every byte of `path`, or `None` when it does not exist: to show that a
/// command left a file byte-for-byte untouched.
#[allow(dead_code)] // Not every test binary that includes this module uses it.
pub(crate) fn bytes_of(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

/// `path` with `suffix` appended: its `-wal`, `-shm` or `-journal` (the
/// core's one rule for these names).
#[allow(unused_imports)] // Not every test binary that includes this module uses it.
pub(crate) use walguard::files::sibling;

/// The names in `dir`, sorted.
#[allow(dead_code)] // Not every test binary that includes this module uses it.
pub(crate) fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A WAL database at `path`, after `sql`, whose writer closed without the
/// close-time checkpoint: everything it wrote is still in the `-wal`.
#[allow(dead_code)] // Not every test binary that includes this module uses it.
pub(crate) fn left_with_a_full_wal(path: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    conn.execute_batch(sql).unwrap();
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .unwrap();
}
