//! The steps every request of a [`Writer`] is made of: the guard against
//! a panic of ours, the store's availability, the group's commit and its
//! answers, the size checkpoint after a commit, the checkpoint owner's
//! threshold, the held replies, the counts.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::hold::{HeldReply, Released};
use super::replier::{self, Answers};
use super::{WriteReply, Writer, count, reuse};
use crate::replication::CheckpointOwner;
use crate::stats::DbSummary;
use crate::{CheckpointReport, Error, Result, Store};

impl<R: WriteReply> Writer<R> {
    pub(super) fn summary(&self) -> DbSummary {
        DbSummary {
            writes_acknowledged: self.state.writes_acknowledged(),
            writes_failed: self.state.writes_failed(),
            durability: self.store.as_ref().map(Store::durability),
            ..DbSummary::default()
        }
    }

    /// Gives the store the size threshold of the owner now in the shared
    /// state, when it changed.
    pub(super) fn apply_owner(&mut self) {
        let owner = self.state.owner();
        if owner == self.applied_owner {
            return;
        }
        self.applied_owner = owner;
        let frames = match owner {
            CheckpointOwner::Litestream => self.wal_cap_frames,
            CheckpointOwner::Walguard => self.size_threshold,
        };
        if let Some(store) = self.store.as_mut()
            && let Err(e) = store.set_size_threshold(frames)
        {
            tracing::warn!(target: "walguard::db", error = %crate::error::error_chain(&e), frames, "cannot set the size threshold for the new checkpoint owner");
        }
    }

    /// Answers held replies (see [`Hold::release`]) and counts them.
    pub(super) fn release(&mut self, through: Option<u64>, everything: bool) {
        let Some(hold) = self.hold.as_mut() else {
            return;
        };
        let (state, on_count) = (&self.state, &self.on_count);
        hold.release(through, everything, &self.path, |released| match released {
            Released::Write(ok) => count(state, on_count.as_ref(), u64::from(ok), u64::from(!ok)),
            Released::Withdrawn => {
                // Counted acknowledged at its COMMIT: now failed.
                state.count_not_replicated();
                if let Some(on_count) = on_count {
                    on_count(0, 1);
                }
            }
            Released::Other => {}
        });
    }

    /// The store, to serve a request: an error instead when the writer
    /// stopped after a panic, passed its shutdown deadline, or is closed.
    pub(super) fn store(&mut self) -> Result<&mut Store> {
        if let Some(message) = self.state.panicked() {
            return Err(Error::WriterPanicked { message });
        }
        if self.state.is_past_deadline() {
            return Err(Error::ShutdownDeadline {
                path: self.path.clone(),
            });
        }
        self.store.as_mut().ok_or_else(|| Error::Closed {
            path: self.path.clone(),
        })
    }

    /// Runs one request's work; a panic in it stops the writer (see the
    /// module docs).
    pub(super) fn guarded<T>(&mut self, work: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        match catch_unwind(AssertUnwindSafe(|| work(self))) {
            Ok(result) => result,
            Err(payload) => {
                let message = crate::error::panic_message(payload.as_ref());
                tracing::error!(
                    target: "walguard::db",
                    panic = %message,
                    "DbActor panicked; the writer stops serving and answers every request with an error"
                );
                self.state.set_panicked(message.clone());
                self.state.set_interrupt(None);
                // Writes still queued are answered, not dropped.
                let Answers { stmts, replies, .. } = std::mem::take(&mut self.queue);
                drop(stmts);
                for reply in replies {
                    reply.send(Err(Error::WriterPanicked {
                        message: message.clone(),
                    }));
                }
                // Dropping the connection rolls back an open transaction.
                drop(self.store.take());
                Err(Error::WriterPanicked { message })
            }
        }
    }

    pub(super) fn count(&self, ok: bool) {
        count(
            &self.state,
            self.on_count.as_ref(),
            u64::from(ok),
            u64::from(!ok),
        );
    }

    pub(super) fn publish(&self, report: &CheckpointReport) {
        // A checkpoint may have reopened the connection: the interrupt
        // handle follows it.
        self.state
            .set_interrupt(self.store.as_ref().map(Store::interrupt_handle));
        // Each phase of a two-phase size checkpoint is one checkpoint,
        // measured and reported: phase 1 first, so the last one a listener
        // notes is the one that decided durability.
        if let Some(listener) = &self.on_checkpoint {
            if let Some(phase1) = report.backfill() {
                listener(phase1);
            }
            listener(report);
        }
    }

    /// After every commit: the size-triggered checkpoint, when due.
    pub(super) fn after_write(&mut self) {
        self.apply_owner();
        if let Some(report) = self.store.as_mut().and_then(Store::checkpoint_if_due) {
            self.publish(&report);
        }
    }

    pub(super) fn flush_unguarded(&mut self) {
        if self.queue.stmts.is_empty() {
            return;
        }
        let Answers {
            stmts,
            replies,
            mut results,
        } = std::mem::take(&mut self.queue);
        self.flushes += 1;
        self.largest_flush = self.largest_flush.max(stmts.len());
        results.clear();
        match self.store() {
            Ok(store) => results.extend(store.execute_group(&stmts)),
            // Each write gets its own copy of why it did not run.
            Err(_) => {
                for _ in &stmts {
                    let result = self.store().map(|_| 0);
                    results.push(result);
                }
            }
        }
        let commits = self.commits();
        if let Some(hold) = self.hold.as_mut()
            && self.store.is_some()
        {
            // Failures are answered now; successes wait for the replica.
            let mut kept = Vec::new();
            let mut failed = 0;
            for (result, reply) in results.drain(..).zip(replies) {
                if result.is_ok() {
                    kept.push(HeldReply::Write(reply, result));
                } else {
                    failed += 1;
                    reply.send(result);
                }
            }
            if !kept.is_empty() {
                hold.push(commits, kept);
            }
            count(&self.state, self.on_count.as_ref(), 0, failed);
            self.queue = Answers {
                stmts: reuse(stmts),
                replies: Vec::new(),
                results,
            };
            self.after_write();
            return;
        }
        let ok = results.iter().filter(|r| r.is_ok()).count() as u64;
        let failed = results.len() as u64 - ok;
        self.answer(Answers {
            stmts,
            replies,
            results,
        });
        // One atomic add and one metrics update per outcome, not per write.
        count(&self.state, self.on_count.as_ref(), ok, failed);
        self.after_write();
    }

    /// Answers a group's writes: on the replier's thread when there is one
    /// and the group is large enough (or the replier still answers an
    /// earlier one), else here. Keeps emptied vectors for the next flush.
    pub(super) fn answer(&mut self, answers: Answers<R>) {
        let left = match &self.replier {
            Some(replier)
                if answers.replies.len() >= replier::MIN_GROUP_WRITES || replier.busy() =>
            {
                match replier.answer(answers) {
                    Ok(()) => replier.spare(),
                    Err(answers) => Some(answers),
                }
            }
            _ => Some(answers),
        };
        if let Some(mut left) = left {
            left.send();
            if self.queue.stmts.is_empty() && self.queue.stmts.capacity() == 0 {
                self.queue = left;
            }
        }
    }
}
