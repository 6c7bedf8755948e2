//! The rows a crash test writes, and the check of what survived the crash.
//!
//! Row `id` (1, 2, 3...) belongs to write request `request` (one statement,
//! or one transaction of `rows` rows) and was written by `generation` (a
//! process, a session, a run: whatever a rewrite of the same id would
//! change). Its body depends only on `id` and `generation`: 16 bytes to
//! about 20 KiB, overflow pages included, so a torn or misplaced page shows
//! up as a damaged body, and a row rewritten by a later generation never
//! passes for the one that was acknowledged.

use std::path::Path;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode};

use crate::Statement;

/// The table of [`crash_row`]s, named `t`.
pub const CRASH_TABLE_SQL: &str = "CREATE TABLE t (id INTEGER PRIMARY KEY, \
     req INTEGER NOT NULL, rows INTEGER NOT NULL, generation INTEGER NOT NULL, \
     body BLOB NOT NULL)";

/// Body length of row `id`: mostly small, some a few pages, one in sixteen
/// spilling onto overflow pages.
fn body_len(id: u64) -> usize {
    let spread = (id.wrapping_mul(2_654_435_761) >> 7) as usize;
    match id % 16 {
        0 => 12_000 + spread % 9_000,
        1..=3 => 1_000 + spread % 3_000,
        _ => 16 + spread % 500,
    }
}

/// The body of row `id` written by `generation`: every byte depends on
/// both and on its position.
#[must_use]
pub fn crash_row_body(id: u64, generation: u64) -> Vec<u8> {
    let key = (id.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ generation.wrapping_mul(0xC2B2_AE3D_27D4_EB4F))
        | 1;
    (0..body_len(id))
        .map(|i| (key.rotate_left((i % 64) as u32) >> 11) as u8 ^ (i / 64) as u8)
        .collect()
}

/// The insert of row `id` of request `request` (which holds `rows` rows),
/// written by `generation`, into [`CRASH_TABLE_SQL`]'s table.
///
/// ```
/// use walguard::testing::{CRASH_TABLE_SQL, check_survivors, crash_row, AfterCheck};
/// use walguard::{Settings, Store};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("state.db");
/// let mut store = Store::open(&Settings::for_database(&path).database)?;
/// store.execute(&CRASH_TABLE_SQL.into())?;
/// store.execute(&crash_row(1, 1, 1, 7))?;
/// store.transaction(&[crash_row(2, 2, 2, 7), crash_row(3, 2, 2, 7)])?;
/// store.close().map_err(|(_, e)| e)?;
///
/// let found = check_survivors(&path, AfterCheck::Checkpoint)?;
/// assert_eq!((found.rows(), found.last_request()), (3, 2));
/// found.require_acknowledged(3, 7)?;
/// assert!(found.require_acknowledged(3, 8).is_err()); // another generation's row
/// Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub fn crash_row(id: u64, request: u64, rows: u64, generation: u64) -> Statement {
    Statement::new("INSERT INTO t (id, req, rows, generation, body) VALUES (?1, ?2, ?3, ?4, ?5)")
        .bind(id as i64)
        .bind(request as i64)
        .bind(rows as i64)
        .bind(generation as i64)
        .bind(crash_row_body(id, generation))
}

/// How [`check_survivors`] closes its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AfterCheck {
    /// A normal close: SQLite checkpoints and deletes the WAL.
    Checkpoint,
    /// Close without checkpointing (`SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`): the
    /// WAL stays as the crash left it, for a test that goes on with the same
    /// file (the next opener then recovers it itself).
    KeepWal,
}

/// The kind of a [`Violation`]: what a negative control asserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ViolationKind {
    /// The database is not a consistent prefix of what was written:
    /// `integrity_check` failed, the file is not a database, or rows are
    /// missing, damaged, out of order or cut out of their request.
    Corruption,
    /// A write the test must find (acknowledged, or before a durable point)
    /// is not there, or is another generation's row.
    LostAcknowledged,
    /// More survived than was ever sent.
    NeverSent,
}

/// What a crash broke: a failure of the system under test, never of the
/// harness ([`SurvivorError::Harness`] is that).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// `PRAGMA integrity_check` did not answer `ok`.
    #[error("integrity_check: {report}")]
    IntegrityCheck {
        /// What it answered.
        report: String,
    },
    /// SQLite found the file not a database, or corrupt, while reading it.
    #[error("unreadable while {step}: {message}")]
    Unreadable {
        /// What the check was doing.
        step: &'static str,
        /// SQLite's message.
        message: String,
    },
    /// The table `t` is gone.
    #[error("table t is gone")]
    TableMissing,
    /// Row `missing` is not there, but a later row is.
    #[error("row {missing} is missing but row {next} survived")]
    Gap {
        /// The first missing id.
        missing: u64,
        /// The id found in its place.
        next: u64,
    },
    /// Row `id`'s body is not the one [`crash_row`] wrote.
    #[error("row {id} has a damaged body")]
    DamagedBody {
        /// The row.
        id: u64,
    },
    /// Row `id` belongs to an earlier request than the row before it.
    #[error("row {id} of request {request} follows a row of request {after}")]
    OutOfOrder {
        /// The row.
        id: u64,
        /// Its request.
        request: u64,
        /// The request of the row before it.
        after: u64,
    },
    /// A request survived without all its rows: a transaction cut in two.
    #[error("request {request} survived in part: {seen} of {rows} rows")]
    PartialRequest {
        /// The request.
        request: u64,
        /// Rows of it found.
        seen: u64,
        /// Rows it holds.
        rows: u64,
    },
    /// A row the test must find is missing, or was written by another
    /// generation (a rewrite after a loss).
    #[error(
        "lost acknowledged write: row {id} of generation {generation} {}",
        match found { Some(g) => format!("was replaced by generation {g}"), None => "is gone".to_owned() }
    )]
    LostAcknowledged {
        /// The row.
        id: u64,
        /// The generation that wrote it and saw it acknowledged.
        generation: u64,
        /// The generation found under that id, if any row is there.
        found: Option<u64>,
    },
    /// Fewer rows survived than the test requires: the rows before the
    /// durable point, or every acknowledged row under `synchronous=FULL`.
    #[error(
        "lost acknowledged writes: rows 1..={survived} survived, rows through {required} were required"
    )]
    LostPrefix {
        /// Rows found.
        survived: u64,
        /// Rows required.
        required: u64,
    },
    /// More rows survived than were sent.
    #[error("{survived} rows survived, only {sent} were ever sent")]
    NeverSent {
        /// Rows found.
        survived: u64,
        /// Rows sent.
        sent: u64,
    },
}

impl Violation {
    /// Which kind of violation this is.
    #[must_use]
    pub fn kind(&self) -> ViolationKind {
        match self {
            Self::LostAcknowledged { .. } | Self::LostPrefix { .. } => {
                ViolationKind::LostAcknowledged
            }
            Self::NeverSent { .. } => ViolationKind::NeverSent,
            _ => ViolationKind::Corruption,
        }
    }
}

/// Why [`check_survivors`] gave no [`Survivors`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SurvivorError {
    /// The crash broke something.
    #[error(transparent)]
    Violation(#[from] Violation),
    /// The check itself could not run (the file cannot be opened, a query
    /// failed for another reason than corruption): a harness failure, which
    /// proves nothing either way.
    #[error("survivor check: cannot {step}")]
    Harness {
        /// What the check was doing.
        step: &'static str,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
}

impl SurvivorError {
    /// The violation, when the crash broke something (not the harness).
    #[must_use]
    pub fn violation(&self) -> Option<&Violation> {
        match self {
            Self::Violation(v) => Some(v),
            Self::Harness { .. } => None,
        }
    }
}

/// A failed SQLite call of the check: a [`Violation::Unreadable`] when
/// SQLite says the file is corrupt or not a database, else a harness error.
fn failed(step: &'static str) -> impl Fn(rusqlite::Error) -> SurvivorError {
    move |source| match source.sqlite_error_code() {
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => Violation::Unreadable {
            step,
            message: source.to_string(),
        }
        .into(),
        _ => SurvivorError::Harness { step, source },
    }
}

/// What survived a crash: rows `1..=rows()`, each intact, each request
/// whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Survivors {
    /// The generation of row `id`, at index `id - 1`.
    generations: Vec<u64>,
    /// The request of the last row (0 when there is none).
    last_request: u64,
}

impl Survivors {
    /// Rows `1..=rows()` survived.
    #[must_use]
    pub fn rows(&self) -> u64 {
        self.generations.len() as u64
    }

    /// The request of the last surviving row: requests are numbered in
    /// commit order, so with one request per transaction this is how many
    /// transactions survived. 0 when no row did.
    #[must_use]
    pub fn last_request(&self) -> u64 {
        self.last_request
    }

    /// The generation that wrote row `id`, if it survived.
    #[must_use]
    pub fn generation(&self, id: u64) -> Option<u64> {
        let index = usize::try_from(id.checked_sub(1)?).ok()?;
        self.generations.get(index).copied()
    }

    /// Checks that row `id`, acknowledged to `generation`, is there and is
    /// that generation's.
    ///
    /// # Errors
    ///
    /// [`Violation::LostAcknowledged`] when it is gone or was rewritten.
    pub fn require_acknowledged(&self, id: u64, generation: u64) -> Result<(), Violation> {
        match self.generation(id) {
            Some(g) if g == generation => Ok(()),
            found => Err(Violation::LostAcknowledged {
                id,
                generation,
                found,
            }),
        }
    }

    /// Checks that rows `1..=required` survived and that no more than `sent`
    /// rows did: what a power-loss test asserts, with `required` the rows
    /// before the durable point (every acknowledged row under
    /// `synchronous=FULL`).
    ///
    /// # Errors
    ///
    /// [`Violation::LostPrefix`] when fewer than `required` survived;
    /// [`Violation::NeverSent`] when more than `sent` did.
    pub fn require_between(&self, required: u64, sent: u64) -> Result<(), Violation> {
        if self.rows() < required {
            return Err(Violation::LostPrefix {
                survived: self.rows(),
                required,
            });
        }
        if self.rows() > sent {
            return Err(Violation::NeverSent {
                survived: self.rows(),
                sent,
            });
        }
        Ok(())
    }
}

/// After a crash: opens `path` with SQLite's default VFS (which recovers the
/// WAL) and checks that `PRAGMA integrity_check` is ok, that the table of
/// [`CRASH_TABLE_SQL`] exists, and that its rows are exactly `1..=k` for
/// some `k`, each with the body [`crash_row`] gave it, requests in order and
/// each present whole (a transaction boundary). Closes as `after` says.
///
/// # Errors
///
/// [`SurvivorError::Violation`] for what the crash broke (its
/// [`Violation::kind`] is [`ViolationKind::Corruption`]);
/// [`SurvivorError::Harness`] when the check itself could not run.
pub fn check_survivors(path: &Path, after: AfterCheck) -> Result<Survivors, SurvivorError> {
    let conn = Connection::open(path).map_err(failed("open the database"))?;
    if after == AfterCheck::KeepWal {
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(failed("turn off the checkpoint on close"))?;
    }
    let report: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .map_err(failed("run integrity_check"))?;
    if report != "ok" {
        return Err(Violation::IntegrityCheck { report }.into());
    }
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 't'",
            [],
            |row| row.get(0),
        )
        .map_err(failed("read the schema"))?;
    if tables == 0 {
        return Err(Violation::TableMissing.into());
    }
    let mut stmt = conn
        .prepare("SELECT id, req, rows, generation, body FROM t ORDER BY id")
        .map_err(failed("read the rows"))?;
    let rows = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, i64>(0)? as u64,
                row.get::<_, i64>(1)? as u64,
                row.get::<_, i64>(2)? as u64,
                row.get::<_, i64>(3)? as u64,
                row.get::<_, Vec<u8>>(4)?,
            ))
        })
        .map_err(failed("read the rows"))?;
    let mut generations = Vec::new();
    // The request being read, its row count, and how many of them were seen.
    let mut current: Option<(u64, u64, u64)> = None;
    for row in rows {
        let (id, request, in_request, generation, body) = row.map_err(failed("read a row"))?;
        let expected = generations.len() as u64 + 1;
        if id != expected {
            return Err(Violation::Gap {
                missing: expected,
                next: id,
            }
            .into());
        }
        if body != crash_row_body(id, generation) {
            return Err(Violation::DamagedBody { id }.into());
        }
        current = match current {
            Some((r, rows, seen)) if r == request => Some((r, rows, seen + 1)),
            Some((r, rows, seen)) if seen != rows => {
                return Err(Violation::PartialRequest {
                    request: r,
                    seen,
                    rows,
                }
                .into());
            }
            Some((r, _, _)) if request < r => {
                return Err(Violation::OutOfOrder {
                    id,
                    request,
                    after: r,
                }
                .into());
            }
            _ => Some((request, in_request, 1)),
        };
        generations.push(generation);
    }
    if let Some((request, rows, seen)) = current
        && seen != rows
    {
        return Err(Violation::PartialRequest {
            request,
            seen,
            rows,
        }
        .into());
    }
    drop(stmt);
    conn.close()
        .map_err(|(_, source)| failed("close the database")(source))?;
    Ok(Survivors {
        generations,
        last_request: current.map_or(0, |(request, _, _)| request),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh database at `name` holding `rows` as `(id, request, rows,
    /// generation)`.
    fn fresh(
        dir: &tempfile::TempDir,
        name: &str,
        rows: &[(u64, u64, u64, u64)],
    ) -> std::path::PathBuf {
        let path = dir.path().join(name);
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(CRASH_TABLE_SQL).unwrap();
        for &(id, req, n, generation) in rows {
            let stmt = crash_row(id, req, n, generation);
            conn.execute(stmt.sql(), rusqlite::params_from_iter(stmt.params()))
                .unwrap();
        }
        path
    }

    fn violation(path: &Path) -> Violation {
        match check_survivors(path, AfterCheck::Checkpoint) {
            Err(SurvivorError::Violation(v)) => v,
            other => panic!("expected a violation, got {other:?}"),
        }
    }

    /// The survivor check itself can fail: a gap, a request cut in two, a
    /// request out of order, a damaged body, a corrupt file, a rewritten
    /// row are each reported, with their kind.
    #[test]
    fn the_survivor_check_catches_gaps_cut_requests_damage_and_rewrites() {
        let dir = tempfile::tempdir().unwrap();
        let whole = fresh(
            &dir,
            "whole.db",
            &[(1, 1, 1, 0), (2, 2, 2, 0), (3, 2, 2, 1)],
        );
        let found = check_survivors(&whole, AfterCheck::Checkpoint).unwrap();
        assert_eq!((found.rows(), found.last_request()), (3, 2));
        assert_eq!(found.generation(3), Some(1));
        assert_eq!(found.require_acknowledged(2, 0), Ok(()));
        assert_eq!(
            found.require_acknowledged(2, 5).unwrap_err().kind(),
            ViolationKind::LostAcknowledged
        );
        assert_eq!(
            found.require_acknowledged(4, 0).unwrap_err(),
            Violation::LostAcknowledged {
                id: 4,
                generation: 0,
                found: None
            }
        );
        assert_eq!(found.require_between(3, 3), Ok(()));
        assert_eq!(
            found.require_between(4, 9).unwrap_err().kind(),
            ViolationKind::LostAcknowledged
        );
        assert_eq!(
            found.require_between(0, 2).unwrap_err().kind(),
            ViolationKind::NeverSent
        );

        let gap = fresh(&dir, "gap.db", &[(1, 1, 1, 0), (3, 3, 1, 0)]);
        assert_eq!(
            violation(&gap),
            Violation::Gap {
                missing: 2,
                next: 3
            }
        );
        let cut = fresh(&dir, "cut.db", &[(1, 1, 1, 0), (2, 2, 3, 0), (3, 2, 3, 0)]);
        assert_eq!(
            violation(&cut),
            Violation::PartialRequest {
                request: 2,
                seen: 2,
                rows: 3
            }
        );
        let order = fresh(&dir, "order.db", &[(1, 2, 1, 0), (2, 1, 1, 0)]);
        assert!(matches!(
            violation(&order),
            Violation::OutOfOrder { id: 2, .. }
        ));
        // Damage done after the writes, by `sql`.
        let violation_after = |name: &str, rows: &[(u64, u64, u64, u64)], sql: &str| {
            let path = fresh(&dir, name, rows);
            Connection::open(&path).unwrap().execute_batch(sql).unwrap();
            violation(&path)
        };
        assert_eq!(
            violation_after(
                "damaged.db",
                &[(1, 1, 1, 0), (2, 2, 1, 0)],
                "UPDATE t SET body = x'00' WHERE id = 2"
            ),
            Violation::DamagedBody { id: 2 }
        );
        // A generation number rewritten without its body.
        assert_eq!(
            violation_after(
                "relabelled.db",
                &[(1, 1, 1, 0)],
                "UPDATE t SET generation = 1"
            ),
            Violation::DamagedBody { id: 1 }
        );
        assert_eq!(
            violation_after("dropped.db", &[(1, 1, 1, 0)], "DROP TABLE t"),
            Violation::TableMissing
        );

        let garbage = dir.path().join("garbage.db");
        std::fs::write(&garbage, vec![0xA5u8; 8192]).unwrap();
        let v = violation(&garbage);
        assert_eq!(v.kind(), ViolationKind::Corruption, "{v}");

        // A file that cannot even be opened is the harness's failure, not a
        // violation.
        let nowhere = dir.path().join("no-such-dir").join("state.db");
        assert!(matches!(
            check_survivors(&nowhere, AfterCheck::Checkpoint),
            Err(SurvivorError::Harness { .. })
        ));
    }
}
