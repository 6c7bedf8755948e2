//! The `litestream replicate` process walguard starts: its binary
//! checked, started, watched (its log forwarded to `tracing`), stopped.

use std::collections::VecDeque;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use walguard::settings::ReplicationSettings;

use super::files::Files;
use crate::error::ReplicationError;

/// How long a started Litestream may take to open its control socket: 5 s.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// Lines of Litestream's log kept for an error message.
const LOG_TAIL_LINES: usize = 8;

/// How long, after Litestream exited, its error waits for the last lines
/// of its log: 500 ms.
const LOG_DRAIN_TIMEOUT: Duration = Duration::from_millis(500);

/// Runs `BINARY version` and checks it is at least
/// [`LITESTREAM_VERSION`](walguard::settings::LITESTREAM_VERSION); the
/// version it printed.
///
/// # Errors
///
/// [`ReplicationError::BinaryMissing`] when it cannot be run;
/// [`ReplicationError::BinaryTooOld`] when it is older or says no version.
pub(crate) fn check_binary(binary: &Path) -> Result<String, ReplicationError> {
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
pub(super) fn command(binary: &Path, settings: &ReplicationSettings) -> std::process::Command {
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
pub(crate) struct Child {
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
    pub(crate) fn start(
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
    pub(crate) fn spawn(
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
    pub(crate) fn ready(&mut self, files: &Files) -> Result<bool, ReplicationError> {
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
    pub(crate) fn socket_open(files: &Files) -> bool {
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
    pub(crate) fn not_ready(&self, files: &Files) -> ReplicationError {
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
    pub(crate) fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// How it exited, once it has.
    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.process.try_wait().ok().flatten()
    }

    /// The last lines it logged, for an error message.
    #[must_use]
    pub(crate) fn log_tail(&self) -> String {
        let tail = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        if tail.is_empty() {
            String::new()
        } else {
            format!("; its log ends: {}", Vec::from(tail.clone()).join(" | "))
        }
    }

    /// Stops it at once (SIGKILL): walguard has already asked for the
    /// final sync, and Litestream is built to resume after a kill.
    pub(crate) fn kill(&mut self) {
        let _ = self.process.kill();
    }

    /// Stops it and waits at most `timeout` for it to be gone, without
    /// blocking the runtime.
    pub(crate) async fn stop(&mut self, timeout: Duration) {
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
