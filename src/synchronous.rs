//! The `synchronous` levels: the one table of their names, as SQLite
//! spells them, and the numbers `PRAGMA synchronous` reports. Everyone who
//! names or reads a level goes through [`Synchronous`] (public as
//! `walguard::settings::Synchronous`). A leaf module: the error type and
//! the settings both read it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

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
    /// Every level with its name (lowercase, as the settings, the logs and
    /// the CLI write it; SQLite reads it in any case) and the number
    /// `PRAGMA synchronous` reports (`sqlite3_pragma`, `PAGER_SYNCHRONOUS_*`
    /// less one): the one table the methods below read.
    const LEVELS: [(Self, &'static str, i64); 4] = [
        (Self::Off, "off", 0),
        (Self::Normal, "normal", 1),
        (Self::Full, "full", 2),
        (Self::Extra, "extra", 3),
    ];

    fn entry(self) -> (Self, &'static str, i64) {
        // Every variant has its row, so the fallback is never taken.
        Self::LEVELS
            .into_iter()
            .find(|(level, _, _)| *level == self)
            .unwrap_or(Self::LEVELS[1])
    }

    /// The level's name: `off`, `normal`, `full` or `extra`. The one
    /// spelling walguard writes, in a pragma, a setting, a log line or the
    /// CLI's output (SQLite reads a pragma value in any case).
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
        f.write_str(self.as_str())
    }
}
