//! The results of `walguard bench`: the tables on a terminal and the JSON
//! objects of `--json`, every figure through the one rounding rule
//! ([`walguard::settings::figure`]).

use std::fmt::Write as _;
use std::time::Duration;

use walguard::Settings;
use walguard::settings::format_duration;
use walguard_bench::CheckpointMark;

use super::{OpenRow, Row};
use crate::cli::BenchArgs;
use crate::status::{self, figure, ms, secs};

/// The open-loop table, on stdout after the closed-loop one.
pub(super) fn open_table(open: &[OpenRow], args: &BenchArgs) -> String {
    let mut text = format!(
        "\nOpen loop: writes arrive at a fixed rate for {} per level; latency from each \
         write's due time to its reply (hdrhistogram, 3 significant digits)\n\n",
        format_duration(args.open_duration)
    );
    let _ = writeln!(
        text,
        "{:>7} {:>12} {:>10} {:>10} {:>10} {:>10} {:>10} {:>11} {:>9} {:>10} {:>10}",
        "load",
        "writes/s",
        "writes",
        "p50",
        "p99",
        "p99.9",
        "max",
        "checkpoints",
        "ckpt max",
        "ckpt busy",
        "send lag"
    );
    for row in open {
        let run = &row.run;
        let _ = writeln!(
            text,
            "{:>6}% {:>12} {:>10} {:>10} {:>10} {:>10} {:>10} {:>11} {:>9} {:>9.1}% {:>10}",
            row.percent,
            thousands(run.rate.round() as u64),
            thousands(run.writes),
            latency(run.quantile_us(0.50)),
            latency(run.quantile_us(0.99)),
            latency(run.quantile_us(0.999)),
            latency(run.max_us()),
            writer_marks(row).count(),
            writer_marks(row).map(|m| m.elapsed).max().map_or_else(
                || "-".to_owned(),
                |max| format!("{:.2} ms", max.as_secs_f64() * 1000.0)
            ),
            busy_percent(row),
            latency(run.send_lag_max.as_secs_f64() * 1e6),
        );
    }
    text.push_str(
        "\nload: percent of the capacity measured above. checkpoints, ckpt max, ckpt busy: \
         the checkpoints the writer ran (from the checkpoint log; phase 1 of a two-phase \
         size checkpoint, reason backfill, runs on its own thread and is not counted), their \
         longest, and their total length over the run's, the share of the time the writer \
         spent checkpointing. send lag: the latest the generator \
         sent a write after its due time (included in the latency; a large one says the \
         client fell behind).\n",
    );
    text
}

/// The checkpoints of an open-loop run that ran on the writer: all but
/// phase 1 of the two-phase size checkpoint (reason `backfill`).
pub(super) fn writer_marks(row: &OpenRow) -> impl Iterator<Item = &CheckpointMark> {
    row.marks.iter().filter(|m| m.reason != "backfill")
}

/// The share of an open-loop run the writer spent in checkpoints, in %.
pub(super) fn busy_percent(row: &OpenRow) -> f64 {
    let busy: Duration = writer_marks(row).map(|m| m.elapsed).sum();
    100.0 * busy.as_secs_f64() / row.run.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
}

/// One open-loop run as a JSON object.
pub(super) fn open_json(settings: &Settings, row: &OpenRow) -> serde_json::Value {
    let run = &row.run;
    serde_json::json!({
        "system": "walguard-group-commit",
        "workload": "open-loop",
        "synchronous": sync_name(settings),
        "percent": row.percent,
        "rate": figure(run.rate),
        "writes": run.writes,
        "p50_us": figure(run.quantile_us(0.50)),
        "p99_us": figure(run.quantile_us(0.99)),
        "p999_us": figure(run.quantile_us(0.999)),
        "max_us": figure(run.max_us()),
        "send_lag_max_us": figure(run.send_lag_max.as_secs_f64() * 1e6),
        "checkpoints": run.checkpoints.counts.total,
        "writer_checkpoints": writer_marks(row).count(),
        "size_checkpoints": run.size_checkpoints,
        "checkpoint_max_ms": writer_marks(row).map(|m| m.elapsed).max().map(ms),
        "backfill_max_ms": row.marks.iter().filter(|m| m.reason == "backfill").map(|m| m.elapsed).max().map(ms),
        "checkpoint_busy_percent": figure(busy_percent(row)),
        "wal_peak_frames": run.wal_peak_frames,
    })
}

/// `1234567` as `1,234,567`.
pub(super) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A latency in µs as µs below 1 ms, else ms.
pub(super) fn latency(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.1} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

pub(super) fn sync_name(settings: &Settings) -> String {
    settings.database.synchronous.as_str().to_owned()
}

/// The checkpoint loop, as the header says it.
pub(super) fn loop_name(settings: &Settings) -> String {
    if settings.checkpoint.enabled {
        format!("every {}", format_duration(settings.checkpoint.interval))
    } else {
        "off".to_owned()
    }
}

/// The final table, on stdout.
pub(super) fn table(settings: &Settings, db: &str, rows: Vec<Row>, args: &BenchArgs) -> String {
    let work = match args.duration {
        Some(d) => format!("{} of", format_duration(d)),
        None => thousands(args.writes),
    };
    let mut text = format!(
        "walguard bench on {db} (removed after): SQLite {}, synchronous={}, checkpoint loop {}, \
         size checkpoint at {} frames, max_batch {}\n\
         {work} single-row inserts of {} bytes per configuration, median of {} run(s)\n\n",
        rusqlite::version(),
        sync_name(settings),
        loop_name(settings),
        settings.checkpoint.size_threshold_frames,
        settings.database.max_batch,
        walguard_bench::PAYLOAD_BYTES,
        args.runs,
    );
    let _ = writeln!(
        text,
        "{:<12} {:>9} {:>10} {:>12} {:>10} {:>10} {:>10} {:>11} {:>9}  WAL peak",
        "group commit",
        "in flight",
        "writes",
        "writes/s",
        "p50",
        "p99",
        "max",
        "checkpoints",
        "ckpt p95",
    );
    for Row {
        config, mut run, ..
    } in rows
    {
        let report = &run.checkpoints;
        let count = report.counts.total;
        let p95 = if report.window.n() > 0 {
            format!("{:.2} ms", report.window.p95().as_secs_f64() * 1000.0)
        } else {
            "-".to_owned()
        };
        let peak = run.wal_peak_frames.map_or_else(
            || "-".to_owned(),
            |f| format!("{f} frames ({})", status::bytes(run.wal_file_bytes)),
        );
        let _ = writeln!(
            text,
            "{:<12} {:>9} {:>10} {:>12} {:>10} {:>10} {:>10} {:>11} {:>9}  {}",
            if config.group_commit { "on" } else { "off" },
            config.in_flight,
            thousands(run.writes),
            thousands(run.throughput().round() as u64),
            latency(run.latency.percentile_us(50.0)),
            latency(run.latency.percentile_us(99.0)),
            latency(run.latency.max_us()),
            count,
            p95,
            peak,
        );
    }
    text.push_str(
        "\nLatency is submit to reply, per write. Checkpoints: those of the timed phase \
         (interval and size-triggered), with the p95 of their durations. WAL peak: frames \
         from the WAL hook, bytes of the -wal file.\n",
    );
    text
}

/// One configuration as a JSON object: `bench/README.md`'s row fields plus
/// the checkpoint and WAL figures.
pub(super) fn row_json(settings: &Settings, row: Row, runs: u32) -> serde_json::Value {
    let Row {
        config, mut run, ..
    } = row;
    let report = &run.checkpoints;
    serde_json::json!({
        "system": if config.group_commit { "walguard-group-commit" } else { "walguard" },
        "workload": "single-insert",
        "synchronous": sync_name(settings),
        "group_commit": config.group_commit,
        "in_flight": config.in_flight,
        "writes": run.writes,
        "seconds": secs(run.elapsed),
        "throughput": figure(run.throughput()),
        "p50_us": figure(run.latency.percentile_us(50.0)),
        "p99_us": figure(run.latency.percentile_us(99.0)),
        "max_us": figure(run.latency.max_us()),
        "runs": runs,
        "checkpoints": report.counts.total,
        "size_checkpoints": run.size_checkpoints,
        "checkpoint_p95_ms": (report.window.n() > 0).then(|| ms(report.window.p95())),
        "checkpoint_max_ms": (report.window.n() > 0).then(|| ms(report.window.max())),
        "wal_peak_frames": run.wal_peak_frames,
        "wal_file_bytes": run.wal_file_bytes,
        "mean_group": figure(run.mean_group),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(latency(59.64), "59.6 µs");
        assert_eq!(latency(5031.1), "5.03 ms");
    }
}
