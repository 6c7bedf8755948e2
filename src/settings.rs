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
//! Durations are written with a unit: `250ms`, `1s`, `1.5s`, `2m`, `1h`.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result, SettingsError};

/// The production defaults as YAML, embedded from `config/default.yaml`.
pub const DEFAULT_SETTINGS_YAML: &str = include_str!("../config/default.yaml");

/// Default database file, relative to the working directory.
pub const DEFAULT_DATABASE_PATH: &str = "walguard.db";

/// Default time between two interval checkpoints: 60 s, as Litestream does.
/// Under `synchronous=NORMAL` this is roughly the power-loss exposure window.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(60);

/// Default hard deadline for the TRUNCATE checkpoint at shutdown: 2 s, well
/// inside the 5 s a Windows console process gets on close.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

/// Default SQLite busy timeout for the write connection: 1 s (Litestream's
/// too). A write waiting on another process's lock waits this long at most,
/// so the default shutdown (this, then the TRUNCATE's
/// [`DEFAULT_SHUTDOWN_TIMEOUT`]) fits inside a 5 s budget, the one the
/// `walguard` command and Windows' console close give.
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
}

/// Replication through Litestream: what gives a machine loss a bound.
///
/// Credentials never live here: Litestream reads them from the environment
/// (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` or `LITESTREAM_*` for S3,
/// an SSH key or agent for SFTP), and no setting, log line or error of
/// walguard's shows them. A `url` that carries a password is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ReplicationSettings {
    /// `off` (the default) or `litestream`.
    pub mode: ReplicationMode,
    /// The replica: `s3://BUCKET/PATH`, `sftp://USER@HOST[:PORT]/PATH` or
    /// `file:///PATH`. Required with `mode: litestream`.
    pub url: Option<String>,
    /// An S3-compatible endpoint (`http://…` or `https://…`) for an `s3://`
    /// replica not on AWS; path-style addressing is used with it.
    pub endpoint: Option<String>,
    /// How often walguard asks Litestream to sync and waits for the answer
    /// (its control socket's `/sync` with `wait`); also Litestream's own
    /// sync interval. Above zero.
    #[serde(with = "duration_serde")]
    pub sync_period: Duration,
    /// `local` (the default): a write is answered once committed locally.
    /// `replicated`: once a sync that started after its commit has answered
    /// `synced`, so a machine loss takes no acknowledged write.
    pub ack: AckMode,
    /// The replication lag above which a warning fires, once per episode;
    /// with `ack: replicated`, also how long a write waits for the replica
    /// before it is answered with an error (it stays committed locally).
    #[serde(with = "duration_serde")]
    pub max_lag: Duration,
    /// The control socket of a Litestream run by someone else (systemd, a
    /// sidecar). When set, walguard starts no Litestream of its own and
    /// talks to this one; `~` (the default): walguard starts and supervises
    /// `litestream replicate` itself, with its socket beside the database.
    pub socket: Option<PathBuf>,
    /// The `litestream` binary to start: a name looked up on `PATH`, or a
    /// path. It must be at least [`LITESTREAM_VERSION`].
    pub litestream_binary: PathBuf,
    /// WAL size in frames past which walguard takes checkpointing back even
    /// while Litestream is healthy (a PASSIVE after the commit that passed
    /// it). At least 1.
    pub wal_cap_frames: u32,
    /// When the database file is missing at start and the replica exists,
    /// restore it from the replica first. Off by default.
    pub restore_on_start: bool,
}

/// `replication.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ReplicationMode {
    /// No replication: a machine loss loses everything.
    #[default]
    Off,
    /// Replicate through Litestream.
    Litestream,
}

/// `replication.ack`: when a write is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum AckMode {
    /// Once committed locally.
    #[default]
    Local,
    /// Once on the replica.
    Replicated,
}

impl fmt::Display for ReplicationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Off => "off",
            Self::Litestream => "litestream",
        })
    }
}

impl fmt::Display for AckMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Local => "local",
            Self::Replicated => "replicated",
        })
    }
}

impl Default for ReplicationSettings {
    fn default() -> Self {
        Self {
            mode: ReplicationMode::Off,
            url: None,
            endpoint: None,
            sync_period: DEFAULT_SYNC_PERIOD,
            ack: AckMode::Local,
            max_lag: DEFAULT_MAX_LAG,
            socket: None,
            litestream_binary: PathBuf::from("litestream"),
            wal_cap_frames: DEFAULT_WAL_CAP_FRAMES,
            restore_on_start: false,
        }
    }
}

impl ReplicationSettings {
    /// Whether replication is on.
    #[must_use]
    pub fn is_on(&self) -> bool {
        self.mode == ReplicationMode::Litestream
    }

    /// Checks the section (called by [`Settings::validate`], which passes
    /// `database.group_commit`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] naming the key. A value that carries a
    /// password is never echoed.
    pub fn validate(&self, group_commit: bool) -> Result<()> {
        if self.sync_period.is_zero() {
            return Err(invalid(
                "replication.sync_period",
                &format_duration(self.sync_period),
                "must be greater than zero",
            ));
        }
        if self.max_lag.is_zero() {
            return Err(invalid(
                "replication.max_lag",
                &format_duration(self.max_lag),
                "must be greater than zero",
            ));
        }
        if self.wal_cap_frames == 0 || self.wal_cap_frames > i32::MAX as u32 {
            return Err(invalid(
                "replication.wal_cap_frames",
                &self.wal_cap_frames.to_string(),
                "must be between 1 and 2147483647",
            ));
        }
        if let Some(url) = &self.url {
            crate::replication::ReplicaUrl::parse(url)?;
        }
        if let Some(endpoint) = &self.endpoint {
            let shown = crate::replication::redact(endpoint);
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
                || endpoint.len() <= "https://".len()
            {
                return Err(invalid(
                    "replication.endpoint",
                    &shown,
                    "must be an http:// or https:// address",
                ));
            }
            if shown != *endpoint {
                return Err(invalid(
                    "replication.endpoint",
                    &shown,
                    "must not carry credentials; Litestream reads them from the environment",
                ));
            }
        }
        if let Some(socket) = &self.socket
            && socket.as_os_str().is_empty()
        {
            return Err(invalid("replication.socket", "\"\"", "must not be empty"));
        }
        if self.litestream_binary.as_os_str().is_empty() {
            return Err(invalid(
                "replication.litestream_binary",
                "\"\"",
                "must not be empty",
            ));
        }
        if !self.is_on() {
            return Ok(());
        }
        if self.ack == AckMode::Replicated && !group_commit {
            return Err(invalid(
                "replication.ack",
                "replicated",
                "needs database.group_commit: true (the held replies are those of group commits)",
            ));
        }
        if self.url.is_none() {
            return Err(invalid(
                "replication.url",
                "~",
                "is required with replication.mode: litestream (s3://BUCKET/PATH, sftp://USER@HOST/PATH or file:///PATH)",
            ));
        }
        Ok(())
    }
}

/// The database file and how the write connection is configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct DatabaseSettings {
    /// Path of the database file; created when missing.
    pub path: PathBuf,
    /// `PRAGMA synchronous`. `normal` (the default) fsyncs the WAL only at
    /// checkpoints; `full` fsyncs every commit.
    pub synchronous: Synchronous,
    /// `PRAGMA busy_timeout`: how long a statement waits for a lock.
    #[serde(with = "duration_serde")]
    pub busy_timeout: Duration,
    /// The busy timeout of a blocking checkpoint (FULL, RESTART, TRUNCATE)
    /// run by [`Store::checkpoint`](crate::Store::checkpoint): how long it
    /// may wait on readers and other writers, and so how long it may stall
    /// the writes behind it. PASSIVE never waits.
    #[serde(with = "duration_serde")]
    pub checkpoint_busy_timeout: Duration,
    /// `PRAGMA journal_size_limit` in bytes: the size a reset WAL is trimmed
    /// to. `None` (YAML `~`) keeps no limit.
    pub journal_size_limit: Option<u64>,
    /// `PRAGMA wal_autocheckpoint` in pages; `0` turns SQLite's own
    /// auto-checkpoint off. Ignored when `checkpoint.size_threshold_frames`
    /// is above zero: walguard then sets it to 0 and runs (and measures) the
    /// size-triggered checkpoints itself.
    pub wal_autocheckpoint: u32,
    /// Group commit in `DbActor`: single writes waiting in its mailbox are
    /// committed in one transaction, and each sender is answered once the
    /// COMMIT holding its write returned. A write alone is committed at
    /// once (no timer waits for company). `false` commits every write on
    /// its own.
    pub group_commit: bool,
    /// Most writes one group commit holds (at least 1).
    pub max_batch: usize,
    /// `DbActor`'s mailbox capacity in messages (at least 1). Senders that
    /// use `send` wait while it is full.
    pub mailbox_capacity: usize,
}

/// The checkpoint schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct CheckpointSettings {
    /// Start the periodic loop when the system starts. Off by default: the
    /// loop is opt-in, so one-shot tools and test fixtures start no timer.
    pub enabled: bool,
    /// Time between two interval (PASSIVE) checkpoints. Must be above zero;
    /// there is no other minimum.
    #[serde(with = "duration_serde")]
    pub interval: Duration,
    /// Hard deadline of the TRUNCATE checkpoint at shutdown.
    #[serde(with = "duration_serde")]
    pub shutdown_timeout: Duration,
    /// WAL size in frames (pages) at which the writer runs a PASSIVE
    /// checkpoint (reason `size`) right after the commit that reached it,
    /// and reports it like every other checkpoint. SQLite's own
    /// auto-checkpoint is turned off on the writer while this is above
    /// zero, so no checkpoint runs unmeasured inside a COMMIT. `0` leaves
    /// size-triggered checkpoints to SQLite (`database.wal_autocheckpoint`).
    pub size_threshold_frames: u32,
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

/// `PRAGMA synchronous` values that make sense in WAL mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Synchronous {
    /// No fsync at all. A power loss can corrupt the database. For tests.
    Off,
    /// Fsync the WAL at checkpoints only: a power loss may roll back commits
    /// made since the last completed checkpoint; the database stays
    /// consistent. A process crash loses nothing.
    Normal,
    /// Fsync the WAL at every commit: nothing acknowledged is lost.
    Full,
    /// Like `Full`, and also fsync the directory after unlinking a journal.
    Extra,
}

impl Synchronous {
    /// Every level with its name, as SQLite spells it, and the number
    /// `PRAGMA synchronous` reports (`sqlite3_pragma`, `PAGER_SYNCHRONOUS_*`
    /// less one): the one table the methods below read.
    const LEVELS: [(Self, &'static str, i64); 4] = [
        (Self::Off, "OFF", 0),
        (Self::Normal, "NORMAL", 1),
        (Self::Full, "FULL", 2),
        (Self::Extra, "EXTRA", 3),
    ];

    fn entry(self) -> (Self, &'static str, i64) {
        // Every variant has its row, so the fallback is never taken.
        Self::LEVELS
            .into_iter()
            .find(|(level, _, _)| *level == self)
            .unwrap_or(Self::LEVELS[1])
    }

    /// The pragma value, as SQLite spells it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.entry().1
    }

    /// The numeric value `PRAGMA synchronous` reports back.
    #[must_use]
    pub fn level(self) -> i64 {
        self.entry().2
    }

    /// The level `PRAGMA synchronous` reported as a number; `None` for a
    /// number SQLite does not define.
    #[must_use]
    pub fn from_level(level: i64) -> Option<Self> {
        Self::LEVELS
            .into_iter()
            .find(|(_, _, n)| *n == level)
            .map(|(s, _, _)| s)
    }
}

impl FromStr for Synchronous {
    type Err = String;

    /// Case-insensitive: `normal`, `NORMAL` and `Normal` are the same value.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::LEVELS
            .into_iter()
            .find(|(_, name, _)| name.eq_ignore_ascii_case(s))
            .map(|(level, _, _)| level)
            .ok_or_else(|| {
                format!("unknown synchronous value {s:?}, expected off, normal, full or extra")
            })
    }
}

impl<'de> Deserialize<'de> for Synchronous {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Synchronous {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str().to_ascii_lowercase())
    }
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

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            path: PathBuf::from(DEFAULT_DATABASE_PATH),
            synchronous: Synchronous::Normal,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            checkpoint_busy_timeout: DEFAULT_CHECKPOINT_BUSY_TIMEOUT,
            journal_size_limit: Some(DEFAULT_JOURNAL_SIZE_LIMIT_BYTES),
            wal_autocheckpoint: DEFAULT_WAL_AUTOCHECKPOINT_PAGES,
            group_commit: DEFAULT_GROUP_COMMIT,
            max_batch: DEFAULT_MAX_BATCH_WRITES,
            mailbox_capacity: DEFAULT_MAILBOX_CAPACITY_MESSAGES,
        }
    }
}

impl DatabaseSettings {
    /// Default settings for the database at `path`.
    #[must_use]
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            ..Self::default()
        }
    }
}

impl Default for CheckpointSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            interval: DEFAULT_CHECKPOINT_INTERVAL,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            size_threshold_frames: DEFAULT_SIZE_THRESHOLD_FRAMES,
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

    /// Loads the embedded defaults, then `file` if given, then the process
    /// environment's `WALGUARD__SECTION__KEY` overrides, and validates.
    ///
    /// # Errors
    ///
    /// [`Error::Settings`] when a file is missing or malformed, or a key is
    /// unknown or has the wrong type; [`Error::InvalidSetting`] when a value
    /// is out of range. Both name the key.
    pub fn load(file: Option<&Path>) -> Result<Self> {
        Self::load_from(file, std::env::vars())
    }

    /// Like [`Settings::load`], with the environment given explicitly (tests
    /// use this instead of mutating the process environment). Variables
    /// without the `WALGUARD__` prefix are ignored.
    ///
    /// # Errors
    ///
    /// As [`Settings::load`].
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self> {
        let env: HashMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}{ENV_SEPARATOR}")))
            .collect();

        let mut origin = String::from("defaults");
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_SETTINGS_YAML,
            config::FileFormat::Yaml,
        ));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(Error::Settings {
                    origin: path.display().to_string(),
                    source: SettingsError {
                        key: None,
                        message: "no such file".to_owned(),
                    },
                });
            }
            // Parse the file on its own first, so a syntax error is blamed on
            // the file and not on the merged result.
            config::Config::builder()
                .add_source(config::File::from(path).format(config::FileFormat::Yaml))
                .build()
                .map_err(|e| settings_error(path.display().to_string(), None, &e))?;
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Yaml));
            origin = format!("{origin}, {}", path.display());
        }
        if !env.is_empty() {
            origin.push_str(", environment");
        }
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator(ENV_SEPARATOR)
                .separator(ENV_SEPARATOR)
                .source(Some(env.into_iter().collect())),
        );
        let merged = builder
            .build()
            .map_err(|e| settings_error(origin.clone(), None, &e))?;
        let settings: Settings = serde_path_to_error::deserialize(merged).map_err(|e| {
            let key = e.path().to_string();
            settings_error(origin.clone(), Some(key), e.inner())
        })?;
        settings.validate()?;
        Ok(settings)
    }

    /// Parses settings from a YAML string on top of the defaults, without
    /// reading the environment.
    ///
    /// # Errors
    ///
    /// As [`Settings::load`].
    pub fn from_yaml(yaml: &str) -> Result<Self> {
        let merged = config::Config::builder()
            .add_source(config::File::from_str(
                DEFAULT_SETTINGS_YAML,
                config::FileFormat::Yaml,
            ))
            .add_source(config::File::from_str(yaml, config::FileFormat::Yaml))
            .build()
            .map_err(|e| settings_error("yaml".to_owned(), None, &e))?;
        let settings: Settings = serde_path_to_error::deserialize(merged).map_err(|e| {
            let key = e.path().to_string();
            settings_error("yaml".to_owned(), Some(key), e.inner())
        })?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks every value walguard cannot use.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] naming the first offending key and value.
    pub fn validate(&self) -> Result<()> {
        if self.database.path.as_os_str().is_empty() {
            return Err(invalid("database.path", "\"\"", "must not be empty"));
        }
        if self.database.path.to_str() == Some(":memory:") {
            return Err(invalid(
                "database.path",
                ":memory:",
                "an in-memory database has no WAL; use a file",
            ));
        }
        if let Some(text) = self.database.path.to_str()
            && text.starts_with("file:")
        {
            return Err(invalid(
                "database.path",
                text,
                "URI filenames are not supported; give a plain file path",
            ));
        }
        if self.checkpoint.interval.is_zero() {
            return Err(invalid(
                "checkpoint.interval",
                &format_duration(self.checkpoint.interval),
                "must be greater than zero",
            ));
        }
        if self.checkpoint.shutdown_timeout.is_zero() {
            return Err(invalid(
                "checkpoint.shutdown_timeout",
                &format_duration(self.checkpoint.shutdown_timeout),
                "must be greater than zero",
            ));
        }
        if i32::try_from(self.database.busy_timeout.as_millis()).is_err() {
            return Err(invalid(
                "database.busy_timeout",
                &format_duration(self.database.busy_timeout),
                "must be below 24 days (SQLite takes milliseconds as a 32-bit integer)",
            ));
        }
        if i32::try_from(self.database.checkpoint_busy_timeout.as_millis()).is_err() {
            return Err(invalid(
                "database.checkpoint_busy_timeout",
                &format_duration(self.database.checkpoint_busy_timeout),
                "must be below 24 days (SQLite takes milliseconds as a 32-bit integer)",
            ));
        }
        if let Some(limit) = self.database.journal_size_limit
            && i64::try_from(limit).is_err()
        {
            return Err(invalid(
                "database.journal_size_limit",
                &limit.to_string(),
                "must fit in a signed 64-bit integer",
            ));
        }
        if self.database.wal_autocheckpoint > i32::MAX as u32 {
            return Err(invalid(
                "database.wal_autocheckpoint",
                &self.database.wal_autocheckpoint.to_string(),
                "must fit in a signed 32-bit integer",
            ));
        }
        if self.database.max_batch == 0 {
            return Err(invalid("database.max_batch", "0", "must be at least 1"));
        }
        if self.database.mailbox_capacity == 0 {
            return Err(invalid(
                "database.mailbox_capacity",
                "0",
                "must be at least 1",
            ));
        }
        if self.checkpoint.size_threshold_frames > i32::MAX as u32 {
            return Err(invalid(
                "checkpoint.size_threshold_frames",
                &self.checkpoint.size_threshold_frames.to_string(),
                "must fit in a signed 32-bit integer",
            ));
        }
        if self.metrics.window == 0 {
            return Err(invalid("metrics.window", "0", "must be at least 1"));
        }
        if self.log.level.trim().is_empty() {
            return Err(invalid("log.level", "\"\"", "must not be empty"));
        }
        self.replication.validate(self.database.group_commit)
    }
}

pub(crate) fn invalid(key: &str, value: &str, reason: &str) -> Error {
    Error::InvalidSetting {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

fn settings_error(origin: String, key: Option<String>, err: &dyn fmt::Display) -> Error {
    let key = key.filter(|k| !k.is_empty() && k != ".");
    let text = err.to_string();
    let message = match &key {
        // The `config` crate appends "for key `...` in FILE" to its own
        // messages; the key is already in front and the origin names the
        // file, so keep the message once.
        Some(k) => format!(
            "key {k}: {}",
            text.split(" for key `").next().unwrap_or(&text)
        ),
        None => text,
    };
    Error::Settings {
        origin,
        source: SettingsError { key, message },
    }
}

/// Parses a duration with a unit: `250ms`, `1s`, `1.5s`, `2m`, `1h`.
///
/// # Errors
///
/// A message naming the text when it has no unit, an unknown unit, or a
/// number that is negative or not finite.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("invalid duration {text:?}: missing unit (ms, s, m or h)"))?;
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected a number before the unit"))?;
    let seconds_per_unit = match unit.trim() {
        "ms" => 0.001,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "invalid duration {text:?}: unknown unit {other:?}, expected ms, s, m or h"
            ));
        }
    };
    Duration::try_from_secs_f64(value * seconds_per_unit)
        .map_err(|_| format!("invalid duration {text:?}: out of range"))
}

/// Formats a duration the way [`parse_duration`] reads it back.
#[must_use]
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}s", d.as_secs_f64())
    } else if !ms.is_multiple_of(1000) {
        format!("{ms}ms")
    } else {
        format!("{}s", d.as_secs())
    }
}

mod duration_serde {
    use std::fmt;

    use super::{Deserializer, Duration, Serializer, format_duration, parse_duration};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    /// Accepts text with a unit; a bare number gets a hint to add one, and
    /// any other type says what was expected (an untagged enum would only
    /// say "data did not match any variant").
    struct DurationVisitor;

    impl serde::de::Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration with a unit, e.g. \"60s\" or \"250ms\"")
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Duration, E> {
            parse_duration(text).map_err(E::custom)
        }

        fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Duration, E> {
            Err(E::custom(format!(
                "invalid duration {n}: missing unit, write e.g. \"{n}s\" or \"{n}ms\""
            )))
        }

        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Duration, E> {
            self.visit_f64(n as f64)
        }

        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Duration, E> {
            self.visit_f64(n as f64)
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(DurationVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("60").unwrap_err().contains("missing unit"));
        assert!(
            parse_duration("5 fortnights")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn durations_round_trip() {
        for d in [
            Duration::from_secs(60),
            Duration::from_millis(250),
            Duration::from_micros(1500),
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
    }

    #[test]
    fn defaults_validate() {
        assert!(Settings::default().validate().is_ok());
    }
}
