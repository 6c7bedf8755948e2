//! `walguard run --config config/replicate.yaml`, the example as shipped
//! (pointed at the test's S3 server through `WALGUARD__*` overrides),
//! stopped by SIGTERM: the replica is complete, and every report carries
//! what it holds (the metrics, the session event, the JSON summary).
//!
//! Failure modelled: none; a clean stop by the service manager.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde_json::Value;

use super::{KEY, S3, SECRET};

/// The example settings file, as shipped.
fn example() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/replicate.yaml")
}

fn walguard(db: &Path, s3: &S3) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_walguard"));
    command
        .env_remove("RUST_LOG")
        .env("WALGUARD__DATABASE__PATH", db)
        .env("WALGUARD__REPLICATION__ENDPOINT", s3.endpoint())
        .env("WALGUARD__REPLICATION__URL", "s3://bucket/run")
        .env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET);
    command
}

/// A `GET /metrics` from the Prometheus listener; `None` until it answers.
fn scrape(addr: std::net::SocketAddr) -> Option<String> {
    let mut conn = std::net::TcpStream::connect(addr).ok()?;
    conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    conn.read_to_string(&mut body).ok()?;
    Some(body)
}

/// The value of the unlabelled metric `name` in a scrape.
fn metric(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn sigterm_of_walguard_run_with_the_example_config_leaves_the_replica_complete() {
    super::require_replication_tools();
    let s3 = S3::start();
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("engine.db");
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let stderr = work.path().join("run.log");
    let mut child = walguard(&db, &s3)
        .args(["run", "--config"])
        .arg(example())
        .args(["--rate", "200", "--log-format", "json"])
        .args(["--metrics-addr", &addr.to_string()])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    // Replicating: the gauges move.
    let started = Instant::now();
    let body = loop {
        if let Some(body) = scrape(addr)
            && metric(&body, "walguard_replicated_writes").is_some_and(|w| w >= 200.0)
        {
            break body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no replicated writes in the metrics: {}",
            std::fs::read_to_string(&stderr).unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    for name in [
        "walguard_replicated_commits",
        "walguard_replication_lag_seconds",
    ] {
        assert!(metric(&body, name).is_some(), "{name} missing:\n{body}");
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let stopped = Instant::now();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let exit = child.wait().unwrap();
    let log = std::fs::read_to_string(&stderr).unwrap();
    assert!(exit.success(), "{exit}: {log}");
    assert!(
        stopped.elapsed() < Duration::from_secs(5),
        "the shutdown took {:?}",
        stopped.elapsed()
    );
    let summary: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["stopped_by"], "sigterm", "{summary}");
    let writes = summary["writes"].as_u64().unwrap();
    assert!(writes > 0, "{summary}");
    assert_eq!(
        summary["replicated_writes"].as_u64(),
        Some(writes),
        "{summary}"
    );
    assert_eq!(
        summary["replicated_commits"], summary["commits"],
        "{summary}"
    );
    let session: Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["target"] == "walguard::session")
        .unwrap_or_else(|| panic!("no session event: {log}"));
    for field in ["replicated_commits", "replicated_writes"] {
        assert_eq!(session[field], summary[field], "{field}: {session}");
    }
    assert!(!log.contains(SECRET), "the log shows the secret");

    // Everything acknowledged is on the replica.
    assert_eq!(
        restored_writes(&db, &s3, &work.path().join("restored.db")),
        writes,
        "the replica lacks acknowledged writes"
    );
}

/// `walguard restore` of the example's replica into `restored`; the demo
/// writes it holds, after `integrity_check`.
fn restored_writes(db: &Path, s3: &S3, restored: &Path) -> u64 {
    let out = walguard(db, s3)
        .args(["restore", "--config"])
        .arg(example())
        .arg("--db")
        .arg(restored)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conn = Connection::open(restored).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let events: i64 = conn
        .query_row("SELECT count(*) FROM walguard_demo_events", [], |r| {
            r.get(0)
        })
        .unwrap();
    events as u64
}
