//! The command line of `bench_walguard`: `--writes`, `--runs`,
//! `--synchronous`, `--only`, `--extra`, `--seconds`.

use walguard::settings::Synchronous;

pub(crate) const USAGE: &str = "\
usage: bench_walguard [--writes N] [--runs N] [--synchronous normal|full|both] [--only SYSTEM]
                      [--extra NAME]... [--seconds N]

  --writes N        inserts per run (default 200000; underscores allowed)
  --lone-writes N   inserts per run at one in flight (default: --writes)
  --in-flight N     only this in-flight level of the table (1 or 256; default: both)
  --runs N          runs per configuration; the median-throughput run is reported (default 3)
  --synchronous S   normal, full or both (default both)
  --only SYSTEM     walguard or walguard-group-commit (default: both)
  --extra NAME      max-batch, checkpoint-loop, wal-peak, shutdown-truncate, memory,
                    savepoint-cost, open-loop, mailbox-floor or all, instead of the table rows
  --seconds N       length of the sustained runs of checkpoint-loop and wal-peak (default 10)
  -h, --help        this text";

/// The two walguard systems of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum System {
    /// Group commit off: one commit per insert.
    Plain,
    /// Group commit on (the default setting).
    GroupCommit,
}

impl System {
    pub(crate) const ALL: [Self; 2] = [Self::Plain, Self::GroupCommit];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Plain => "walguard",
            Self::GroupCommit => "walguard-group-commit",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Extra {
    MaxBatch,
    CheckpointLoop,
    WalPeak,
    ShutdownTruncate,
    Memory,
    /// The child process of `memory`.
    MemoryChild,
    SavepointCost,
    OpenLoop,
    MailboxFloor,
}

impl Extra {
    pub(crate) const ALL: [Self; 8] = [
        Self::MaxBatch,
        Self::CheckpointLoop,
        Self::WalPeak,
        Self::ShutdownTruncate,
        Self::Memory,
        Self::SavepointCost,
        Self::OpenLoop,
        Self::MailboxFloor,
    ];

    pub(crate) fn parse(name: &str) -> Option<Vec<Self>> {
        Some(match name {
            "max-batch" => vec![Self::MaxBatch],
            "checkpoint-loop" => vec![Self::CheckpointLoop],
            "wal-peak" => vec![Self::WalPeak],
            "shutdown-truncate" => vec![Self::ShutdownTruncate],
            "memory" => vec![Self::Memory],
            "memory-child" => vec![Self::MemoryChild],
            "savepoint-cost" => vec![Self::SavepointCost],
            "open-loop" => vec![Self::OpenLoop],
            "mailbox-floor" => vec![Self::MailboxFloor],
            "all" => Self::ALL.to_vec(),
            _ => return None,
        })
    }
}

#[derive(Debug)]
pub(crate) struct Args {
    pub(crate) writes: u64,
    pub(crate) runs: u32,
    pub(crate) synchronous: Vec<Synchronous>,
    pub(crate) systems: Vec<System>,
    pub(crate) extras: Vec<Extra>,
    pub(crate) seconds: u64,
    /// Inserts per run at one in flight (`--lone-writes`; default `writes`).
    pub(crate) lone_writes: Option<u64>,
    /// Only this in-flight level of the table (`--in-flight`).
    pub(crate) in_flight: Option<usize>,
}

pub(crate) fn parse_count(flag: &str, value: &str) -> Result<u64, String> {
    let digits: String = value.chars().filter(|c| *c != '_').collect();
    match digits.parse::<u64>() {
        Ok(0) => Err(format!("{flag} must be at least 1")),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{flag} wants a positive integer, got {value:?}")),
    }
}

pub(crate) fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        writes: 200_000,
        runs: 3,
        synchronous: vec![Synchronous::Normal, Synchronous::Full],
        systems: System::ALL.to_vec(),
        extras: Vec::new(),
        seconds: 10,
        lone_writes: None,
        in_flight: None,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--writes" => parsed.writes = parse_count(&flag, &value()?)?,
            "--lone-writes" => parsed.lone_writes = Some(parse_count(&flag, &value()?)?),
            "--in-flight" => {
                let v = value()?;
                parsed.in_flight = Some(
                    usize::try_from(parse_count(&flag, &v)?)
                        .map_err(|_| format!("--in-flight too large: {v}"))?,
                );
            }
            "--runs" => {
                let v = value()?;
                parsed.runs = u32::try_from(parse_count(&flag, &v)?)
                    .map_err(|_| format!("--runs too large: {v}"))?;
            }
            "--seconds" => parsed.seconds = parse_count(&flag, &value()?)?,
            "--synchronous" => {
                let v = value()?;
                parsed.synchronous = match v.to_ascii_lowercase().as_str() {
                    "normal" => vec![Synchronous::Normal],
                    "full" => vec![Synchronous::Full],
                    "both" => vec![Synchronous::Normal, Synchronous::Full],
                    _ => {
                        return Err(format!(
                            "--synchronous wants normal, full or both, got {v:?}"
                        ));
                    }
                };
            }
            "--only" => {
                let v = value()?;
                let system = System::ALL
                    .into_iter()
                    .find(|s| s.name() == v)
                    .ok_or_else(|| {
                        format!("--only wants walguard or walguard-group-commit, got {v:?}")
                    })?;
                parsed.systems = vec![system];
            }
            "--extra" => {
                let v = value()?;
                let extras = Extra::parse(&v).ok_or_else(|| format!("unknown --extra {v:?}"))?;
                parsed.extras.extend(extras);
            }
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    Ok(Some(parsed))
}
