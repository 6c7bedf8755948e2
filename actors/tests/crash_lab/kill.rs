//! PROCESS KILL: SIGKILL at a random moment, the database reopened.
//!
//! A child process (this test binary, run again as the ignored test
//! `kill_child`) runs the real subsystem on its own threads and real time:
//! `DbActor` on its own arbiter, the interval loop every 20 ms,
//! size-triggered checkpoints, single writes, bursts (group commits) and
//! transactions back to back, and a clean shutdown and restart every few
//! dozen writes. It prints each row id on stderr once the write holding it
//! was acknowledged, and a line before and after each shutdown.
//!
//! The parent waits a random time (or, one kill in four, for the child to
//! announce a shutdown), freezes the child with SIGSTOP, reads
//! `/proc/locks` to see which WAL-index locks the child holds at that
//! instant, and sends SIGKILL. A kill counts as inside a checkpoint when the
//! child held SQLite's checkpoint lock (byte 121 of the `-shm` file, which
//! SQLite takes for every checkpoint, the close-time one included, and
//! briefly while it recovers the WAL at open). That is exact, not inferred
//! from timing: the child cannot move between the look and the kill.
//!
//! Each child writes its rows with its seed as their generation
//! (`walguard::testing::crash_row`), so a row rewritten by a later child
//! never passes for the one an earlier child saw acknowledged. After each
//! kill the parent reopens the file with SQLite's default VFS and checks:
//! integrity is ok, the rows are exactly `1..=k` with intact bodies and
//! whole requests, and every id acknowledged to any child on this file so
//! far is there, with the generation that wrote it. A start-up that lost
//! rows, followed by a child rewriting the same ids, is caught at the next
//! kill. The parent closes without checkpointing, so the next child starts
//! from the killed state and recovers it itself. Every fourth child runs under
//! `synchronous=OFF`: a process kill loses nothing whatever `synchronous`
//! says, and the campaign shows it.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use walguard::Settings;
use walguard::settings::Synchronous;
use walguard_actors::WalGuard;

use crate::burst::sent_at_once;
use crate::rows::{AfterCheck, TABLE_SQL, crash_row, survivors};
use crate::seeds;

/// Set in the child's environment: the database path.
pub(crate) const CHILD_DB_ENV: &str = "WALGUARD_CRASH_LAB_CHILD_DB";
/// Set in the child's environment: the seed of its random choices.
pub(crate) const CHILD_SEED_ENV: &str = "WALGUARD_CRASH_LAB_CHILD_SEED";

/// Prefix of every line of the protocol on the child's stderr.
const PREFIX: &str = "walguard-crash-lab:";

/// The child's checkpoint interval.
const CHILD_INTERVAL: Duration = Duration::from_millis(20);

/// Longest a child may live, should its parent never kill it.
const CHILD_LIFETIME: Duration = Duration::from_secs(60);

/// Longest the parent waits for a child to get ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Kills on one database file before the campaign starts a new one.
const KILLS_PER_FILE: u64 = 25;

/// WAL-index lock bytes of the unix VFS in the `-shm` file
/// (`UNIX_SHM_BASE` + slot in `os_unix.c`): the writer's lock, then the
/// checkpointer's.
const SHM_WRITE_LOCK_BYTE: u64 = 120;
const SHM_CHECKPOINT_LOCK_BYTE: u64 = 121;

fn say(line: &str) {
    eprintln!("{PREFIX} {line}");
}

fn synchronous_of(seed: u64) -> Synchronous {
    match seed % 4 {
        0 | 1 => Synchronous::Normal,
        2 => Synchronous::Full,
        _ => Synchronous::Off,
    }
}

fn child_settings(path: &Path, synchronous: Synchronous) -> Settings {
    let mut settings = Settings::for_database(path);
    settings.database.synchronous = synchronous;
    settings.checkpoint.enabled = true;
    settings.checkpoint.interval = CHILD_INTERVAL;
    settings.checkpoint.size_threshold_frames = 64;
    settings.checkpoint.shutdown_timeout = Duration::from_millis(500);
    settings
}

/// A child process of a kill campaign exits when its parent closes its
/// stdin (the parent died or is done), or after `lifetime`: it never
/// outlives the test.
pub(crate) fn exit_with_parent(lifetime: Duration) {
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
    std::thread::spawn(move || {
        std::thread::sleep(lifetime);
        std::process::exit(3);
    });
}

/// The child: writes until it is killed (or its parent goes away).
pub(crate) fn child_main(path: &Path, seed: u64) {
    exit_with_parent(CHILD_LIFETIME);
    let settings = child_settings(path, synchronous_of(seed));
    let mut rng = StdRng::seed_from_u64(seed);
    actix::System::new().block_on(async move {
        loop {
            let guard = WalGuard::start(settings.clone()).expect("start");
            let db = guard.db().clone();
            db.execute(TABLE_SQL.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS"))
                .await
                .expect("create table");
            let last = db
                .query("SELECT coalesce(max(id), 0), coalesce(max(req), 0) FROM t")
                .await
                .expect("last row");
            let as_u64 = |v: &rusqlite::types::Value| match v {
                rusqlite::types::Value::Integer(i) => *i as u64,
                _ => 0,
            };
            let mut next_id = as_u64(&last.rows()[0][0]) + 1;
            let mut next_req = as_u64(&last.rows()[0][1]) + 1;
            say("ready");
            for _ in 0..rng.random_range(5..=120) {
                match rng.random_range(0..10) {
                    0..=5 => {
                        let (id, req) = (next_id, next_req);
                        next_id += 1;
                        next_req += 1;
                        if db.execute(crash_row(id, req, 1, seed)).await.is_ok() {
                            say(&format!("ack {id}"));
                        }
                    }
                    6..=7 => {
                        let sent: Vec<_> = (0..rng.random_range(2..=32))
                            .map(|_| {
                                let (id, req) = (next_id, next_req);
                                next_id += 1;
                                next_req += 1;
                                (id, sent_at_once(&db, crash_row(id, req, 1, seed)))
                            })
                            .collect();
                        for (id, reply) in sent {
                            if matches!(reply.await, Ok(Ok(_))) {
                                say(&format!("ack {id}"));
                            }
                        }
                    }
                    _ => {
                        let rows = rng.random_range(2..=5);
                        let (first, req) = (next_id, next_req);
                        next_id += rows;
                        next_req += 1;
                        let stmts = (first..first + rows).map(|id| crash_row(id, req, rows, seed));
                        if db.transaction(stmts.collect()).await.is_ok() {
                            for id in first..first + rows {
                                say(&format!("ack {id}"));
                            }
                        }
                    }
                }
            }
            say("shutdown-begin");
            guard.shutdown().await.expect("shutdown");
            say("shutdown-end");
        }
    });
}

/// What one kill found.
// Four independent observations of one instant: flags are what they are.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Default)]
pub(crate) struct Kill {
    /// Writes this child saw acknowledged.
    pub(crate) acked: u64,
    /// Acknowledged writes checked after this kill: every one of every
    /// child on this file so far.
    pub(crate) checked: u64,
    pub(crate) survivors: u64,
    pub(crate) in_checkpoint: bool,
    pub(crate) in_write: bool,
    pub(crate) in_shutdown: bool,
    pub(crate) aimed_at_shutdown: bool,
}

/// A child that is killed when dropped, whatever happened.
pub(crate) struct ChildGuard(pub(crate) Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn shm_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-shm");
    name.into()
}

/// The WAL-index lock bytes `pid` holds for writing on the file with inode
/// `inode`, as `/proc/locks` lists them: (write lock, checkpoint lock).
fn shm_locks(pid: u32, inode: u64) -> std::io::Result<(bool, bool)> {
    let table = std::fs::read_to_string("/proc/locks")?;
    let (mut write, mut checkpoint) = (false, false);
    for line in table.lines().filter(|l| !l.contains("->")) {
        // "1: POSIX  ADVISORY  WRITE 12412 fe:00:10010644 121 121"
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, "POSIX", _, "WRITE", owner, file, start, end] = fields[..] else {
            continue;
        };
        let same_file = file.rsplit(':').next().and_then(|i| i.parse::<u64>().ok()) == Some(inode);
        if owner.parse::<u32>().ok() != Some(pid) || !same_file {
            continue;
        }
        let start: u64 = start.parse().unwrap_or(u64::MAX);
        let end: u64 = if end == "EOF" {
            u64::MAX
        } else {
            end.parse().unwrap_or(0)
        };
        write |= (start..=end).contains(&SHM_WRITE_LOCK_BYTE);
        checkpoint |= (start..=end).contains(&SHM_CHECKPOINT_LOCK_BYTE);
    }
    Ok((write, checkpoint))
}

/// Stops `pid` with SIGSTOP and reports which WAL-index locks it holds on
/// `db`'s `-shm` file: (write lock, checkpoint lock).
pub(crate) fn freeze_and_look(pid: u32, db: &Path) -> Result<(bool, bool), String> {
    let stopped = Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status()
        .map_err(|e| format!("kill -STOP: {e}"))?;
    if !stopped.success() {
        return Err("kill -STOP failed".to_owned());
    }
    match std::fs::metadata(shm_path(db)) {
        Ok(meta) => shm_locks(pid, meta.ino()).map_err(|e| format!("/proc/locks: {e}")),
        Err(_) => Ok((false, false)),
    }
}

/// Reads the child's protocol lines into `kill` and `acked` (the ids this
/// child saw acknowledged, with `generation`), and whether a shutdown had
/// begun and not ended.
fn tally(
    lines: &[String],
    generation: u64,
    kill: &mut Kill,
    acked: &mut HashMap<u64, u64>,
) -> Result<(), String> {
    let mut in_shutdown = false;
    for line in lines {
        let Some(rest) = line.strip_prefix(PREFIX).map(str::trim) else {
            continue;
        };
        if let Some(id) = rest.strip_prefix("ack ") {
            let id: u64 = id.parse().map_err(|_| format!("bad line {line:?}"))?;
            kill.acked += 1;
            if acked.insert(id, generation).is_some() {
                return Err(format!("row {id} was acknowledged twice"));
            }
        } else if rest == "shutdown-begin" {
            in_shutdown = true;
        } else if rest == "shutdown-end" || rest == "ready" {
            in_shutdown = false;
        }
    }
    kill.in_shutdown = in_shutdown;
    Ok(())
}

/// Runs one child on `path` (its rows of generation `seed`) and kills it;
/// checks the file against `acked`, the ids acknowledged to every child on
/// this file so far (this one's added), with their generations.
pub(crate) fn kill_once(
    path: &Path,
    seed: u64,
    acked: &mut HashMap<u64, u64>,
) -> Result<Kill, String> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x0000_0000_4B11_1000);
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "kill_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB_ENV, path)
        .env(CHILD_SEED_ENV, seed.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let pid = child.id();
    let child = ChildGuard(child);
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let mut kill = Kill::default();
    let mut lines = Vec::new();
    let mut wait_for = |pred: &dyn Fn(&str) -> bool, timeout: Duration| -> Result<bool, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let hit = pred(&line);
                    lines.push(line);
                    if hit {
                        return Ok(true);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => return Ok(false),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err("the child exited before it was killed".to_owned());
                }
            }
        }
    };
    let ready = format!("{PREFIX} ready");
    if !wait_for(&|l| l == ready, READY_TIMEOUT)? {
        return Err("the child never got ready".to_owned());
    }
    kill.aimed_at_shutdown = rng.random_ratio(1, 4);
    if kill.aimed_at_shutdown {
        let begin = format!("{PREFIX} shutdown-begin");
        wait_for(&|l| l == begin, Duration::from_secs(5))?;
        let delay = Duration::from_micros(rng.random_range(0..=3_000));
        wait_for(&|_| false, delay)?;
    } else {
        let delay = Duration::from_micros(rng.random_range(0..=80_000));
        wait_for(&|_| false, delay)?;
    }

    // Freeze, look at the locks, kill.
    let (in_write, in_checkpoint) = freeze_and_look(pid, path)?;
    kill.in_write = in_write;
    kill.in_checkpoint = in_checkpoint;
    drop(child); // SIGKILL, then reap
    let _ = reader.join();
    lines.extend(rx.try_iter());
    tally(&lines, seed, &mut kill, acked)?;

    let found = survivors(path, AfterCheck::KeepWal).map_err(|e| e.to_string())?;
    kill.survivors = found.rows();
    let mut ids: Vec<_> = acked.iter().collect();
    ids.sort_unstable();
    for (&id, &generation) in ids {
        found
            .require_acknowledged(id, generation)
            .map_err(|v| v.to_string())?;
    }
    kill.checked = acked.len() as u64;
    Ok(kill)
}

/// What a kill campaign saw.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    pub(crate) kills: u64,
    pub(crate) first_seed: u64,
    pub(crate) acked: u64,
    /// Acknowledged writes checked, summed over the kills (each kill checks
    /// every earlier one on its file again).
    pub(crate) checked: u64,
    pub(crate) in_checkpoint: u64,
    pub(crate) in_write: u64,
    pub(crate) in_shutdown: u64,
    pub(crate) under_off: u64,
    pub(crate) under_full: u64,
    pub(crate) failures: Vec<String>,
    pub(crate) elapsed: Duration,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} kills (seeds {}..={}, {} under synchronous=OFF) in {:.1?}: {} writes acknowledged, \
             {} acknowledged-write checks across the kills, {} kills inside a checkpoint, {} inside \
             a write transaction, {} during a shutdown, {} failures",
            self.kills,
            self.first_seed,
            self.first_seed + self.kills.saturating_sub(1),
            self.under_off,
            self.elapsed,
            self.acked,
            self.checked,
            self.in_checkpoint,
            self.in_write,
            self.in_shutdown,
            self.failures.len(),
        )
    }
}

impl Summary {
    /// The figures as the Markdown table of docs/reliability.md.
    pub(crate) fn table(&self) -> String {
        let normal = self.kills - self.under_off - self.under_full;
        [
            "| figure | value |".to_owned(),
            "|---|---|".to_owned(),
            format!(
                "| kills, seeds {}..={} | **{}**: {normal} under `normal`, {} under `full`, {} under `off` |",
                self.first_seed,
                self.first_seed + self.kills.saturating_sub(1),
                self.kills,
                self.under_full,
                self.under_off
            ),
            format!("| wall time | {:.0?} |", self.elapsed),
            format!("| writes acknowledged | {} |", self.acked),
            format!(
                "| acknowledged writes checked, summed over the kills (each kill checks every earlier one on its file) | {} |",
                self.checked
            ),
            format!("| kills inside a checkpoint (checkpoint lock held) | {} |", self.in_checkpoint),
            format!("| kills inside a write transaction (write lock held) | {} |", self.in_write),
            format!("| kills during a shutdown | {} |", self.in_shutdown),
            format!(
                "| kills that found an acknowledged write lost, or a corrupt database | **{}** |",
                self.failures.len()
            ),
        ]
        .join("\n")
    }
}

/// Kills `kills` children, seeds `first_seed` on; a new database file every
/// [`KILLS_PER_FILE`] kills.
pub(crate) fn campaign(first_seed: u64, kills: u64) -> Summary {
    let start = Instant::now();
    let mut summary = Summary {
        first_seed,
        ..Summary::default()
    };
    let Ok(dir) = tempfile::tempdir() else {
        summary.failures.push("no temp dir".to_owned());
        return summary;
    };
    // Every id acknowledged on the current file, with its generation.
    let mut acked = HashMap::new();
    for i in 0..kills {
        let seed = first_seed.wrapping_add(i);
        let path = dir.path().join(format!("chain-{}.db", i / KILLS_PER_FILE));
        if i % KILLS_PER_FILE == 0 {
            acked.clear();
        }
        summary.kills += 1;
        summary.under_off += u64::from(synchronous_of(seed) == Synchronous::Off);
        summary.under_full += u64::from(synchronous_of(seed) == Synchronous::Full);
        match kill_once(&path, seed, &mut acked) {
            Ok(kill) => {
                summary.acked += kill.acked;
                summary.checked += kill.checked;
                summary.in_checkpoint += u64::from(kill.in_checkpoint);
                summary.in_write += u64::from(kill.in_write);
                summary.in_shutdown += u64::from(kill.in_shutdown);
            }
            Err(e) => summary.failures.push(format!(
                "{} (file {}): {e}",
                seeds::replay(seed, "kill_campaign_on_demand"),
                path.display()
            )),
        }
    }
    summary.elapsed = start.elapsed();
    summary
}
