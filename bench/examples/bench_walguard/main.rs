//! walguard's side of the benchmark (`bench/run.sh` runs it beside the
//! peers and prints one table; `docs/benchmarks.md` has a real run).
//!
//! ```sh
//! cargo run --release -p walguard-bench --example bench_walguard -- \
//!     [--writes N] [--runs N] [--synchronous normal|full|both] [--only SYSTEM]
//! ```
//!
//! The workload is the peers' (`bench/README.md`), and lives in
//! `walguard_bench` (the library of this crate), which `walguard bench` runs
//! too: a fresh file in a temp dir, WAL, `busy_timeout` 5 s, table
//! `kv(id INTEGER PRIMARY KEY, v BLOB)`, N single-row inserts of a 100-byte
//! blob, setup and close untimed, and the row count checked after the run.
//! Every insert is one `DbHandle::execute` from one of `in_flight` tasks on
//! the actix system's thread, each awaiting its reply before its next
//! insert (a closed loop); `DbActor` runs on its own arbiter thread, as it
//! does by default. Latency is submit to reply. Systems: `walguard` (group
//! commit off: one commit per insert) and `walguard-group-commit`, at 1 and
//! 256 in flight. Each configuration runs `--runs` times and the run with
//! the median throughput is reported, one JSON line per configuration on
//! stdout (the format `bench/table.py` reads). Progress goes to stderr.
//!
//! `--extra NAME` runs one of the measurements that are not table rows
//! instead (repeatable; `all` runs every one). Run them directly, not
//! through `bench/run.sh` (the peers do not know the flag):
//!
//! - `max-batch`: group commit with `database.max_batch` 16, 64, 128 and
//!   256 at 256 in flight, and 256, 512 and 1024 at 1024 in flight (table
//!   rows, system `walguard-group-commit-maxN`);
//! - `checkpoint-loop`: writer throughput and latency over `--seconds` of
//!   sustained writes, with the 1 s PASSIVE checkpoint loop and without it,
//!   the runs of the two taking turns (table rows, workload `sustained` and
//!   `sustained+loop-1s`);
//! - `wal-peak`: the WAL's peak over `--seconds` of sustained writes at full
//!   speed, in frames (from the WAL hook) and bytes (the `-wal` file);
//! - `shutdown-truncate`: the shutdown TRUNCATE of a WAL of about 1000
//!   frames;
//! - `memory`: peak RSS (`VmHWM`) of a child process after 100k and after
//!   1M writes at full speed;
//! - `open-loop`: capacity first (a closed loop at 256 in flight for
//!   `--seconds`), then writes arriving at a fixed 25 %, 50 % and 75 % of
//!   it for `--seconds` each, with the size-triggered checkpoints running;
//!   latency from each write's due time to its reply, percentiles by
//!   `hdrhistogram` (`walguard_bench::run_open_loop`). `--runs`
//!   rounds of the three levels, each round once with
//!   `checkpoint.size_checkpoint: on_writer` and once with `two_phase`
//!   (taking turns), one JSON line per run;
//! - `mailbox-floor`: the hand-off alone, no SQLite: `--writes` echo
//!   messages at 1 and 256 in flight through an actix actor on its own
//!   arbiter (what `DbActor` pays per write), against a thread draining a
//!   bounded tokio channel and answering on a oneshot (what the batching
//!   writer pays), the two taking turns for `--runs` rounds;
//! - `savepoint-cost`: what a savepoint around every write of a group would
//!   cost, against walguard's choice (no savepoints; a rerun with them only
//!   for a group that holds a failing write).

mod args;
mod mailbox;
mod memory;
mod open_loop;
mod rows;
mod savepoint;
mod sustained;

use std::error::Error;
use std::process::ExitCode;

use crate::args::{Args, Extra, USAGE, parse_args};
use crate::mailbox::mailbox_floor;
use crate::memory::{memory, memory_child};
use crate::open_loop::open_loop;
use crate::rows::table;
use crate::savepoint::savepoint_cost;
use crate::sustained::{checkpoint_loop, max_batch, shutdown_truncate, wal_peak};

/// Any error of a run, printed with its causes by [`main`].
pub(crate) type BoxError = Box<dyn Error>;

/// The database file of every run, in a fresh temp dir.
pub(crate) const DB_FILE: &str = "bench.db";

async fn run(args: Args) -> Result<(), BoxError> {
    eprintln!(
        "bench_walguard: SQLite {}; {} writes x {} run(s) per configuration; temp dirs under {}",
        rusqlite::version(),
        args.writes,
        args.runs,
        std::env::temp_dir().display()
    );
    if args.extras.is_empty() {
        return table(&args).await;
    }
    for extra in args.extras.clone() {
        match extra {
            Extra::MaxBatch => max_batch(&args).await?,
            Extra::CheckpointLoop => checkpoint_loop(&args).await?,
            Extra::WalPeak => wal_peak(&args).await?,
            Extra::ShutdownTruncate => shutdown_truncate(&args).await?,
            Extra::Memory => memory(&args)?,
            Extra::MemoryChild => memory_child(&args).await?,
            Extra::SavepointCost => savepoint_cost(&args)?,
            Extra::OpenLoop => open_loop(&args).await?,
            Extra::MailboxFloor => mailbox_floor(&args).await?,
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("bench_walguard: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match actix::System::new().block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_walguard: error: {e}");
            let mut source = e.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}
