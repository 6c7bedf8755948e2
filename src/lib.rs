//! The actor-free core of walguard: one SQLite write connection in WAL mode,
//! the checkpoints that run on it, and their statistics.
//!
//! ```
//! use walguard::{CheckpointMode, CheckpointReason, Settings, SessionStats, Statement, Store};
//!
//! let dir = tempfile::tempdir()?;
//! let settings = Settings::for_database(dir.path().join("state.db"));
//! let mut store = Store::open(&settings.database)?;
//! store.execute(&Statement::new("CREATE TABLE events (id INTEGER PRIMARY KEY, body TEXT)"))?;
//! store.transaction(&[
//!     Statement::new("INSERT INTO events (body) VALUES (?1)").bind("opened"),
//!     Statement::new("INSERT INTO events (body) VALUES (?1)").bind("filled"),
//! ])?;
//!
//! let mut stats = SessionStats::new(settings.metrics.window);
//! let report = store.checkpoint(CheckpointMode::Passive, CheckpointReason::Manual);
//! stats.record(&report);
//! assert_eq!(stats.counts().completed, 1);
//! assert_eq!(store.durability().exposed_commits(), 0);
//! store.close().map_err(|(_, e)| e)?;
//! Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Overview
//!
//! - [`Store`] owns the write connection: it opens the file in WAL mode with
//!   typed [`settings`], runs statements, atomic batches, reads and closures,
//!   and runs checkpoints between transactions.
//! - [`checkpoint`] holds the checkpoint policy (read it: it says what a
//!   checkpoint does and does not protect against), the modes, and the
//!   [`CheckpointReport`] every checkpoint produces.
//! - [`stats`] keeps the rolling window of checkpoint times, exact
//!   percentiles over it, and the session counts.
//! - [`Settings`] loads `config/default.yaml` (embedded), an optional file,
//!   and `WALGUARD__SECTION__KEY` environment overrides.
//! - [`exposure`] turns [`Durability`] into what an operator watches: how
//!   long ago the last fully caught-up checkpoint was, how many commits a
//!   power loss under `synchronous=normal` could take, and a warning once per
//!   checkpoint-starvation episode.
//! - [`files`] names the files SQLite keeps beside a database (`-wal`,
//!   `-shm`, `-journal`).
//! - [`EngineLock`] makes sure one engine serves a database file.
//! - [`Migrations`] are the engine's schema: versioned in `PRAGMA
//!   user_version`, applied at start in one transaction by
//!   [`Store::migrate`], refusing a database from the future.
//! - [`ReadPool`] is the read side: read-only connections beside the
//!   writer, each read in one snapshot, with a bound on a snapshot's age
//!   (`read.max_snapshot_age`) so no reader of ours starves a checkpoint.
//! - Group commit ([`Store::execute_group`]) and the size-triggered
//!   checkpoint ([`Store::set_size_threshold`]) are plain store methods too;
//!   `walguard-actors` drives them.
//!
//! The actix actors that put all this behind messages live in the
//! `walguard-actors` crate.
//!
//! # Crate features
//!
//! - `testing`: the power-loss VFS shim, so your own tests can simulate a
//!   power cut under a real SQLite.

pub mod checkpoint;
mod duration;
pub mod error;
pub mod exposure;
pub mod files;
pub mod lock;
pub mod migrations;
pub mod read;
pub mod replication;
pub mod settings;
pub mod stats;
pub mod store;
mod synchronous;
pub mod writer;

#[cfg(feature = "testing")]
pub mod testing;

pub use checkpoint::{CheckpointMode, CheckpointOutcome, CheckpointReason, CheckpointReport};
pub use error::{Error, Result};
pub use lock::EngineLock;
pub use migrations::{Migration, MigrationReport, Migrations};
pub use read::ReadPool;
pub use settings::{Settings, SizeCheckpoint};
pub use stats::{Aggregate, SessionCounts, SessionReport, SessionStats, Window};
pub use store::{Durability, GroupStats, IntoValue, ResultSet, Statement, Store, WalFrames};
