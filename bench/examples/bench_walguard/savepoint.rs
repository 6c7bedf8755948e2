//! `--extra savepoint-cost`: what a savepoint around every write of a group
//! would cost.

use std::time::Instant;

use rusqlite::params;
use walguard::{Settings, Statement, Store};
use walguard_bench::{INSERT_SQL, PAYLOAD as BLOB};

use crate::args::Args;
use crate::rows::{sync_name, temp_dir};
use crate::{BoxError, DB_FILE};

/// Per-write cost of groups of 256 inserts on one connection: plain, with a
/// savepoint around each insert, through `Store::execute_group` without and
/// with one failing insert per group (which makes the group run again with
/// savepoints).
pub(crate) fn savepoint_cost(args: &Args) -> Result<(), BoxError> {
    const GROUP: u64 = 256;
    for &sync in &args.synchronous {
        let groups = args.writes.div_ceil(GROUP);
        let writes = groups * GROUP;
        let mut medians = Vec::new();
        for variant in 0..4 {
            let mut per_write = Vec::new();
            for _ in 0..args.runs {
                let dir = temp_dir()?;
                let mut settings = Settings::for_database(dir.path().join(DB_FILE));
                settings.database.synchronous = sync;
                let mut store = Store::open(&settings.database)?;
                store.set_size_threshold(settings.checkpoint.size_threshold_frames)?;
                store.execute(&Statement::new(walguard_bench::CREATE_TABLE_SQL))?;
                let start = Instant::now();
                for g in 0..groups {
                    let ids = (g * GROUP)..((g + 1) * GROUP);
                    match variant {
                        0 | 1 => {
                            let savepoints = variant == 1;
                            store.call(|c| {
                                let tx = c.transaction()?;
                                {
                                    let mut insert = tx.prepare_cached(INSERT_SQL)?;
                                    for id in ids {
                                        if savepoints {
                                            tx.prepare_cached("SAVEPOINT w")?.execute([])?;
                                        }
                                        insert.execute(params![id as i64, &BLOB[..]])?;
                                        if savepoints {
                                            tx.prepare_cached("RELEASE w")?.execute([])?;
                                        }
                                    }
                                }
                                tx.commit()
                            })?;
                        }
                        _ => {
                            let mut stmts: Vec<Statement> = ids
                                .map(|id| {
                                    Statement::new(INSERT_SQL)
                                        .bind(id as i64)
                                        .bind(BLOB.to_vec())
                                })
                                .collect();
                            if variant == 3 {
                                // A duplicate of the group's first id.
                                let first = (g * GROUP) as i64;
                                stmts[GROUP as usize / 2] =
                                    Statement::new(INSERT_SQL).bind(first).bind(BLOB.to_vec());
                            }
                            let failed = store
                                .execute_group(&stmts)
                                .iter()
                                .filter(|r| r.is_err())
                                .count();
                            if failed != usize::from(variant == 3) {
                                return Err(format!("{failed} writes failed in a group").into());
                            }
                        }
                    }
                    let _ = store.checkpoint_if_due();
                }
                per_write.push(start.elapsed().as_secs_f64() * 1e6 / writes as f64);
                store.close().map_err(|(_, e)| e)?;
                dir.close()?;
            }
            per_write.sort_by(f64::total_cmp);
            medians.push(per_write[(per_write.len() - 1) / 2]);
        }
        println!(
            "{{\"measure\":\"savepoint-cost\",\"synchronous\":\"{}\",\"group\":{GROUP},\
             \"writes\":{writes},\"runs\":{},\"plain_us_per_write\":{:.3},\
             \"savepoint_each_us_per_write\":{:.3},\"execute_group_us_per_write\":{:.3},\
             \"execute_group_one_failure_us_per_write\":{:.3}}}",
            sync_name(sync),
            args.runs,
            medians[0],
            medians[1],
            medians[2],
            medians[3],
        );
    }
    Ok(())
}
