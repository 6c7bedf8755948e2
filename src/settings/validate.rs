//! The checks: every value walguard cannot use is an error naming its key.

use super::{Settings, format_duration};
use crate::error::{Error, Result};

impl Settings {
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
        // SQLite's own auto-checkpoint runs inside a COMMIT, where the
        // replica hold (walguard::Store::hold_for_replica) cannot pin the
        // WAL first: with replication on, walguard runs every checkpoint.
        if self.replication.is_on() && self.checkpoint.size_threshold_frames == 0 {
            return Err(invalid(
                "checkpoint.size_threshold_frames",
                "0",
                "must be above 0 with replication on: 0 hands size checkpoints to SQLite inside a COMMIT, where walguard cannot keep frames the replica lacks in the WAL",
            ));
        }
        self.read.validate()?;
        self.replication.validate()
    }
}

pub(crate) fn invalid(key: &str, value: &str, reason: &str) -> Error {
    Error::InvalidSetting {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::Settings;

    #[test]
    fn defaults_validate() {
        assert!(Settings::default().validate().is_ok());
    }
}
