//! `walguard`: run the state subsystem with a synthetic engine, inspect a
//! database, checkpoint it once, or measure what writes cost here.
//!
//! `docs/operations.md` is the operator's guide: every setting, the log and
//! metric names, exit codes.

// Same rule as the library: a panic in an actor takes its arbiter down, and
// here it would also print a backtrace at the operator.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod bench;
mod cli;
mod dbfile;
mod demo;
mod engine;
mod error;
mod exit;
mod inspect;
mod logging;
mod oneshot;
mod restore;
mod run;
mod status;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command, Global};
use crate::error::CliError;
use crate::exit::Exit;

fn main() -> ExitCode {
    quiet_panics();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with 0; usage errors to stderr
            // with 2.
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Success
            }
            .into();
        }
    };
    let global = &cli.global;
    // The one-shot commands' `--json`: their answer on stdout is one JSON
    // object, a failure included (`Some(database)`, `None` when unknown).
    let mut json_database = None;
    let result = match &cli.command {
        Command::Run(args) => run::run(args, global),
        Command::Inspect(args) => {
            json_database = args.json.then_some(Some(args.path.as_path()));
            quiet_logs(global).and_then(|()| inspect::run(&args.path, args.json))
        }
        Command::Checkpoint(args) => {
            json_database = args.json.then_some(Some(args.path.as_path()));
            quiet_logs(global).and_then(|()| oneshot::run(args))
        }
        Command::Bench(args) => bench::run(args, global),
        Command::Restore(args) => {
            json_database = args.json.then_some(args.db.as_deref());
            quiet_logs(global).and_then(|()| restore::run(args))
        }
    };
    match result {
        Ok(()) => Exit::Success.into(),
        Err(e) => {
            if let Some(database) = json_database {
                print_json_error(database, &e);
            }
            report(&e).into()
        }
    }
}

/// A failed `--json` command still answers with one JSON object on stdout,
/// `{"database", "error", "exit_code"}`, so that a script reading it gets the
/// reason and not an empty input (a command that got as far as its own
/// answer, such as a checkpoint that ended `busy`, has already printed it).
/// `database` is `null` when the command had none yet (`restore` without
/// `--db`, before its settings loaded).
fn print_json_error(database: Option<&std::path::Path>, error: &CliError) {
    if error.printed_answer() {
        return;
    }
    println!(
        "{}",
        serde_json::json!({
            "database": database.map(|d| d.display().to_string()),
            "error": error::render(error),
            "exit_code": error.exit().code(),
        })
    );
}

/// Prints the error and its causes on one line ([`error::render`]); the
/// exit code for it.
fn report(error: &CliError) -> Exit {
    status::clear();
    eprintln!("walguard: error: {}", error::render(error));
    error.exit()
}

/// [`report`], then exits at once: for an error that leaves no session
/// report, before anything dropped on the way out can print more.
pub(crate) fn exit_now(error: &CliError) -> ! {
    report(error).now()
}

/// One-shot commands log warnings only (as text on stderr) unless
/// `--log-level` or `RUST_LOG` says otherwise.
fn quiet_logs(global: &Global) -> Result<(), CliError> {
    logging::init(
        logging::quiet_filter(global)?,
        walguard::settings::LogFormat::Text,
        global.color,
    );
    Ok(())
}

/// A panic is a bug: print one line naming it, no backtrace (unless
/// `RUST_BACKTRACE` asks for one), and exit 1 at once, whatever thread it
/// happened on: an actor's arbiter that died would otherwise leave the
/// session hanging. Nothing committed is lost by exiting (WAL mode).
fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        status::clear();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "walguard: internal error (a bug, please report it): {}{location}",
            message.replace('\n', " ")
        );
        let backtrace = std::backtrace::Backtrace::capture();
        if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
            eprintln!("{backtrace}");
        }
        Exit::Failure.now();
    }));
}
