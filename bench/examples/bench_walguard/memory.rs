//! `--extra memory`: peak RSS of a child process after 100k and 1M writes.

use walguard::settings::Synchronous;
use walguard_bench::Until;

use crate::BoxError;
use crate::args::Args;
use crate::rows::{Setup, one_run};

/// `VmHWM` of this process, in KiB.
pub(crate) fn vm_hwm_kib() -> Result<u64, BoxError> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .ok_or("no VmHWM in /proc/self/status")?;
    let kib = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kib)
}

pub(crate) async fn memory_child(args: &Args) -> Result<(), BoxError> {
    let setup = Setup {
        sync: Synchronous::Normal,
        group_commit: true,
        in_flight: 256,
        max_batch: None,
        checkpoint_loop: None,
        until: Until::Writes(args.writes),
    };
    let run = one_run(setup).await?;
    println!(
        "{{\"measure\":\"memory\",\"writes\":{},\"vm_hwm_kib\":{}}}",
        run.writes,
        vm_hwm_kib()?
    );
    Ok(())
}

/// Runs `memory-child` in fresh processes (peak RSS only grows) for 100k and
/// 1M writes.
pub(crate) fn memory(args: &Args) -> Result<(), BoxError> {
    let exe = std::env::current_exe()?;
    // Medians of `--runs` children per size, the children of the two sizes
    // taking turns (100k, 1M, 100k, 1M...).
    let mut peaks: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..args.runs {
        for (i, writes) in [100_000u64, 1_000_000].into_iter().enumerate() {
            let out = std::process::Command::new(&exe)
                .args(["--extra", "memory-child", "--writes", &writes.to_string()])
                .stderr(std::process::Stdio::inherit())
                .output()?;
            if !out.status.success() {
                return Err(format!("the memory child for {writes} writes failed").into());
            }
            let line = String::from_utf8(out.stdout)?;
            print!("{line}");
            let kib: u64 = line
                .split("\"vm_hwm_kib\":")
                .nth(1)
                .and_then(|rest| rest.trim().trim_end_matches('}').parse().ok())
                .ok_or("cannot read the child's VmHWM")?;
            peaks[i].push(kib);
        }
    }
    let median = |v: &mut Vec<u64>| {
        v.sort_unstable();
        v[(v.len() - 1) / 2]
    };
    let ratios: Vec<String> = peaks[0]
        .iter()
        .zip(&peaks[1])
        .map(|(a, b)| format!("{:.3}", *b as f64 / *a as f64))
        .collect();
    let (small, large) = (median(&mut peaks[0]), median(&mut peaks[1]));
    println!(
        "{{\"measure\":\"memory-ratio\",\"runs\":{},\"vm_hwm_100k_kib\":{small},\
         \"vm_hwm_1m_kib\":{large},\"vm_hwm_1m_over_100k\":{:.3},\"pairwise\":[{}]}}",
        args.runs,
        large as f64 / small as f64,
        ratios.join(",")
    );
    Ok(())
}
