//! The Litestream walguard runs: the config it writes
//! ([`litestream_config`]), the SFTP login it copies into it, the versions
//! it accepts, and the setting an error of Litestream's is blamed on.

use std::path::Path;

use super::CheckpointHandover;
use crate::settings::{LITESTREAM_VERSION, ReplicationSettings, format_duration};

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
fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::settings::CheckpointSettings;

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
