//! How a power cut is spelled in a replay command ([`Cut`], [`CUT_ENV`]),
//! and the command that replays an iteration ([`replay`]).

use walguard::testing::{CrashPoint, CutCount, Lane, Phase, RestoreMode};

use crate::seeds;

/// The environment variable that arms one exact cut instead of drawing
/// one: what a failure's replay command sets (see [`Cut`]).
pub(crate) const CUT_ENV: &str = "WALGUARD_CAMPAIGN_CUT";

/// A cut as a replay command spells it: `COUNT@OP/MODE`, with `COUNT`
/// one of `all`, `foreground`, `backfill`, `phase1#N`, `phase2#N` and
/// `MODE` `exact` or `torn:SEED` (e.g. `phase2#0@4/torn:77`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cut(pub(crate) CrashPoint);

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = match self.0.count {
            CutCount::Lane(Lane::Foreground) => "foreground".to_owned(),
            CutCount::Lane(Lane::Backfill) => "backfill".to_owned(),
            CutCount::InPhase {
                phase: Phase::One,
                nth,
            } => format!("phase1#{nth}"),
            CutCount::InPhase {
                phase: Phase::Two,
                nth,
            } => format!("phase2#{nth}"),
            _ => "all".to_owned(),
        };
        let mode = match self.0.mode {
            RestoreMode::Torn { seed } => format!("torn:{seed}"),
            _ => "exact".to_owned(),
        };
        write!(f, "{count}@{}/{mode}", self.0.op)
    }
}

impl std::str::FromStr for Cut {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{CUT_ENV}={text:?}: expected COUNT@OP/MODE, e.g. phase2#0@4/torn:77");
        let (count, rest) = text.split_once('@').ok_or_else(bad)?;
        let (op, mode) = rest.split_once('/').ok_or_else(bad)?;
        let count = match count {
            "all" => CutCount::All,
            "foreground" => CutCount::Lane(Lane::Foreground),
            "backfill" => CutCount::Lane(Lane::Backfill),
            _ => {
                let (phase, nth) = count.split_once('#').ok_or_else(bad)?;
                let phase = match phase {
                    "phase1" => Phase::One,
                    "phase2" => Phase::Two,
                    _ => return Err(bad()),
                };
                CutCount::InPhase {
                    phase,
                    nth: nth.parse().map_err(|_| bad())?,
                }
            }
        };
        let mode = match mode.split_once(':') {
            None if mode == "exact" => RestoreMode::Exact,
            Some(("torn", seed)) => RestoreMode::Torn {
                seed: seed.parse().map_err(|_| bad())?,
            },
            _ => return Err(bad()),
        };
        Ok(Self(CrashPoint::new(
            op.parse().map_err(|_| bad())?,
            count,
            mode,
        )))
    }
}

/// The cut a replay arms ([`CUT_ENV`]), if set.
pub(super) fn replayed_cut() -> Result<Option<CrashPoint>, String> {
    match std::env::var(CUT_ENV) {
        Ok(text) => text.parse::<Cut>().map(|c| Some(c.0)),
        Err(_) => Ok(None),
    }
}

/// The command that replays the iteration of `seed` with the cut it
/// armed (after any redraws), in this build's profile.
pub(crate) fn replay(seed: u64, cut: Option<&CrashPoint>) -> String {
    let command = seeds::replay(seed, "power_loss_on_demand");
    match cut {
        Some(cut) => format!("{CUT_ENV}={} {command}", Cut(*cut)),
        None => command,
    }
}
