//! The text an error message is made of: a panic's message, who holds a
//! lock, a migration's name, SQL shortened for a log line.

use std::path::PathBuf;

/// The message a panic carried (`panic!("...")` gives a `&str` or a
/// `String`), or a placeholder for any other payload: what
/// [`Error::Panic`](super::Error::Panic) and [`Error::WriterPanicked`](super::Error::WriterPanicked) carry.
#[must_use]
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic payload that is not text".to_owned()
    }
}

/// Who holds an engine lock, for [`Error::AlreadyServed`].
pub(super) fn holder(pid: Option<u32>) -> String {
    match pid {
        Some(pid) if pid == std::process::id() => format!("pid {pid}, this process"),
        Some(pid) => format!("pid {pid}"),
        None => "pid unknown".to_owned(),
    }
}

/// How a migration error names it: `migration 2 (migrations/0002_x.sql)`.
pub(super) fn describe_migration(number: usize, file: Option<&PathBuf>) -> String {
    match file {
        Some(file) => format!("migration {number} ({})", file.display()),
        None => format!("migration {number}"),
    }
}

/// Longest SQL text kept in an error message.
const MAX_SQL_IN_ERROR_CHARS: usize = 200;

/// Shortens SQL for an error message so a multi-kilobyte statement does not
/// flood a log line.
pub(crate) fn sql_for_error(sql: &str) -> String {
    let trimmed = sql.trim();
    if trimmed.chars().count() <= MAX_SQL_IN_ERROR_CHARS {
        trimmed.to_owned()
    } else {
        let mut short: String = trimmed.chars().take(MAX_SQL_IN_ERROR_CHARS).collect();
        short.push_str("...");
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_sql_is_shortened() {
        let sql = "x".repeat(1000);
        let short = sql_for_error(&sql);
        assert_eq!(short.chars().count(), MAX_SQL_IN_ERROR_CHARS + 3);
        assert!(short.ends_with("..."));
        assert_eq!(sql_for_error("  SELECT 1  "), "SELECT 1");
    }
}
