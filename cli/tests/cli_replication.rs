//! The `walguard` command with replication on, as a process, through a
//! real Litestream and a real S3-compatible server (`rclone serve s3`,
//! `actors/tests/support/s3.rs`), both started by the tests:
//!
//! - `walguard run --config config/replicate.yaml` stopped by SIGTERM
//!   (`cli_replication/run_sigterm.rs`);
//! - walguard killed alone, its Litestream orphaned and replaced at the
//!   next start, and the checkpoint settings that reach Litestream
//!   (`cli_replication/orphan.rs`).
//!
//! The library's own replication tests are actors/tests/replication.rs;
//! these two need the binary, which lives in this crate. Never skipped:
//! without the tools on `PATH` each test fails naming what is missing
//! ([`tools::require_replication_tools`]; `scripts/test` installs them).

// Replication is Unix-only (Litestream's control socket is a Unix socket).
#![cfg(unix)]

#[path = "../../actors/tests/support/s3.rs"]
mod s3;
use s3::{KEY, S3, SECRET};
#[path = "../../actors/tests/support/tools.rs"]
mod tools;
use tools::require_replication_tools;

#[path = "cli_replication/orphan.rs"]
mod orphan;
#[path = "cli_replication/run_sigterm.rs"]
mod run_sigterm;
