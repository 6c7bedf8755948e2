//! A replica belongs to one database: the identity walguard records in the
//! database it replicates, and the judgement at start.
//!
//! # The record
//!
//! Every start that replicates appends a fresh random token (16 bytes from
//! SQLite's `randomblob`, in hex) to the table [`IDENTITY_TABLE`] inside
//! the database, before Litestream's first sync, so the replica carries it
//! too. The tokens form the database's history, oldest first.
//!
//! # The judgement ([`judge`])
//!
//! At start, walguard restores the replica into a scratch file (when one
//! exists) and compares the newest token on the replica with the local
//! history:
//!
//! - no replica yet: replicate (and stamp);
//! - the replica's newest token is in the local history: the same database,
//!   at or ahead of its replica (a restart, or a copy restored after a
//!   machine loss that nothing else wrote to since);
//! - the local database is new (no token, no table of its own): with
//!   `replication.restore_on_start` it is replaced by the restored replica,
//!   otherwise refused, naming the replica;
//! - anything else (another database, a bench file, an old copy restored
//!   elsewhere while the original went on and started again): refused,
//!   unless `replication.replace_replica: true` says to replace the
//!   replica's history with this database's.
//!
//! A replica without a token (made before walguard recorded identities,
//! or one that a start killed before its first sync never reached) is
//! adopted by a local database with data: tokens cannot tell whose it is.
//!
//! # What it does not cover
//!
//! It is checked at start. Two databases replicating into one replica at
//! the same time, neither restarting, are not detected.

use rusqlite::Connection;

/// The table inside a replicated database that holds its identity tokens,
/// oldest first.
pub const IDENTITY_TABLE: &str = "_walguard_replica";

/// The tokens of a database, oldest first; `None` without the table.
///
/// # Errors
///
/// SQLite's error when the table exists and cannot be read.
pub fn tokens(conn: &Connection) -> rusqlite::Result<Option<Vec<String>>> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1)",
        [IDENTITY_TABLE],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(None);
    }
    let mut stmt = conn.prepare(&format!("SELECT token FROM {IDENTITY_TABLE} ORDER BY seq"))?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map(Some)
}

/// Whether the database has a table, index, view or trigger of its own
/// (anything but SQLite's, Litestream's and the identity table).
///
/// # Errors
///
/// SQLite's error when the schema cannot be read.
pub fn has_own_schema(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema
           WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
             AND name NOT IN ('_litestream_seq', '_litestream_lock', ?1))",
        [IDENTITY_TABLE],
        |r| r.get(0),
    )
}

/// Appends a fresh token to the database's history (creating the table);
/// the token.
///
/// # Errors
///
/// SQLite's error when the write fails.
pub fn stamp(conn: &Connection) -> rusqlite::Result<String> {
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {IDENTITY_TABLE} (
            seq INTEGER PRIMARY KEY,
            token TEXT NOT NULL,
            stamped_at_ms INTEGER NOT NULL
         )"
    ))?;
    conn.query_row(
        &format!(
            "INSERT INTO {IDENTITY_TABLE} (token, stamped_at_ms)
             VALUES (lower(hex(randomblob(16))), CAST(unixepoch('subsec') * 1000 AS INTEGER))
             RETURNING token"
        ),
        [],
        |r| r.get(0),
    )
}

/// What walguard knows of the local database at start.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Local {
    /// Its tokens (`None`: no identity table).
    pub tokens: Option<Vec<String>>,
    /// It has a schema object of its own.
    pub has_data: bool,
}

/// What the replica holds: `None` when there is no replica yet.
pub type Replica = Option<Option<Vec<String>>>;

/// The judgement at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Replicate: no replica yet, or it is this database's.
    Replicate,
    /// The local database is new and the replica exists: restore it first
    /// (or refuse without `restore_on_start`).
    RestoreFirst,
    /// The replica belongs to another database.
    Foreign {
        /// The replica's newest token (`None`: it has none).
        replica: Option<String>,
        /// The local database's newest token (`None`: it has none).
        local: Option<String>,
    },
}

/// Judges `local` against `replica` (see the module docs).
#[must_use]
pub fn judge(local: &Local, replica: &Replica) -> Verdict {
    let Some(replica) = replica else {
        return Verdict::Replicate;
    };
    let newest_local = local.tokens.as_ref().and_then(|t| t.last().cloned());
    match (replica.as_ref().and_then(|t| t.last()), &local.tokens) {
        (Some(newest), Some(history)) if history.contains(newest) => Verdict::Replicate,
        _ if local.tokens.is_none() && !local.has_data => Verdict::RestoreFirst,
        // A replica without a token: from before identities, or one that
        // a stamped start never reached (killed before its first sync).
        // It is adopted: tokens cannot tell whose it is.
        (None, _) => Verdict::Replicate,
        (newest, _) => Verdict::Foreign {
            replica: newest.cloned(),
            local: newest_local,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(tokens: Option<&[&str]>, has_data: bool) -> Local {
        Local {
            tokens: tokens.map(|t| t.iter().map(|s| (*s).to_owned()).collect()),
            has_data,
        }
    }

    // The shape of the argument `judge` takes, built in one place.
    #[allow(clippy::unnecessary_wraps)]
    fn replica(tokens: Option<&[&str]>) -> Replica {
        Some(tokens.map(|t| t.iter().map(|s| (*s).to_owned()).collect()))
    }

    #[test]
    fn every_case_of_the_judgement() {
        // No replica: replicate, whatever the database.
        assert_eq!(judge(&local(None, false), &None), Verdict::Replicate);
        assert_eq!(judge(&local(Some(&["a"]), true), &None), Verdict::Replicate);
        // The same database, at or ahead of its replica.
        assert_eq!(
            judge(&local(Some(&["a", "b"]), true), &replica(Some(&["a", "b"]))),
            Verdict::Replicate
        );
        assert_eq!(
            judge(
                &local(Some(&["a", "b", "c"]), true),
                &replica(Some(&["a", "b"]))
            ),
            Verdict::Replicate
        );
        // A new, empty database against an existing replica.
        assert_eq!(
            judge(&local(None, false), &replica(Some(&["a"]))),
            Verdict::RestoreFirst
        );
        assert_eq!(
            judge(&local(None, false), &replica(None)),
            Verdict::RestoreFirst
        );
        // Another database; an old copy the original has moved past.
        assert_eq!(
            judge(&local(Some(&["x"]), true), &replica(Some(&["a"]))),
            Verdict::Foreign {
                replica: Some("a".into()),
                local: Some("x".into())
            }
        );
        assert_eq!(
            judge(
                &local(Some(&["a", "b"]), true),
                &replica(Some(&["a", "b", "c"]))
            ),
            Verdict::Foreign {
                replica: Some("c".into()),
                local: Some("b".into())
            }
        );
        // Data without a token against a replica with one: foreign.
        assert!(matches!(
            judge(&local(None, true), &replica(Some(&["a"]))),
            Verdict::Foreign { .. }
        ));
        // A stamped database against a replica without tokens (its first
        // stamp never reached it): adopted.
        assert_eq!(
            judge(&local(Some(&["a"]), true), &replica(None)),
            Verdict::Replicate
        );
        // Before identities: data without a token adopts a replica without.
        assert_eq!(
            judge(&local(None, true), &replica(None)),
            Verdict::Replicate
        );
    }

    #[test]
    fn stamps_append_to_the_history() {
        let conn = Connection::open_in_memory().unwrap();
        assert_eq!(tokens(&conn).unwrap(), None);
        assert!(!has_own_schema(&conn).unwrap());
        let a = stamp(&conn).unwrap();
        let b = stamp(&conn).unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert_eq!(tokens(&conn).unwrap(), Some(vec![a, b]));
        assert!(
            !has_own_schema(&conn).unwrap(),
            "the identity table is not the engine's"
        );
        conn.execute_batch("CREATE TABLE t (x)").unwrap();
        assert!(has_own_schema(&conn).unwrap());
    }
}
