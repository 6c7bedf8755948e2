//! walguard killed alone orphans its Litestream; the next `walguard run`
//! on the same database replaces it and replicates, without a human.
//!
//! Failure modelled: a **process kill of walguard** (SIGKILL), its
//! Litestream left running. A `file://` replica: no S3 server needed.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn run(config: &Path, log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_walguard"))
        .env_remove("RUST_LOG")
        .args(["run", "--config"])
        .arg(config)
        .args(["--rate", "100"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| !stat.rsplit(") ").next().is_some_and(|r| r.starts_with('Z')))
}

/// Waits (20 s at most) until a Litestream other than `not` holds `db`.
fn litestream_of(db: &Path, not: Option<u32>, what: &str) -> u32 {
    let started = Instant::now();
    loop {
        if let Some(pid) = walguard_actors::replication::testing::litestream_holding(db)
            && Some(pid) != not
        {
            return pid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "waited for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_litestream_orphaned_by_a_killed_walguard_is_replaced_at_the_next_start() {
    super::require_replication_tools();
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("engine.db");
    let replica = work.path().join("replica");
    let config = work.path().join("orphan.yaml");
    std::fs::write(
        &config,
        format!(
            "database:\n  path: {}\nreplication:\n  mode: litestream\n  url: file://{}\n  sync_period: 500ms\n",
            db.display(),
            replica.display()
        ),
    )
    .unwrap();
    // A Litestream whose walguard was killed may die too (a log line to
    // a closed pipe): then there is no orphan, and the scenario is tried
    // again, at most 5 times.
    let mut orphan = None;
    for attempt in 0..5 {
        let first_log = work.path().join(format!("first-{attempt}.log"));
        let mut first = run(&config, &first_log);
        let pid = litestream_of(&db, None, "the first litestream");
        std::thread::sleep(Duration::from_secs(1));
        first.kill().unwrap();
        first.wait().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        if alive(pid) {
            orphan = Some(pid);
            break;
        }
    }
    let orphan =
        orphan.expect("the harness needs an orphan: litestream died with walguard 5 times");

    let second_log = work.path().join("second.log");
    let mut second = run(&config, &second_log);
    let started = Instant::now();
    let replacement = litestream_of(&db, Some(orphan), "the replacement litestream");
    assert!(
        !alive(orphan),
        "the orphan {orphan} still runs beside its replacement"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "replacing the orphan took {:?}",
        started.elapsed()
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        second.try_wait().unwrap().is_none(),
        "the second run exited: {}",
        std::fs::read_to_string(&second_log).unwrap()
    );
    let _ = Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status();
    let status = second.wait().unwrap();
    let log = std::fs::read_to_string(&second_log).unwrap();
    assert!(status.success(), "exit {status:?}\n{log}");
    assert!(
        log.contains("replacing it"),
        "the replacement is not logged:\n{log}"
    );
    assert!(!alive(replacement), "walguard's own litestream outlived it");
    let leftovers: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            Path::new(n)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("sock"))
        })
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

/// Every checkpoint setting reaches Litestream, from every source: the
/// `--interval` flag of `walguard run` (whose loop starts after the
/// system) and the environment. Read back from the config walguard wrote.
#[test]
fn checkpoint_settings_from_flags_and_environment_reach_litestream() {
    super::require_replication_tools();
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("engine.db");
    let config = work.path().join("flags.yaml");
    std::fs::write(
        &config,
        format!(
            "database:\n  path: {}\nreplication:\n  mode: litestream\n  url: file://{}\n",
            db.display(),
            work.path().join("replica").display()
        ),
    )
    .unwrap();
    let log = work.path().join("run.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_walguard"))
        .env_remove("RUST_LOG")
        .env("WALGUARD__CHECKPOINT__SIZE_THRESHOLD_FRAMES", "777")
        .args(["run", "--config"])
        .arg(&config)
        .args(["--rate", "50", "--interval", "300ms"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    litestream_of(&db, None, "litestream");
    let written = std::fs::read_to_string(work.path().join("engine.db-litestream.yml")).unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "exit {status:?}\n{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert!(
        written.contains("checkpoint-interval: 300ms"),
        "--interval did not reach litestream:\n{written}"
    );
    assert!(
        written.contains("min-checkpoint-page-count: 777"),
        "the environment's size threshold did not reach litestream:\n{written}"
    );
}
