//! `--extra max-batch`, `checkpoint-loop`, `wal-peak` and
//! `shutdown-truncate`: the writer under sustained writes, and the shutdown
//! TRUNCATE.

use std::time::{Duration, Instant};

use walguard::{Settings, Statement};
use walguard_actors::WalGuard;
use walguard_bench::{IN_FLIGHT_LEVELS, INSERT_SQL, PAYLOAD as BLOB, Until, wal_file};

use crate::args::Args;
use crate::rows::{Setup, measure, measure_interleaved, one_run, sync_name, temp_dir};
use crate::{BoxError, DB_FILE};

pub(crate) async fn max_batch(args: &Args) -> Result<(), BoxError> {
    for &sync in &args.synchronous {
        for (cap, in_flight) in [
            (16, 256),
            (64, 256),
            (128, 256),
            (256, 256),
            (256, 1024),
            (512, 1024),
            (1024, 1024),
        ] {
            let setup = Setup {
                sync,
                group_commit: true,
                in_flight,
                max_batch: Some(cap),
                checkpoint_loop: None,
                until: Until::Writes(args.writes),
            };
            let name = format!("walguard-group-commit-max{cap}");
            measure(&name, "single-insert", setup, args.runs).await?;
        }
    }
    Ok(())
}

pub(crate) async fn checkpoint_loop(args: &Args) -> Result<(), BoxError> {
    let seconds = Duration::from_secs(args.seconds);
    for &sync in &args.synchronous {
        for in_flight in IN_FLIGHT_LEVELS {
            let setup = |checkpoint_loop| Setup {
                sync,
                group_commit: true,
                in_flight,
                max_batch: None,
                checkpoint_loop,
                until: Until::Deadline(seconds),
            };
            let setups = [
                ("sustained", setup(None)),
                ("sustained+loop-1s", setup(Some(Duration::from_secs(1)))),
            ];
            measure_interleaved("walguard-group-commit", &setups, args.runs).await?;
        }
    }
    Ok(())
}

pub(crate) async fn wal_peak(args: &Args) -> Result<(), BoxError> {
    let seconds = Duration::from_secs(args.seconds);
    for &sync in &args.synchronous {
        let setup = Setup {
            sync,
            group_commit: true,
            in_flight: 256,
            max_batch: None,
            checkpoint_loop: None,
            until: Until::Deadline(seconds),
        };
        let run = one_run(setup).await?;
        let window = run.checkpoints.window;
        let peak_frames = run.wal_peak_frames.ok_or("the size threshold is off")?;
        println!(
            "{{\"measure\":\"wal-peak\",\"synchronous\":\"{}\",\"in_flight\":256,\"seconds\":{:.1},\
             \"writes\":{},\"threshold_frames\":{},\"peak_frames\":{},\"wal_file_bytes\":{},\
             \"size_checkpoints\":{},\"checkpoint_p50_ms\":{:.3},\"checkpoint_p95_ms\":{:.3},\
             \"checkpoint_max_ms\":{:.3}}}",
            sync_name(sync),
            run.elapsed.as_secs_f64(),
            run.writes,
            walguard::settings::DEFAULT_SIZE_THRESHOLD_FRAMES,
            peak_frames,
            run.wal_file_bytes,
            run.size_checkpoints,
            window.p50().as_secs_f64() * 1000.0,
            window.p95().as_secs_f64() * 1000.0,
            window.max().as_secs_f64() * 1000.0,
        );
    }
    Ok(())
}

/// Fills a WAL to at least 1000 frames with SQLite's and walguard's
/// size-triggered checkpoints off, then times the shutdown.
pub(crate) async fn shutdown_truncate(args: &Args) -> Result<(), BoxError> {
    const FRAMES: u64 = 1000;
    const FRAME_BYTES: u64 = 4096 + 24;
    for &sync in &args.synchronous {
        let mut samples = Vec::new();
        for _ in 0..args.runs.max(3) {
            let dir = temp_dir()?;
            let path = dir.path().join(DB_FILE);
            let mut settings = Settings::for_database(&path);
            settings.database.synchronous = sync;
            settings.database.wal_autocheckpoint = 0;
            settings.checkpoint.size_threshold_frames = 0;
            let guard = WalGuard::start(settings)?;
            let db = guard.db();
            db.execute(walguard_bench::CREATE_TABLE_SQL).await?;
            let mut id = 0i64;
            while std::fs::metadata(wal_file(&path)).map_or(0, |m| m.len())
                < 32 + FRAMES * FRAME_BYTES
            {
                let batch = (0..100)
                    .map(|_| {
                        id += 1;
                        Statement::new(INSERT_SQL).bind(id).bind(BLOB.to_vec())
                    })
                    .collect();
                db.transaction(batch).await?;
            }
            let frames = (std::fs::metadata(wal_file(&path))?.len() - 32) / FRAME_BYTES;
            let start = Instant::now();
            let report = guard.shutdown().await?;
            let wall = start.elapsed();
            let truncate = report
                .shutdown_checkpoint
                .ok_or("no shutdown checkpoint in the report")?;
            if truncate.outcome().as_str() != "completed" {
                return Err(format!("the shutdown TRUNCATE ended {}", truncate.outcome()).into());
            }
            samples.push((truncate.elapsed(), wall, frames));
            dir.close()?;
        }
        samples.sort();
        let (truncate, wall, frames) = samples[(samples.len() - 1) / 2];
        let slowest = samples.iter().map(|s| s.0).max().unwrap_or_default();
        println!(
            "{{\"measure\":\"shutdown-truncate\",\"synchronous\":\"{}\",\"wal_frames\":{frames},\
             \"truncate_ms\":{:.3},\"truncate_max_ms\":{:.3},\"shutdown_ms\":{:.3},\"runs\":{}}}",
            sync_name(sync),
            truncate.as_secs_f64() * 1000.0,
            slowest.as_secs_f64() * 1000.0,
            wall.as_secs_f64() * 1000.0,
            samples.len(),
        );
    }
    Ok(())
}
