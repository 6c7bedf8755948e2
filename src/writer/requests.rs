//! The requests a [`Writer`] serves: single writes and their group
//! commit, transactions, queries, closures, checkpoints, figures, the
//! replica's position, the WAL brake and the shutdown.

use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::hold::HeldReply;
use super::{Braking, ShutdownOutcome, WriteReply, Writer, WriterStats, brake};
use crate::replication::CheckpointOwner;
use crate::{
    CheckpointMode, CheckpointReason, CheckpointReport, Durability, Error, Result, ResultSet,
    Statement, Store,
};

impl<R: WriteReply> Writer<R> {
    /// Takes one single write: queues it for the next group commit (a full
    /// queue is flushed first); with group commit off, runs it now and
    /// answers it (or holds it for the replica); after a panic, answers it
    /// [`Error::WriterPanicked`].
    pub fn accept(&mut self, stmt: Statement, reply: R) {
        if !self.group_commit {
            let before = self.commits();
            let result = self.guarded(|w| {
                let result = w.store().and_then(|s| s.execute(&stmt));
                w.after_write();
                result
            });
            if self.hold.is_some() && result.is_ok() && self.commits() > before {
                // Counted when answered, as a group's writes are.
                let commits = self.commits();
                if let Some(hold) = self.hold.as_mut() {
                    hold.push(commits, vec![HeldReply::Write(reply, result)]);
                }
                return;
            }
            self.count(result.is_ok());
            reply.send(result);
            return;
        }
        if let Some(message) = self.state.panicked() {
            self.count(false);
            reply.send(Err(Error::WriterPanicked { message }));
            return;
        }
        if self.is_full() {
            self.flush();
        }
        self.queue.stmts.push(stmt);
        self.queue.replies.push(reply);
    }

    /// Commits every queued write as one group and answers each sender.
    pub fn flush(&mut self) {
        let _ = self.guarded(|w| {
            w.flush_unguarded();
            Ok(())
        });
    }

    /// Runs statements as one atomic transaction, after the queued writes;
    /// the rows changed by each.
    ///
    /// # Errors
    ///
    /// As [`Store::transaction`]; [`Error::WriterPanicked`],
    /// [`Error::ShutdownDeadline`] or [`Error::Closed`] when the writer
    /// cannot serve.
    pub fn transaction(&mut self, stmts: &[Statement]) -> Result<Vec<usize>> {
        let result = self.guarded(|w| {
            w.flush_unguarded();
            let result = w.store().and_then(|s| s.transaction(stmts));
            w.after_write();
            result
        });
        self.count(result.is_ok());
        result
    }

    /// Runs a read query on the write connection, after the queued writes.
    ///
    /// # Errors
    ///
    /// As [`Writer::transaction`].
    pub fn query(&mut self, stmt: &Statement) -> Result<ResultSet> {
        self.guarded(|w| {
            w.flush_unguarded();
            w.store().and_then(|s| s.query(stmt))
        })
    }

    /// Runs a closure against the connection, after the queued writes.
    ///
    /// # Errors
    ///
    /// As [`Store::call`] and [`Writer::transaction`].
    pub fn call<T>(&mut self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let result = self.guarded(|w| {
            w.flush_unguarded();
            // A panic in the closure is caught by the store: the caller's
            // error, not the writer's end.
            let result = w.store().and_then(|s| s.call(f));
            w.after_write();
            result
        });
        self.count(result.is_ok());
        result
    }

    /// Runs a checkpoint now, after the queued writes; the report also
    /// goes to the checkpoint listener. A writer that cannot serve reports
    /// a failed checkpoint.
    pub fn checkpoint(
        &mut self,
        mode: CheckpointMode,
        reason: CheckpointReason,
    ) -> CheckpointReport {
        let report = self.guarded(|w| {
            w.flush_unguarded();
            w.store().map(|store| store.checkpoint(mode, reason))
        });
        let report =
            report.unwrap_or_else(|e| CheckpointReport::failed(mode, reason, Duration::ZERO, &e));
        self.publish(&report);
        report
    }

    /// What is durable now, after the queued writes (`None` once closed).
    pub fn durability(&mut self) -> Option<Durability> {
        self.flush();
        self.store.as_ref().map(Store::durability)
    }

    /// The batching and WAL figures, after the queued writes.
    pub fn stats(&mut self) -> WriterStats {
        self.flush();
        let group = self.store.as_ref().map(Store::group_stats);
        WriterStats {
            group_commit: self.group_commit,
            max_batch: self.max_batch,
            flushes: self.flushes,
            flushed_writes: group.map_or(0, |g| g.writes),
            largest_flush: self.largest_flush,
            group,
            wal: self.store.as_ref().and_then(Store::wal_frames),
        }
    }

    /// Brakes engaged in this session (0 without a brake).
    #[must_use]
    pub fn brakes(&self) -> u64 {
        self.brake.as_ref().map_or(0, brake::Brake::count)
    }

    /// Panics inside the writer's own code, as a bug of ours would: the
    /// writer stops serving, and every request, this one included, gets
    /// [`Error::WriterPanicked`] with this message. For tests.
    ///
    /// # Errors
    ///
    /// Always [`Error::WriterPanicked`].
    ///
    /// # Panics
    ///
    /// Inside, on purpose; the panic is caught and never leaves.
    #[cfg(feature = "testing")]
    pub fn inject_panic(&mut self, message: &str) -> Result<()> {
        self.guarded(|_| -> Result<()> {
            // Stands for a bug in the writer's own code.
            panic!("{message}")
        })
    }

    /// Phase 1 of a two-phase size checkpoint returned: runs phase 2 now,
    /// between two groups, when due.
    pub fn backfill_returned(&mut self) {
        let _ = self.guarded(|w| {
            w.after_write();
            Ok(())
        });
    }

    /// Answers a transaction or a closure: at once, or, under
    /// `replication.ack: replicated` when it committed something (`before`
    /// is the commit count before it ran), once the replica has it, as a
    /// group's writes are.
    pub fn answer_write<T: Send + 'static>(
        &mut self,
        before: u64,
        result: Result<T>,
        reply: impl FnOnce(Result<T>) + Send + 'static,
    ) {
        let commits = self.commits();
        match self.hold.as_mut() {
            Some(hold) if result.is_ok() && commits > before => {
                hold.push(
                    commits,
                    vec![HeldReply::Other(Box::new(move |error| {
                        reply(match error {
                            None => result,
                            Some(e) => Err(e),
                        });
                    }))],
                );
            }
            _ => reply(result),
        }
    }

    /// The first `through` commits are on the replica (`None`: a sync that
    /// did not answer): releases the held replies they cover, then those
    /// held past `replication.max_lag`.
    pub fn replicated_through(&mut self, through: Option<u64>) {
        if let (Some(commits), Some(store)) = (through, self.store.as_mut()) {
            store.replicated_through(commits);
        }
        self.release(through, false);
    }

    /// At the start of a round: applies a change of checkpoint owner, and
    /// says whether the WAL brake holds the writes back ([`Braking`]).
    /// Never during the shutdown.
    pub fn braking(&mut self, now: Instant) -> Braking {
        self.apply_owner();
        let shut_down = self.state.is_shut_down();
        let litestream = self.applied_owner == CheckpointOwner::Litestream;
        let frames = self
            .store
            .as_ref()
            .and_then(Store::wal_frames)
            .map_or(0, |w| w.current);
        let Some(brake) = self.brake.as_mut() else {
            return Braking::No;
        };
        if shut_down {
            brake.release();
            return Braking::No;
        }
        let braking = brake.check(frames, litestream, now);
        if braking == Braking::Engaged {
            tracing::debug!(target: "walguard::db", frames, "wal brake: writes wait for litestream's checkpoint");
        }
        braking
    }

    /// The sync the brake asked for returned: whether the brake was on
    /// (the writer then has requests to take again).
    pub fn brake_done(&mut self) -> bool {
        self.brake.as_mut().is_some_and(brake::Brake::done)
    }

    /// Drops the brake: the end serves what is left without pausing.
    pub fn drop_brake(&mut self) {
        self.brake = None;
    }

    /// Commits the queued writes and waits until every answer is sent:
    /// when the writer stops without a shutdown.
    pub fn finish(&mut self) {
        self.flush();
        if let Some(replier) = self.replier.as_mut() {
            replier.finish();
        }
        self.replier = None;
    }

    /// The clean end, once every request accepted before it has been
    /// served: commits the queued writes, answers every held reply as not
    /// replicated, runs a TRUNCATE checkpoint under `deadline` (skipped
    /// while Litestream owns checkpointing; busy or failed is reported,
    /// never fatal), closes the connection and releases the engine lock.
    pub fn shutdown(&mut self, deadline: Duration) -> ShutdownOutcome {
        self.finish();
        let mut summary = self.summary();
        let Some(mut store) = self.store.take() else {
            summary.close_error = Some(match self.state.panicked() {
                Some(message) => format!("writer stopped after a panic: {message}"),
                None => "the store was already closed".to_owned(),
            });
            self.engine_lock = None;
            self.state.set_shut_down();
            return ShutdownOutcome {
                truncate: None,
                summary,
            };
        };
        self.release(None, true);
        // The TRUNCATE has a deadline of its own: the drain watchdog's
        // interrupts, repeated until the shutdown ends, must not reach it
        // and turn a wait on a lock (`busy`) into `failed: interrupted`.
        self.state.set_interrupt(None);
        let report = (self.state.owner() == CheckpointOwner::Walguard).then(|| {
            store.checkpoint_with_deadline(
                CheckpointMode::Truncate,
                CheckpointReason::Shutdown,
                deadline,
            )
        });
        if let Some(report) = &report {
            self.publish(report);
        }
        // Where the file is now, whether or not a TRUNCATE just looked: a
        // file renamed back is the same file, with every acknowledged write.
        let _ = store.check_file();
        summary.durability = Some(store.durability());
        summary.file_gone = store.file_is_gone();
        summary.file_returned = store.file_was_gone() && !store.file_is_gone();
        self.state.set_interrupt(None);
        if let Err((store, e)) = store.close() {
            let error = crate::error::error_chain(&e);
            tracing::warn!(target: "walguard::db", error = %error, "closing the database failed; dropping the connection");
            summary.close_error = Some(error);
            drop(store);
        }
        // The store is closed: the next engine may take the file.
        self.engine_lock = None;
        self.state.set_shut_down();
        ShutdownOutcome {
            truncate: report,
            summary,
        }
    }
}
