//! A start and a clean stop with replication on: the tools named when
//! missing, a clean stop leaves the replica complete, migrations at start
//! reach it, a `$` in the path, and bad input named without losing a
//! local write.

use super::*;

/// Without `litestream` and `rclone` a replication test fails with one
/// line naming them and the command that installs them; it never reports
/// `ok` for a run it never made. A test of this binary re-run with a
/// `PATH` holding neither.
#[test]
fn without_its_tools_a_replication_test_fails_naming_them() {
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "start_and_stop::a_clean_stop_leaves_the_replica_complete",
            "--test-threads=1",
        ])
        .env("PATH", empty.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("1 failed") && !out.status.success(),
        "the test did not fail without its tools: {text}"
    );
    let line = text
        .lines()
        .find(|l| l.starts_with("missing "))
        .unwrap_or_else(|| panic!("no line names what is missing: {text}"));
    assert!(
        line.contains("litestream and rclone on PATH")
            && line.contains("scripts/test")
            && line.contains(&tools::pinned_replication_tools()),
        "{line}"
    );
}

#[test]
fn a_clean_stop_leaves_the_replica_complete() {
    require_replication_tools();
    let s3 = S3::start();
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("engine.db");
    let config = config(work.path(), &db, &s3.endpoint(), "clean", "local");
    let lines = run_child(&config, "clean", SECRET, None);
    let report = lines
        .iter()
        .find(|l| l.starts_with("report"))
        .unwrap_or_else(|| panic!("no report: {lines:?}"));
    assert_eq!(report, "report writes 500 replicated 500");
    let out = work.path().join("restored.db");
    restore(&config, &out);
    assert_eq!(survivors(&out), (1..=500).collect::<Vec<_>>());
}

/// Migrations at start with replication on: their frames stay in the WAL
/// for Litestream (no TRUNCATE, the replica hold waits for their commit),
/// and after a clean stop the replica has them, and the writes after them.
#[test]
fn migrations_at_start_reach_the_replica() {
    require_replication_tools();
    let s3 = S3::start();
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("engine.db");
    let config = config(work.path(), &db, &s3.endpoint(), "migrated", "local");
    let lines = run_child_with(&config, "clean", &[(CHILD_MIGRATIONS_ENV, "1")]);
    assert!(
        lines
            .iter()
            .any(|l| l == "report writes 500 replicated 500"),
        "{lines:?}"
    );
    let out = work.path().join("restored.db");
    restore(&config, &out);
    assert_eq!(survivors(&out), (1..=500).collect::<Vec<_>>());
    let conn = Connection::open(&out).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM migrated", [], |r| r.get(0))
        .unwrap();
    assert_eq!((version, rows), (2, 2000));
}

/// Bug kind: Litestream expands `$NAME` across its whole config, so a
/// database under a directory with a `$` in its name was replicated from
/// (or restored to) another path. walguard now starts it with
/// `-no-expand-env` and writes every value out. Checked by hand: without
/// the flag this test fails at the start (Litestream finds no database at
/// the expanded path).
#[test]
fn a_database_path_with_a_dollar_replicates_and_restores_as_written() {
    require_replication_tools();
    let s3 = S3::start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("state $HOME ${USER}");
    std::fs::create_dir(&dir).unwrap();
    let db = dir.join("engine$1.db");
    let config = config(work.path(), &db, &s3.endpoint(), "dollar", "local");
    let lines = run_child(&config, "clean", SECRET, None);
    assert!(
        lines
            .iter()
            .any(|l| l == "report writes 500 replicated 500"),
        "{lines:?}"
    );
    let out = dir.join("restored$HOME.db");
    restore(&config, &out);
    assert_eq!(survivors(&out), (1..=500).collect::<Vec<_>>());
}

#[test]
fn bad_input_names_the_setting_and_loses_no_local_write() {
    require_replication_tools();
    let s3 = S3::start();
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("engine.db");
    three_rows(&db);
    let good = config(work.path(), &db, &s3.endpoint(), "bad", "local");
    let text = std::fs::read_to_string(&good).unwrap();
    let dead_port = free_port();
    let too_old = work.path().join("litestream-0.3");
    std::fs::write(&too_old, "#!/bin/sh\necho v0.3.13\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&too_old, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let cases = [
        (
            "too-old binary",
            format!("{text}  litestream_binary: {}\n", too_old.display()),
            SECRET,
            "replication.litestream_binary",
        ),
        (
            "missing binary",
            format!("{text}  litestream_binary: /nonexistent/litestream\n"),
            SECRET,
            "replication.litestream_binary",
        ),
        (
            "wrong credential",
            text.clone(),
            "not-the-secret",
            "AWS_SECRET_ACCESS_KEY",
        ),
        (
            "unreachable endpoint",
            text.replace(&s3.endpoint(), &format!("http://127.0.0.1:{dead_port}")),
            SECRET,
            "replication.endpoint",
        ),
        (
            "bad url",
            text.replace("s3://bucket/bad", "s3://bucket"),
            SECRET,
            "replication.url",
        ),
    ];
    for (case, yaml, secret, setting) in cases {
        let path = work.path().join("case.yaml");
        std::fs::write(&path, yaml).unwrap();
        let started = Instant::now();
        let lines = run_child(&path, "start", secret, None);
        let error = lines.join("\n");
        assert!(
            error.contains(setting),
            "{case}: the error must name {setting}: {error}"
        );
        assert!(
            !error.contains(SECRET) && !error.contains("not-the-secret"),
            "{case}: {error}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{case}: took {:?}",
            started.elapsed()
        );
        assert_eq!(
            survivors(&db),
            vec![1, 2, 3],
            "{case}: a local write was lost"
        );
    }
}
