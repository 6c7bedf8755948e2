//! The Litestream walguard started, supervised: an exit is seen, the
//! restart waits a backoff that doubles from [`RESTART_BACKOFF_MIN`] to
//! [`RESTART_BACKOFF_MAX`], and a restarted process is ready once its
//! control socket opens. Nothing here blocks the actor.

use tokio::time::Instant;
use walguard::replication::CheckpointOwner;
use walguard::settings::format_duration;

use super::child::{Child, READY_TIMEOUT};
use super::{Process, RESTART_BACKOFF_MAX, ReplicationActor};

impl ReplicationActor {
    /// The Litestream walguard started: exited? restart due? restarted
    /// and ready? Never blocks: a restart spawns the process, and later
    /// ticks look whether its control socket has opened.
    pub(super) fn supervise(&mut self) {
        let Process::Managed {
            binary,
            child,
            starting_since,
            restart_at,
            backoff,
            restarts,
        } = &mut self.process
        else {
            return;
        };
        if let Some(running) = child {
            if let Some(since) = *starting_since
                && running.exited().is_none()
            {
                match Child::socket_open(&self.files) {
                    true => {
                        *starting_since = None;
                        *restarts += 1;
                        crate::telemetry::record_litestream_restart();
                        tracing::info!(target: "walguard::replication", pid = running.pid(), restarts = *restarts, "litestream restarted");
                        return;
                    }
                    false if since.elapsed() <= READY_TIMEOUT => return,
                    false => {
                        let error = running.not_ready(&self.files);
                        running.kill();
                        *child = None;
                        *starting_since = None;
                        tracing::warn!(target: "walguard::replication", error = %error, retry_in = %format_duration(*backoff), "cannot restart litestream");
                        *restart_at = Some(Instant::now() + *backoff);
                        *backoff = (*backoff * 2).min(RESTART_BACKOFF_MAX);
                        return;
                    }
                }
            }
            // Exited, while starting or after: the branch below says so.
            *starting_since = None;
            if let Some(status) = running.exited() {
                let tail = running.log_tail();
                *child = None;
                *restart_at = Some(Instant::now() + *backoff);
                tracing::warn!(
                    target: "walguard::replication",
                    status = %status,
                    restart_in = %format_duration(*backoff),
                    "litestream exited{tail}; restarting it after the backoff"
                );
                *backoff = (*backoff * 2).min(RESTART_BACKOFF_MAX);
                self.tracker.failed();
                self.set_owner(CheckpointOwner::Walguard, "litestream exited");
            }
            return;
        }
        if restart_at.is_some_and(|at| Instant::now() >= at) {
            *restart_at = None;
            match Child::spawn(binary, &self.files, &self.settings) {
                Ok(started) => {
                    *starting_since = Some(Instant::now());
                    *child = Some(Box::new(started));
                }
                Err(e) => {
                    tracing::warn!(target: "walguard::replication", error = %e, retry_in = %format_duration(*backoff), "cannot restart litestream");
                    *restart_at = Some(Instant::now() + *backoff);
                    *backoff = (*backoff * 2).min(RESTART_BACKOFF_MAX);
                }
            }
        }
    }

    pub(super) fn litestream_running(&self) -> bool {
        match &self.process {
            Process::Managed {
                child,
                starting_since,
                ..
            } => child.is_some() && starting_since.is_none(),
            Process::External => true,
        }
    }
}
