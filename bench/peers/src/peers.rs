//! The three peers. Each run opens a fresh database in its own temp dir, sets
//! it up outside the timed phase, times N single-row inserts, checks the row
//! count, and closes (the close-time checkpoint is not timed).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};

use crate::cli::Synchronous;
use crate::stats::{Run, cpu_ns};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Payload of every insert: 100 bytes, as the issue specifies. Its content
/// does not matter to SQLite (no compression).
pub static BLOB: [u8; 100] = [0xA5; 100];

/// Inserts per transaction in `raw-batched`.
pub const BATCH_SIZE: usize = 1000;

/// How long a writer waits on a lock before SQLITE_BUSY (the 5 s).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub const INSERT_SQL: &str = "INSERT INTO kv(id, v) VALUES (?1, ?2)";

/// Name of the database file inside each run's temp dir.
pub const DB_FILE: &str = "bench.db";

/// Opens-time setup shared by every peer. `busy_timeout` comes first: the
/// switch to WAL takes a lock (FACTS.md). The journal mode is read back,
/// because SQLite answers with the mode it actually got. The WAL
/// auto-checkpoint stays at SQLite's default (1000 pages) for all peers.
///
/// # Errors
///
/// Any SQLite error, or WAL / synchronous not taking effect.
pub fn setup(conn: &Connection, sync: Synchronous) -> Result<(), BoxError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("journal_mode=WAL answered {mode:?}").into());
    }
    conn.pragma_update(None, "synchronous", sync.name())?;
    let got: i64 = conn.pragma_query_value(None, "synchronous", |r| r.get(0))?;
    if got != sync.pragma_value() {
        return Err(format!("synchronous={} reads back as {got}", sync.name()).into());
    }
    conn.execute_batch("CREATE TABLE kv(id INTEGER PRIMARY KEY, v BLOB)")?;
    Ok(())
}

pub fn check_count(conn: &Connection, writes: u64) -> Result<(), BoxError> {
    let rows: i64 = conn.query_row("SELECT count(*) FROM kv", [], |r| r.get(0))?;
    if rows as u64 == writes {
        Ok(())
    } else {
        Err(format!("expected {writes} rows after the run, found {rows}").into())
    }
}

pub fn id(i: u64) -> Result<i64, BoxError> {
    i64::try_from(i).map_err(|_| format!("row id {i} does not fit an i64").into())
}

pub fn latency_buffer(n: u64) -> Result<Vec<u64>, BoxError> {
    let n = usize::try_from(n).map_err(|_| "--writes too large for this machine")?;
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| format!("cannot allocate {n} latency samples"))?;
    Ok(v)
}

pub fn elapsed_ns(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn open_raw(path: &Path, sync: Synchronous) -> Result<Connection, BoxError> {
    let conn = Connection::open(path)?;
    setup(&conn, sync)?;
    Ok(conn)
}

pub fn close_raw(conn: Connection) -> Result<(), BoxError> {
    conn.close().map_err(|(_, e)| Box::new(e) as BoxError)
}

/// Raw rusqlite on this thread, autocommit: one transaction per insert.
/// Latency: one `execute`, which includes that insert's COMMIT (and its WAL
/// fsync under FULL, and an auto-checkpoint when one falls on it).
///
/// # Errors
///
/// Any SQLite error, or a wrong row count after the run.
pub fn raw_per_insert(path: &Path, sync: Synchronous, writes: u64) -> Result<Run, BoxError> {
    let conn = open_raw(path, sync)?;
    let mut latencies_ns = latency_buffer(writes)?;
    let (elapsed, cpu_ns) = {
        let mut stmt = conn.prepare(INSERT_SQL)?;
        let cpu = cpu_ns();
        let start = Instant::now();
        for i in 0..writes {
            let t = Instant::now();
            stmt.execute(params![id(i)?, &BLOB[..]])?;
            latencies_ns.push(elapsed_ns(t));
        }
        (start.elapsed(), cpu_ns() - cpu)
    };
    check_count(&conn, writes)?;
    close_raw(conn)?;
    Ok(Run {
        writes,
        elapsed,
        latencies_ns,
        cpu_ns,
    })
}

/// Raw rusqlite on this thread, `BATCH_SIZE` inserts per explicit
/// transaction: the ceiling for one connection.
/// Latency, per insert: from the start of its `execute` to the return of its
/// batch's COMMIT, i.e. when that insert is committed. So p50 is about half a
/// batch and max about a whole batch (not the batch time divided by 1000,
/// which would be a mean cost, not a latency anyone waits for).
///
/// # Errors
///
/// Any SQLite error, or a wrong row count after the run.
pub fn raw_batched(path: &Path, sync: Synchronous, writes: u64) -> Result<Run, BoxError> {
    let conn = open_raw(path, sync)?;
    let mut latencies_ns = latency_buffer(writes)?;
    let mut starts: Vec<Instant> = Vec::with_capacity(BATCH_SIZE);
    let (elapsed, cpu_ns) =
        {
            let mut insert = conn.prepare(INSERT_SQL)?;
            let mut begin = conn.prepare("BEGIN")?;
            let mut commit = conn.prepare("COMMIT")?;
            let cpu = cpu_ns();
            let start = Instant::now();
            let mut i = 0;
            while i < writes {
                let end = writes.min(i + BATCH_SIZE as u64);
                starts.clear();
                begin.execute([])?;
                for j in i..end {
                    starts.push(Instant::now());
                    insert.execute(params![id(j)?, &BLOB[..]])?;
                }
                commit.execute([])?;
                let done = Instant::now();
                latencies_ns.extend(starts.iter().map(|s| {
                    u64::try_from(done.duration_since(*s).as_nanos()).unwrap_or(u64::MAX)
                }));
                i = end;
            }
            (start.elapsed(), cpu_ns() - cpu)
        };
    check_count(&conn, writes)?;
    close_raw(conn)?;
    Ok(Run {
        writes,
        elapsed,
        latencies_ns,
        cpu_ns,
    })
}

fn flatten(e: tokio_rusqlite::Error<BoxError>) -> BoxError {
    match e {
        tokio_rusqlite::Error::Error(inner) => inner,
        tokio_rusqlite::Error::Close((_, inner)) => Box::new(inner),
        other => other.to_string().into(),
    }
}

/// `tokio_rusqlite::Connection::call`, one insert per call, autocommit, with
/// `in_flight` tasks each awaiting its own call (a closed loop: a task submits
/// its next insert when its previous reply arrives, so exactly `in_flight`
/// calls are outstanding until the work runs out).
/// Latency: from just before `call` (submit) to its reply being seen by the
/// awaiting task.
///
/// The runtime is current-thread: the SQLite work runs on tokio-rusqlite's
/// own thread anyway, an actix arbiter (walguard's side) is a current-thread
/// runtime too, and on a 2-core machine this keeps one core per thread.
///
/// # Errors
///
/// Any SQLite or runtime error, or a wrong row count after the run.
pub fn tokio_rusqlite(
    path: &Path,
    sync: Synchronous,
    writes: u64,
    in_flight: usize,
) -> Result<Run, BoxError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let conn = tokio_rusqlite::Connection::open(path).await?;
        conn.call(move |c| {
            setup(c, sync)?;
            // Warm the statement cache, as the raw peers prepare before timing.
            c.prepare_cached(INSERT_SQL)?;
            Ok::<_, BoxError>(())
        })
        .await
        .map_err(flatten)?;

        let next = Arc::new(AtomicU64::new(0));
        let share = writes.div_ceil(in_flight as u64);
        let cpu = cpu_ns();
        let start = Instant::now();
        let mut tasks = Vec::with_capacity(in_flight);
        for _ in 0..in_flight {
            let conn = conn.clone();
            let next = Arc::clone(&next);
            let mut latencies = latency_buffer(share)?;
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= writes {
                        break;
                    }
                    let row = id(i)?;
                    let t = Instant::now();
                    conn.call(move |c| {
                        c.prepare_cached(INSERT_SQL)?
                            .execute(params![row, &BLOB[..]])?;
                        Ok::<_, BoxError>(())
                    })
                    .await
                    .map_err(flatten)?;
                    latencies.push(elapsed_ns(t));
                }
                Ok::<_, BoxError>(latencies)
            }));
        }
        let mut latencies_ns = latency_buffer(writes)?;
        let mut first_error = None;
        for task in tasks {
            match task.await {
                Ok(Ok(l)) => latencies_ns.extend(l),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(join) => {
                    first_error.get_or_insert(format!("insert task failed: {join}").into());
                }
            }
        }
        let elapsed = start.elapsed();
        let cpu_ns = cpu_ns() - cpu;
        if let Some(e) = first_error {
            return Err(e);
        }

        conn.call(move |c| check_count(c, writes))
            .await
            .map_err(flatten)?;
        conn.close()
            .await
            .map_err(|e| -> BoxError { Box::new(e) })?;
        Ok(Run {
            writes,
            elapsed,
            latencies_ns,
            cpu_ns,
        })
    })
}
