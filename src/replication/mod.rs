//! Replication through Litestream, the actor-free part: the replica URL,
//! the config walguard writes for Litestream, and "replicated through".
//!
//! # Replicated through
//!
//! Litestream numbers what it ships in its own transaction ids (LTX files),
//! not in SQLite commits, so its answers cannot be mapped to the commits a
//! sender saw. The one exact mapping is the one [`ReplicationTracker`]
//! keeps: note the commit count, then ask Litestream to sync and wait (its
//! control socket's `/sync` with `wait`); once it answers `synced` or
//! `no_change`, every commit counted before the call is on the replica.
//! The count is taken *before* the call, so a commit that races the sync is
//! never claimed; the replicated point only moves forward.
//!
//! The **lag** is how old the newest replicated moment is while commits are
//! waiting beyond it: the start of the last sync that answered, when later
//! commits exist; zero when every commit is on the replica. A warning fires
//! once per episode above `replication.max_lag`
//! ([`ReplicationTracker::observe`]).
//!
//! # Checkpoint ownership
//!
//! Litestream holds a read transaction at all times, on purpose, so that no
//! other connection checkpoints past the position it has shipped; beside
//! it, walguard's PASSIVE checkpoints only ever come back `partial` and its
//! shutdown TRUNCATE waits out its busy timeout. So while Litestream is
//! healthy it owns checkpointing ([`CheckpointOwner::Litestream`]) and
//! walguard runs none of its own; the WAL hook still moves walguard's
//! durable point on Litestream's checkpoints. walguard takes checkpointing
//! back ([`CheckpointOwner::Walguard`]) while Litestream is down, and for
//! one checkpoint whenever the WAL passes `replication.wal_cap_frames`.
//!
//! Handing checkpoints over hands the policy over too
//! ([`CheckpointHandover`]): the config walguard writes gives Litestream
//! walguard's `checkpoint.interval` as its `checkpoint-interval` and
//! `checkpoint.size_threshold_frames` as its `min-checkpoint-page-count`,
//! so the exposure to a power loss keeps the bound it has without
//! Litestream, and the starvation warning (two intervals) stays a true
//! alarm rather than Litestream's own one-minute rhythm.

pub mod identity;

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::settings::{
    CheckpointSettings, LITESTREAM_VERSION, ReplicationSettings, format_duration, invalid,
};

/// The part of walguard's checkpoint policy that Litestream takes over
/// while it owns checkpointing, as written into its config. `None` leaves
/// Litestream's own default (1 min and 1000 pages in 0.5).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckpointHandover {
    /// Litestream's `checkpoint-interval`: a PASSIVE checkpoint once the
    /// database file is older than this and the WAL holds frames.
    pub interval: Option<Duration>,
    /// Litestream's `min-checkpoint-page-count`: a PASSIVE checkpoint once
    /// the WAL holds this many pages (frames).
    pub size_threshold_frames: Option<u32>,
}

impl CheckpointHandover {
    /// walguard's own policy: `checkpoint.interval` always, the size
    /// threshold when above zero. The interval goes over whether or not
    /// the loop is on at start: the loop is opt-in and may be started
    /// later (`WalGuard::start_checkpoint_loop` in walguard-actors, which
    /// `walguard run` calls), after Litestream's config was written; and it
    /// bounds the power-loss exposure while Litestream checkpoints either
    /// way.
    #[must_use]
    pub fn from_settings(checkpoint: &CheckpointSettings) -> Self {
        Self {
            interval: Some(checkpoint.interval),
            size_threshold_frames: (checkpoint.size_threshold_frames > 0)
                .then_some(checkpoint.size_threshold_frames),
        }
    }
}

/// Who runs the checkpoints now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckpointOwner {
    /// walguard: replication is off, or Litestream is down.
    #[default]
    Walguard,
    /// Litestream, healthy: walguard runs no interval, size or shutdown
    /// checkpoint of its own (but the WAL cap).
    Litestream,
}

impl CheckpointOwner {
    /// `walguard` or `litestream`, as logged.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Walguard => "walguard",
            Self::Litestream => "litestream",
        }
    }
}

impl fmt::Display for CheckpointOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A replica URL, checked: `s3://BUCKET/PATH`, `sftp://USER@HOST/PATH` or
/// `file:///PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicaUrl {
    /// `s3`, `sftp` or `file`.
    pub scheme: String,
    /// The bucket (S3) or host (SFTP); empty for `file`.
    pub host: String,
    /// The path inside it.
    pub path: String,
}

impl ReplicaUrl {
    /// Parses and checks `url`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidSetting`] naming `replication.url`, with the
    /// URL shown without any password.
    pub fn parse(url: &str) -> Result<Self> {
        let shown = redact(url);
        let bad = |reason: &str| invalid("replication.url", &shown, reason);
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(bad(
                "expected s3://BUCKET/PATH, sftp://USER@HOST/PATH or file:///PATH",
            ));
        };
        if shown != url {
            return Err(bad(
                "must not carry a password; Litestream reads credentials from the environment",
            ));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let host = authority.rsplit('@').next().unwrap_or_default();
        match scheme {
            "s3" => {
                if host.is_empty() {
                    return Err(bad("an s3:// URL needs a bucket: s3://BUCKET/PATH"));
                }
                if path.trim_matches('/').is_empty() {
                    return Err(bad(
                        "an s3:// URL needs a path inside the bucket: s3://BUCKET/PATH",
                    ));
                }
            }
            "sftp" => {
                if host.is_empty() {
                    return Err(bad("an sftp:// URL needs a host: sftp://USER@HOST/PATH"));
                }
            }
            "file" => {
                if !authority.is_empty() || path.len() < 2 {
                    return Err(bad("a file:// URL needs an absolute path: file:///PATH"));
                }
            }
            _ => {
                return Err(bad("unknown scheme; expected s3://, sftp:// or file://"));
            }
        }
        Ok(Self {
            scheme: scheme.to_owned(),
            host: host.to_owned(),
            path: path.to_owned(),
        })
    }
}

/// `url` with the password of its user part, if any, replaced by `***`:
/// what may be logged or shown in an error.
#[must_use]
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let user = &authority[..at];
    match user.split_once(':') {
        Some((name, _)) => format!("{scheme}://{name}:***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// The environment variable holding the path of the SSH private key an
/// `sftp://` replica logs in with. walguard copies the path into the
/// config it writes (mode 0600); Litestream reads the key, walguard never
/// does. Litestream does not use an SSH agent.
pub const SFTP_KEY_PATH_ENV: &str = "LITESTREAM_SFTP_KEY_PATH";

/// The environment variable holding the SFTP server's public host key
/// (`ssh-ed25519 AAAA…`, as in `known_hosts` without the host name),
/// optional: without it Litestream does not check the host key (and logs
/// a warning saying so).
pub const SFTP_HOST_KEY_ENV: &str = "LITESTREAM_SFTP_HOST_KEY";

/// How Litestream logs in to an `sftp://` replica: the values of
/// [`SFTP_KEY_PATH_ENV`] and [`SFTP_HOST_KEY_ENV`], copied into the config.
/// walguard starts Litestream with `-no-expand-env`, so that a `$` in a
/// path or URL reaches Litestream as written; these two values are
/// therefore written out rather than left for Litestream to expand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SftpLogin {
    /// The private key's path (not the key).
    pub key_path: Option<std::path::PathBuf>,
    /// The server's public host key, `ssh-ed25519 AAAA…`.
    pub host_key: Option<String>,
}

impl SftpLogin {
    /// The login named by the process environment (empty values count as
    /// unset).
    #[must_use]
    pub fn from_env() -> Self {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        Self {
            key_path: var(SFTP_KEY_PATH_ENV).map(std::path::PathBuf::from),
            host_key: var(SFTP_HOST_KEY_ENV).map(|v| v.to_string_lossy().into_owned()),
        }
    }
}

/// The config walguard writes for the `litestream replicate` it starts
/// (the shape of Litestream [`LITESTREAM_VERSION`]): the control socket,
/// one database, one replica. It holds no credential (Litestream reads
/// them from the environment; for SFTP the config names the key's path,
/// from `sftp`); walguard still writes it with mode 0600.
///
/// `monitor-interval` is 250 ms rather than Litestream's 1 s: measured
/// here, it keeps the WAL and Litestream's write-lock stalls about four
/// times smaller under load. `handover` becomes `checkpoint-interval` and
/// `min-checkpoint-page-count` (see [`CheckpointHandover`]).
#[must_use]
pub fn litestream_config(
    db: &Path,
    socket: &Path,
    settings: &ReplicationSettings,
    handover: CheckpointHandover,
    sftp: &SftpLogin,
) -> String {
    let mut lines = vec![
        "# Written by walguard; rewritten at every start.".to_owned(),
        "socket:".to_owned(),
        "  enabled: true".to_owned(),
        format!("  path: {}", yaml_string(&socket.to_string_lossy())),
        "dbs:".to_owned(),
        format!("  - path: {}", yaml_string(&db.to_string_lossy())),
        "    monitor-interval: 250ms".to_owned(),
    ];
    if let Some(interval) = handover.interval {
        lines.push(format!(
            "    checkpoint-interval: {}",
            format_duration(interval)
        ));
    }
    if let Some(frames) = handover.size_threshold_frames {
        lines.push(format!("    min-checkpoint-page-count: {frames}"));
    }
    lines.push("    replica:".to_owned());
    if let Some(url) = &settings.url {
        lines.push(format!("      url: {}", yaml_string(url)));
    }
    if settings
        .url
        .as_deref()
        .is_some_and(|u| u.starts_with("sftp://"))
    {
        if let Some(key_path) = &sftp.key_path {
            lines.push(format!(
                "      key-path: {}",
                yaml_string(&key_path.to_string_lossy())
            ));
        }
        if let Some(host_key) = &sftp.host_key {
            lines.push(format!("      host-key: {}", yaml_string(host_key)));
        }
    }
    if let Some(endpoint) = &settings.endpoint {
        lines.push(format!("      endpoint: {}", yaml_string(endpoint)));
        lines.push("      force-path-style: true".to_owned());
    }
    lines.push(format!(
        "      sync-interval: {}",
        format_duration(settings.sync_period)
    ));
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// A YAML double-quoted scalar.
fn yaml_string(text: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The version a `litestream version` prints (`0.5.17`, `v0.5.17`), as
/// numbers; `None` when it prints none (a development build).
#[must_use]
pub fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let word = text.split_whitespace().find(|w| {
        w.trim_start_matches('v')
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })?;
    let mut parts = word
        .trim_start_matches('v')
        .split(|c: char| !c.is_ascii_digit())
        .map(str::parse::<u32>);
    let major = parts.next()?.ok()?;
    let minor = parts.next()?.ok()?;
    let patch = parts.next()?.ok()?;
    Some((major, minor, patch))
}

/// Whether a `litestream version` output is [`LITESTREAM_VERSION`] or newer.
#[must_use]
pub fn version_supported(text: &str) -> bool {
    match (parse_version(text), parse_version(LITESTREAM_VERSION)) {
        (Some(found), Some(min)) => found >= min,
        _ => false,
    }
}

/// The setting (or environment) most likely behind an error Litestream
/// gave for a sync, from its text, for an error that names it.
#[must_use]
pub fn blame(error: &str) -> &'static str {
    let e = error.to_ascii_lowercase();
    if e.contains("host key") {
        return "the SFTP server's host key in the environment (LITESTREAM_SFTP_HOST_KEY)";
    }
    if [
        "signaturedoesnotmatch",
        "invalidaccesskeyid",
        "accessdenied",
        "statuscode: 403",
        "no valid credential",
        "static credentials are empty",
        "unable to authenticate",
        "cannot read sftp key path",
        "cannot parse sftp key path",
    ]
    .iter()
    .any(|s| e.contains(s))
    {
        "the credentials in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY; for sftp://, LITESTREAM_SFTP_KEY_PATH)"
    } else if [
        "connection refused",
        "no such host",
        "dial tcp",
        "i/o timeout",
        "context deadline exceeded",
        "network is unreachable",
        "custom rootcas",
    ]
    .iter()
    .any(|s| e.contains(s))
    {
        "replication.endpoint"
    } else {
        "replication.url"
    }
}

/// What a `/sync` asked before it started: the counts it can vouch for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncTicket {
    commits: u64,
    writes: u64,
    started: Instant,
}

impl SyncTicket {
    /// Commits made before the sync started.
    #[must_use]
    pub fn commits(&self) -> u64 {
        self.commits
    }
    /// Writes those commits acknowledged.
    #[must_use]
    pub fn writes(&self) -> u64 {
        self.writes
    }
    /// When the sync started.
    #[must_use]
    pub fn started(&self) -> Instant {
        self.started
    }
}

/// The replicated point and its lag, at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct Replicated {
    /// The first this many commits are on the replica.
    pub commits: u64,
    /// The first this many acknowledged writes are on the replica.
    pub writes: u64,
    /// Commits made through the store, as last seen.
    pub local_commits: u64,
    /// Writes acknowledged through the store, as last seen.
    pub local_writes: u64,
    /// How old the replicated point is while commits wait beyond it.
    pub lag: Duration,
    /// Syncs that answered `synced` or `no_change`.
    pub syncs: u64,
    /// Syncs that failed or got no answer.
    pub sync_failures: u64,
    /// Who runs the checkpoints now.
    pub owner: CheckpointOwner,
    /// Whether Litestream answered its last sync.
    pub healthy: bool,
}

impl Replicated {
    /// Commits not yet known to be on the replica.
    #[must_use]
    pub fn unreplicated_commits(&self) -> u64 {
        self.local_commits.saturating_sub(self.commits)
    }
    /// Acknowledged writes not yet known to be on the replica.
    #[must_use]
    pub fn unreplicated_writes(&self) -> u64 {
        self.local_writes.saturating_sub(self.writes)
    }
}

impl fmt::Display for Replicated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.unreplicated_commits() == 0 {
            write!(
                f,
                "replicated through: all {} commits ({} writes); nothing exposed to a machine loss",
                self.commits, self.writes
            )
        } else {
            write!(
                f,
                "replicated through: commit {} of {}; {} commits ({} writes) exposed to a machine loss, lag {:.1}s",
                self.commits,
                self.local_commits,
                self.unreplicated_commits(),
                self.unreplicated_writes(),
                self.lag.as_secs_f64()
            )
        }
    }
}

/// A change of the lag episode, for the caller to log.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum LagEvent {
    /// The lag passed `max_lag`: warn, once for the episode.
    Started {
        /// The lag.
        lag: Duration,
        /// Commits waiting beyond the replicated point.
        commits: u64,
    },
    /// The lag came back under `max_lag`.
    Ended {
        /// How long the episode lasted.
        lasted: Duration,
    },
}

/// The "replicated through" bookkeeping (see the module docs).
#[derive(Debug, Clone)]
pub struct ReplicationTracker {
    max_lag: Duration,
    commits: u64,
    writes: u64,
    local_commits: u64,
    local_writes: u64,
    /// The latest moment before which every commit is known to be on the
    /// replica: the start of the newest sync that answered, or a look that
    /// found nothing missing (or the session start). The oldest commit the
    /// replica lacks was made after it, so the lag is measured from it.
    replicated_at: Instant,
    syncs: u64,
    failures: u64,
    healthy: bool,
    owner: CheckpointOwner,
    episode_since: Option<Instant>,
}

impl ReplicationTracker {
    /// A tracker from `now`, warning above `max_lag`. Commits made before
    /// the store opened are not counted (the store counts from 0).
    #[must_use]
    pub fn new(max_lag: Duration, now: Instant) -> Self {
        Self {
            max_lag,
            commits: 0,
            writes: 0,
            local_commits: 0,
            local_writes: 0,
            replicated_at: now,
            syncs: 0,
            failures: 0,
            healthy: false,
            owner: CheckpointOwner::Walguard,
            episode_since: None,
        }
    }

    /// A sync is about to be asked for, with the store's counts taken now.
    pub fn begin(&mut self, commits: u64, writes: u64, now: Instant) -> SyncTicket {
        self.see_local(commits, writes, now);
        SyncTicket {
            commits,
            writes,
            started: now,
        }
    }

    /// The store's counts, seen at `now` without a sync (the replication
    /// actor looks at every tick, so the lag starts counting within a tick
    /// of a commit the replica lacks). Seen with nothing missing, `now`
    /// is a moment up to which the replica held everything.
    pub fn see_local(&mut self, commits: u64, writes: u64, now: Instant) {
        if commits >= self.local_commits {
            self.local_commits = commits;
            self.local_writes = writes;
        }
        if self.local_commits <= self.commits {
            self.replicated_at = self.replicated_at.max(now);
        }
    }

    /// The sync of `ticket` answered `synced` or `no_change`: every commit
    /// it counted is on the replica.
    pub fn synced(&mut self, ticket: SyncTicket) {
        self.syncs += 1;
        self.healthy = true;
        if ticket.commits >= self.commits {
            self.commits = ticket.commits;
            self.writes = ticket.writes;
            self.replicated_at = self.replicated_at.max(ticket.started);
        }
    }

    /// A sync failed or got no answer.
    pub fn failed(&mut self) {
        self.failures += 1;
        self.healthy = false;
    }

    /// Sets who runs the checkpoints; `true` when that changed.
    pub fn set_owner(&mut self, owner: CheckpointOwner) -> bool {
        let changed = self.owner != owner;
        self.owner = owner;
        changed
    }

    /// Who runs the checkpoints.
    #[must_use]
    pub fn owner(&self) -> CheckpointOwner {
        self.owner
    }

    /// The replicated point, and the lag at `now`.
    #[must_use]
    pub fn replicated(&self, now: Instant) -> Replicated {
        let lag = if self.local_commits > self.commits {
            now.saturating_duration_since(self.replicated_at)
        } else {
            Duration::ZERO
        };
        Replicated {
            commits: self.commits,
            writes: self.writes,
            local_commits: self.local_commits,
            local_writes: self.local_writes,
            lag,
            syncs: self.syncs,
            sync_failures: self.failures,
            owner: self.owner,
            healthy: self.healthy,
        }
    }

    /// Looks at the lag at `now`: [`LagEvent::Started`] once when an
    /// episode above `max_lag` begins, [`LagEvent::Ended`] when it ends.
    pub fn observe(&mut self, now: Instant) -> Option<LagEvent> {
        let r = self.replicated(now);
        match (self.episode_since, r.lag > self.max_lag) {
            (None, true) => {
                self.episode_since = Some(now);
                Some(LagEvent::Started {
                    lag: r.lag,
                    commits: r.unreplicated_commits(),
                })
            }
            (Some(since), false) => {
                self.episode_since = None;
                Some(LagEvent::Ended {
                    lasted: now.saturating_duration_since(since),
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_passwords_never_shown() {
        assert!(ReplicaUrl::parse("s3://bucket/db").is_ok());
        assert!(ReplicaUrl::parse("sftp://me@host:22/backups/db").is_ok());
        assert!(ReplicaUrl::parse("file:///var/backups/db").is_ok());
        for bad in [
            "s3://bucket",
            "s3:///db",
            "ftp://x/y",
            "bucket/db",
            "file://x",
            "sftp:///x",
        ] {
            let e = ReplicaUrl::parse(bad).unwrap_err().to_string();
            assert!(e.contains("replication.url"), "{e}");
        }
        let e = ReplicaUrl::parse("sftp://me:hunter2@host/db").unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("sftp://me:***@host/db"), "{text}");
    }

    #[test]
    fn replicated_point_moves_only_on_answers_and_forward() {
        let t0 = Instant::now();
        let mut t = ReplicationTracker::new(Duration::from_secs(10), t0);
        let a = t.begin(5, 7, t0);
        t.see_local(9, 11, t0);
        assert_eq!(t.replicated(t0).commits, 0);
        t.synced(a);
        let r = t.replicated(t0 + Duration::from_secs(2));
        assert_eq!((r.commits, r.writes, r.unreplicated_commits()), (5, 7, 4));
        assert_eq!(r.lag, Duration::from_secs(2));
        // An older ticket answering late does not move it back.
        let old = SyncTicket {
            commits: 3,
            writes: 3,
            started: t0,
        };
        t.synced(old);
        assert_eq!(t.replicated(t0).commits, 5);
        let b = t.begin(9, 11, t0 + Duration::from_secs(3));
        t.failed();
        assert!(!t.replicated(t0).healthy);
        t.synced(b);
        let r = t.replicated(t0 + Duration::from_secs(4));
        assert_eq!((r.commits, r.lag), (9, Duration::ZERO));
    }

    #[test]
    fn lag_warns_once_per_episode() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut t = ReplicationTracker::new(s(1), t0);
        t.see_local(1, 1, t0);
        assert_eq!(t.observe(t0), None);
        assert!(matches!(
            t.observe(t0 + s(2)),
            Some(LagEvent::Started { .. })
        ));
        assert_eq!(t.observe(t0 + s(3)), None);
        let ticket = t.begin(1, 1, t0 + s(3));
        t.synced(ticket);
        assert!(matches!(t.observe(t0 + s(4)), Some(LagEvent::Ended { .. })));
    }

    /// The lag counts from the last moment the replica held everything, as
    /// soon as a look sees a commit it lacks: never 0 while one is missing,
    /// and not the age of the last sync while none is.
    #[test]
    fn the_lag_counts_from_the_oldest_missing_commit() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut t = ReplicationTracker::new(s(10), t0);
        let ticket = t.begin(5, 5, t0);
        t.synced(ticket);
        // Nothing missing for a while: no lag, however old the sync.
        t.see_local(5, 5, t0 + s(3));
        assert_eq!(t.replicated(t0 + s(4)).lag, Duration::ZERO);
        // A look sees commit 6: it was made after the last look that found
        // nothing missing (t0 + 3 s).
        t.see_local(6, 6, t0 + s(4));
        let r = t.replicated(t0 + s(5));
        assert_eq!(r.unreplicated_commits(), 1);
        assert_eq!(r.lag, s(2));
    }

    /// The policy Litestream takes over is walguard's own: its interval
    /// (whether the loop is on or not) and its size threshold (only when set).
    #[test]
    fn the_handover_gives_litestream_walguards_checkpoint_policy() {
        let mut checkpoint = CheckpointSettings {
            enabled: true,
            interval: Duration::from_secs(5),
            size_threshold_frames: 4000,
            ..CheckpointSettings::default()
        };
        let handover = CheckpointHandover::from_settings(&checkpoint);
        assert_eq!(handover.interval, Some(Duration::from_secs(5)));
        assert_eq!(handover.size_threshold_frames, Some(4000));
        let text = litestream_config(
            Path::new("/tmp/a.db"),
            Path::new("/tmp/s.sock"),
            &ReplicationSettings::default(),
            handover,
            &SftpLogin::default(),
        );
        assert!(text.contains("\n    checkpoint-interval: 5s\n"), "{text}");
        assert!(
            text.contains("\n    min-checkpoint-page-count: 4000\n"),
            "{text}"
        );
        // Still the database's keys, before its replica.
        assert!(
            text.find("min-checkpoint-page-count") < text.find("replica:"),
            "{text}"
        );

        // The loop off at start (opt-in, started later): the interval goes
        // over all the same.
        checkpoint.enabled = false;
        checkpoint.size_threshold_frames = 0;
        assert_eq!(
            CheckpointHandover::from_settings(&checkpoint),
            CheckpointHandover {
                interval: Some(Duration::from_secs(5)),
                size_threshold_frames: None
            }
        );
    }

    #[test]
    fn config_quotes_paths_and_holds_no_credential() {
        let settings = ReplicationSettings {
            url: Some("s3://b/p".to_owned()),
            endpoint: Some("http://127.0.0.1:9000".to_owned()),
            ..ReplicationSettings::default()
        };
        let text = litestream_config(
            Path::new("/tmp/a \"b\".db"),
            Path::new("/tmp/s.sock"),
            &settings,
            CheckpointHandover::default(),
            &SftpLogin::default(),
        );
        assert!(!text.contains("checkpoint-interval"), "{text}");
        assert!(text.contains(r#"path: "/tmp/a \"b\".db""#), "{text}");
        assert!(text.contains("sync-interval: 1s"), "{text}");
        assert!(text.contains("force-path-style: true"), "{text}");
        assert!(!text.contains("key-path"), "{text}");
        let sftp = ReplicationSettings {
            url: Some("sftp://me@127.0.0.1:2222/backups/db".to_owned()),
            ..ReplicationSettings::default()
        };
        let login = SftpLogin {
            key_path: Some("/etc/walguard/$key".into()),
            host_key: Some("ssh-ed25519 AAAAC3Nz".to_owned()),
        };
        let text = litestream_config(
            Path::new("/tmp/$HOME/a.db"),
            Path::new("/tmp/s.sock"),
            &sftp,
            CheckpointHandover::default(),
            &login,
        );
        // Written as given: Litestream runs with -no-expand-env.
        assert!(text.contains(r#"path: "/tmp/$HOME/a.db""#), "{text}");
        assert!(text.contains(r#"key-path: "/etc/walguard/$key""#), "{text}");
        assert!(
            text.contains(r#"host-key: "ssh-ed25519 AAAAC3Nz""#),
            "{text}"
        );
        let text = litestream_config(
            Path::new("/tmp/a.db"),
            Path::new("/tmp/s.sock"),
            &sftp,
            CheckpointHandover::default(),
            &SftpLogin::default(),
        );
        assert!(
            !text.contains("key-path") && !text.contains("host-key"),
            "{text}"
        );
    }

    #[test]
    fn versions() {
        assert!(version_supported("0.5.17"));
        assert!(version_supported("v0.6.0\n"));
        assert!(!version_supported("0.5.16"));
        assert!(!version_supported("0.3.13"));
        assert!(!version_supported("(development build)"));
    }

    #[test]
    fn errors_are_blamed_on_a_setting() {
        assert_eq!(
            blame("api error SignatureDoesNotMatch: ..."),
            "the credentials in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY; for sftp://, LITESTREAM_SFTP_KEY_PATH)"
        );
        assert_eq!(
            blame("dial tcp 127.0.0.1:1: connect: connection refused"),
            "replication.endpoint"
        );
        assert_eq!(blame("NoSuchBucket"), "replication.url");
        assert!(
            blame("ssh: handshake failed: ssh: host key mismatch")
                .contains("LITESTREAM_SFTP_HOST_KEY")
        );
        assert!(
            blame("ssh: handshake failed: ssh: unable to authenticate, attempted methods [none publickey]")
                .contains("LITESTREAM_SFTP_KEY_PATH")
        );
    }
}
