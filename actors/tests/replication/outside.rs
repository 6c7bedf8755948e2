//! A Litestream walguard did not start: one given by its control socket
//! (`replication.socket`), which walguard must use and never duplicate,
//! and one it was not told about, which it must refuse to run beside.

use super::{OutsideLitestream, S3, SECRET, config, restore, run_child, survivors, three_rows};

/// `replication.socket` set: walguard starts no Litestream (its
/// `litestream_binary` does not even exist), runs no checkpoint of its own
/// while that one is healthy, reports what it replicated, and leaves it
/// running at shutdown; the replica holds every write.
#[test]
fn an_outside_litestream_given_by_its_socket_is_used_not_duplicated() {
    super::require_replication_tools();
    let s3 = S3::start();
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("engine.db");
    // The database exists before its Litestream starts, as under systemd.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "PRAGMA journal_mode=WAL; CREATE TABLE t (seq INTEGER PRIMARY KEY, pad BLOB)",
        )
        .unwrap();
    let socket = work.path().join("outside.sock");
    let mut outside = OutsideLitestream::start(work.path(), &db, &socket, &s3, "outside");
    let base = config(work.path(), &db, &s3.endpoint(), "outside", "local");
    let text = std::fs::read_to_string(&base).unwrap().replace(
        "database:\n",
        "checkpoint:\n  interval: 200ms\n  size_threshold_frames: 16\ndatabase:\n",
    );
    let path = work.path().join("given.yaml");
    std::fs::write(
        &path,
        format!(
            "{text}  socket: {}\n  litestream_binary: /nonexistent/litestream\n",
            socket.display()
        ),
    )
    .unwrap();
    let lines = run_child(&path, "external", SECRET, None);
    let pids: Vec<&String> = lines.iter().filter(|l| l.starts_with("ls_pid")).collect();
    assert!(!pids.is_empty(), "{lines:?}");
    for line in pids {
        assert_eq!(*line, format!("ls_pid {}", outside.pid()), "{lines:?}");
    }
    let report = lines
        .iter()
        .find(|l| l.starts_with("report"))
        .unwrap_or_else(|| panic!("no report: {lines:?}"));
    assert!(
        lines.iter().all(|l| !l.starts_with("owner walguard")),
        "walguard took checkpointing from a healthy Litestream: {lines:?}"
    );
    let checkpoints = lines
        .iter()
        .find(|l| l.starts_with("checkpoints"))
        .unwrap_or_else(|| panic!("no checkpoint count: {lines:?}"));
    // Without ownership the 200 ms interval and the 16-frame size
    // threshold would have run checkpoints of walguard's own here.
    assert_eq!(checkpoints, "checkpoints 0 shutdown none", "{lines:?}");
    assert!(
        outside.is_running(),
        "walguard stopped a Litestream it did not start"
    );
    let out = work.path().join("restored.db");
    restore(&base, &out);
    assert_eq!(report, "report writes 300 replicated 300");
    assert_eq!(survivors(&out), (1..=300).collect::<Vec<_>>());
}

/// A Litestream already replicating the database, on walguard's own socket
/// path or on a socket walguard was not told about: walguard refuses to
/// start a second one, and loses no local write. The harness can fail:
/// once that Litestream is gone, the same settings start.
#[test]
fn a_second_litestream_for_the_same_database_is_refused() {
    super::require_replication_tools();
    let s3 = S3::start();
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("engine.db");
    three_rows(&db);
    let config = config(work.path(), &db, &s3.endpoint(), "second", "local");
    let own_socket = walguard_actors::replication::testing::Files::for_db(&db, None)
        .unwrap()
        .socket;
    let other_socket = work.path().join("elsewhere.sock");
    for (socket, says) in [
        (&own_socket, "already answers on"),
        (&other_socket, "already holds"),
    ] {
        let outside = OutsideLitestream::start(work.path(), &db, socket, &s3, "second");
        let lines = run_child(&config, "start", SECRET, None).join("\n");
        assert!(lines.contains(says), "{}: {lines}", socket.display());
        assert!(lines.contains("refusing to start a second one"), "{lines}");
        if says == "already holds" {
            assert!(lines.contains(&format!("pid {}", outside.pid())), "{lines}");
        }
        assert_eq!(survivors(&db), vec![1, 2, 3], "a local write was lost");
        drop(outside);
    }
    let lines = run_child(&config, "start", SECRET, None);
    assert!(lines.iter().any(|l| l == "started"), "{lines:?}");
}
