//! Command-line flags. Hand-rolled: five flags do not need a parser crate.

use std::fmt;

/// Default number of inserts per run (the workload size).
pub const DEFAULT_WRITES: u64 = 200_000;
/// Default number of runs per configuration; the median one is reported.
pub const DEFAULT_RUNS: u32 = 3;

pub const USAGE: &str = "\
usage: walguard-peers [--writes N] [--runs N] [--synchronous normal|full|both] [--only SYSTEM]

  --writes N        inserts per run (default 200000; underscores allowed: 200_000)
  --lone-writes N   inserts per run at one in flight, raw-batched excepted (default: --writes)
  --in-flight N     only this in-flight level (1 or 256; default: both where the system has both)
  --runs N          runs per configuration; the median-throughput run is reported (default 3)
  --synchronous S   normal, full or both (default both)
  --only SYSTEM     raw-per-insert, raw-batched, tokio-rusqlite or batching-writer (default: all four)
  -h, --help        this text

Prints one JSON object per (system, workload, synchronous, in_flight) on stdout.
Progress goes to stderr. Databases go in a fresh temp dir under $TMPDIR (default /tmp).";

/// `PRAGMA synchronous` levels the benchmark runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    Normal,
    Full,
}

impl Synchronous {
    pub fn name(self) -> &'static str {
        match self {
            Synchronous::Normal => "normal",
            Synchronous::Full => "full",
        }
    }

    /// The value `PRAGMA synchronous` reads back as.
    pub fn pragma_value(self) -> i64 {
        match self {
            Synchronous::Normal => 1,
            Synchronous::Full => 2,
        }
    }
}

/// The peers this binary measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    RawPerInsert,
    RawBatched,
    TokioRusqlite,
    BatchingWriter,
}

impl System {
    pub const ALL: [System; 4] = [
        System::RawPerInsert,
        System::RawBatched,
        System::TokioRusqlite,
        System::BatchingWriter,
    ];

    pub fn name(self) -> &'static str {
        match self {
            System::RawPerInsert => "raw-per-insert",
            System::RawBatched => "raw-batched",
            System::TokioRusqlite => "tokio-rusqlite",
            System::BatchingWriter => "batching-writer",
        }
    }

    /// The in-flight levels measured for this system. The raw peers are a
    /// plain loop on one thread: one insert in flight by construction.
    pub fn in_flight_levels(self) -> &'static [usize] {
        match self {
            System::RawPerInsert | System::RawBatched => &[1],
            System::TokioRusqlite | System::BatchingWriter => &[1, 256],
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub writes: u64,
    pub runs: u32,
    pub synchronous: Vec<Synchronous>,
    pub systems: Vec<System>,
    /// Inserts per run at one in flight (`--lone-writes`; default `writes`).
    pub lone_writes: Option<u64>,
    /// Only this in-flight level (`--in-flight`; default: every level).
    pub in_flight: Option<usize>,
}

impl Config {
    /// Inserts per run of `system` at `in_flight`: a lone writer is slow,
    /// so it may run fewer (`--lone-writes`). `raw-batched` is the
    /// throughput ceiling, not a lone writer: it always runs `writes`.
    pub fn writes_at(&self, system: System, in_flight: usize) -> u64 {
        match (system, in_flight, self.lone_writes) {
            (System::RawBatched, _, _) | (_, _, None) => self.writes,
            (_, 1, Some(n)) => n,
            _ => self.writes,
        }
    }
}

/// What parsing asked for: a run, or the help text.
#[derive(Debug)]
pub enum Command {
    Run(Config),
    Help,
}

/// A bad command line. `main` prints it with the usage and exits 2.
#[derive(Debug)]
pub struct UsageError(String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn usage_error(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

fn parse_count(flag: &str, value: &str) -> Result<u64, UsageError> {
    let digits: String = value.chars().filter(|c| *c != '_').collect();
    let n: u64 = digits
        .parse()
        .map_err(|_| usage_error(format!("{flag} wants a positive integer, got {value:?}")))?;
    if n == 0 {
        return Err(usage_error(format!("{flag} must be at least 1")));
    }
    Ok(n)
}

/// Parses the flags after the program name. Accepts `--flag value` and `--flag=value`.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, UsageError> {
    let mut config = Config {
        writes: DEFAULT_WRITES,
        runs: DEFAULT_RUNS,
        synchronous: vec![Synchronous::Normal, Synchronous::Full],
        systems: System::ALL.to_vec(),
        lone_writes: None,
        in_flight: None,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        if !matches!(
            flag.as_str(),
            "--writes" | "--runs" | "--synchronous" | "--only" | "--lone-writes" | "--in-flight"
        ) {
            return Err(usage_error(format!("unknown argument {arg:?}")));
        }
        let value = match inline {
            Some(v) => v,
            None => args
                .next()
                .ok_or_else(|| usage_error(format!("{flag} needs a value")))?,
        };
        match flag.as_str() {
            "--writes" => config.writes = parse_count(&flag, &value)?,
            "--lone-writes" => config.lone_writes = Some(parse_count(&flag, &value)?),
            "--in-flight" => {
                config.in_flight = Some(
                    usize::try_from(parse_count(&flag, &value)?)
                        .map_err(|_| usage_error(format!("--in-flight too large: {value}")))?,
                );
            }
            "--runs" => {
                config.runs = u32::try_from(parse_count(&flag, &value)?)
                    .map_err(|_| usage_error(format!("--runs too large: {value}")))?;
            }
            "--synchronous" => {
                config.synchronous = match value.to_ascii_lowercase().as_str() {
                    "normal" => vec![Synchronous::Normal],
                    "full" => vec![Synchronous::Full],
                    "both" => vec![Synchronous::Normal, Synchronous::Full],
                    _ => {
                        return Err(usage_error(format!(
                            "--synchronous wants normal, full or both, got {value:?}"
                        )));
                    }
                };
            }
            "--only" => {
                let system = System::ALL
                    .into_iter()
                    .find(|s| s.name() == value)
                    .ok_or_else(|| {
                        usage_error(format!(
                            "--only wants raw-per-insert, raw-batched, tokio-rusqlite or batching-writer, got {value:?}"
                        ))
                    })?;
                config.systems = vec![system];
            }
            _ => unreachable!("flag names checked above"),
        }
    }
    Ok(Command::Run(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Config, UsageError> {
        match parse(args.iter().map(|s| (*s).to_owned()))? {
            Command::Run(c) => Ok(c),
            Command::Help => panic!("unexpected help"),
        }
    }

    #[test]
    fn defaults() {
        let c = run(&[]).unwrap();
        assert_eq!(c.writes, 200_000);
        assert_eq!(c.runs, 3);
        assert_eq!(c.synchronous.len(), 2);
        assert_eq!(c.systems.len(), 4);
        assert_eq!((c.lone_writes, c.in_flight), (None, None));
        assert_eq!(c.writes_at(System::TokioRusqlite, 1), 200_000);
    }

    #[test]
    fn lone_writes_apply_at_one_in_flight_but_not_to_the_ceiling() {
        let c = run(&["--lone-writes", "1000", "--in-flight", "1"]).unwrap();
        assert_eq!(c.in_flight, Some(1));
        assert_eq!(c.writes_at(System::BatchingWriter, 1), 1000);
        assert_eq!(c.writes_at(System::BatchingWriter, 256), 200_000);
        assert_eq!(c.writes_at(System::RawBatched, 1), 200_000);
    }

    #[test]
    fn flags() {
        let c = run(&[
            "--writes",
            "50_000",
            "--runs=1",
            "--synchronous",
            "FULL",
            "--only",
            "raw-batched",
        ])
        .unwrap();
        assert_eq!(c.writes, 50_000);
        assert_eq!(c.runs, 1);
        assert_eq!(c.synchronous, vec![Synchronous::Full]);
        assert_eq!(c.systems, vec![System::RawBatched]);
    }

    #[test]
    fn bad_input_is_an_error() {
        for bad in [
            &["--writes"][..],
            &["--writes", "0"],
            &["--writes", "-3"],
            &["--writes", "ten"],
            &["--runs", "99999999999"],
            &["--synchronous", "off"],
            &["--only", "walguard"],
            &["--bogus"],
            &["extra"],
        ] {
            assert!(run(bad).is_err(), "{bad:?} should fail");
        }
    }
}
