//! The `litestream` process: its binary checked, its config written (mode
//! 0600), started, watched, stopped; and `litestream restore`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use std::io::BufRead as _;
use std::io::Read as _;
use walguard::replication::{CheckpointHandover, SftpLogin};
use walguard::settings::ReplicationSettings;

use crate::error::ReplicationError;

/// The longest Unix socket path (`sun_path` holds 108 bytes on Linux, one
/// of them the terminating NUL).
pub const MAX_SOCKET_PATH_BYTES: usize = 107;

/// How long a started Litestream may take to open its control socket: 5 s.
pub const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// Lines of Litestream's log kept for an error message.
const LOG_TAIL_LINES: usize = 8;

/// How long, after Litestream exited, its error waits for the last lines
/// of its log: 500 ms.
const LOG_DRAIN_TIMEOUT: Duration = Duration::from_millis(500);

/// The files walguard keeps for Litestream beside the database `db`: its
/// config (`<db>-litestream.yml`) and its control socket
/// (`.<name>-litestream.sock`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    /// The database, as an absolute path (Litestream matches `/sync`
    /// requests by path).
    pub db: PathBuf,
    /// The config walguard writes.
    pub config: PathBuf,
    /// The control socket.
    pub socket: PathBuf,
}

impl Files {
    /// The files for `db`, with the socket at `socket` when given.
    ///
    /// # Errors
    ///
    /// [`ReplicationError::File`] when the database's directory cannot be
    /// resolved.
    pub fn for_db(db: &Path, socket: Option<&Path>) -> Result<Self, ReplicationError> {
        let db = std::path::absolute(db).map_err(|source| ReplicationError::File {
            action: "resolve the database path",
            path: db.to_path_buf(),
            source,
        })?;
        let name = db
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = db.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(Self {
            config: dir.join(format!("{name}-litestream.yml")),
            socket: socket.map_or_else(
                || dir.join(format!(".{name}-litestream.sock")),
                Path::to_path_buf,
            ),
            db,
        })
    }

    /// Writes the config for `settings` and `handover`, mode 0600 (it names
    /// the replica).
    ///
    /// # Errors
    ///
    /// [`ReplicationError::File`] when it cannot be written.
    pub fn write_config(
        &self,
        settings: &ReplicationSettings,
        handover: CheckpointHandover,
    ) -> Result<(), ReplicationError> {
        let text = walguard::replication::litestream_config(
            &self.db,
            &self.socket,
            settings,
            handover,
            &SftpLogin::from_env(),
        );
        let err = |source| ReplicationError::File {
            action: "write the litestream config",
            path: self.config.clone(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
            options.mode(0o600);
            // An older file keeps its mode on open: set it again.
            if self.config.exists() {
                std::fs::set_permissions(&self.config, std::fs::Permissions::from_mode(0o600))
                    .map_err(err)?;
            }
        }
        let mut file = options.open(&self.config).map_err(err)?;
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(err)
    }

    /// Refuses a socket path too long for a Unix socket.
    ///
    /// # Errors
    ///
    /// [`ReplicationError::SocketPathTooLong`].
    pub fn check_socket_path(&self) -> Result<(), ReplicationError> {
        let len = self.socket.as_os_str().len();
        if len > MAX_SOCKET_PATH_BYTES {
            return Err(ReplicationError::SocketPathTooLong {
                socket: self.socket.clone(),
                len,
                max: MAX_SOCKET_PATH_BYTES,
            });
        }
        Ok(())
    }

    /// Refuses to start a second Litestream for this database: one that
    /// answers on the socket, or (on Linux) a `litestream` process that
    /// holds the database or its WAL open, whatever its socket or config.
    ///
    /// # Errors
    ///
    /// [`ReplicationError::AlreadyRunning`] or
    /// [`ReplicationError::AlreadyReplicating`].
    pub fn check_no_other(&self) -> Result<(), ReplicationError> {
        #[cfg(unix)]
        if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
            return Err(ReplicationError::AlreadyRunning {
                socket: self.socket.clone(),
                db: self.db.clone(),
            });
        }
        if let Some(pid) = litestream_holding(&self.db) {
            return Err(ReplicationError::AlreadyReplicating {
                pid,
                db: self.db.clone(),
            });
        }
        Ok(())
    }
}

/// How long an orphaned Litestream gets to exit after SIGTERM before
/// SIGKILL: 2 s (within the start's budget; its last upload is not
/// needed, the new Litestream resumes from its files).
pub const ORPHAN_STOP_TIMEOUT: Duration = Duration::from_secs(2);

impl Files {
    /// Stops every Litestream left behind for this database by a walguard
    /// that did not stop (killed, crashed): a `litestream replicate` whose
    /// command line names this database's config file, which only a
    /// walguard writes. Called under the engine lock, so no walguard
    /// serving this database owns it. SIGTERM, then SIGKILL after
    /// [`ORPHAN_STOP_TIMEOUT`]; then the stale socket goes. The pids
    /// stopped. Linux only (elsewhere there is no `/proc` to find them).
    #[must_use = "the pids of the orphans stopped"]
    pub fn stop_orphans(&self) -> Vec<u32> {
        let orphans = stop_litestreams_with_arg(&self.config);
        if !orphans.is_empty() || !Child::socket_open(self) {
            // A socket file nothing answers on is a leftover too.
            let _ = std::fs::remove_file(&self.socket);
        }
        orphans
    }
}

/// Stops every `litestream` (other than this process) with `arg` among its
/// arguments (SIGTERM, then SIGKILL after [`ORPHAN_STOP_TIMEOUT`]); the
/// pids stopped. See [`Files::stop_orphans`].
pub(crate) fn stop_litestreams_with_arg(arg: &Path) -> Vec<u32> {
    let orphans = litestreams_with_arg(arg);
    for &pid in &orphans {
        tracing::warn!(
            target: "walguard::replication",
            pid,
            config = %arg.display(),
            "a litestream left by a walguard that did not stop still runs for this database; replacing it"
        );
        signal(pid, "-TERM");
        let started = Instant::now();
        while process_exists(pid) && started.elapsed() < ORPHAN_STOP_TIMEOUT {
            std::thread::sleep(Duration::from_millis(20));
        }
        if process_exists(pid) {
            signal(pid, "-KILL");
            let started = Instant::now();
            while process_exists(pid) && started.elapsed() < ORPHAN_STOP_TIMEOUT {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    orphans
}

/// The config file of a `litestream restore` into `out`
/// ([`restore`]).
pub(crate) fn restore_config(out: &Path) -> PathBuf {
    walguard::files::sibling(out, "-litestream-restore.yml")
}

/// The config file of the probe of `db`'s replica ([`replica_exists`]).
pub(crate) fn probe_config(db: &Path) -> PathBuf {
    walguard::files::sibling(db, "-litestream-probe.yml")
}

/// Sends `signal` (`-TERM`, `-KILL`) to `pid` with the system's `kill`.
fn signal(pid: u32, signal: &str) {
    let _ = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Whether `pid` still runs (a zombie counts as gone).
fn process_exists(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(") ")
            .next()
            .is_some_and(|rest| rest.starts_with('Z'))
    })
}

/// The `litestream` processes other than this one (a command name that
/// starts with `litestream`): their pids and `/proc` directories.
#[cfg(target_os = "linux")]
fn litestream_processes() -> Vec<(u32, PathBuf)> {
    let own = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            (pid != own && comm.trim_end().starts_with("litestream")).then(|| (pid, entry.path()))
        })
        .collect()
}

/// The `litestream` processes (other than this one) with `arg` among their
/// arguments.
#[cfg(target_os = "linux")]
fn litestreams_with_arg(arg: &Path) -> Vec<u32> {
    let wanted = arg.as_os_str().as_encoded_bytes();
    litestream_processes()
        .into_iter()
        .filter_map(|(pid, dir)| {
            let cmdline = std::fs::read(dir.join("cmdline")).ok()?;
            cmdline
                .split(|b| *b == 0)
                .any(|a| a == wanted)
                .then_some(pid)
        })
        .collect()
}

#[cfg(not(target_os = "linux"))]
fn litestreams_with_arg(_arg: &Path) -> Vec<u32> {
    Vec::new()
}

/// The process id of a `litestream` (a process whose command name starts
/// with `litestream`) that holds `db` or its WAL open, other than this
/// process: Litestream keeps a read transaction on the database it
/// replicates at all times. Reads `/proc/PID/comm` and `/proc/PID/fd`;
/// processes it may not look into are passed over.
#[cfg(target_os = "linux")]
#[must_use]
pub fn litestream_holding(db: &Path) -> Option<u32> {
    let targets: Vec<PathBuf> = [db.to_path_buf(), walguard::files::wal_path(db)]
        .iter()
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .collect();
    if targets.is_empty() {
        return None;
    }
    litestream_processes().into_iter().find_map(|(pid, dir)| {
        std::fs::read_dir(dir.join("fd"))
            .ok()?
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .any(|target| targets.contains(&target))
            .then_some(pid)
    })
}

/// Elsewhere there is no `/proc` to look into: only the socket is checked.
#[cfg(not(target_os = "linux"))]
#[must_use]
pub fn litestream_holding(_db: &Path) -> Option<u32> {
    None
}

/// Runs `BINARY version` and checks it is at least
/// [`LITESTREAM_VERSION`](walguard::settings::LITESTREAM_VERSION); the
/// version it printed.
///
/// # Errors
///
/// [`ReplicationError::BinaryMissing`] when it cannot be run;
/// [`ReplicationError::BinaryTooOld`] when it is older or says no version.
pub fn check_binary(binary: &Path) -> Result<String, ReplicationError> {
    let output = std::process::Command::new(binary)
        .arg("version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ReplicationError::BinaryMissing {
            binary: binary.to_path_buf(),
            error: e.to_string(),
        })?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() || !walguard::replication::version_supported(&text) {
        return Err(ReplicationError::BinaryTooOld {
            binary: binary.to_path_buf(),
            found: text,
        });
    }
    Ok(text)
}

/// The environment Litestream gets: walguard's own, without
/// `AWS_CA_BUNDLE` when the endpoint is plain HTTP (with it, Litestream's
/// S3 client refuses to start: "unable to add custom `RootCAs`").
fn command(binary: &Path, settings: &ReplicationSettings) -> std::process::Command {
    let mut command = std::process::Command::new(binary);
    if settings
        .endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("http://"))
    {
        command.env_remove("AWS_CA_BUNDLE");
    }
    command.stdin(Stdio::null());
    command
}

/// A `litestream replicate` walguard started.
#[derive(Debug)]
pub struct Child {
    process: std::process::Child,
    pid: Option<u32>,
    log: Arc<Mutex<VecDeque<String>>>,
    /// The threads that read its stdout and stderr; they end with it.
    readers: Vec<std::thread::JoinHandle<()>>,
    binary: PathBuf,
}

impl Child {
    /// Starts `litestream replicate -config CONFIG` and waits (blocking,
    /// at most [`READY_TIMEOUT`]) until its control socket accepts
    /// connections: [`Child::spawn`], then [`Child::ready`] until it is.
    /// For the first start only; a restart must not block (the
    /// replication actor polls [`Child::ready`] from its ticks instead).
    ///
    /// # Errors
    ///
    /// [`ReplicationError::Start`] when it cannot be started, exits, or
    /// does not open its socket in time (with the end of its log).
    pub fn start(
        binary: &Path,
        files: &Files,
        settings: &ReplicationSettings,
    ) -> Result<Self, ReplicationError> {
        let mut child = Self::spawn(binary, files, settings)?;
        let started = Instant::now();
        loop {
            if child.ready(files)? {
                return Ok(child);
            }
            if started.elapsed() > READY_TIMEOUT {
                child.kill();
                return Err(child.not_ready(files));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts `litestream replicate -config CONFIG` without waiting for
    /// it. Must run inside a tokio runtime. Its log lines go to `tracing`
    /// (target `walguard::litestream`): errors as warnings, the rest at
    /// debug.
    ///
    /// # Errors
    ///
    /// [`ReplicationError::Start`] when it cannot be started.
    pub fn spawn(
        binary: &Path,
        files: &Files,
        settings: &ReplicationSettings,
    ) -> Result<Self, ReplicationError> {
        // A socket file left by a Litestream that was killed: it would
        // refuse to listen on a path that exists and is not its own.
        let _ = std::fs::remove_file(&files.socket);
        let mut process = command(binary, settings)
            .arg("replicate")
            .arg("-config")
            .arg(&files.config)
            // The config is walguard's own, written out in full: a `$` in a
            // path or URL must reach Litestream as written.
            .arg("-no-expand-env")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| ReplicationError::Start {
                binary: binary.to_path_buf(),
                error: format!("cannot run it (replication.litestream_binary): {e}"),
            })?;
        let pid = Some(process.id());
        let log = Arc::new(Mutex::new(VecDeque::new()));
        // Litestream logs to stdout, and its last error to stderr. Both go
        // to `tracing`, from threads of their own: a start that blocks its
        // runtime still collects them for its error.
        let mut readers = Vec::new();
        if let Some(stdout) = process.stdout.take() {
            readers.push(forward(stdout, pid, Arc::clone(&log)));
        }
        if let Some(stderr) = process.stderr.take() {
            readers.push(forward(stderr, pid, Arc::clone(&log)));
        }
        Ok(Self {
            process,
            pid,
            log,
            readers,
            binary: binary.to_path_buf(),
        })
    }

    /// Whether its control socket accepts connections yet. Does not block
    /// (a connect to a Unix socket answers at once), but for a moment
    /// after it exited, to collect its last log lines.
    ///
    /// # Errors
    ///
    /// [`ReplicationError::Start`] when it has exited, with the end of its
    /// log and the setting its last line points at.
    pub fn ready(&mut self, files: &Files) -> Result<bool, ReplicationError> {
        if let Some(status) = self.exited() {
            if status.code().is_none() {
                // Killed by a signal: no setting is to blame.
                return Err(ReplicationError::Start {
                    binary: self.binary.clone(),
                    error: format!("it was killed ({status}){}", self.log_tail()),
                });
            }
            let last = self.last_line();
            return Err(ReplicationError::Start {
                binary: self.binary.clone(),
                error: format!(
                    "it exited with {status} (check {}){}",
                    walguard::replication::blame(&last),
                    self.log_tail()
                ),
            });
        }
        Ok(Self::socket_open(files))
    }

    /// Whether its control socket accepts connections (a connect to a
    /// Unix socket answers at once).
    #[must_use]
    pub fn socket_open(files: &Files) -> bool {
        #[cfg(unix)]
        return std::os::unix::net::UnixStream::connect(&files.socket).is_ok();
        #[cfg(not(unix))]
        {
            let _ = files;
            false
        }
    }

    /// The line that says why it exited, once the readers have seen the
    /// end of its output (at most [`LOG_DRAIN_TIMEOUT`] after it exited):
    /// the last error line, else the last line. stdout and stderr are read
    /// on two threads, so a last informational line on one can land in the
    /// tail after the error on the other.
    fn last_line(&mut self) -> String {
        let started = Instant::now();
        while self.readers.iter().any(|r| !r.is_finished()) && started.elapsed() < LOG_DRAIN_TIMEOUT
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        let tail = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        exit_reason(&tail).unwrap_or_default()
    }

    /// The error for a Litestream whose socket did not open within
    /// [`READY_TIMEOUT`].
    #[must_use]
    pub fn not_ready(&self, files: &Files) -> ReplicationError {
        ReplicationError::Start {
            binary: self.binary.clone(),
            error: format!(
                "its control socket {} did not open within {}{}",
                files.socket.display(),
                walguard::settings::format_duration(READY_TIMEOUT),
                self.log_tail()
            ),
        }
    }

    /// Its process id.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// How it exited, once it has.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.process.try_wait().ok().flatten()
    }

    /// The last lines it logged, for an error message.
    #[must_use]
    pub fn log_tail(&self) -> String {
        let tail = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        if tail.is_empty() {
            String::new()
        } else {
            format!("; its log ends: {}", Vec::from(tail.clone()).join(" | "))
        }
    }

    /// Stops it at once (SIGKILL): walguard has already asked for the
    /// final sync, and Litestream is built to resume after a kill.
    pub fn kill(&mut self) {
        let _ = self.process.kill();
    }

    /// Stops it and waits at most `timeout` for it to be gone, without
    /// blocking the runtime.
    pub async fn stop(&mut self, timeout: Duration) {
        self.kill();
        let started = Instant::now();
        while self.exited().is_none() && started.elapsed() < timeout {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for Child {
    /// A Litestream walguard started does not outlive its handle.
    fn drop(&mut self) {
        if self.exited().is_none() {
            self.kill();
            // SIGKILL cannot be ignored: this wait is short, and reaps it.
            let _ = self.process.wait();
        }
    }
}

/// Whether a line of Litestream's log reports an error.
fn is_error_line(line: &str) -> bool {
    line.contains("level=ERROR") || line.starts_with("Error:")
}

/// The line of `tail` that says why Litestream exited: the last error line,
/// else the last line.
fn exit_reason(tail: &VecDeque<String>) -> Option<String> {
    tail.iter()
        .rev()
        .find(|line| is_error_line(line))
        .or_else(|| tail.back())
        .cloned()
}

/// Sends each line of `stream` to `tracing` (target `walguard::litestream`:
/// errors and warnings as warnings, the rest at debug) and keeps the last
/// [`LOG_TAIL_LINES`] for error messages, on a thread of its own that ends
/// with the stream.
fn forward(
    stream: impl std::io::Read + Send + 'static,
    pid: Option<u32>,
    log: Arc<Mutex<VecDeque<String>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if is_error_line(&line) || line.contains("level=WARN") {
                tracing::warn!(target: "walguard::litestream", pid, "{line}");
            } else {
                tracing::debug!(target: "walguard::litestream", pid, "{line}");
            }
            let mut tail = log.lock().unwrap_or_else(PoisonError::into_inner);
            if tail.len() == LOG_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    })
}

/// `litestream restore` of the replica of `files.db` into `out`. With
/// `if_replica_exists`, a missing replica is not an error (nothing is
/// written). Blocking.
///
/// # Errors
///
/// [`ReplicationError::Restore`] when `out` exists (never overwritten), or
/// Litestream fails (its message included).
pub fn restore(
    binary: &Path,
    files: &Files,
    settings: &ReplicationSettings,
    out: &Path,
    if_replica_exists: bool,
) -> Result<(), ReplicationError> {
    let refuse = |error: String| restore_error(out, error);
    for path in [
        out.to_path_buf(),
        walguard::files::wal_path(out),
        walguard::files::shm_path(out),
    ] {
        if path.exists() {
            return Err(refuse(format!(
                "{} exists; restore never overwrites: move it away or give another --db",
                path.display()
            )));
        }
    }
    // The config goes beside the new file (the old machine's directory
    // may not exist here), and goes away afterwards.
    let restore_files = Files {
        config: restore_config(out),
        ..files.clone()
    };
    // A restore runs no checkpoint: Litestream's defaults will do.
    restore_files.write_config(settings, CheckpointHandover::default())?;
    let result = run_restore(binary, &restore_files, settings, out, if_replica_exists);
    let _ = std::fs::remove_file(&restore_files.config);
    result
}

/// The refusal or failure of a restore into `out`.
/// How long the probe of a replica ([`replica_exists`]) may take: 10 s (a
/// wrong or unreachable endpoint makes Litestream's S3 client retry for
/// minutes).
pub const REPLICA_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the replica of `files.db` holds anything: `litestream ltx
/// -level all` on it, bounded by [`REPLICA_PROBE_TIMEOUT`]. Lists the
/// replica's files, reads none of them.
///
/// # Errors
///
/// [`ReplicationError::ReplicaUnreachable`] naming the setting to check
/// when Litestream fails or does not answer in time;
/// [`ReplicationError::BinaryMissing`] when it cannot be run.
pub fn replica_exists(
    binary: &Path,
    files: &Files,
    settings: &ReplicationSettings,
) -> Result<bool, ReplicationError> {
    let probe = Files {
        config: probe_config(&files.db),
        ..files.clone()
    };
    probe.write_config(settings, CheckpointHandover::default())?;
    let result = run_probe(binary, &probe, settings);
    let _ = std::fs::remove_file(&probe.config);
    result
}

fn run_probe(
    binary: &Path,
    files: &Files,
    settings: &ReplicationSettings,
) -> Result<bool, ReplicationError> {
    let url = walguard::settings::redact(settings.url.as_deref().unwrap_or_default());
    let mut child = command(binary, settings)
        .args(["ltx", "-level", "all", "-json", "-no-expand-env", "-config"])
        .arg(&files.config)
        .arg(&files.db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ReplicationError::BinaryMissing {
            binary: binary.to_path_buf(),
            error: e.to_string(),
        })?;
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().ok().flatten() {
            break Some(status);
        }
        if started.elapsed() > REPLICA_PROBE_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (stdout, stderr) = (
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    );
    let unreachable = |error: String, blame: &'static str| ReplicationError::ReplicaUnreachable {
        url: url.clone(),
        blame,
        error,
    };
    match status {
        None => Err(unreachable(
            format!(
                "litestream did not list it within {}",
                walguard::settings::format_duration(REPLICA_PROBE_TIMEOUT)
            ),
            if settings.endpoint.is_some() {
                "replication.endpoint"
            } else {
                "replication.url"
            },
        )),
        Some(status) if !status.success() => {
            let last = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no message")
                .to_owned();
            Err(unreachable(
                format!("litestream exited with {status}: {last}"),
                walguard::replication::blame(&last),
            ))
        }
        // A JSON list of the replica's files: `[]` when it holds none.
        Some(_) => Ok(stdout.contains('{')),
    }
}

fn restore_error(out: &Path, error: String) -> ReplicationError {
    ReplicationError::Restore {
        db: out.to_path_buf(),
        error,
    }
}

fn run_restore(
    binary: &Path,
    files: &Files,
    settings: &ReplicationSettings,
    out: &Path,
    if_replica_exists: bool,
) -> Result<(), ReplicationError> {
    let refuse = |error: String| restore_error(out, error);
    let mut command = command(binary, settings);
    command
        .arg("restore")
        .arg("-config")
        .arg(&files.config)
        .arg("-no-expand-env")
        .arg("-o")
        .arg(out);
    if if_replica_exists {
        command.arg("-if-replica-exists");
    }
    let output = command
        .arg(&files.db)
        .output()
        .map_err(|e| ReplicationError::BinaryMissing {
            binary: binary.to_path_buf(),
            error: e.to_string(),
        })?;
    if !output.status.success() {
        let text = String::from_utf8_lossy(&output.stderr);
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message")
            .to_owned();
        return Err(refuse(format!(
            "litestream exited with {} (check {}): {last}",
            output.status,
            walguard::replication::blame(&last)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::exit_reason;

    /// Litestream's stdout and stderr are read on two threads, so its last
    /// informational line can land after the error that ended it: the
    /// error is still the one blamed.
    #[test]
    fn the_exit_reason_is_the_last_error_not_the_last_line() {
        let tail: VecDeque<String> = [
            "time=… level=INFO msg=\"initialized db\"",
            "Error: ssh: handshake failed: ssh: unable to authenticate",
            "time=… level=INFO msg=\"litestream shut down\"",
        ]
        .map(str::to_owned)
        .into();
        let reason = exit_reason(&tail).unwrap();
        assert!(reason.starts_with("Error: ssh"), "{reason}");
        assert_eq!(
            walguard::replication::blame(&reason),
            walguard::replication::blame("unable to authenticate")
        );
        // Without an error line, the last line.
        let quiet: VecDeque<String> = ["a", "b"].map(str::to_owned).into();
        assert_eq!(exit_reason(&quiet).as_deref(), Some("b"));
        assert_eq!(exit_reason(&VecDeque::new()), None);
    }
}
