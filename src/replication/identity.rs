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
//! Each token has a count of commits (`commits`): with replication on,
//! every commit the store makes adds one to the newest token's count
//! inside the same transaction ([`BUMP_SQL`], run by the store once
//! [`Store::count_commits_in_identity`](crate::Store::count_commits_in_identity)
//! names the token), so the pair (token, count) is a position in the
//! database's history that the replica carries with the data. Tables made
//! before the count existed get the column (`0`) at the next stamp; a
//! replica without it reads as `0`.
//!
//! # The judgement ([`judge`])
//!
//! At start, walguard restores the replica into a scratch file (when one
//! exists) and compares the newest token on the replica with the local
//! history:
//!
//! - no replica yet: replicate (and stamp);
//! - the replica's newest token is in the local history, and the local
//!   count of commits under it is at least the replica's: the same
//!   database, at or ahead of its replica (a restart, or a copy restored
//!   after a machine loss that nothing else wrote to since);
//! - the same token, but the local count is below the replica's
//!   ([`Verdict::Behind`]): the local file is behind its own replica (a
//!   copy from the same session put back, a VM snapshot rolled back, a
//!   power loss under `synchronous=normal` that took commits the replica
//!   already has): refused, unless `replication.replace_replica: true`;
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
//! the same time, neither restarting, are not detected. Commits that do
//! not count: those of other programs or connections (they do not run
//! [`BUMP_SQL`]), and a closure's commits are counted once, in a commit
//! of their own right after the closure returns
//! ([`Store::call`](crate::Store::call)), so a copy taken between the two
//! is one position behind what it holds.

use rusqlite::Connection;

/// The table inside a replicated database that holds its identity tokens,
/// oldest first.
pub const IDENTITY_TABLE: &str = "_walguard_replica";

/// Adds one to the count of commits of the token whose `seq` is `?1`: the
/// statement the store runs inside every commit with replication on.
pub const BUMP_SQL: &str = "UPDATE _walguard_replica SET commits = commits + 1 WHERE seq = ?1";

/// One start's token and the commits counted under it: a position in the
/// database's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// 32 hex digits, random, stamped once per start.
    pub id: String,
    /// Commits made under this token (`0` in a table from before counts).
    pub commits: u64,
}

/// What [`stamp`] wrote: the row to count commits in, and its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamped {
    /// The row's `seq`, for [`BUMP_SQL`].
    pub seq: i64,
    /// The token (32 hex digits).
    pub token: String,
}

/// Whether the identity table exists, and whether it has the `commits`
/// column.
fn table_shape(conn: &Connection) -> rusqlite::Result<Option<bool>> {
    let exists: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1)",
        [IDENTITY_TABLE],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(None);
    }
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = 'commits')",
        [IDENTITY_TABLE],
        |r| r.get(0),
    )
    .map(Some)
}

/// The tokens of a database with their counts, oldest first; `None`
/// without the table.
///
/// # Errors
///
/// SQLite's error when the table exists and cannot be read.
pub fn tokens(conn: &Connection) -> rusqlite::Result<Option<Vec<Token>>> {
    let Some(counted) = table_shape(conn)? else {
        return Ok(None);
    };
    let commits = if counted { "commits" } else { "0" };
    let mut stmt = conn.prepare(&format!(
        "SELECT token, {commits} FROM {IDENTITY_TABLE} ORDER BY seq"
    ))?;
    let rows = stmt.query_map([], |r| {
        Ok(Token {
            id: r.get(0)?,
            commits: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
        })
    })?;
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

/// Appends a fresh token to the database's history (creating the table,
/// or adding its `commits` column to one from before counts), in one
/// transaction; the new row.
///
/// # Errors
///
/// SQLite's error when the write fails.
pub fn stamp(conn: &Connection) -> rusqlite::Result<Stamped> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let stamped = (|| {
        match table_shape(conn)? {
            None => conn.execute_batch(&format!(
                "CREATE TABLE {IDENTITY_TABLE} (
                    seq INTEGER PRIMARY KEY,
                    token TEXT NOT NULL,
                    stamped_at_ms INTEGER NOT NULL,
                    commits INTEGER NOT NULL DEFAULT 0
                 )"
            ))?,
            Some(false) => conn.execute_batch(&format!(
                "ALTER TABLE {IDENTITY_TABLE} ADD COLUMN commits INTEGER NOT NULL DEFAULT 0"
            ))?,
            Some(true) => {}
        }
        conn.query_row(
            &format!(
                "INSERT INTO {IDENTITY_TABLE} (token, stamped_at_ms)
                 VALUES (lower(hex(randomblob(16))), CAST(unixepoch('subsec') * 1000 AS INTEGER))
                 RETURNING seq, token"
            ),
            [],
            |r| {
                Ok(Stamped {
                    seq: r.get(0)?,
                    token: r.get(1)?,
                })
            },
        )
    })();
    match stamped {
        Ok(stamped) => conn.execute_batch("COMMIT").map(|()| stamped),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// What walguard knows of the local database at start.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Local {
    /// Its tokens (`None`: no identity table).
    pub tokens: Option<Vec<Token>>,
    /// It has a schema object of its own.
    pub has_data: bool,
}

/// What the replica holds: `None` when there is no replica yet; inside,
/// its tokens (`None`: no identity table).
pub type Replica = Option<Option<Vec<Token>>>;

/// The judgement at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Replicate: no replica yet, or it is this database's, at or behind
    /// the local file.
    Replicate,
    /// The local database is new and the replica exists: restore it first
    /// (or refuse without `restore_on_start`).
    RestoreFirst,
    /// The replica is this database's, but ahead of the local file: under
    /// the replica's newest token, the replica counts more commits than
    /// the local file (a copy from the same session, commits lost
    /// locally). Replicating would overwrite the replica's newer commits.
    Behind {
        /// The replica's newest token.
        token: String,
        /// Commits the local file counts under it.
        local: u64,
        /// Commits the replica counts under it.
        replica: u64,
    },
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
    let newest_local = local
        .tokens
        .as_ref()
        .and_then(|t| t.last().map(|t| t.id.clone()));
    let newest_replica = replica.as_ref().and_then(|t| t.last());
    let mine = newest_replica.and_then(|newest| {
        let history = local.tokens.as_ref()?;
        history
            .iter()
            .find(|t| t.id == newest.id)
            .map(|t| (newest, t))
    });
    match (newest_replica, mine) {
        (_, Some((on_replica, here))) if here.commits >= on_replica.commits => Verdict::Replicate,
        (_, Some((on_replica, here))) => Verdict::Behind {
            token: on_replica.id.clone(),
            local: here.commits,
            replica: on_replica.commits,
        },
        _ if local.tokens.is_none() && !local.has_data => Verdict::RestoreFirst,
        // A replica without a token: from before identities, or one that
        // a stamped start never reached (killed before its first sync).
        // It is adopted: tokens cannot tell whose it is.
        (None, _) => Verdict::Replicate,
        (Some(newest), None) => Verdict::Foreign {
            replica: Some(newest.id.clone()),
            local: newest_local,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tokens from `"id"` (count 0) or `"id@n"` (count n).
    fn history(tokens: &[&str]) -> Vec<Token> {
        tokens
            .iter()
            .map(|t| match t.split_once('@') {
                Some((id, n)) => Token {
                    id: id.to_owned(),
                    commits: n.parse().unwrap(),
                },
                None => Token {
                    id: (*t).to_owned(),
                    commits: 0,
                },
            })
            .collect()
    }

    fn local(tokens: Option<&[&str]>, has_data: bool) -> Local {
        Local {
            tokens: tokens.map(history),
            has_data,
        }
    }

    // The shape of the argument `judge` takes, built in one place.
    #[allow(clippy::unnecessary_wraps)]
    fn replica(tokens: Option<&[&str]>) -> Replica {
        Some(tokens.map(history))
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

    /// Issue 20, F1: positions within one session. A copy of the database
    /// from the same session carries the replica's newest token; only the
    /// count under it tells whether the local file is behind.
    #[test]
    fn every_case_of_the_position_under_the_same_token() {
        // At the replica's position, or ahead of it (the replica lags).
        for here in ["b@7", "b@8", "b@1000"] {
            assert_eq!(
                judge(
                    &local(Some(&["a@5", here]), true),
                    &replica(Some(&["a@5", "b@7"]))
                ),
                Verdict::Replicate,
                "{here}"
            );
        }
        // Behind its own replica: a copy put back, a snapshot rolled back,
        // commits lost to a power loss under `normal`.
        assert_eq!(
            judge(
                &local(Some(&["a@5", "b@6"]), true),
                &replica(Some(&["a@5", "b@7"]))
            ),
            Verdict::Behind {
                token: "b".into(),
                local: 6,
                replica: 7
            }
        );
        assert_eq!(
            judge(
                &local(Some(&["a@5", "b"]), true),
                &replica(Some(&["a@5", "b@1181"]))
            ),
            Verdict::Behind {
                token: "b".into(),
                local: 0,
                replica: 1181
            }
        );
        // The local file went on to a later start: the replica's token is
        // an older one of the local history, compared at its own count.
        assert_eq!(
            judge(
                &local(Some(&["a@5", "b@9", "c@2"]), true),
                &replica(Some(&["a@5", "b@9"]))
            ),
            Verdict::Replicate
        );
        assert_eq!(
            judge(
                &local(Some(&["a@5", "b@3", "c@2"]), true),
                &replica(Some(&["a@5", "b@9"]))
            ),
            Verdict::Behind {
                token: "b".into(),
                local: 3,
                replica: 9
            }
        );
        // Only the replica's newest token is compared: older counts are
        // history both sides share.
        assert_eq!(
            judge(
                &local(Some(&["a@1", "b@9"]), true),
                &replica(Some(&["a@5", "b@9"]))
            ),
            Verdict::Replicate
        );
        // A replica from before counts reads 0 under every token: never
        // ahead of anyone.
        assert_eq!(
            judge(&local(Some(&["a"]), true), &replica(Some(&["a"]))),
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
        assert_eq!(a.token.len(), 32);
        assert_ne!(a.token, b.token);
        assert_eq!(b.seq, a.seq + 1);
        assert_eq!(
            tokens(&conn).unwrap(),
            Some(vec![
                Token {
                    id: a.token,
                    commits: 0
                },
                Token {
                    id: b.token,
                    commits: 0
                }
            ])
        );
        assert!(
            !has_own_schema(&conn).unwrap(),
            "the identity table is not the engine's"
        );
        conn.execute_batch("CREATE TABLE t (x)").unwrap();
        assert!(has_own_schema(&conn).unwrap());
    }

    /// The count moves only for the row named, by one per run.
    #[test]
    fn the_bump_counts_the_named_token_only() {
        let conn = Connection::open_in_memory().unwrap();
        let a = stamp(&conn).unwrap();
        let b = stamp(&conn).unwrap();
        for _ in 0..3 {
            assert_eq!(conn.execute(BUMP_SQL, [b.seq]).unwrap(), 1);
        }
        assert_eq!(conn.execute(BUMP_SQL, [a.seq]).unwrap(), 1);
        let counts: Vec<u64> = tokens(&conn)
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|t| t.commits)
            .collect();
        assert_eq!(counts, vec![1, 3]);
    }

    /// A table from before counts (no `commits` column) reads as 0 under
    /// every token, and the next stamp adds the column, keeping the rows.
    #[test]
    fn a_table_from_before_counts_reads_zero_and_gains_the_column() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&format!(
            "CREATE TABLE {IDENTITY_TABLE} (
                seq INTEGER PRIMARY KEY,
                token TEXT NOT NULL,
                stamped_at_ms INTEGER NOT NULL
             );
             INSERT INTO {IDENTITY_TABLE} (token, stamped_at_ms) VALUES ('old', 1)"
        ))
        .unwrap();
        assert_eq!(
            tokens(&conn).unwrap(),
            Some(vec![Token {
                id: "old".into(),
                commits: 0
            }])
        );
        let new = stamp(&conn).unwrap();
        conn.execute(BUMP_SQL, [new.seq]).unwrap();
        assert_eq!(
            tokens(&conn).unwrap(),
            Some(vec![
                Token {
                    id: "old".into(),
                    commits: 0
                },
                Token {
                    id: new.token,
                    commits: 1
                }
            ])
        );
    }
}
