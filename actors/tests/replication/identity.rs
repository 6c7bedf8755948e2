//! A replica belongs to one database (`walguard::replication::identity`):
//! a new empty database, another database, and an old copy are refused
//! at start, naming the replica; `restore_on_start` restores a new one
//! first, and `replace_replica` replaces the replica's history. A `file://`
//! replica (no S3 server needed), a real Litestream.
//!
//! Failure modelled: none; operators pointing a database at the wrong
//! replica (measured at `7feb55a`: a new, empty database replaced a
//! replica of 981 writes).

use std::path::{Path, PathBuf};

use super::{SECRET, run_child, survivors};

/// A config for `db` replicating to `replica` with `extra` replication keys.
fn config(dir: &Path, name: &str, db: &Path, replica: &Path, extra: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "database:\n  path: {}\nreplication:\n  mode: litestream\n  url: file://{}\n  sync_period: 200ms\n{extra}",
            db.display(),
            replica.display()
        ),
    )
    .unwrap();
    path
}

/// Starts the child in `mode`; the `error` line it printed, if any.
fn start(config: &Path, mode: &str) -> Option<String> {
    let lines = run_child(config, mode, SECRET, None);
    if let Some(error) = lines.iter().find(|l| l.starts_with("error")) {
        return Some(error.clone());
    }
    assert!(
        lines
            .iter()
            .any(|l| l == "started" || l.starts_with("report")),
        "the child neither started nor failed: {lines:?}"
    );
    None
}

#[test]
fn a_replica_belongs_to_one_database() {
    super::require_replication_tools();
    let work = tempfile::tempdir().unwrap();
    let replica = work.path().join("replica");
    let dir = |name: &str| {
        let d = work.path().join(name);
        std::fs::create_dir(&d).unwrap();
        d.join("engine.db")
    };

    // The original: 500 writes, replicated, a clean stop.
    let a = dir("a");
    let a_config = config(work.path(), "a", &a, &replica, "");
    assert_eq!(start(&a_config, "clean"), None);
    let restored = work.path().join("restored-a.db");
    super::restore(&a_config, &restored);
    assert_eq!(survivors(&restored).len(), 500);

    // A new, empty database against it: refused, naming the replica.
    let b = dir("b");
    let b_config = config(work.path(), "b", &b, &replica, "");
    let error = start(&b_config, "start").expect("a new database replaced the replica");
    assert!(
        error.contains("is a new, empty database and the replica")
            && error.contains(&replica.display().to_string()),
        "{error}"
    );
    // ... and with restore_on_start, restored first, then replicating.
    let b_config = config(
        work.path(),
        "b-restore",
        &b,
        &replica,
        "  restore_on_start: true\n",
    );
    assert_eq!(start(&b_config, "start"), None);
    assert_eq!(survivors(&b).len(), 500, "not restored first");

    // Another database with data of its own: refused.
    let c = dir("c");
    rusqlite::Connection::open(&c)
        .unwrap()
        .execute_batch("CREATE TABLE other (x); INSERT INTO other VALUES (1)")
        .unwrap();
    let c_config = config(work.path(), "c", &c, &replica, "");
    let error = start(&c_config, "start").expect("another database replaced the replica");
    assert!(error.contains("belongs to another database"), "{error}");
    // Still the original's replica.
    let restored = work.path().join("restored-still-a.db");
    super::restore(&a_config, &restored);
    assert_eq!(survivors(&restored).len(), 500);

    // Said explicitly: replaced.
    let c_config = config(
        work.path(),
        "c-replace",
        &c,
        &replica,
        "  replace_replica: true\n",
    );
    assert_eq!(start(&c_config, "start"), None);

    // The original, restarted after another database took its replica
    // over, is now the old copy: refused.
    let error = start(&a_config, "start").expect("an old copy replaced the replica");
    assert!(error.contains("belongs to another database"), "{error}");
    // No scratch file is left behind.
    for d in ["a", "b", "c"] {
        let left: Vec<_> = std::fs::read_dir(work.path().join(d))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("identity"))
            .collect();
        assert!(left.is_empty(), "left behind in {d}: {left:?}");
    }
}
