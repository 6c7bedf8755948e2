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

/// The negative control, on what the real kernel left: the same
/// [`verdict`] must catch a loss and a corruption planted into it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Planted {
    /// The verdict, told that one more row than survived was durable (a
    /// store that claimed too much), found the loss.
    pub(crate) loss_caught: bool,
    /// A page of the database was overwritten (`false`: too small to
    /// have a page to spare, not tried).
    pub(crate) corruption_tried: bool,
    /// The verdict found that corruption.
    pub(crate) corruption_caught: bool,
}

/// Plants a loss and a corruption into copies of what the kernel left at
/// `db` (with its `-wal`), and runs [`verdict`] on each. Independent of
/// whether the run itself lost anything: it shows the check can fail on
/// every run.
///
/// # Errors
/// A failure to copy or open the files (a harness failure).
pub(crate) fn planted(
    db: &Path,
    synchronous: Synchronous,
    seen: &Transcript,
    generation: u64,
    survived: u64,
) -> Result<Planted, String> {
    let mut claimed_too_much = seen.clone();
    claimed_too_much.durable = survived + 1;
    claimed_too_much.max_acked = claimed_too_much.max_acked.max(survived + 1);
    let loss = verdict(db, synchronous, &claimed_too_much, generation)?;
    let loss_caught = loss
        .violation
        .is_some_and(|v| v.kind() == walguard::testing::ViolationKind::LostAcknowledged);

    // A copy with its WAL folded in, then its second page overwritten.
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let copy = dir.path().join("planted.db");
    std::fs::copy(db, &copy).map_err(|e| e.to_string())?;
    let wal = walguard::files::wal_path(db);
    if wal.exists() {
        std::fs::copy(&wal, walguard::files::wal_path(&copy)).map_err(|e| e.to_string())?;
    }
    let page_size = {
        let conn = rusqlite::Connection::open(&copy).map_err(|e| e.to_string())?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(|e| e.to_string())?;
        conn.query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0))
            .map_err(|e| e.to_string())?
    };
    let mut bytes = std::fs::read(&copy).map_err(|e| e.to_string())?;
    let page = usize::try_from(page_size).map_err(|e| e.to_string())?;
    if bytes.len() < 3 * page {
        return Ok(Planted {
            loss_caught,
            ..Planted::default()
        });
    }
    bytes[page..2 * page].fill(0xA5);
    std::fs::write(&copy, &bytes).map_err(|e| e.to_string())?;
    let corruption_caught = match verdict(&copy, synchronous, seen, generation) {
        Ok(v) => v.violation.is_some(),
        // The check could not even read it: caught, as a failure.
        Err(_) => true,
    };
    Ok(Planted {
        loss_caught,
        corruption_tried: true,
        corruption_caught,
    })
}
