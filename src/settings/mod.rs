//! Settings: typed, validated, loaded in layers.
//!
//! # Layers
//!
//! 1. [`DEFAULT_SETTINGS_YAML`], the production defaults, compiled into the
//!    binary from `config/default.yaml`, so a fresh machine needs no file.
//! 2. An optional YAML file on top (e.g. `config/dev.yaml`).
//! 3. Environment variables `WALGUARD__SECTION__KEY`, e.g.
//!    `WALGUARD__CHECKPOINT__INTERVAL=5s`.
//!
//! Unknown keys, wrong types and values walguard cannot use are errors that
//! name the dotted key and the value. Settings are typed all the way down:
//! no value is ever pasted into SQL as a string (the pragmas take integers
//! and enums that are rendered by walguard itself).
//!
//! Settings can also be built in code without any file: start from
//! [`Settings::default`] (the same values as `config/default.yaml`) and set
//! fields, then call [`Settings::validate`].
//!
//! # Defaults, one source each
//!
//! Each default is a named constant with its unit below (`DEFAULT_*`);
//! the `Default` impls read them, and `config/default.yaml`, embedded as
//! [`DEFAULT_SETTINGS_YAML`], says the same in the file users read and
//! loading starts from. A test of the core
//! (`every_default_constant_is_the_embedded_yamls_value`) holds the YAML
//! to every constant, so the two cannot disagree.
//!
//! Durations are written with a unit: `250ms`, `1s`, `1.5s`, `2m`, `1h`
//! ([`parse_duration`]; the syntax and the rounding of every printed
//! figure live in a leaf module the error type reads too, re-exported
//! here).
//!
//! One concern per file: `database` (the connection's settings),
//! `checkpoint` (the schedule and [`SizeCheckpoint`]), `replication`,
//! `replica_url` (the replica URL, checked), `read` (the read side's
//! pool, with its own defaults), `load`
//! (the layers), `validate` (the checks). This file holds the defaults, as
//! named constants with their units, and the other sections.

mod checkpoint;
mod database;
mod load;
mod read;
mod replica_url;
mod replication;
mod validate;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::duration::{
    FIGURE_DECIMALS, duration_ms, duration_s, figure, format_duration, parse_duration,
};
pub use crate::synchronous::Synchronous;
pub use checkpoint::{CheckpointSettings, SizeCheckpoint};
pub use database::DatabaseSettings;
pub use read::{
    DEFAULT_MAX_SNAPSHOT_AGE, DEFAULT_READ_CONNECTIONS, MAX_READ_CONNECTIONS, ReadSettings,
};
pub use replica_url::{ReplicaUrl, redact};
pub use replication::{AckMode, ReplicationMode, ReplicationSettings};

use crate::duration::duration_serde;
pub(crate) use validate::invalid;

/// The production defaults as YAML, embedded from `config/default.yaml`.
pub const DEFAULT_SETTINGS_YAML: &str = include_str!("../../config/default.yaml");

/// Default database file, relative to the working directory.
pub const DEFAULT_DATABASE_PATH: &str = "walguard.db";

/// Default time between two interval checkpoints: 60 s, as Litestream does.
/// Under `synchronous=NORMAL` this is roughly the power-loss exposure window.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(60);

/// The time the whole clean shutdown must fit in: 5 s, what Windows gives
/// a console process between `CTRL_CLOSE_EVENT` (or a logoff, or a system
/// shutdown) and ending it (Microsoft's `HandlerRoutine` documentation),
/// and so the budget of the `walguard` command too. The default shutdown
/// fits inside it (a test of the settings checks).
pub const SHUTDOWN_BUDGET: Duration = Duration::from_secs(5);

/// Default hard deadline for the TRUNCATE checkpoint at shutdown: 2 s, well
/// inside the [`SHUTDOWN_BUDGET`].
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

/// Default SQLite busy timeout for the write connection: 1 s (Litestream's
/// too). A write waiting on another process's lock waits this long at most,
/// so the default shutdown (this, then the TRUNCATE's
/// [`DEFAULT_SHUTDOWN_TIMEOUT`]) fits inside the [`SHUTDOWN_BUDGET`].
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(1);

/// Default busy timeout of a blocking checkpoint (FULL, RESTART, TRUNCATE)
/// asked for by hand: 250 ms, in the spirit of rqlite's checkpoint timeout.
/// Such a checkpoint waits on readers while it holds the write lock, so
/// every write waits with it: the bound keeps that stall short.
pub const DEFAULT_CHECKPOINT_BUSY_TIMEOUT: Duration = Duration::from_millis(250);

/// Default number of checkpoint samples kept in the rolling window: 512, about
/// 8.5 hours at the default interval.
pub const DEFAULT_WINDOW_SAMPLES: usize = 512;

/// Default SQLite auto-checkpoint threshold, in WAL pages (SQLite's own
/// default).
pub const DEFAULT_WAL_AUTOCHECKPOINT_PAGES: u32 = 1000;

/// Default cap on the size a WAL file keeps on disk after a reset, in bytes:
/// 64 MiB. Without a limit a reset WAL keeps its largest size.
pub const DEFAULT_JOURNAL_SIZE_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// Default for `database.group_commit`: on. Single writes waiting in
/// `DbActor`'s mailbox are committed together, one transaction per batch.
pub const DEFAULT_GROUP_COMMIT: bool = true;

/// Default cap on the writes one group commit holds: 1024 writes, about the
/// 1000-insert batches of the raw SQLite ceiling. Measured in
/// `docs/benchmarks.md`: with 1024 writers in flight, 1024 beat 256 by
/// about 12 % under `synchronous=NORMAL` and 18 % under FULL; with 256 in
/// flight the cap is never reached and 128 to 1024 are equal. The first
/// write of a full group waits for the whole group, about 1 ms.
pub const DEFAULT_MAX_BATCH_WRITES: usize = 1024;

/// Default `DbActor` mailbox capacity: 1024 messages. Senders using `send`
/// wait when it is full: backpressure instead of unbounded memory.
pub const DEFAULT_MAILBOX_CAPACITY_MESSAGES: usize = 1024;

/// Default WAL size, in frames (pages), at which the writer runs a PASSIVE
/// checkpoint of its own after a commit: 1000, SQLite's own
/// auto-checkpoint threshold.
pub const DEFAULT_SIZE_THRESHOLD_FRAMES: u32 = 1000;

/// Default place of the size-triggered checkpoint's copy
/// (`checkpoint.size_checkpoint`): two phases. A second connection, on a
/// thread of its own, copies while the writer keeps committing; the writer
/// then copies only the rest, so the copy leaves the writer's critical
/// path (docs/design.md, "Two-phase size checkpoint"). The power-loss
/// campaigns cut inside each phase (docs/reliability.md). `on_writer`, a
/// single PASSIVE on the writer, stays available.
pub const DEFAULT_SIZE_CHECKPOINT: SizeCheckpoint = SizeCheckpoint::TwoPhase;

/// Default period of the replication sync (`replication.sync_period`): 1 s,
/// Litestream's own default sync interval.
pub const DEFAULT_SYNC_PERIOD: Duration = Duration::from_secs(1);

/// Default replication lag above which a warning fires
/// (`replication.max_lag`): 10 s, ten sync periods.
pub const DEFAULT_MAX_LAG: Duration = Duration::from_secs(10);

/// Default WAL hard cap while Litestream owns checkpointing
/// (`replication.wal_cap_frames`): 100,000 frames, about 400 MiB at 4 KiB
/// pages, below Litestream's own emergency TRUNCATE at about 500 MB.
pub const DEFAULT_WAL_CAP_FRAMES: u32 = 100_000;

/// The Litestream version walguard is tested with, and the oldest it
/// accepts: its control socket's `/sync` with `wait` and the config shape
/// walguard writes are checked against it.
pub const LITESTREAM_VERSION: &str = "0.5.17";

/// Prefix of environment overrides: `WALGUARD__SECTION__KEY`.
pub const ENV_PREFIX: &str = "WALGUARD";

/// Separator between prefix, section and key in environment overrides.
pub const ENV_SEPARATOR: &str = "__";

/// All of walguard's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct Settings {
    /// The database file and its connection pragmas.
    pub database: DatabaseSettings,
    /// The checkpoint schedule and the shutdown checkpoint.
    pub checkpoint: CheckpointSettings,
    /// Checkpoint statistics.
    pub metrics: MetricsSettings,
    /// Logging, for the `walguard` command.
    pub log: LogSettings,
    /// Replication to another machine through Litestream (off by default).
    pub replication: ReplicationSettings,
    /// The read side: read-only connections beside the writer.
    pub read: ReadSettings,
}

/// Checkpoint statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct MetricsSettings {
    /// Samples kept in the rolling window; the oldest is dropped. Above zero.
    pub window: usize,
}

/// Logging, for the `walguard` command (the library itself only emits
/// `tracing` events).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct LogSettings {
    /// A `tracing` filter, e.g. `info` or `walguard=debug`. `RUST_LOG`
    /// overrides it.
    pub level: String,
    /// `text` for people, `json` for log shippers.
    pub format: LogFormat,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!(
                "unknown log format {other:?}, expected text or json"
            )),
        }
    }
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            window: DEFAULT_WINDOW_SAMPLES,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

impl Default for Settings {
    /// The production defaults, identical to `config/default.yaml` (a test
    /// keeps the two in step).
    fn default() -> Self {
        Self {
            database: DatabaseSettings::default(),
            checkpoint: CheckpointSettings::default(),
            metrics: MetricsSettings::default(),
            log: LogSettings::default(),
            replication: ReplicationSettings::default(),
            read: ReadSettings::default(),
        }
    }
}

impl Settings {
    /// Default settings for the database at `path`.
    #[must_use]
    pub fn for_database(path: impl Into<PathBuf>) -> Self {
        let mut settings = Self::default();
        settings.database.path = path.into();
        settings
    }
}
