//! `replication.url`, checked ([`ReplicaUrl`]), and shown without its
//! password ([`redact`]). Settings own it: validation parses the URL, and
//! the replication code reads the checked value.

use super::invalid;
use crate::error::Result;

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
}
