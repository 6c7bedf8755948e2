//! The `replication` section: Litestream beside walguard.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    DEFAULT_MAX_LAG, DEFAULT_SYNC_PERIOD, DEFAULT_WAL_CAP_FRAMES, duration_serde, format_duration,
    invalid,
};
#[cfg(doc)]
use super::{LITESTREAM_VERSION, Settings};
#[cfg(doc)]
use crate::error::Error;
use crate::error::Result;

/// Replication through Litestream: what gives a machine loss a bound.
///
/// Credentials never live here: Litestream reads them from the environment
/// (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` or `LITESTREAM_*` for S3,
/// for SFTP the key whose path is in `LITESTREAM_SFTP_KEY_PATH`, and the
/// host key in `LITESTREAM_SFTP_HOST_KEY`), and no setting, log line or error of
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
    /// restore it from the replica first; also when the file is new and
    /// empty (see [`identity`](crate::replication::identity)). Off by
    /// default.
    pub restore_on_start: bool,
    /// Replicate this database into a replica that belongs to another
    /// database, replacing the replica's history with this one's. Off by
    /// default: walguard refuses at start, naming the replica (see
    /// [`identity`](crate::replication::identity)).
    pub replace_replica: bool,
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
            replace_replica: false,
        }
    }
}

impl ReplicationSettings {
    /// Whether replication is on.
    #[must_use]
    pub fn is_on(&self) -> bool {
        self.mode == ReplicationMode::Litestream
    }

    /// Checks the section (called by [`Settings::validate`]).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] naming the key. A value that carries a
    /// password is never echoed.
    pub fn validate(&self) -> Result<()> {
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
            super::ReplicaUrl::parse(url)?;
        }
        if let Some(endpoint) = &self.endpoint {
            let shown = super::redact(endpoint);
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
        if self.url.is_none() {
            return Err(invalid(
                "replication.url",
                "~",
                "is required with replication.mode: litestream (s3://BUCKET/PATH, sftp://USER@HOST/PATH or file:///PATH)",
            ));
        }
        #[cfg(not(unix))]
        if self.mode == ReplicationMode::Litestream {
            return Err(invalid(
                "replication.mode",
                "litestream",
                "walguard talks to Litestream over its Unix control socket; replication is not supported on this platform",
            ));
        }
        Ok(())
    }
}
