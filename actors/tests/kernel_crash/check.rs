//! After the kill: the data disk's journal replayed by `e2fsck -fy`, the
//! database, `-wal` and `-shm` taken out with `debugfs -R "dump ..."`, and
//! the claims held against what survived.

use std::path::Path;
use std::process::Command;

use walguard::settings::Synchronous;
use walguard::testing::{AfterCheck, SurvivorError, Violation, check_survivors};

use crate::host::{Tools, run};
use crate::protocol::Transcript;

/// `e2fsck`'s exit status when it found nothing to fix: 0; when it fixed
/// something, the journal replay included: 1. Anything else is a file
/// system it could not make consistent.
const E2FSCK_FIXED: i32 = 1;

/// What the file system check did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fsck {
    /// Exit 0: nothing to do.
    Clean,
    /// Exit 1: it fixed something (a journal replay counts).
    Fixed,
}

/// Runs `e2fsck -fy` on `image` (it replays the journal, as a mount
/// would).
///
/// # Errors
/// The exit status and output when the file system was left inconsistent.
pub(crate) fn fsck(tools: &Tools, image: &Path) -> Result<Fsck, String> {
    let out = Command::new(&tools.e2fsck)
        .arg("-fy")
        .arg(image)
        .output()
        .map_err(|e| format!("e2fsck: {e}"))?;
    match out.status.code() {
        Some(0) => Ok(Fsck::Clean),
        Some(E2FSCK_FIXED) => Ok(Fsck::Fixed),
        _ => Err(format!(
            "e2fsck -fy left the file system inconsistent ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim()
        )),
    }
}

/// Copies the database and whichever of its `-wal` and `-shm` exist from
/// the root of `image` into `dir`.
pub(crate) fn extract(
    tools: &Tools,
    image: &Path,
    db_name: &str,
    dir: &Path,
) -> Result<(), String> {
    let listing = run(Command::new(&tools.debugfs)
        .args(["-R", "ls -p /"])
        .arg(image))?;
    // "/12/100644/0/0/state.db/4096/"
    let names: Vec<String> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .filter_map(|l| l.split('/').nth(5).map(str::to_owned))
        .collect();
    for suffix in ["", "-wal", "-shm"] {
        let name = format!("{db_name}{suffix}");
        if !names.contains(&name) {
            continue;
        }
        let out = dir.join(&name);
        run(Command::new(&tools.debugfs)
            .arg("-R")
            .arg(format!("dump -p /{name} {}", out.display()))
            .arg(image))?;
        if !out.exists() {
            return Err(format!("debugfs did not dump {name}"));
        }
    }
    Ok(())
}

/// What one kill left, held against the claims.
#[derive(Debug, Clone)]
pub(crate) struct Verdict {
    /// Rows `1..=survived` survived (intact, in order, whole requests).
    pub(crate) survived: u64,
    /// The claim walguard makes failed: a violation.
    pub(crate) violation: Option<Violation>,
    /// The deliberately wrong claim ("under `normal` every acknowledged
    /// write is durable") failed; `None` under `full`, where it is not
    /// wrong.
    pub(crate) wrong_claim_failed: Option<bool>,
}

/// Checks the extracted database at `db` against what the guest printed.
///
/// - `integrity_check` ok, rows exactly `1..=k`, intact, requests whole
///   (`check_survivors`);
/// - every row up to the last "durable through" the host saw; under
///   `full`, every acknowledged row (a database whose table did not survive
///   passes when no row was required: its `CREATE TABLE` was not durable);
/// - the rows required are the generation's own (`seed`).
///
/// # Errors
/// A failure of the check itself (a harness failure).
pub(crate) fn verdict(
    db: &Path,
    synchronous: Synchronous,
    seen: &Transcript,
    generation: u64,
) -> Result<Verdict, String> {
    let required = match synchronous {
        Synchronous::Full => seen.max_acked,
        _ => seen.durable,
    };
    let wrong_claim =
        |survived: u64| (synchronous == Synchronous::Normal).then_some(survived < seen.max_acked);
    let found = match check_survivors(db, AfterCheck::Checkpoint) {
        Ok(found) => found,
        // The table's own commit was not durable yet: no row survived,
        // which is a prefix (the empty one) when none was required.
        Err(SurvivorError::Violation(Violation::TableMissing)) if required == 0 => {
            return Ok(Verdict {
                survived: 0,
                violation: None,
                wrong_claim_failed: wrong_claim(0),
            });
        }
        Err(SurvivorError::Violation(v)) => {
            return Ok(Verdict {
                survived: 0,
                violation: Some(v),
                wrong_claim_failed: None,
            });
        }
        Err(e) => return Err(e.to_string()),
    };
    let violation = found
        .require_between(required, u64::MAX)
        .and_then(|()| match required {
            0 => Ok(()),
            id => found.require_acknowledged(id, generation),
        })
        .err();
    let wrong_claim_failed = wrong_claim(found.rows());
    Ok(Verdict {
        survived: found.rows(),
        violation,
        wrong_claim_failed,
    })
}
