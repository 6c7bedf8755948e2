//! What runs before Litestream starts: the restore on start, the
//! replica's identity (checked, then stamped), and the restore of a
//! replica into a new file (`walguard restore`).

use std::path::Path;

use super::child::check_binary;
use super::files::Files;
use super::processes::stop_litestreams_with_arg;
use super::restore::{probe_config, replica_exists, restore, restore_config};
use crate::error::ReplicationError;

/// With `replication.restore_on_start`: restores the database from the
/// replica when its file is missing (and the replica exists).
///
/// # Errors
///
/// [`ReplicationError`] when the binary is missing or the restore fails.
pub fn restore_if_missing(settings: &walguard::Settings) -> Result<(), ReplicationError> {
    let path = &settings.database.path;
    if path.exists() {
        return Ok(());
    }
    let r = &settings.replication;
    let files = Files::for_db(path, r.socket.as_deref())?;
    check_binary(&r.litestream_binary)?;
    restore(&r.litestream_binary, &files, r, path, true)?;
    tracing::info!(
        target: "walguard::replication",
        database = %path.display(),
        restored = path.exists(),
        "the database file was missing: restore from the replica on start"
    );
    Ok(())
}

/// Checks, before Litestream starts, that the replica belongs to this
/// database ([`walguard::replication::identity`]): restores the replica
/// (when one exists) into a scratch file beside the database, reads its
/// newest identity, and judges. A new, empty database is replaced by the
/// restored replica under `replication.restore_on_start`. Blocking (one
/// `litestream restore`: its time grows with the database).
///
/// An outside Litestream (`replication.socket`) whose binary is not here
/// cannot restore: the check is skipped, and the log says so.
///
/// # Errors
///
/// [`ReplicationError::ForeignReplica`], [`ReplicationError::BehindReplica`],
/// [`ReplicationError::NewDatabaseWithReplica`] (all unless
/// `replication.replace_replica`), [`ReplicationError::Identity`], or the
/// restore's own errors.
pub fn check_identity(settings: &walguard::Settings) -> Result<(), ReplicationError> {
    use walguard::replication::identity::{self, Local};
    let r = &settings.replication;
    let path = &settings.database.path;
    if let Err(e) = check_binary(&r.litestream_binary) {
        if r.socket.is_some() {
            tracing::warn!(target: "walguard::replication", error = %e, "cannot check the replica's identity without a litestream binary here; replicating as told");
            return Ok(());
        }
        return Err(e);
    }
    let local = if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
        read_identity(path)?
    } else {
        Local::default()
    };
    let scratch = walguard::files::sibling(path, "-walguard-identity.db");
    let remove_scratch = || {
        for file in [
            scratch.clone(),
            walguard::files::wal_path(&scratch),
            walguard::files::shm_path(&scratch),
        ] {
            let _ = std::fs::remove_file(file);
        }
    };
    // What a start that was killed during this check left: its probe or
    // restore still running (they would write the scratch file later), and
    // the scratch file.
    let files = Files::for_db(path, r.socket.as_deref())?;
    stop_litestreams_with_arg(&probe_config(&files.db));
    stop_litestreams_with_arg(&restore_config(&scratch));
    remove_scratch();
    // A quick, bounded look first: a wrong endpoint fails here in seconds,
    // and without a replica nothing is restored.
    if replica_exists(&r.litestream_binary, &files, r)? {
        restore(&r.litestream_binary, &files, r, &scratch, true)?;
    }
    let replica = if scratch.exists() {
        let on_replica = read_identity(&scratch);
        match on_replica {
            Ok(on_replica) => Some(on_replica.tokens),
            Err(e) => {
                remove_scratch();
                return Err(e);
            }
        }
    } else {
        None
    };
    let verdict = identity::judge(&local, &replica);
    let acted = act_on(verdict, settings, &scratch);
    remove_scratch();
    acted
}

/// What the verdict at start does: nothing, the restored replica moved
/// into place of a new, empty database, a warning under
/// `replication.replace_replica`, or the refusal.
fn act_on(
    verdict: walguard::replication::identity::Verdict,
    settings: &walguard::Settings,
    scratch: &Path,
) -> Result<(), ReplicationError> {
    use walguard::replication::identity::Verdict;
    let r = &settings.replication;
    let path = &settings.database.path;
    let url = walguard::settings::redact(r.url.as_deref().unwrap_or_default());
    match verdict {
        Verdict::Replicate => {}
        Verdict::RestoreFirst if r.restore_on_start => {
            // The local file is new and empty: nothing of it is lost.
            for file in [
                path.clone(),
                walguard::files::wal_path(path),
                walguard::files::shm_path(path),
            ] {
                let _ = std::fs::remove_file(file);
            }
            std::fs::rename(scratch, path).map_err(|source| ReplicationError::File {
                action: "move the restored replica into place",
                path: path.clone(),
                source,
            })?;
            tracing::info!(target: "walguard::replication", database = %path.display(), replica = %url, "the database was new and empty: restored from its replica first");
        }
        // The negative control of the position check (issue 20, F1).
        Verdict::Behind { .. } if position_check_disabled_for_tests() => {}
        Verdict::Behind {
            token,
            local,
            replica,
        } if r.replace_replica => {
            tracing::warn!(target: "walguard::replication", database = %path.display(), replica = %url, token = %token, local_commits = local, replica_commits = replica, "the database is behind its own replica; overwriting the replica's newer commits with this database (replication.replace_replica)");
        }
        _ if r.replace_replica => {
            tracing::warn!(target: "walguard::replication", database = %path.display(), replica = %url, verdict = ?verdict, "the replica belongs to another database; replacing its history with this database (replication.replace_replica)");
        }
        Verdict::Behind {
            token,
            local,
            replica,
        } => {
            return Err(ReplicationError::BehindReplica {
                url,
                db: path.clone(),
                token,
                local,
                replica,
            });
        }
        Verdict::RestoreFirst => {
            return Err(ReplicationError::NewDatabaseWithReplica {
                url,
                db: path.clone(),
            });
        }
        Verdict::Foreign { replica, local } => {
            return Err(ReplicationError::ForeignReplica {
                url,
                db: path.clone(),
                replica: replica.unwrap_or_else(|| "none".to_owned()),
                local: local.unwrap_or_else(|| "none".to_owned()),
            });
        }
    }
    Ok(())
}

/// The identity of the database `file` (read-only).
fn read_identity(file: &Path) -> Result<walguard::replication::identity::Local, ReplicationError> {
    use walguard::replication::identity;
    let unreadable = |e: rusqlite::Error| ReplicationError::Identity {
        path: file.to_path_buf(),
        error: e.to_string(),
    };
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    let conn = rusqlite::Connection::open_with_flags(file, flags).map_err(unreadable)?;
    Ok(identity::Local {
        tokens: identity::tokens(&conn).map_err(unreadable)?,
        has_data: identity::has_own_schema(&conn).map_err(unreadable)?,
    })
}

/// The negative control of the position check (issue 20, F1):
/// `WALGUARD_TEST_NO_POSITION_CHECK=1` accepts a database behind its own
/// replica, so a test can show the overwrite the check prevents. Only in
/// builds with the `testing` feature.
fn position_check_disabled_for_tests() -> bool {
    #[cfg(feature = "testing")]
    return std::env::var_os("WALGUARD_TEST_NO_POSITION_CHECK").is_some_and(|v| v == "1");
    #[cfg(not(feature = "testing"))]
    false
}

/// Appends this start's identity token to the database
/// ([`walguard::replication::identity::stamp`]), through a connection of
/// its own, before Litestream's first sync carries it to the replica;
/// the row, whose count of commits the store then keeps
/// ([`walguard::Store::count_commits_in_identity`]).
///
/// # Errors
///
/// [`ReplicationError::Identity`] when the write fails.
pub(crate) fn stamp_identity(
    settings: &walguard::Settings,
) -> Result<walguard::replication::identity::Stamped, ReplicationError> {
    let path = &settings.database.path;
    let fail = |e: rusqlite::Error| ReplicationError::Identity {
        path: path.clone(),
        error: e.to_string(),
    };
    let conn = rusqlite::Connection::open(path).map_err(fail)?;
    conn.busy_timeout(settings.database.busy_timeout)
        .map_err(fail)?;
    walguard::replication::identity::stamp(&conn).map_err(fail)
}

/// Restores the replica of `settings.database.path` into `out`, a new
/// file (`walguard restore`). Blocking: its time grows with the database.
///
/// # Errors
///
/// [`ReplicationError::BinaryMissing`] or
/// [`ReplicationError::BinaryTooOld`] for `replication.litestream_binary`;
/// [`ReplicationError::Restore`] when `out` (or its `-wal` or `-shm`)
/// exists (a restore never overwrites) or Litestream fails;
/// [`ReplicationError::File`] when the database's directory cannot be
/// resolved or the restore's config cannot be written.
pub fn restore_to(settings: &walguard::Settings, out: &Path) -> Result<(), ReplicationError> {
    let r = &settings.replication;
    let files = Files::for_db(&settings.database.path, r.socket.as_deref())?;
    check_binary(&r.litestream_binary)?;
    restore(&r.litestream_binary, &files, r, out, false)
}
