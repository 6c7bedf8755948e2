//! Process tests of `walguard bench`: a tiny run on a real file in a temp
//! dir, and the refusal of a path that exists. Each takes well under a
//! second of benchmark time (`--writes 200`).

use std::path::Path;
use std::process::Output;

#[path = "support/cli.rs"]
mod support;
use support::{files_in, text, walguard};

fn bench(dir: &Path, args: &[&str]) -> Output {
    walguard(dir)
        .args(["bench", "--writes", "200", "--in-flight", "1,8"])
        .args(args)
        .output()
        .unwrap()
}

/// The default: a fresh file beside `database.path`, the table on stdout,
/// and nothing left behind; the chart when asked for.
#[test]
fn a_tiny_run_prints_the_table_and_removes_its_database() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("latency.svg");
    let out = bench(dir.path(), &["--chart", chart.to_str().unwrap()]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "exit {:?}\n{stderr}", out.status);
    assert!(
        stdout.contains("writes/s") && stdout.contains("WAL peak"),
        "{stdout}"
    );
    // group commit on at 1 and 8, off at 8.
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("on ") || l.starts_with("off "))
        .collect();
    assert_eq!(rows.len(), 3, "{stdout}");
    assert!(rows.iter().all(|r| r.contains("200")), "{stdout}");
    // Not a terminal: plain progress lines, no escape sequences.
    assert!(
        stderr.contains("running") && !stderr.contains('\x1b'),
        "{stderr}"
    );
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("p99 per bucket"));
    assert_eq!(files_in(dir.path()), ["latency.svg"], "left behind");
}

/// `bench` with group commit on and `json_flags` on a new `dir/bench.db`,
/// which must succeed; its output and the JSON objects on its stdout.
fn json_rows(dir: &Path, json_flags: &[&str]) -> (Output, Vec<serde_json::Value>) {
    let db = dir.join("bench.db");
    let mut args = vec!["--group-commit", "on", "--db", db.to_str().unwrap()];
    args.extend_from_slice(json_flags);
    let out = bench(dir, &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (out, rows)
}

/// `--log-format json`: one object per configuration, in the fields
/// `bench/table.py` reads plus the checkpoint and WAL figures.
#[test]
fn json_output_has_one_object_per_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let (_, rows) = json_rows(dir.path(), &["--log-format", "json"]);
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!(row["writes"], 200);
        assert_eq!(row["system"], "walguard-group-commit");
        assert!(row["throughput"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["wal_peak_frames"].as_u64().unwrap() > 0, "{row}");
    }
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
}

/// `--json` (the flag every command that prints a result takes): the same
/// objects as under `--log-format json`, and every figure through the one
/// rounding rule, 3 decimals at most (a throughput printed as
/// `430557.5907375007` before).
#[test]
fn json_prints_every_figure_to_three_decimals() {
    let dir = tempfile::tempdir().unwrap();
    let (out, rows) = json_rows(dir.path(), &["--json"]);
    assert_eq!(rows.len(), 2, "{}", text(&out.stdout));
    for row in &rows {
        assert_eq!(row["writes"], 200);
        for (key, value) in row.as_object().unwrap() {
            if let Some(x) = value.as_f64() {
                let printed = value.to_string();
                let decimals = printed.split_once('.').map_or(0, |(_, d)| d.len());
                assert!(decimals <= 3, "{key}: {printed} ({x}) in {row}");
            }
        }
    }
    // Log lines stay text on stderr: `--json` is the result's format.
    assert!(
        !text(&out.stderr).trim_start().starts_with('{'),
        "{}",
        text(&out.stderr)
    );
}

/// An existing path is refused with exit 2 and left exactly as it was.
#[test]
fn an_existing_db_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    std::fs::write(&db, b"not yours to touch").unwrap();
    let before = std::fs::metadata(&db).unwrap().modified().unwrap();
    let out = bench(dir.path(), &["--db", db.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("exists") && stderr.contains("state.db"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    assert_eq!(std::fs::read(&db).unwrap(), b"not yours to touch");
    assert_eq!(std::fs::metadata(&db).unwrap().modified().unwrap(), before);
    assert_eq!(files_in(dir.path()), ["state.db"]);
}

/// `--open-loop` (issue 12): after the closed loop, writes at a fixed share
/// of the measured capacity, one JSON object per level with the open-loop
/// percentiles; the chart is drawn for that run, with its checkpoints as
/// bars; nothing is left behind.
#[test]
fn the_open_loop_runs_at_a_share_of_the_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("open.svg");
    let out = walguard(dir.path())
        .args([
            "bench",
            "--writes",
            "2000",
            "--in-flight",
            "8",
            "--group-commit",
            "on",
            "--open-loop",
            "10",
            "--open-duration",
            "300ms",
            "--log-format",
            "json",
            "--chart",
            chart.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let capacity = rows[0]["throughput"].as_f64().unwrap();
    let open = &rows[1];
    assert_eq!(open["workload"], "open-loop");
    assert_eq!(open["percent"], 10);
    let rate = open["rate"].as_f64().unwrap();
    assert!((rate - capacity / 10.0).abs() < 1.0, "{open}");
    // Every write of the schedule was sent and answered.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let expected = (rate * 0.3).ceil() as u64;
    assert_eq!(open["writes"].as_u64().unwrap(), expected, "{open}");
    let (p50, p999, max) = (
        open["p50_us"].as_f64().unwrap(),
        open["p999_us"].as_f64().unwrap(),
        open["max_us"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p999 && p999 <= max, "{open}");
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(
        svg.contains("due time to reply"),
        "the open-loop axis title"
    );
    assert_eq!(files_in(dir.path()), ["open.svg"], "left behind");
}

/// A production config with replication on: the benchmark never
/// replicates its throwaway database (it would land in that replica). The
/// config names a Litestream binary that does not exist and a `file://`
/// replica: a bench that started replication would fail on the binary, or
/// leave files in the replica's directory.
#[test]
fn bench_ignores_the_replication_section() {
    let dir = tempfile::tempdir().unwrap();
    let replica = dir.path().join("replica");
    std::fs::create_dir(&replica).unwrap();
    let config = dir.path().join("production.yaml");
    std::fs::write(
        &config,
        format!(
            "database:\n  path: {}\nreplication:\n  mode: litestream\n  url: file://{}\n  litestream_binary: {}\n",
            dir.path().join("production.db").display(),
            replica.display(),
            dir.path().join("no-such-litestream").display()
        ),
    )
    .unwrap();
    let out = bench(
        dir.path(),
        &["--group-commit", "on", "--config", config.to_str().unwrap()],
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "exit {:?}\n{stderr}", out.status);
    assert!(
        stderr.contains("the benchmark ignores it"),
        "the bench must say it ignores replication:\n{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(&replica).unwrap().count(),
        0,
        "the bench wrote into the replica"
    );
}
