//! The guest writer: runs inside the VM (this test binary, started by the
//! guest's init as the ignored test `guest_writer`) and drives the real
//! actors on the ext4 data disk in real time.
//!
//! - `WalGuard` with `DbActor` on its own arbiter, the interval loop every
//!   [`INTERVAL`], size-triggered checkpoints at [`SIZE_THRESHOLD_FRAMES`];
//! - single writes, bursts of writes sent at once (one group commit),
//!   transactions of several rows;
//! - a reader connection that sometimes holds a snapshot, which pins the
//!   WAL and turns checkpoints partial (no durability point);
//! - a clean shutdown and a new system every few dozen steps.
//!
//! After each step it asks the store what is durable
//! (`DbHandle::durability`), maps "durable through" from writes to row ids
//! as `crash_lab::power` does, and prints each acknowledged row range and
//! each move of the durable row on the console ([`Line`]). It never stops by
//! itself before [`LIFETIME`]: the host kills the VM first.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::Connection;
use walguard::settings::Synchronous;
use walguard::testing::{CRASH_TABLE_SQL, crash_row};
use walguard::{Durability, Settings};
use walguard_actors::WalGuard;

use crate::burst::sent_at_once;
use crate::protocol::Line;

/// The checkpoint loop's interval in the guest: 400 ms.
pub(crate) const INTERVAL: Duration = Duration::from_millis(400);

/// WAL frames that trigger a size checkpoint in the guest: 200.
pub(crate) const SIZE_THRESHOLD_FRAMES: u32 = 200;

/// The longest the writer runs should the host never kill it: 300 s.
const LIFETIME: Duration = Duration::from_secs(300);

/// The longest pause between two steps: 30 ms (real time), so that
/// interval checkpoints land between and among the writes.
const MAX_PAUSE_MS: u64 = 30;

fn say(line: &Line) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn settings(path: &Path, synchronous: Synchronous) -> Settings {
    let mut settings = Settings::for_database(path);
    settings.database.synchronous = synchronous;
    settings.checkpoint.enabled = true;
    settings.checkpoint.interval = INTERVAL;
    settings.checkpoint.size_threshold_frames = SIZE_THRESHOLD_FRAMES;
    settings.checkpoint.shutdown_timeout = Duration::from_millis(500);
    settings
}

/// The writer's own account: ids, and the acknowledged writes of the
/// current session in commit order (what `Durability::durable_writes`
/// counts).
struct Ledger {
    next_id: u64,
    next_req: u64,
    /// The last row id of each acknowledged write of this session (0 for
    /// the `CREATE TABLE`).
    session: Vec<u64>,
    durable_row: u64,
    generation: u64,
}

impl Ledger {
    fn issue(&mut self, rows: u64) -> (u64, u64) {
        let (id, req) = (self.next_id, self.next_req);
        self.next_id += rows;
        self.next_req += 1;
        (id, req)
    }

    fn acked(&mut self, first: u64, last: u64) {
        self.session.push(last);
        if last >= first {
            say(&Line::Ack(first, last));
        }
    }

    /// A "durable through" reading of the current session: prints the
    /// durable row when it moves.
    fn observe(&mut self, durability: Option<Durability>) {
        let Some(d) = durability else { return };
        if d.writes() != self.session.len() as u64 {
            say(&Line::Error(format!(
                "the store counts {} writes, the writer saw {} acknowledged",
                d.writes(),
                self.session.len()
            )));
            return;
        }
        let row = d
            .durable_writes()
            .checked_sub(1)
            .and_then(|i| self.session.get(i as usize).copied())
            .unwrap_or(0);
        if row > self.durable_row {
            self.durable_row = row;
            say(&Line::Durable(row));
        }
    }
}

/// The guest's main: writes into `dir` under `synchronous` until killed.
pub(crate) fn main(dir: &Path, seed: u64, synchronous: Synchronous) {
    std::thread::spawn(|| {
        std::thread::sleep(LIFETIME);
        std::process::exit(3);
    });
    let path = dir.join(crate::DB_FILE);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ledger = Ledger {
        next_id: 1,
        next_req: 1,
        session: Vec::new(),
        durable_row: 0,
        generation: seed,
    };
    let settings = settings(&path, synchronous);
    let outcome: Result<std::convert::Infallible, String> =
        actix::System::new().block_on(async move {
            let mut first = true;
            loop {
                let guard = WalGuard::start(settings.clone()).map_err(|e| format!("start: {e}"))?;
                ledger.session.clear();
                if first {
                    guard
                        .db()
                        .execute(CRASH_TABLE_SQL)
                        .await
                        .map_err(|e| format!("create table: {e}"))?;
                    ledger.acked(1, 0);
                    first = false;
                    say(&Line::Ready);
                }
                session(&guard, &path, &mut rng, &mut ledger).await?;
                say(&Line::ShutdownBegin);
                let report = guard
                    .shutdown()
                    .await
                    .map_err(|e| format!("shutdown: {e}"))?;
                ledger.observe(report.db.durability);
                say(&Line::ShutdownEnd);
            }
        });
    let Err(e) = outcome;
    say(&Line::Error(e));
}

/// One session of the system: 20 to 150 steps, then the caller shuts down.
async fn session(
    guard: &WalGuard,
    path: &Path,
    rng: &mut StdRng,
    ledger: &mut Ledger,
) -> Result<(), String> {
    let db = guard.db();
    let generation = ledger.generation;
    let mut reader: Option<Connection> = None;
    for _ in 0..rng.random_range(20..=150) {
        match rng.random_range(0..100) {
            0..45 => {
                let (id, req) = ledger.issue(1);
                if db.execute(crash_row(id, req, 1, generation)).await.is_ok() {
                    ledger.acked(id, id);
                }
            }
            45..70 => {
                // Spawned at once: the burst is on the lane before DbActor
                // looks, so it becomes one group commit.
                let sent: Vec<_> = (0..rng.random_range(2..=24))
                    .map(|_| {
                        let (id, req) = ledger.issue(1);
                        (id, sent_at_once(db, crash_row(id, req, 1, generation)))
                    })
                    .collect();
                for (id, reply) in sent {
                    if matches!(reply.await, Ok(Ok(_))) {
                        ledger.acked(id, id);
                    }
                }
            }
            70..85 => {
                let rows = rng.random_range(2..=6);
                let (first, req) = ledger.issue(rows);
                let stmts = (first..first + rows)
                    .map(|id| crash_row(id, req, rows, generation))
                    .collect();
                if db.transaction(stmts).await.is_ok() {
                    ledger.acked(first, first + rows - 1);
                }
            }
            85..93 if reader.is_none() => {
                let conn = Connection::open(path).map_err(|e| format!("reader open: {e}"))?;
                conn.execute_batch("BEGIN")
                    .and_then(|()| {
                        conn.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
                    })
                    .map_err(|e| format!("reader snapshot: {e}"))?;
                reader = Some(conn);
            }
            85..93 => {
                if let Some(conn) = reader.take() {
                    let _ = conn.execute_batch("COMMIT");
                }
            }
            _ => {
                let ms = rng.random_range(0..=MAX_PAUSE_MS * 10);
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
        }
        let ms = rng.random_range(0..=MAX_PAUSE_MS);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ledger.observe(
            db.durability()
                .await
                .map_err(|e| format!("durability: {e}"))?,
        );
    }
    // The shutdown's TRUNCATE must not wait on our own reader.
    drop(reader);
    Ok(())
}
