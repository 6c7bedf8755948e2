//! The clean shutdown of a [`WalGuard`]: its steps, its budget, and the
//! watchdog that holds it to that budget whatever holds the writer.

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use walguard::read::{READ_CLOSE_GRACE, ReadPoolClose};
use walguard::stats::DbSummary;
use walguard::writer::WriterState;
use walguard::{SessionReport, Settings};

use super::WalGuard;
use crate::error::{Error, Result};
use crate::messages::{EndWatch, FinalSync, Finish, Shutdown, StopLoop};

/// How long the shutdown waits, past `database.busy_timeout`, for the
/// request in flight before it interrupts it and answers the queued ones
/// unrun: 250 ms.
pub const SHUTDOWN_DRAIN_GRACE: Duration = Duration::from_millis(250);

/// The longest the shutdown's final sync to the replica waits: 500 ms.
pub const FINAL_SYNC_TIMEOUT: Duration = Duration::from_millis(500);

/// The longest stopping the Litestream walguard started takes: 250 ms
/// (it is killed: the final sync has run, and Litestream resumes after a
/// kill).
pub const LITESTREAM_STOP_TIMEOUT: Duration = Duration::from_millis(250);

/// What replication adds to the shutdown budget: the final sync and the
/// stop of Litestream, 750 ms. With the defaults the whole shutdown then
/// takes at most 4.75 s, inside the 5 s of the `walguard` command.
pub const REPLICATION_SHUTDOWN_SLICE: Duration =
    FINAL_SYNC_TIMEOUT.saturating_add(LITESTREAM_STOP_TIMEOUT);

/// Time for the close and the last replies after the TRUNCATE: 250 ms.
pub const SHUTDOWN_CLOSE_GRACE: Duration = Duration::from_millis(250);

/// How often a shutdown past its drain deadline interrupts the connection
/// again (a closure may start statement after statement): 50 ms.
const SHUTDOWN_INTERRUPT_PERIOD: Duration = Duration::from_millis(50);

impl WalGuard {
    /// The longest [`WalGuard::shutdown`] takes, whatever holds the
    /// writer: `database.busy_timeout` plus [`SHUTDOWN_DRAIN_GRACE`] for the
    /// request in flight, then the TRUNCATE's `checkpoint.shutdown_timeout`
    /// plus its interrupt grace (a quarter of it, at least 250 ms), plus
    /// [`SHUTDOWN_CLOSE_GRACE`]. With the defaults (1 s, 2 s): 4 s, inside
    /// the 5 s the `walguard` command and Windows' console close give. The
    /// readers close beside the writer's drain, within the same deadline,
    /// so they add nothing.
    #[must_use]
    pub fn shutdown_budget(&self) -> Duration {
        let (drain, total) = budget(&self.settings);
        debug_assert!(drain <= total);
        total
    }

    /// The clean shutdown, in order, within [`WalGuard::shutdown_budget`]:
    ///
    /// 1. stop the checkpoint loop; start closing the read pool, beside
    ///    the drain below: the reads running may end until the drain
    ///    deadline, then are interrupted (their callers get
    ///    [`walguard::Error::ReadStopped`]); reads sent later get
    ///    [`Error::ShutDown`]; the TRUNCATE waits for the pool to close;
    /// 2. let `DbActor` finish every write it already accepted (its mailbox
    ///    is FIFO and `Shutdown` queues behind them). Should the writer
    ///    still be busy `database.busy_timeout` + [`SHUTDOWN_DRAIN_GRACE`]
    ///    after the start (a long query, a closure, a write waiting on
    ///    another process's lock), the running statement is interrupted
    ///    (`sqlite3_interrupt`; its sender gets the SQLite error
    ///    `interrupted`) and every request still waiting is answered
    ///    [`walguard::Error::ShutdownDeadline`] without being run;
    /// 3. TRUNCATE checkpoint on the writer under `checkpoint.shutdown_timeout`
    ///    (busy timeout lowered to it, `sqlite3_interrupt` as the hard stop);
    ///    busy or failed is logged and shutdown goes on;
    /// 4. close the connection and release the engine lock;
    /// 5. end the exposure watch;
    /// 6. emit the end-of-session event and return the report.
    ///
    /// A closure that blocks outside SQLite cannot be interrupted: at the
    /// end of the budget the shutdown stops waiting and says so in the
    /// report (`close_error`), with the write counts so far; the writer
    /// closes the database when the closure returns. Requests after the
    /// shutdown get [`Error::ShutDown`].
    ///
    /// # Errors
    ///
    /// [`Error::Mailbox`] only when `MetricsActor` is gone and no report can
    /// be made; a `DbActor` that is already gone is noted in the report.
    pub async fn shutdown(self) -> Result<SessionReport> {
        if let Err(e) = self.checkpoint.send(StopLoop).await {
            tracing::warn!(target: "walguard::system", error = %e, "checkpoint actor did not answer StopLoop; going on");
        }
        let deadline = self.settings.checkpoint.shutdown_timeout;
        let (drain, total) = budget(&self.settings);
        let started = std::time::Instant::now();
        // Replication: drain, final sync, stop Litestream, all before the
        // writer's own shutdown (which then checkpoints and closes).
        let replicated = match &self.replication {
            Some(replication) => {
                let step = replication.send(FinalSync {
                    timeout: FINAL_SYNC_TIMEOUT,
                    stop_timeout: LITESTREAM_STOP_TIMEOUT,
                });
                match tokio::time::timeout(drain + REPLICATION_SHUTDOWN_SLICE, step).await {
                    Ok(Ok(replicated)) => Some(replicated),
                    Ok(Err(e)) => {
                        tracing::warn!(target: "walguard::system", error = %e, "replication actor did not answer FinalSync; going on");
                        None
                    }
                    Err(_) => {
                        tracing::warn!(target: "walguard::system", "the final sync did not finish in time; going on");
                        None
                    }
                }
            }
            None => None,
        };
        let spent = started.elapsed().saturating_sub(REPLICATION_SHUTDOWN_SLICE);
        let (drain, total) = (drain.saturating_sub(spent), total.saturating_sub(spent));
        // The readers close beside the writer's drain, within the same
        // deadline (interrupted past it), and the writer waits for them
        // before its TRUNCATE, so that no snapshot of ours pins the WAL
        // then.
        let readers_closed = self.close_reads(drain);
        let (done, gave_up) = watchdog(Arc::clone(&self.state), drain, total);
        let answer = tokio::select! {
            biased;
            answer = self.db.addr().send(Shutdown { deadline, readers_closed }) => Some(answer),
            Ok(()) = gave_up => None,
        };
        let _ = done.send(());
        let summary = match answer {
            Some(Ok(outcome)) => outcome.summary,
            Some(Err(e)) => {
                tracing::warn!(target: "walguard::system", error = %e, "DbActor did not answer Shutdown; going on");
                self.unanswered_summary(format!("DbActor did not answer: {e}"))
            }
            None => {
                tracing::error!(
                    target: "walguard::system",
                    budget_ms = total.as_millis() as u64,
                    "the writer did not stop within the shutdown budget; giving up on it"
                );
                self.unanswered_summary(format!(
                    "the writer did not stop within the shutdown budget of {}: a request still holds it (a closure blocked outside SQLite?); the database closes when it returns",
                    walguard::settings::format_duration(total)
                ))
            }
        };
        self.state.set_shut_down();
        let durability = summary.durability;
        if let Err(e) = self.exposure.send(EndWatch { durability }).await {
            tracing::warn!(target: "walguard::system", error = %e, "exposure watch did not answer EndWatch; going on");
        }
        let mut report = self
            .metrics
            .send(Finish(summary))
            .await
            .map_err(Error::mailbox("MetricsActor"))?;
        report.replication = replicated.or(report.replication);
        if let Some(arbiter) = self.arbiter {
            arbiter.stop();
        }
        Ok(report)
    }

    /// Closes the read pool within `budget` (interrupting the reads it
    /// leaves running) on a thread of its own, beside the writer's drain;
    /// returns what the writer waits on before its TRUNCATE, and how long
    /// it may wait (the budget and the close's grace).
    fn close_reads(&self, budget: Duration) -> Option<(mpsc::Receiver<()>, Duration)> {
        let reads = Arc::clone(self.db.reads()?);
        let (closed_tx, closed) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("walguard-read-close".to_owned())
            .spawn(move || {
                let closed: ReadPoolClose = reads.close(budget);
                tracing::info!(
                    target: "walguard::system",
                    drained = closed.drained,
                    interrupted = closed.interrupted,
                    refused = closed.refused,
                    left_running = closed.left_running.len(),
                    "the read pool closed"
                );
                let _ = closed_tx.send(());
            });
        match spawned {
            Ok(_) => Some((closed, budget + READ_CLOSE_GRACE)),
            Err(e) => {
                tracing::warn!(target: "walguard::system", error = %e, "cannot start the read pool's close; it closes when the handles are dropped");
                None
            }
        }
    }

    /// The summary when `DbActor` could not answer: the counts it shares.
    fn unanswered_summary(&self, close_error: String) -> DbSummary {
        let mut summary = DbSummary::default();
        summary.writes_acknowledged = self.state.writes_acknowledged();
        summary.writes_failed = self.state.writes_failed();
        summary.close_error = Some(close_error);
        summary
    }
}

/// The shutdown's drain deadline and whole budget, from the settings (see
/// [`WalGuard::shutdown_budget`]).
fn budget(settings: &Settings) -> (Duration, Duration) {
    let drain = settings.database.busy_timeout + SHUTDOWN_DRAIN_GRACE;
    let truncate = settings.checkpoint.shutdown_timeout;
    let truncate = truncate + (truncate / 4).max(walguard::checkpoint::MIN_DEADLINE_GRACE);
    let replication = if settings.replication.is_on() {
        REPLICATION_SHUTDOWN_SLICE
    } else {
        Duration::ZERO
    };
    (drain, drain + replication + truncate + SHUTDOWN_CLOSE_GRACE)
}

/// A thread on the wall clock (not tokio's, which a test may pause): past
/// `drain` it closes the writer's gate and interrupts its connection, again
/// every [`SHUTDOWN_INTERRUPT_PERIOD`]; past `total` it gives up, which the
/// returned receiver reports. Sending on the returned sender ends it.
fn watchdog(
    state: Arc<WriterState>,
    drain: Duration,
    total: Duration,
) -> (mpsc::Sender<()>, tokio::sync::oneshot::Receiver<()>) {
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let (gave_up_tx, gave_up_rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("walguard-shutdown-watchdog".to_owned())
        .spawn(move || {
            if done_rx.recv_timeout(drain) != Err(RecvTimeoutError::Timeout) {
                return;
            }
            tracing::warn!(
                target: "walguard::system",
                drain_ms = drain.as_millis() as u64,
                "the writer is still busy at the shutdown's drain deadline; interrupting it and refusing what waits"
            );
            let start = std::time::Instant::now();
            while start.elapsed() < total.saturating_sub(drain) {
                state.pass_deadline();
                if done_rx.recv_timeout(SHUTDOWN_INTERRUPT_PERIOD) != Err(RecvTimeoutError::Timeout) {
                    return;
                }
            }
            let _ = gave_up_tx.send(());
        });
    if let Err(e) = spawned {
        tracing::warn!(target: "walguard::system", error = %e, "cannot start the shutdown watchdog; the shutdown has no deadline");
    }
    (done_tx, gave_up_rx)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{SHUTDOWN_CLOSE_GRACE, SHUTDOWN_DRAIN_GRACE, budget};

    /// The drain deadline is `database.busy_timeout` + 250 ms, and the
    /// budget adds the TRUNCATE's deadline with its grace and the close's:
    /// exact values, where the process tests of the shutdown can only bound
    /// the wall-clock time from below (an upper bound is one a loaded
    /// machine crosses).
    #[test]
    fn the_drain_deadline_is_the_busy_timeout_plus_250_ms() {
        let mut settings = walguard::Settings::for_database("unused.db");
        settings.database.busy_timeout = Duration::from_millis(300);
        settings.checkpoint.shutdown_timeout = Duration::from_secs(1);
        let (drain, total) = budget(&settings);
        assert_eq!(SHUTDOWN_DRAIN_GRACE, Duration::from_millis(250));
        assert_eq!(drain, Duration::from_millis(550));
        assert_eq!(
            total,
            drain + Duration::from_millis(1_250) + SHUTDOWN_CLOSE_GRACE
        );
    }
}
