//! Helpers shared by the process tests of the `walguard` binary.

use std::path::Path;
use std::process::Command;

/// The binary with a clean environment (no `RUST_LOG`, no `WALGUARD__*`
/// overrides from the developer's shell), working directory `dir`.
pub(crate) fn walguard(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_walguard"));
    cmd.current_dir(dir).env_remove("RUST_LOG");
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
