//! A copy of the database from the same session, put back, is refused at
//! start, and the replica keeps every write (issue 20, the open kind "F1").
//! A `file://` replica, a real Litestream, writes of every kind (single,
//! transaction, closure: `WALGUARD_REPL_CHILD_WRITES=mixed`).
//!
//! Failure modelled: **a file put back from the same session**: a backup
//! taken while walguard writes (`VACUUM INTO` from another connection, as
//! `sqlite3 .backup` would), the original goes on writing and is lost
//! (SIGKILL of walguard and its Litestream), the backup is put back and
//! walguard started on it. The identity tokens alone accepted it (the
//! replica's newest token is the copy's too) and Litestream then replaced
//! the replica's newer writes (a review lost 1,181). Then: a copy restored
//! from the replica while the original went on writing is refused the
//! same way; the negative control (`WALGUARD_TEST_NO_POSITION_CHECK=1`)
//! shows the overwrite the check prevents; and the original, put back
//! ahead of its replica, starts and replicates.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{Running, SECRET, child_with, restore, run_child_with, survivors};

/// Starts the child in mode `start` with `env`; the `error` line it
/// printed, if any.
fn start(config: &Path, env: &[(&str, &str)]) -> Option<String> {
    let lines = run_child_with(config, "start", env);
    if let Some(error) = lines.iter().find(|l| l.starts_with("error")) {
        return Some(error.clone());
    }
    assert!(
        lines.iter().any(|l| l == "started"),
        "the child neither started nor failed: {lines:?}"
    );
    None
}

/// The rows the replica of `config` restores to.
fn restored(config: &Path, out: &Path) -> Vec<u64> {
    let _ = std::fs::remove_file(out);
    restore(config, out);
    survivors(out)
}

/// `cp -a from to` (directories: the machine's files as they were).
fn copy_all(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "cp -a {} {}",
        from.display(),
        to.display()
    );
}

/// Puts `copy` in place of the database `db` (its WAL and index go: a
/// restored backup is one file).
fn put_back(copy: &Path, db: &Path) {
    for file in [
        db.to_path_buf(),
        walguard::files::wal_path(db),
        walguard::files::shm_path(db),
    ] {
        let _ = std::fs::remove_file(file);
    }
    std::fs::copy(copy, db).unwrap();
}

#[test]
fn a_copy_from_the_same_session_put_back_is_refused_and_the_replica_keeps_every_write() {
    super::require_replication_tools();
    let work = tempfile::tempdir().unwrap();
    let machine = work.path().join("machine");
    std::fs::create_dir(&machine).unwrap();
    let db = machine.join("engine.db");
    let replica = work.path().join("replica");
    let config: PathBuf = work.path().join("same-session.yaml");
    std::fs::write(
        &config,
        format!(
            "database:\n  path: {}\nreplication:\n  mode: litestream\n  url: file://{}\n  sync_period: 200ms\n",
            db.display(),
            replica.display()
        ),
    )
    .unwrap();

    // The session: writes go on; a backup is taken at about 150; the
    // original goes on past 400 on the replica, then the machine is lost.
    let mut session = Running::new(child_with(
        &config,
        "same-session",
        SECRET,
        None,
        &[("WALGUARD_REPL_CHILD_WRITES", "mixed")],
        None,
    ));
    let limit = Duration::from_secs(60);
    session.until(limit, "150 writes", |r| r.last_acked() >= 150);
    let backup = work.path().join("backup.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute("VACUUM INTO ?1", [backup.to_str().unwrap()])
        .unwrap();
    let in_backup = survivors(&backup);
    // A sibling: a copy restored from the replica while the original goes
    // on writing (a machine thought lost, then found).
    session.until(limit, "100 more writes on the replica", |r| {
        r.replicated >= in_backup.len() as u64 + 100
    });
    let from_replica = work.path().join("from-replica.db");
    restore(&config, &from_replica);
    let in_from_replica = survivors(&from_replica);
    session.until(limit, "400 writes on the replica past the backup", |r| {
        r.replicated >= in_from_replica.len() as u64 + 150
    });
    session.lose_machine();
    let original = work.path().join("original");
    copy_all(&machine, &original);
    let out = work.path().join("restored.db");
    let on_replica = restored(&config, &out);
    assert!(
        on_replica.len() > in_backup.len() + 200,
        "the replica ({}) is not past the backup ({})",
        on_replica.len(),
        in_backup.len()
    );

    // The backup put back: refused, naming the replica and both positions.
    put_back(&backup, &db);
    let error = start(&config, &[]).expect("a copy behind its replica was accepted");
    assert!(
        error.contains("is behind its own replica")
            && error.contains(&replica.display().to_string())
            && error.contains("commits here")
            && error.contains("on the replica")
            && error.contains("walguard restore"),
        "{error}"
    );
    // The replica keeps every write it had.
    assert_eq!(restored(&config, &out), on_replica, "the replica changed");
    // The copy restored from the replica mid-session: refused the same way.
    assert!(on_replica.len() > in_from_replica.len());
    put_back(&from_replica, &db);
    let error = start(&config, &[]).expect("a copy restored mid-session was accepted");
    assert!(error.contains("is behind its own replica"), "{error}");
    assert_eq!(restored(&config, &out), on_replica, "the replica changed");

    // The negative control: the position check off, the same start
    // replaces the replica's newer writes (this test would see it).
    let saved = work.path().join("replica-saved");
    copy_all(&replica, &saved);
    assert_eq!(
        start(&config, &[("WALGUARD_TEST_NO_POSITION_CHECK", "1")]),
        None
    );
    let overwritten = restored(&config, &out);
    assert!(
        overwritten.len() < on_replica.len(),
        "without the position check the replica kept {} of {} writes: the control shows nothing",
        overwritten.len(),
        on_replica.len()
    );
    std::fs::remove_dir_all(&replica).unwrap();
    std::fs::rename(&saved, &replica).unwrap();

    // The original machine back: the same database, at or ahead of its
    // replica: it starts and replicates, and the replica then holds every
    // write the file holds.
    std::fs::remove_dir_all(&machine).unwrap();
    copy_all(&original, &machine);
    assert_eq!(start(&config, &[]), None, "the original was refused");
    // Read after walguard's clean stop: a reader of ours closing last
    // before it would checkpoint behind Litestream's back.
    let local = survivors(&db);
    assert!(local.len() >= on_replica.len());
    assert_eq!(restored(&config, &out), local);
}
