//! OS CRASH ON A REAL KERNEL: the real actors on Linux and ext4, in a VM
//! that dies at a random moment.
//!
//! The VFS-shim campaigns (`crash_lab`, `power_loss`) prove the power-loss
//! and OS-crash claims against our own model of what reaches stable
//! storage. This binary checks them against Debian's kernel:
//!
//! - QEMU boots Debian's `linux-image-amd64` 6.1 (the package pinned in
//!   `scripts/kernel-lab/versions`, fetched with `apt-get download`,
//!   unpacked with `dpkg-deb -x`, cached under cargo's target tmp dir) with
//!   a busybox-static initramfs that loads `virtio_pci`, `virtio_blk`,
//!   `ext4` and their dependencies from the same package (`host`,
//!   `images`). KVM is probed with a real boot of a few seconds, and TCG
//!   (software emulation) used when it does not answer (`vm`).
//! - The guest mounts a read-only program disk (this very test binary and
//!   the shared libraries `ldd` lists, in an `mkfs.ext4 -d` image) and a
//!   fresh ext4 data disk, and runs the ignored test `guest_writer` in a
//!   chroot: the real `WalGuard` writing through group commits, interval and
//!   size checkpoints, a reader that pins the WAL, clean shutdowns
//!   (`guest`). It prints each acknowledged row and each move of "durable
//!   through" on the serial console (`protocol`).
//! - The host SIGKILLs QEMU at a seeded moment after the writer's first
//!   line: the guest's page cache dies with it, an OS crash, on a disk that
//!   kept every write it completed. Or, for a power cut at the block layer,
//!   the disk is our NBD server whose volatile cache drops every write
//!   after the last flush at the kill (`nbd`; half these cuts are aimed at
//!   a moment when the cache holds such writes). `e2fsck -fy` replays the
//!   journal on the
//!   image, `debugfs` dumps the database, `-wal` and `-shm` (`check`), and
//!   the host asserts: `integrity_check` ok; the rows are a prefix of the
//!   commits, intact, transactions whole; under `normal`, nothing at or
//!   before the last durable point printed is missing; under `full`, nothing
//!   acknowledged is missing.
//!
//! It must be able to fail: the CI campaign must see `normal` lose
//! acknowledged writes after the durable point, and the negative control
//! plants a loss and a corruption into a copy of every run's output, which
//! the same check must catch.
//!
//! A missing tool fails the test with one line naming it and the command
//! that installs the tools (`scripts/kernel-lab/install.sh`, which
//! `scripts/test`, the README's test command, runs where it may); no test
//! skips. On demand, the long run of
//! `docs/reliability.md`:
//!
//! ```text
//! scripts/kernel-lab/install.sh
//! WALGUARD_KERNEL_LAB_ITERATIONS=300 WALGUARD_KERNEL_LAB_JOBS=2 \
//!   cargo test -p walguard-actors --test kernel_crash -- \
//!   --ignored --exact kernel_crash_on_demand --nocapture
//! ```
//!
//! (`WALGUARD_KERNEL_LAB_DISK=power-cut` for the power cuts.)
//!
//! Every iteration is reproducible from its seed (`WALGUARD_KERNEL_LAB_SEED`
//! sets the first): the seed fixes `synchronous`, the writer's choices and
//! the kill's delay after the writer's first line, not the scheduler of a
//! real kernel, so a seed replays the same intent, not the same instant.

#![cfg(target_os = "linux")]

#[path = "support/burst.rs"]
mod burst;
#[path = "kernel_crash/campaign.rs"]
mod campaign;
#[path = "kernel_crash/check.rs"]
mod check;
#[path = "kernel_crash/guest.rs"]
mod guest;
#[path = "kernel_crash/host.rs"]
mod host;
#[path = "kernel_crash/images.rs"]
mod images;
#[path = "kernel_crash/nbd.rs"]
mod nbd;
#[path = "kernel_crash/protocol.rs"]
mod protocol;
#[path = "support/tools.rs"]
#[allow(dead_code)] // This binary uses `require` alone.
mod tools;
#[path = "kernel_crash/vm.rs"]
mod vm;

use std::sync::OnceLock;

use walguard::settings::Synchronous;
use walguard::testing::env_u64;

use crate::campaign::{Disk, Lab, Summary};

/// The database file on the data disk.
pub(crate) const DB_FILE: &str = "state.db";

/// The first seed when `WALGUARD_KERNEL_LAB_SEED` is not set.
const DEFAULT_SEED: u64 = 0x5EED_0C05_0000;

/// OS crashes per CI run.
const CI_ITERATIONS: u64 = 8;

/// Power cuts (volatile-cache disk) per CI run.
const CI_POWER_CUTS: u64 = 4;

/// Kills of the on-demand run when `WALGUARD_KERNEL_LAB_ITERATIONS` is not
/// set.
const ON_DEMAND_ITERATIONS: u64 = 300;

fn number(var: &str, default: u64) -> u64 {
    env_u64(var, default).unwrap_or_else(|e| panic!("{e}"))
}

fn first_seed() -> u64 {
    number(campaign::SEED_ENV, DEFAULT_SEED)
}

/// The command that replays `seed` alone, on `disk`.
pub(crate) fn replay(seed: u64, disk: Disk) -> String {
    let disk = match disk {
        Disk::OsCrash => "os-crash",
        Disk::PowerCut => "power-cut",
    };
    format!(
        "{}={seed} WALGUARD_KERNEL_LAB_DISK={disk} WALGUARD_KERNEL_LAB_ITERATIONS=1 cargo test \
         -p walguard-actors --test kernel_crash -- --ignored --exact kernel_crash_on_demand --nocapture",
        campaign::SEED_ENV
    )
}

/// The lab, built once per test binary. A missing tool fails the test
/// with one line naming it and the command that installs it
/// ([`tools::require`]); it never skips.
fn lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(|| {
        let found = host::Tools::find();
        tools::require(
            found.is_ok(),
            &format!(
                "the kernel crash lab's tools ({})",
                found.as_ref().err().map_or("", String::as_str)
            ),
            "run the tests with `scripts/test` as root or with sudo, or run \
             `scripts/kernel-lab/install.sh`",
        );
        let tools = found.unwrap_or_else(|e| panic!("{e}"));
        Lab::build(tools).unwrap_or_else(|e| panic!("building the lab: {e}"))
    })
}

/// The CI campaign of `disk`, run once and shared by the tests that read
/// it. The two failures' campaigns run side by side (one VM each).
fn ci_campaign(disk: Disk) -> &'static Summary {
    static OS_CRASH: OnceLock<Summary> = OnceLock::new();
    static POWER_CUT: OnceLock<Summary> = OnceLock::new();
    let (cell, iterations) = match disk {
        Disk::OsCrash => (&OS_CRASH, CI_ITERATIONS),
        Disk::PowerCut => (&POWER_CUT, CI_POWER_CUTS),
    };
    cell.get_or_init(|| {
        let summary = campaign::campaign(lab(), disk, first_seed(), iterations, 1);
        eprintln!("{summary}");
        summary
    })
}

/// OS crash under the real kernel: no corruption, nothing lost at or
/// before the durable point under `normal`, nothing acknowledged lost
/// under `full`; and the campaign reaches the case that matters (`normal`
/// losing writes after its durable point), or it proves nothing.
#[test]
fn os_crash_on_a_real_kernel_keeps_the_durable_point() {
    let summary = ci_campaign(Disk::OsCrash);
    assert!(summary.harness.is_empty(), "{}", summary.harness.join("\n"));
    assert!(
        summary.violations.is_empty(),
        "{}",
        summary.violations.join("\n")
    );
    assert!(summary.full > 0, "no iteration under full");
    assert!(
        summary.normal_lost_runs > 0,
        "normal never lost an acknowledged write after its durable point: \
         the kill came too late or the workload synced too often"
    );
}

/// Negative control: the check must be able to fail on what the real
/// kernel left, in every run, whether or not the run itself lost
/// anything. On a copy of each run's output it is told one more row was
/// durable than survived (a store that claimed too much), and must find
/// the loss; on another copy a page is overwritten, and it must find the
/// corruption. (The deliberately wrong claim, "under `normal` every
/// acknowledged write is durable", is still counted and reported, but it
/// fails exactly where `normal` lost writes, which the test above already
/// requires: it is a figure, not a control.)
#[test]
fn negative_control_planted_losses_and_corruptions_are_caught() {
    let summary = ci_campaign(Disk::OsCrash);
    assert!(summary.harness.is_empty(), "{}", summary.harness.join("\n"));
    assert_eq!(
        summary.planted_losses_caught, summary.iterations,
        "a planted loss went unseen"
    );
    assert!(
        summary.planted_corruptions > 0,
        "no run had a page to corrupt"
    );
    assert_eq!(
        summary.planted_corruptions_caught, summary.planted_corruptions,
        "a planted corruption went unseen"
    );
}

/// POWER CUT at the block layer under the real kernel: the data disk is
/// our NBD server with a volatile write cache, and the writes after the
/// last flush are lost at the kill. The same claims hold; and the cache
/// must really have dropped writes in some cuts, or the run proves nothing
/// more than the OS crash.
#[test]
fn power_cut_with_a_volatile_disk_cache_keeps_the_durable_point() {
    let summary = ci_campaign(Disk::PowerCut);
    assert!(summary.harness.is_empty(), "{}", summary.harness.join("\n"));
    assert!(
        summary.violations.is_empty(),
        "{}",
        summary.violations.join("\n")
    );
    // Its own negative control: half the cuts are aimed at unflushed
    // writes (29 of 30 found some in the last long run). The planted loss
    // and corruption are checked on the OS crashes.
    assert!(
        summary.cuts_that_dropped > 0,
        "the volatile cache never held a write at the cut"
    );
}

/// The long run: `WALGUARD_KERNEL_LAB_ITERATIONS` kills (default 300) of
/// `WALGUARD_KERNEL_LAB_DISK` (`os-crash`, the default, or `power-cut`),
/// `WALGUARD_KERNEL_LAB_JOBS` VMs at a time (default 1).
#[test]
#[ignore = "long: run on demand, see the module docs"]
fn kernel_crash_on_demand() {
    let disk = Disk::from_env().unwrap_or_else(|e| panic!("{e}"));
    let lab = lab();
    let n = number("WALGUARD_KERNEL_LAB_ITERATIONS", ON_DEMAND_ITERATIONS);
    let jobs = number("WALGUARD_KERNEL_LAB_JOBS", 1);
    let summary = campaign::campaign(lab, disk, first_seed(), n, jobs);
    eprintln!("{summary}");
    println!(
        "\n#### OS crash on a real kernel (`kernel_crash_on_demand`)\n\n{}",
        summary.table()
    );
    assert!(summary.harness.is_empty(), "{}", summary.harness.join("\n"));
    assert!(
        summary.violations.is_empty(),
        "{}",
        summary.violations.join("\n")
    );
}

/// The guest writer, run inside the VM by its init script; does nothing
/// unless the kernel command line set its seed.
#[test]
#[ignore = "the writer inside the VM"]
fn guest_writer() {
    let Ok(seed) = std::env::var(campaign::SEED_ENV) else {
        return;
    };
    let seed = seed.parse().expect("seed");
    let synchronous = std::env::var(campaign::SYNC_ENV)
        .ok()
        .and_then(|name| name.parse().ok())
        .unwrap_or(Synchronous::Normal);
    guest::main(
        std::path::Path::new(images::GUEST_DATA_DIR),
        seed,
        synchronous,
    );
}
