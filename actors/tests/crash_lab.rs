//! The crash lab: what an abrupt stop can cost, measured through the real
//! actors. Each module says which failure it models.
//!
//! - [`power`]: POWER LOSS / OS CRASH, through `walguard::testing`'s VFS
//!   shim, under `WalGuard` on the paused clock, with cuts counted per
//!   thread (the writer, phase 1 of the two-phase size checkpoint).
//! - [`kill`]: PROCESS KILL, SIGKILL of a child process running `WalGuard`
//!   in real time.
//! - [`faults`]: I/O faults injected through the shim, then a power loss.
//! - [`migration`]: POWER LOSS and PROCESS KILL in the middle of the
//!   migrations at start.
//!
//! Every check ends with `PRAGMA integrity_check` and the exact set of rows
//! that survived. Seeds come from `WALGUARD_CAMPAIGN_SEED` (default
//! [`seeds::DEFAULT_SEED`]); a failure prints the command that replays it.
//!
//! In CI (`cargo test`, debug build): 300 power cuts, 200 kills, the
//! negative control, the faults. On demand, the long run of
//! `docs/reliability.md` (release build):
//!
//! ```text
//! WALGUARD_CAMPAIGN_ITERATIONS=10000 WALGUARD_CAMPAIGN_KILLS=2000 \
//!   cargo test --release -p walguard-actors --test crash_lab -- \
//!   --ignored on_demand --nocapture --test-threads=1
//! ```
//!
//! The kill campaign runs in real time: its seeds fix the child's choices and
//! the kill delays, not the scheduler, so a kill seed replays the same
//! intent, not the same instant.

#[path = "support/burst.rs"]
mod burst;
#[path = "crash_lab/faults.rs"]
mod faults;
#[cfg(target_os = "linux")]
#[path = "crash_lab/kill.rs"]
mod kill;
#[path = "crash_lab/migration.rs"]
mod migration;
#[path = "crash_lab/power.rs"]
mod power;
#[path = "crash_lab/rows.rs"]
mod rows;
#[path = "crash_lab/seeds.rs"]
mod seeds;

use walguard::settings::Synchronous;
use walguard::testing::ViolationKind;

/// Power cuts per CI run.
const CI_POWER_CUTS: u64 = 300;
/// Kills per CI run.
#[cfg(target_os = "linux")]
const CI_KILLS: u64 = 200;
/// Most iterations the negative control may need to catch both a loss and a
/// corruption.
const NEGATIVE_CONTROL_MAX_ITERATIONS: u64 = 60;
/// Most cuts a campaign may draw again, in percent of its cuts: 15 (2 % to
/// 9 % measured, more on a loaded machine: mostly cuts aimed inside a
/// phase 2 that, in the real run, copied nothing because its phase 1 had
/// caught up). Each cut is also bounded on its own (`power::MAX_REDRAWS`);
/// a campaign whose cuts keep missing their runs aims at nothing.
const MAX_REDRAWN_PERCENT: u64 = 15;
/// Fewest cuts for which [`MAX_REDRAWN_PERCENT`] is checked: a rate over
/// one cut (a replay) or a handful says nothing, and one redraw in a
/// single-cut replay would trip it.
const MIN_CUTS_FOR_REDRAWN_PERCENT: u64 = 100;

/// The checks every power-loss campaign must pass.
fn check_power_campaign(summary: &power::Summary) {
    assert!(
        summary.violations.is_empty(),
        "{}",
        summary.violations.join("\n")
    );
    assert!(
        summary.iterations < MIN_CUTS_FOR_REDRAWN_PERCENT
            || summary.redraws * 100 <= summary.iterations * MAX_REDRAWN_PERCENT,
        "{} of {} cuts were drawn again: the cuts miss their runs",
        summary.redraws,
        summary.iterations
    );
}

/// Power cuts at random I/O operations (a third inside checkpoints, a
/// quarter on phase 1's own I/O, a quarter inside phase 2), NORMAL and
/// FULL, exact and torn restores: no corruption, no acknowledged write lost
/// before the durable point, none at all under FULL.
#[test]
fn power_loss_campaign() {
    let summary = power::campaign(seeds::first(), CI_POWER_CUTS, None);
    eprintln!("{summary}");
    check_power_campaign(&summary);
    // The campaign must reach the interesting cases, or it proves little.
    assert!(summary.in_checkpoint > 0, "no cut inside a checkpoint");
    assert!(summary.in_phase1 > 0, "no cut inside a phase 1");
    // Cuts inside a phase 2 are reported, not required: here phase 2 has
    // frames to copy only when a write lands while phase 1 copies, which
    // the scheduler decides (2 to 26 of 300 measured). The dedicated
    // campaign in tests/power_loss/ (`two_phase_*`, a writer that never
    // pauses) requires them.
    assert!(summary.full > 0, "no iteration under FULL");
    assert!(
        summary.lost_acked_runs > 0,
        "NORMAL never lost an acknowledged write past the durable point"
    );
    assert!(summary.torn_writes > 0, "no write was ever torn");
}

/// A replay names its cut in a form that parses back to the same cut, for
/// every kind of count and both restore modes, and a malformed one is
/// refused with the variable's name.
#[test]
fn a_replayed_cut_reads_back_as_the_cut_it_names() {
    use walguard::testing::{CrashPoint, CutCount, Lane, Phase, RestoreMode};
    let counts = [
        CutCount::All,
        CutCount::Lane(Lane::Foreground),
        CutCount::Lane(Lane::Backfill),
        CutCount::InPhase {
            phase: Phase::One,
            nth: 3,
        },
        CutCount::InPhase {
            phase: Phase::Two,
            nth: 0,
        },
    ];
    for count in counts {
        for mode in [RestoreMode::Exact, RestoreMode::Torn { seed: 77 }] {
            let cut = CrashPoint::new(4, count, mode);
            let replay = power::replay(5, Some(&cut));
            let text = replay
                .split_whitespace()
                .find_map(|w| w.strip_prefix("WALGUARD_CAMPAIGN_CUT="))
                .unwrap_or_else(|| panic!("no cut in {replay}"));
            assert_eq!(text.parse::<power::Cut>(), Ok(power::Cut(cut)), "{replay}");
            assert_eq!(
                replay.contains("--release"),
                !cfg!(debug_assertions),
                "{replay}"
            );
        }
    }
    for bad in ["", "phase3#0@1/exact", "all@x/exact", "all@1/torn", "all@1"] {
        let e = bad.parse::<power::Cut>().unwrap_err();
        assert!(e.contains("WALGUARD_CAMPAIGN_CUT"), "{e}");
    }
}

/// Negative control: under `synchronous=OFF` nothing is fsynced, yet the
/// store still counts completed checkpoints as durability points. The same
/// campaign must catch both a lost durable write and a corrupt database,
/// each as its own kind of violation. A failure of the harness itself
/// counts for neither: it fails the test. If the campaign could not fail,
/// it would prove nothing.
#[test]
fn negative_control_synchronous_off_is_caught() {
    let first = seeds::first();
    let (mut lost, mut corrupt) = (None, None);
    let mut done = 0;
    for i in 0..NEGATIVE_CONTROL_MAX_ITERATIONS {
        let seed = first.wrapping_add(i);
        let it = power::iteration(seed, Synchronous::Off).expect("harness");
        done += 1;
        if let Some(e) = it.harness_error() {
            panic!("seed {seed}: the harness failed, which proves nothing: {e}");
        }
        match it.violation() {
            Some(v) if v.kind() == ViolationKind::Corruption => {
                corrupt = corrupt.or(Some(format!("seed {seed}: {v}")));
            }
            Some(v) if v.kind() == ViolationKind::LostAcknowledged => {
                lost = lost.or(Some(format!("seed {seed}: {v}")));
            }
            Some(v) => panic!("seed {seed}: unexpected kind of violation: {v:?}"),
            None => {}
        }
        if lost.is_some() && corrupt.is_some() {
            break;
        }
    }
    eprintln!("synchronous=OFF, {done} power cuts: lost: {lost:?}; corrupt: {corrupt:?}");
    assert!(
        lost.is_some(),
        "OFF lost nothing durable in {done} power cuts: the harness cannot fail"
    );
    assert!(
        corrupt.is_some(),
        "OFF never corrupted in {done} power cuts: the harness is blind to corruption"
    );
}

/// The long power-loss run: `WALGUARD_CAMPAIGN_ITERATIONS` cuts (default
/// 10,000) from `WALGUARD_CAMPAIGN_SEED` on.
#[test]
#[ignore = "long: run on demand, see the module docs"]
fn power_loss_on_demand() {
    let n = seeds::count("WALGUARD_CAMPAIGN_ITERATIONS", 10_000);
    let summary = power::campaign(seeds::first(), n, None);
    eprintln!("{summary}");
    println!(
        "\n#### Power loss (`power_loss_on_demand`)\n\n{}",
        summary.table()
    );
    check_power_campaign(&summary);
}

/// SIGKILL at random moments, inside checkpoints and shutdowns included:
/// integrity holds and every acknowledged write is there, under NORMAL,
/// FULL and OFF alike.
#[cfg(target_os = "linux")]
#[test]
fn process_kill_campaign() {
    let summary = kill::campaign(seeds::first(), CI_KILLS);
    eprintln!("{summary}");
    assert!(
        summary.failures.is_empty(),
        "{}",
        summary.failures.join("\n")
    );
    assert!(
        summary.in_checkpoint > 0,
        "no kill landed inside a checkpoint"
    );
    assert!(summary.in_shutdown > 0, "no kill landed during a shutdown");
}

/// The long kill run: `WALGUARD_CAMPAIGN_KILLS` kills (default 2,000).
#[cfg(target_os = "linux")]
#[test]
#[ignore = "long: run on demand, see the module docs"]
fn kill_campaign_on_demand() {
    let n = seeds::count("WALGUARD_CAMPAIGN_KILLS", 2_000);
    let summary = kill::campaign(seeds::first(), n);
    eprintln!("{summary}");
    println!(
        "\n#### Process kill (`kill_campaign_on_demand`)\n\n{}",
        summary.table()
    );
    assert!(
        summary.failures.is_empty(),
        "{}",
        summary.failures.join("\n")
    );
}

/// The child process of the kill campaign; does nothing unless the parent
/// set its environment.
#[cfg(target_os = "linux")]
#[test]
#[ignore = "the child process of the kill campaign"]
fn kill_child() {
    let Some(path) = std::env::var_os(kill::CHILD_DB_ENV) else {
        return;
    };
    let seed = std::env::var(kill::CHILD_SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    kill::child_main(std::path::Path::new(&path), seed);
}

/// Kills per CI run of the migration kill campaign.
#[cfg(target_os = "linux")]
const CI_MIGRATION_KILLS: u64 = 8;

/// A power cut at every I/O operation of a start that migrates from
/// version 1 to 3, restored exactly or torn: the version is 1 or 3 and
/// the schema is that version's, the old rows are intact, and the next
/// start runs migration 2 again whole.
#[test]
fn power_cut_in_the_middle_of_migrations() {
    let summary = migration::power_campaign(seeds::first(), migration::POWER_ITEMS, 1);
    eprintln!("{summary:?}");
    assert!(
        summary.failures.is_empty(),
        "{}",
        summary.failures.join("\n")
    );
    assert!(summary.cuts > 50, "only {} cuts", summary.cuts);
    // Cuts before the commit's fsync, and after it.
    assert!(summary.at_version_1 > 0, "no cut left version 1");
    assert!(summary.at_version_3 > 0, "no cut left version 3");
    assert!(summary.torn > 0, "no torn restore");
}

/// Migrations that returned survive a power cut right after, though a
/// reader kept their TRUNCATE from completing: their commit was fsynced.
#[test]
fn migrations_are_durable_when_the_start_returns() {
    let outcome = migration::durable_when_returned(migration::POWER_ITEMS).unwrap();
    eprintln!("the truncate after the migrations: {outcome}");
}

/// Negative control of the migration campaigns' check: a version that
/// disagrees with the schema, a version between the two, and lost rows
/// are each caught.
#[test]
fn the_migration_check_catches_a_version_that_disagrees_with_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str); 3] = [
        // The schema of version 3 under version 1.
        (
            "ALTER TABLE orders ADD COLUMN qty INTEGER; CREATE TABLE items (id, body); CREATE INDEX items_body ON items (body);",
            "disagree",
        ),
        // Version 2: a start that stopped between migrations.
        (
            "ALTER TABLE orders ADD COLUMN qty INTEGER; CREATE TABLE items (id, body); PRAGMA user_version = 2;",
            "disagree",
        ),
        ("DELETE FROM orders WHERE id = 3", "orders"),
    ];
    for (i, (damage, expected)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("damaged-{i}.db"));
        migration::base(&path).unwrap();
        assert_eq!(migration::check(&path, 0), Ok(1));
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(damage)
            .unwrap();
        let err = migration::check(&path, 0).unwrap_err();
        assert!(err.contains(expected), "{damage}: {err}");
    }
}

/// SIGKILL in the middle of a start that migrates (most kills inside the
/// migrations' transaction): the same checks as the power cuts.
#[cfg(target_os = "linux")]
#[test]
fn process_kill_in_the_middle_of_migrations() {
    let summary = migration::kill_campaign(seeds::first(), CI_MIGRATION_KILLS);
    eprintln!("{summary:?}");
    assert!(
        summary.failures.is_empty(),
        "{}",
        summary.failures.join("\n")
    );
    assert!(
        summary.in_migration > 0,
        "no kill landed inside the migrations' transaction"
    );
    assert!(summary.at_version_1 > 0, "no kill left version 1");
}

/// The child process of the migration kill campaign; does nothing unless
/// the parent set its environment.
#[cfg(target_os = "linux")]
#[test]
#[ignore = "the child process of the migration kill campaign"]
fn migration_kill_child() {
    let Some(path) = std::env::var_os(migration::CHILD_DB_ENV) else {
        return;
    };
    migration::child_main(std::path::Path::new(&path));
}
