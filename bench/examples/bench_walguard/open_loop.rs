//! `--extra open-loop`: writes arriving at a fixed share of the capacity,
//! with each `checkpoint.size_checkpoint` taking turns.

use std::time::Duration;

use walguard::SizeCheckpoint;
use walguard_bench::{Progress, Until};

use crate::args::Args;
use crate::rows::{Setup, one_run, settings_for, sync_name, temp_dir};
use crate::{BoxError, DB_FILE};

/// The open loop at 25, 50 and 75 % of the capacity a closed loop at 256
/// in flight measured just before, `--runs` rounds; one JSON line per run.
/// The size checkpoints the open loop compares (before and after issue 12
/// item 3).
pub(crate) const SIZE_CHECKPOINTS: [SizeCheckpoint; 2] =
    [SizeCheckpoint::OnWriter, SizeCheckpoint::TwoPhase];

pub(crate) fn size_checkpoint_name(mode: SizeCheckpoint) -> &'static str {
    match mode {
        SizeCheckpoint::OnWriter => "on_writer",
        _ => "two_phase",
    }
}

pub(crate) async fn open_loop(args: &Args) -> Result<(), BoxError> {
    use walguard_bench::{OpenLoop, run_open_loop};
    const LEVELS_PERCENT: [u32; 3] = [25, 50, 75];
    let seconds = Duration::from_secs(args.seconds);
    for &sync in &args.synchronous {
        // Before and after the two-phase size checkpoint, taking turns
        // round by round, so that load drift hits both alike.
        for (round, mode) in (1..=args.runs)
            .flat_map(|round| SIZE_CHECKPOINTS.iter().map(move |&mode| (round, mode)))
        {
            let setup = Setup {
                sync,
                group_commit: true,
                in_flight: 256,
                max_batch: None,
                checkpoint_loop: None,
                until: Until::Deadline(seconds),
            };
            let capacity = one_run(setup).await?.throughput();
            eprintln!(
                "bench_walguard: open-loop {} round {round}/{}: capacity {capacity:.0} writes/s",
                sync_name(sync),
                args.runs
            );
            for percent in LEVELS_PERCENT {
                let rate = capacity * f64::from(percent) / 100.0;
                let dir = temp_dir()?;
                let mut settings = settings_for(&dir.path().join(DB_FILE), &setup);
                settings.checkpoint.size_checkpoint = mode;
                let run = run_open_loop(
                    settings,
                    &OpenLoop::new(rate, seconds),
                    &Progress::default(),
                )
                .await?;
                dir.close()?;
                let window = run.checkpoints.window;
                println!(
                    "{{\"measure\":\"open-loop\",\"system\":\"walguard-group-commit\",\
                     \"synchronous\":\"{}\",\"size_checkpoint\":\"{}\",\"round\":{round},\
                     \"capacity\":{capacity:.0},\
                     \"percent\":{percent},\"rate\":{rate:.0},\"writes\":{},\"p50_us\":{:.1},\
                     \"p99_us\":{:.1},\"p999_us\":{:.1},\"max_us\":{:.1},\
                     \"send_lag_max_us\":{:.1},\"checkpoints\":{},\
                     \"checkpoint_p50_ms\":{:.3},\"checkpoint_max_ms\":{:.3},\
                     \"wal_peak_frames\":{}}}",
                    sync_name(sync),
                    size_checkpoint_name(mode),
                    run.writes,
                    run.quantile_us(0.50),
                    run.quantile_us(0.99),
                    run.quantile_us(0.999),
                    run.max_us(),
                    run.send_lag_max.as_secs_f64() * 1e6,
                    run.size_checkpoints,
                    window.p50().as_secs_f64() * 1000.0,
                    window.max().as_secs_f64() * 1000.0,
                    run.wal_peak_frames.unwrap_or(0),
                );
            }
        }
    }
    Ok(())
}
