//! The one renderer of an error chain: every message walguard prints
//! about an error, in the library's logs and reports and in the
//! `walguard` command, goes through [`error_chain`].

/// Renders an error and its causes on one line, `a: b: c`, saying each
/// thing once.
///
/// The rule: each layer's `Display` shows only that layer (walguard's
/// errors do), and a cause whose text is already contained in what was
/// printed adds nothing and is skipped. rusqlite needs one adjustment: an
/// SQLite failure displays SQLite's message (`file is not a database`) and
/// its source, the `ffi::Error`, displays `Error code 26: ` plus the generic
/// text of the code, which is usually the same message again. The
/// `ffi::Error` is therefore compared by its generic text alone.
#[must_use]
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = match cause.downcast_ref::<rusqlite::ffi::Error>() {
            Some(e) => rusqlite::ffi::code_to_str(e.extended_code).to_owned(),
            None => cause.to_string(),
        };
        if !cause_text.is_empty() && !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn display_does_not_repeat_the_source() {
        let err = Error::Statement {
            sql: "SELEC 1".into(),
            source: rusqlite::Error::InvalidQuery,
        };
        let shown = err.to_string();
        assert_eq!(shown, "statement failed: SELEC 1");
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert!(source.is_some_and(|s| !shown.contains(&s)));
    }

    /// The library's renderer printed SQLite's message twice (once from
    /// rusqlite's error, once from its `ffi::Error` source).
    #[test]
    fn an_sqlite_failure_is_said_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        let source = conn
            .query_row("PRAGMA page_count", [], |r| r.get::<_, i64>(0))
            .unwrap_err();
        let error = Error::Statement {
            sql: "PRAGMA page_count".into(),
            source,
        };
        assert_eq!(
            error_chain(&error),
            "statement failed: PRAGMA page_count: file is not a database"
        );
    }

    #[test]
    fn a_cause_with_new_text_is_kept() {
        let error = Error::EngineLock {
            path: "a.db.lock".into(),
            source: std::io::Error::other("permission denied"),
        };
        assert_eq!(
            error_chain(&error),
            "cannot take the engine lock a.db.lock: permission denied"
        );
    }
}
