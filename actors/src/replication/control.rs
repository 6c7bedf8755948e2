//! The client of Litestream's control socket: HTTP/1 by hyper over a tokio
//! Unix stream, one connection per request (a request every sync period
//! does not need pooling, and a Litestream that restarted is found again
//! without stale connections).
//!
//! The API is that of Litestream [`LITESTREAM_VERSION`]
//! (`docs/IPC_CONTROL.md`, `server.go`): `POST /sync` with `{"path",
//! "wait", "timeout"}` (seconds) answers `{"status": "synced" |
//! "no_change" | "synced_local", "txid", "replicated_txid"}` once the
//! replica has the data, or `{"error"}` with a non-2xx status;
//! `GET /info` answers `{"version", "pid", …}`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use walguard::settings::LITESTREAM_VERSION;

use crate::error::ReplicationError;

/// What a `/sync` with `wait` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncAnswer {
    /// `synced` or `no_change`: the replica holds every commit made before
    /// the request.
    pub status: String,
    /// Litestream's local transaction id (its own LTX numbering).
    pub txid: u64,
    /// The transaction id on the replica.
    pub replicated_txid: u64,
}

impl SyncAnswer {
    /// Whether the replica holds everything made before the request.
    #[must_use]
    pub fn is_replicated(&self) -> bool {
        matches!(self.status.as_str(), "synced" | "no_change")
    }
}

/// A client of one control socket.
#[derive(Debug, Clone)]
pub struct ControlClient {
    socket: PathBuf,
}

impl ControlClient {
    /// A client of the socket at `socket`.
    #[must_use]
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
        }
    }

    /// The socket's path.
    #[must_use]
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Asks Litestream to sync `db` to its replica and waits for the answer,
    /// at most `timeout` (rounded up to whole seconds for Litestream, and
    /// enforced here as given).
    ///
    /// # Errors
    ///
    /// [`ReplicationError::Control`] when the socket does not answer in
    /// time or the exchange fails; [`ReplicationError::Sync`] with
    /// Litestream's own error text when it answers with one.
    pub async fn sync(&self, db: &Path, timeout: Duration) -> Result<SyncAnswer, ReplicationError> {
        self.sync_waiting(db, timeout, true).await
    }

    /// `/sync` without `wait`: Litestream copies the WAL into its own files
    /// (and checkpoints when its policy says so) and answers
    /// `synced_local` or `no_change` without waiting for the replica. What
    /// the WAL brake asks for (`DbActor`'s "Beside Litestream").
    ///
    /// # Errors
    ///
    /// As [`ControlClient::sync`].
    pub async fn sync_local(
        &self,
        db: &Path,
        timeout: Duration,
    ) -> Result<SyncAnswer, ReplicationError> {
        self.sync_waiting(db, timeout, false).await
    }

    async fn sync_waiting(
        &self,
        db: &Path,
        timeout: Duration,
        wait: bool,
    ) -> Result<SyncAnswer, ReplicationError> {
        let body = serde_json::json!({
            "path": db.to_string_lossy(),
            "wait": wait,
            "timeout": timeout.as_secs_f64().ceil().max(1.0) as u64,
        });
        let value = self.request("POST", "/sync", Some(body), timeout).await?;
        Ok(SyncAnswer {
            status: value["status"].as_str().unwrap_or_default().to_owned(),
            txid: value["txid"].as_u64().unwrap_or(0),
            replicated_txid: value["replicated_txid"].as_u64().unwrap_or(0),
        })
    }

    /// The process id Litestream reports on `/info`.
    ///
    /// # Errors
    ///
    /// As [`ControlClient::sync`].
    // Only the crate's tests ask (feature `testing`).
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub async fn pid(&self, timeout: Duration) -> Result<u64, ReplicationError> {
        let value = self.request("GET", "/info", None, timeout).await?;
        Ok(value["pid"].as_u64().unwrap_or(0))
    }

    async fn request(
        &self,
        method: &str,
        path: &'static str,
        body: Option<serde_json::Value>,
        timeout: Duration,
    ) -> Result<serde_json::Value, ReplicationError> {
        // The server needs a moment past its own timeout to answer it.
        let limit = timeout + Duration::from_millis(500);
        match tokio::time::timeout(limit, self.exchange(method, path, body)).await {
            Ok(result) => result,
            Err(_) => Err(self.control(
                path,
                format!(
                    "no answer within {}",
                    walguard::settings::format_duration(limit)
                ),
            )),
        }
    }

    /// A connection to the control socket, a Unix domain socket.
    #[cfg(unix)]
    async fn connect(
        &self,
        path: &'static str,
    ) -> Result<tokio::net::UnixStream, ReplicationError> {
        tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|e| self.control(path, format!("cannot connect: {e}")))
    }

    /// Litestream's control socket is a Unix domain socket, which tokio
    /// does not offer here: replication is refused on this platform (the
    /// settings say so first, `replication.mode`).
    #[cfg(not(unix))]
    #[allow(clippy::unused_async)] // The same signature as on Unix.
    async fn connect(
        &self,
        path: &'static str,
    ) -> Result<tokio::io::DuplexStream, ReplicationError> {
        Err(self.control(
            path,
            "Litestream's control socket is a Unix domain socket; replication is not supported on this platform".to_owned(),
        ))
    }

    async fn exchange(
        &self,
        method: &str,
        path: &'static str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, ReplicationError> {
        let stream = self.connect(path).await?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.control(path, e.to_string()))?;
        // The connection task ends with the exchange (or with its failure,
        // which the request then reports).
        let driver = tokio::spawn(connection);
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "litestream")
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| self.control(path, e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| self.control(path, e.to_string()))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| self.control(path, e.to_string()))?
            .to_bytes();
        driver.abort();
        let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
            self.control(
                path,
                format!(
                    "answer is not JSON ({e}); is this Litestream {LITESTREAM_VERSION} or newer?"
                ),
            )
        })?;
        if !status.is_success() {
            let error = value["error"]
                .as_str()
                .unwrap_or("no error text")
                .to_owned();
            return Err(ReplicationError::Sync {
                status: status.as_u16(),
                blame: walguard::replication::blame(&error),
                error,
            });
        }
        Ok(value)
    }

    fn control(&self, path: &'static str, error: String) -> ReplicationError {
        ReplicationError::Control {
            socket: self.socket.clone(),
            endpoint: path,
            error,
        }
    }
}
