//! `batching-writer`: what an experienced engineer writes by hand when one
//! connection must take many concurrent single-row writes, in about 60
//! lines. One thread owns the connection; callers send their insert on a
//! bounded channel with a oneshot for the reply; the thread blocks for the
//! first request, drains whatever else is queued (up to [`MAX_BATCH`]),
//! runs them in one transaction, commits once, then answers each caller
//! with its own result. A failing insert fails alone: SQLite undoes only
//! that statement (the default `ABORT` conflict resolution) and the
//! transaction goes on; a failed COMMIT fails the whole batch.
//!
//! It is walguard's group commit without an actor, a checkpoint policy,
//! durability accounting, or the reruns that cover `ON CONFLICT ROLLBACK`:
//! the honest peer for walguard's throughput.

use std::path::Path;
use std::time::Instant;

use rusqlite::{Connection, params};
use tokio::sync::{mpsc, oneshot};

use crate::cli::Synchronous;
use crate::peers::{self, BLOB, BoxError, INSERT_SQL};

/// Most inserts one transaction holds: walguard's `database.max_batch`
/// default (`DEFAULT_MAX_BATCH_WRITES`), so both cap their groups alike.
pub const MAX_BATCH: usize = 1024;
/// Requests the channel holds before senders wait: walguard's
/// `database.mailbox_capacity` default.
pub const CHANNEL_CAPACITY: usize = 1024;

/// One insert and where its result goes.
struct Request {
    id: i64,
    reply: oneshot::Sender<Result<(), String>>,
}

/// The writer thread: block for one request, drain up to `MAX_BATCH`, one
/// transaction, reply to each. Ends when every sender is gone.
fn writer(conn: &Connection, mut rx: mpsc::Receiver<Request>) -> rusqlite::Result<()> {
    let mut batch: Vec<Request> = Vec::with_capacity(MAX_BATCH);
    let mut results: Vec<Result<(), String>> = Vec::with_capacity(MAX_BATCH);
    let mut insert = conn.prepare(INSERT_SQL)?;
    let mut begin = conn.prepare("BEGIN IMMEDIATE")?;
    let mut commit = conn.prepare("COMMIT")?;
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let committed = begin.execute([]).map(drop).and_then(|()| {
            results.extend(batch.iter().map(|r| {
                insert
                    .execute(params![r.id, &BLOB[..]])
                    .map(drop)
                    .map_err(|e| e.to_string())
            }));
            commit.execute([]).map(drop)
        });
        if let Err(e) = committed {
            if !conn.is_autocommit() {
                conn.execute_batch("ROLLBACK")?;
            }
            results.clear();
            results.resize(batch.len(), Err(format!("batch not committed: {e}")));
        }
        for (r, result) in batch.drain(..).zip(results.drain(..)) {
            // The caller may have given up; nothing to do then.
            let _ = r.reply.send(result);
        }
    }
    Ok(())
}

/// `in_flight` tasks on a current-thread runtime (as for tokio-rusqlite),
/// each sending one insert and awaiting its reply before the next (a
/// closed loop). Latency: submit (just before the channel send) to the
/// reply seen by the awaiting task.
///
/// # Errors
///
/// Any SQLite or runtime error, a failed insert, or a wrong row count.
pub fn run(
    path: &Path,
    sync: Synchronous,
    writes: u64,
    in_flight: usize,
) -> Result<crate::stats::Run, BoxError> {
    let conn = Connection::open(path)?;
    peers::setup(&conn, sync)?;
    let (tx, rx) = mpsc::channel::<Request>(CHANNEL_CAPACITY);
    let thread = std::thread::spawn(move || writer(&conn, rx).map(|()| conn));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let next = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let (elapsed, cpu_ns, latencies_ns) = runtime.block_on(async {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let cpu = crate::stats::cpu_ns();
                let start = Instant::now();
                let mut tasks = Vec::with_capacity(in_flight);
                for _ in 0..in_flight {
                    let (tx, next) = (tx.clone(), std::rc::Rc::clone(&next));
                    let mut latencies = peers::latency_buffer(writes.div_ceil(in_flight as u64))?;
                    tasks.push(tokio::task::spawn_local(async move {
                        loop {
                            let i = next.get();
                            if i >= writes {
                                return Ok::<_, BoxError>(latencies);
                            }
                            next.set(i + 1);
                            let t = Instant::now();
                            let (reply, answer) = oneshot::channel();
                            tx.send(Request {
                                id: peers::id(i)?,
                                reply,
                            })
                            .await
                            .map_err(|_| "the writer thread is gone")?;
                            answer.await.map_err(|_| "the writer thread is gone")??;
                            latencies.push(peers::elapsed_ns(t));
                        }
                    }));
                }
                let mut all = peers::latency_buffer(writes)?;
                for task in tasks {
                    all.extend(task.await??);
                }
                // Before the writer thread ends, so that its CPU counts.
                let (elapsed, cpu) = (start.elapsed(), crate::stats::cpu_ns() - cpu);
                Ok::<_, BoxError>((elapsed, cpu, all))
            })
            .await
    })?;
    drop(tx);
    let conn = thread.join().map_err(|_| "the writer thread panicked")??;
    peers::check_count(&conn, writes)?;
    peers::close_raw(conn)?;
    Ok(crate::stats::Run {
        writes,
        elapsed,
        latencies_ns,
        cpu_ns,
    })
}
