//! The world a plan runs against (the system and the reader connection
//! that pins the WAL), and [`drive`], which plays a plan's steps in it.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use walguard::settings::Synchronous;
use walguard::testing::{Lane, PowerLossVfs};
use walguard_actors::WalGuard;

use super::{Ledger, Run, Step, setup, start};
use crate::burst::sent_at_once;
use crate::rows::insert;

/// The system and the reader connection a plan runs against.
pub(super) struct World<'a> {
    vfs: &'a PowerLossVfs,
    path: &'a Path,
    synchronous: Synchronous,
    guard: Option<WalGuard>,
    reader: Option<Connection>,
}

impl World<'_> {
    /// Runs one step; `Err` only for a failure of the harness itself.
    async fn step(&mut self, step: Step, ledger: &mut Ledger) -> Result<(), String> {
        let Some(g) = self.guard.as_ref() else {
            return Ok(());
        };
        match step {
            Step::Write => {
                let (req, id) = ledger.issue(1);
                if g.db().execute(insert(id, req, 1)).await.is_ok() {
                    ledger.acked(id);
                }
            }
            Step::Burst(n) => {
                // Spawned at once: the whole burst is on the lane before
                // `DbActor` looks, so it becomes one group commit.
                let sent: Vec<_> = (0..n)
                    .map(|_| {
                        let (req, id) = ledger.issue(1);
                        (id, sent_at_once(g.db(), insert(id, req, 1)))
                    })
                    .collect();
                for (id, reply) in sent {
                    if matches!(reply.await, Ok(Ok(_))) {
                        ledger.acked(id);
                    }
                }
            }
            Step::Txn(n) => {
                let (req, first) = ledger.issue(n);
                let stmts = (first..first + n).map(|id| insert(id, req, n)).collect();
                if g.db().transaction(stmts).await.is_ok() {
                    ledger.acked(first + n - 1);
                }
            }
            Step::Advance(d) => tokio::time::sleep(d).await,
            Step::Pin => {
                let conn = self
                    .vfs
                    .open(self.path, OpenFlags::default())
                    .map_err(|e| format!("reader open: {e}"))?;
                conn.execute_batch("BEGIN")
                    .and_then(|()| {
                        conn.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
                    })
                    .map_err(|e| format!("reader snapshot: {e}"))?;
                self.reader = Some(conn);
            }
            Step::Unpin => {
                if let Some(conn) = self.reader.take() {
                    // A read transaction ends without I/O.
                    let _ = conn.execute_batch("COMMIT");
                }
            }
            Step::Checkpoint(mode) => {
                let _ = g.db().checkpoint(mode).await;
            }
            Step::Restart => {
                if let Some(g) = self.guard.take() {
                    let report = g.shutdown().await.map_err(|e| format!("shutdown: {e}"))?;
                    ledger.observe(report.db.durability);
                }
                ledger.new_session();
                if !self.vfs.is_crashed() {
                    // A crash inside the shutdown's close leaves the power
                    // off: opening may then fail, and the run ends here.
                    self.guard = start(self.vfs, self.path, self.synchronous).ok();
                }
            }
        }
        Ok(())
    }
}

pub(super) async fn drive(
    vfs: &PowerLossVfs,
    path: &Path,
    steps: &[Step],
    synchronous: Synchronous,
) -> Result<Run, String> {
    let mut ledger = Ledger::default();
    setup(vfs, path, synchronous, &mut ledger).await?;
    let setup_ops = vfs.io_ops_on(Lane::Foreground);
    if vfs.io_ops_on(Lane::Backfill) != 0 {
        return Err("setup: phase 1 ran during the setup".to_owned());
    }
    let mut world = World {
        vfs,
        path,
        synchronous,
        guard: Some(start(vfs, path, synchronous).map_err(|e| format!("start: {e}"))?),
        reader: None,
    };
    for step in steps {
        if vfs.is_crashed() || world.guard.is_none() {
            break;
        }
        world.step(*step, &mut ledger).await?;
        if let Some(g) = world.guard.as_ref()
            && let Ok(durability) = g.db().durability().await
        {
            ledger.observe(durability);
        }
    }
    drop(world.reader.take());
    if let Some(g) = world.guard.take() {
        let report = g
            .shutdown()
            .await
            .map_err(|e| format!("final shutdown: {e}"))?;
        ledger.observe(report.db.durability);
    }
    Ok(Run {
        ledger,
        setup_ops,
        total_ops: 0,
        checkpoints: Vec::new(),
        backfill_ops: 0,
        phase_one: Vec::new(),
        phase_two: Vec::new(),
        crash: None,
    })
}
