//! A real S3-compatible server for the replication tests: `rclone serve
//! s3` on a free loopback port, started by the test and killed on drop.
//! Shared by `actors/tests/replication.rs` and the `walguard` command's
//! `cli/tests/cli_replication.rs`.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The S3 access key the server accepts.
pub(crate) const KEY: &str = "walguard-test-key";
/// The S3 secret key the server accepts.
pub(crate) const SECRET: &str = "walguard-test-secret";

/// A running `rclone serve s3`, killed on drop.
pub(crate) struct S3 {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl S3 {
    pub(crate) fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bucket")).unwrap();
        let port = free_port();
        let child = Command::new("rclone")
            .args(["serve", "s3"])
            .arg(dir.path())
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .args(["--auth-key", &format!("{KEY},{SECRET}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_listening(port, "rclone");
        Self {
            child,
            port,
            _dir: dir,
        }
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port on 127.0.0.1 that nothing listens on (now).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until a server the test started listens on `port` (10 s at most).
pub(crate) fn wait_listening(port: u16, server: &str) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{server} did not listen on 127.0.0.1:{port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
