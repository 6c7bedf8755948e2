//! The replier: a thread that answers the writers of a group commit, so
//! that the writer's thread goes back to SQLite at once.
//!
//! Answering a write is a reply channel's send and, for a sender that
//! sleeps, a wake of its thread; dropping it frees the statement, which
//! another thread allocated. Measured on the writer's thread at 256 in
//! flight (`perf`, docs/benchmarks.md), these took about a sixth of its
//! time, and the writer's thread is the one every write waits for. Handed
//! to this thread once per group, they overlap the next group's SQLite
//! work.
//!
//! What does not change: a write is answered only after the COMMIT that
//! holds it returned (the batch is handed over after it), each with its
//! own result; the writes of one group are answered in their order, and
//! groups in theirs. Requests that are not single writes are still
//! answered by the writer itself, so such an answer may reach its sender
//! before the answers of the writes committed just before it, which it
//! already sees.
//!
//! A group of fewer than [`MIN_GROUP_WRITES`] writes is answered by the
//! writer itself: handing it over costs a wake-up of this thread, more
//! than answering a few writes, and a lone writer would wait for it (its
//! p50 doubled, 10 → 21 µs, when every group was handed over), unless
//! this thread is still answering an earlier group: the small group then
//! goes the same way, so that it is not answered before that one.
//!
//! `walguard-actors` starts it only where the writer has an arbiter of its
//! own: on a paused tokio clock a runtime that waits on another thread
//! jumps ahead, so tests that share the writer's thread get their answers
//! from the writer.

use std::sync::mpsc;
use std::thread::JoinHandle;

use super::WriteReply;
use crate::Statement;

/// The smallest group commit, in writes, handed to the replier: 16.
/// Smaller ones are answered by the writer (see the module docs).
pub(crate) const MIN_GROUP_WRITES: usize = 16;

/// Emptied sets of vectors kept for the writer to fill again: 2 (one
/// being answered, one ready).
const SPARE_SETS: usize = 2;

/// What a write is answered.
pub(crate) type ExecuteResult = crate::Result<usize>;

/// One group commit's writes, their senders and their results, in order.
/// Handed back emptied, to be filled again.
#[derive(Debug)]
pub(crate) struct Answers<R> {
    pub(crate) stmts: Vec<Statement>,
    pub(crate) replies: Vec<R>,
    pub(crate) results: Vec<ExecuteResult>,
}

impl<R> Default for Answers<R> {
    fn default() -> Self {
        Self {
            stmts: Vec::new(),
            replies: Vec::new(),
            results: Vec::new(),
        }
    }
}

impl<R: WriteReply> Answers<R> {
    /// Sends each result to its sender and drops the statements; the
    /// vectors keep their capacity.
    pub(crate) fn send(&mut self) {
        for (reply, result) in self.replies.drain(..).zip(self.results.drain(..)) {
            reply.send(result);
        }
        self.stmts.clear();
    }
}

/// The replier thread and the way to it.
#[derive(Debug)]
pub(crate) struct Replier<R> {
    to: Option<mpsc::Sender<Answers<R>>>,
    back: mpsc::Receiver<Answers<R>>,
    thread: Option<JoinHandle<()>>,
    /// Groups handed over and not answered yet.
    pending: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl<R: WriteReply> Replier<R> {
    /// Starts the thread (named `walguard-replier`).
    ///
    /// # Errors
    ///
    /// The OS refused the thread.
    pub(crate) fn start() -> std::io::Result<Self> {
        let (to, from_writer) = mpsc::channel::<Answers<R>>();
        // At most SPARE_SETS emptied sets wait for the writer; the others
        // are dropped here. Unbounded, they would pile up whenever the
        // writer answers a small group itself or finds none back yet, and
        // memory would grow with the run.
        let (to_writer, back) = mpsc::sync_channel(SPARE_SETS);
        let pending = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let left = std::sync::Arc::clone(&pending);
        let thread = std::thread::Builder::new()
            .name("walguard-replier".to_owned())
            .spawn(move || {
                for mut answers in from_writer {
                    answers.send();
                    left.fetch_sub(1, std::sync::atomic::Ordering::Release);
                    // Full, or the writer gone: the vectors are dropped.
                    let _ = to_writer.try_send(answers);
                }
            })?;
        Ok(Self {
            to: Some(to),
            back,
            thread: Some(thread),
            pending,
        })
    }

    /// Hands `answers` to the thread; gives them back if it is gone (the
    /// caller then answers them itself).
    pub(crate) fn answer(&self, answers: Answers<R>) -> Result<(), Answers<R>> {
        match &self.to {
            Some(to) => {
                self.pending
                    .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                to.send(answers).map_err(|e| {
                    self.pending
                        .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
                    e.0
                })
            }
            None => Err(answers),
        }
    }

    /// Whether a group handed over is still being answered: a later group
    /// must then go the same way, to be answered after it.
    pub(crate) fn busy(&self) -> bool {
        self.pending.load(std::sync::atomic::Ordering::Acquire) > 0
    }

    /// Emptied vectors the thread handed back, if any.
    pub(crate) fn spare(&self) -> Option<Answers<R>> {
        self.back.try_recv().ok()
    }
}

impl<R> Replier<R> {
    /// Waits until every group handed over is answered, and ends the
    /// thread.
    pub(crate) fn finish(&mut self) {
        drop(self.to.take());
        if let Some(thread) = self.thread.take() {
            // The loop cannot panic: sends to reply channels and drops.
            let _ = thread.join();
        }
    }
}

impl<R> Drop for Replier<R> {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Tx = std::sync::mpsc::Sender<ExecuteResult>;

    impl WriteReply for Tx {
        fn send(self, result: ExecuteResult) {
            let _ = std::sync::mpsc::Sender::send(&self, result);
        }
    }

    fn group(n: usize) -> (Answers<Tx>, Vec<std::sync::mpsc::Receiver<ExecuteResult>>) {
        let mut answers = Answers::default();
        let mut receivers = Vec::new();
        for i in 0..n {
            let (tx, rx) = std::sync::mpsc::channel();
            answers
                .stmts
                .push(Statement::new("INSERT INTO t VALUES (?1)").bind(i as i64));
            answers.replies.push(tx);
            answers.results.push(Ok(i));
            receivers.push(rx);
        }
        (answers, receivers)
    }

    /// Every result reaches its own sender, and `finish` returns only once
    /// every group handed over has been answered.
    #[test]
    fn finish_waits_until_every_group_is_answered() {
        let mut replier = Replier::<Tx>::start().unwrap();
        let mut all = Vec::new();
        for _ in 0..200 {
            let (answers, receivers) = group(64);
            replier.answer(answers).unwrap();
            all.push(receivers);
        }
        replier.finish();
        for receivers in all {
            for (i, rx) in receivers.into_iter().enumerate() {
                assert_eq!(rx.try_recv().unwrap().unwrap(), i);
            }
        }
        // Emptied vectors come back, with their capacity.
        let spare = replier.spare().unwrap();
        assert!(spare.stmts.is_empty() && spare.stmts.capacity() >= 64);
    }

    /// Once the thread is gone, the answers come back to be sent by the
    /// caller, not lost.
    #[test]
    fn answers_after_finish_are_given_back() {
        let mut replier = Replier::<Tx>::start().unwrap();
        replier.finish();
        let (answers, receivers) = group(3);
        let mut back = replier.answer(answers).unwrap_err();
        back.send();
        for (i, rx) in receivers.into_iter().enumerate() {
            assert_eq!(rx.try_recv().unwrap().unwrap(), i);
        }
    }
}
