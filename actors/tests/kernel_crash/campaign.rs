//! The campaign: the lab built once (kernel, initramfs, program disk,
//! accelerator), then one VM per seed, killed at a seeded moment, its data
//! disk checked. Iterations may run side by side
//! (`WALGUARD_KERNEL_LAB_JOBS`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use walguard::settings::Synchronous;
use walguard::testing::{Violation, ViolationKind};

use crate::check::{self, Fsck};
use crate::host::{self, Kernel, Tools};
use crate::images;
use crate::nbd::{Cut, VolatileDisk};
use crate::vm::{self, Accel, Boot, KillPlan};

/// Environment variable carrying the seed to the guest (kernel command
/// line, then init's environment).
pub(crate) const SEED_ENV: &str = "WALGUARD_KERNEL_LAB_SEED";
/// Environment variable carrying `synchronous` to the guest.
pub(crate) const SYNC_ENV: &str = "WALGUARD_KERNEL_LAB_SYNC";
/// Set to `kvm` or `tcg` to skip the accelerator probe.
const ACCEL_ENV: &str = "WALGUARD_KERNEL_LAB_ACCEL";

/// Which failure a campaign models: how the data disk dies with the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Disk {
    /// OS CRASH: the data disk is an image file that QEMU writes; every
    /// write the disk completed survives QEMU's death.
    #[default]
    OsCrash,
    /// POWER CUT: the data disk is our NBD server with a volatile write
    /// cache ([`VolatileDisk`]); writes after the last flush are lost.
    PowerCut,
}

impl Disk {
    /// From `WALGUARD_KERNEL_LAB_DISK` (`os-crash`, the default, or
    /// `power-cut`).
    pub(crate) fn from_env() -> Result<Self, String> {
        match std::env::var(DISK_ENV).as_deref() {
            Err(_) | Ok("os-crash") => Ok(Self::OsCrash),
            Ok("power-cut") => Ok(Self::PowerCut),
            Ok(other) => Err(format!(
                "{DISK_ENV}={other}: expected os-crash or power-cut"
            )),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::OsCrash => "OS crash (QEMU killed, the disk image keeps every completed write)",
            Self::PowerCut => {
                "power cut (QEMU killed, an NBD disk with a volatile cache drops writes after the last flush)"
            }
        }
    }
}

/// Set to `os-crash` or `power-cut` to choose the on-demand campaign's
/// failure.
const DISK_ENV: &str = "WALGUARD_KERNEL_LAB_DISK";

/// The earliest kill after the writer's ready line: 300 ms.
const KILL_AFTER_MIN: Duration = Duration::from_millis(300);
/// The latest kill after the writer's ready line: 4 s (under TCG the writer
/// makes a few hundred writes a second; ext4 commits its journal every 5 s).
const KILL_AFTER_MAX: Duration = Duration::from_secs(4);
/// How long the guest may take from QEMU's start to the writer's ready
/// line: 120 s (TCG on a busy 2-core machine boots in 8 to 20 s).
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// `synchronous` of the iteration of `seed`: `full` one time in three,
/// `normal` otherwise (the interesting case for losses), so a seed alone
/// replays an iteration.
pub(crate) fn synchronous_of(seed: u64) -> Synchronous {
    if seed % 3 == 2 {
        Synchronous::Full
    } else {
        Synchronous::Normal
    }
}

/// The kill moment of `seed`, after the writer's ready line.
fn kill_after(seed: u64) -> Duration {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x4B45_524E_454C);
    let ms = rng.random_range(KILL_AFTER_MIN.as_millis()..=KILL_AFTER_MAX.as_millis());
    Duration::from_millis(ms as u64)
}

/// Whether the power cut of `seed` is aimed: after its delay, it waits for
/// the volatile cache to hold unflushed writes (half the cuts). Writes
/// reach the disk in bursts (an fsync, a journal commit, writeback) and a
/// flush follows each, so an unaimed cut rarely finds any.
fn aimed_at_unflushed(seed: u64) -> bool {
    seed.is_multiple_of(2)
}

/// The lab, built once per campaign.
pub(crate) struct Lab {
    tools: Tools,
    kernel: Kernel,
    accel: Accel,
    qemu_version: String,
    dir: tempfile::TempDir,
    initramfs: PathBuf,
    program_disk: PathBuf,
}

impl Lab {
    /// Fetches the kernel (cached), builds the initramfs and the program
    /// disk (this test binary and its libraries), and picks the
    /// accelerator.
    pub(crate) fn build(tools: Tools) -> Result<Self, String> {
        let kernel = host::kernel()?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let initramfs = dir.path().join("initramfs.cpio");
        images::initramfs(&tools, &kernel, &initramfs)?;
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let program_disk = dir.path().join("program.img");
        images::program_disk(&tools, &exe, &program_disk)?;
        let mut lab = Self {
            qemu_version: tools.qemu_version(),
            tools,
            kernel,
            accel: Accel::Tcg,
            dir,
            initramfs,
            program_disk,
        };
        lab.accel = match std::env::var(ACCEL_ENV).as_deref() {
            Ok("kvm") => Accel::Kvm,
            Ok("tcg") => Accel::Tcg,
            Ok(other) => return Err(format!("{ACCEL_ENV}={other}: expected kvm or tcg")),
            Err(_) if vm::kvm_works(&lab.boot()) => Accel::Kvm,
            Err(_) => Accel::Tcg,
        };
        Ok(lab)
    }

    fn boot(&self) -> Boot<'_> {
        Boot {
            tools: &self.tools,
            accel: self.accel,
            vmlinuz: &self.kernel.vmlinuz,
            initramfs: &self.initramfs,
            program_disk: &self.program_disk,
        }
    }

    /// One iteration: a fresh data disk, the VM killed at the seed's moment,
    /// the disk checked.
    pub(crate) fn iteration(&self, disk_kind: Disk, seed: u64) -> Result<Iteration, String> {
        let work = tempfile::tempdir_in(self.dir.path()).map_err(|e| e.to_string())?;
        let disk = work.path().join("data.img");
        images::data_disk(&self.tools, &disk)?;
        let synchronous = synchronous_of(seed);
        let env = format!("{SEED_ENV}={seed} {SYNC_ENV}={}", synchronous.as_str());
        let plan = KillPlan {
            ready_timeout: READY_TIMEOUT,
            after_ready: kill_after(seed),
            aim: None,
        };
        let (killed, cut) = match disk_kind {
            Disk::OsCrash => {
                let drive = vm::image_drive(&disk);
                (vm::run_and_kill(&self.boot(), &drive, &env, plan)?, None)
            }
            Disk::PowerCut => {
                let server = VolatileDisk::serve(&disk)?;
                let unflushed = || server.holds_unflushed_writes();
                let plan = KillPlan {
                    aim: aimed_at_unflushed(seed).then_some(&unflushed as &dyn Fn() -> bool),
                    ..plan
                };
                let killed = vm::run_and_kill(&self.boot(), &server.drive(), &env, plan);
                // QEMU is dead: the power goes, whatever the run said.
                let cut = server.cut(&disk)?;
                (killed?, Some(cut))
            }
        };
        if !killed.transcript.failures.is_empty() {
            return Err(format!(
                "{}; console tail:\n{}",
                killed.transcript.failures.join("; "),
                killed.tail.join("\n")
            ));
        }
        let fsck = check::fsck(&self.tools, &disk)?;
        let out = work.path().join("out");
        std::fs::create_dir(&out).map_err(|e| e.to_string())?;
        check::extract(&self.tools, &disk, crate::DB_FILE, &out)?;
        let verdict = check::verdict(
            &out.join(crate::DB_FILE),
            synchronous,
            &killed.transcript,
            seed,
        )?;
        let planted = check::planted(
            &out.join(crate::DB_FILE),
            synchronous,
            &killed.transcript,
            seed,
            verdict.survived,
        )?;
        if verdict.violation.is_some() {
            // Keep the evidence.
            let keep = Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join("kernel-lab")
                .join(format!("violation-{seed}.img"));
            let _ = std::fs::copy(&disk, keep);
        }
        Ok(Iteration {
            disk: disk_kind,
            seed,
            synchronous,
            killed,
            cut,
            fsck,
            verdict,
            planted,
        })
    }
}

/// One kill and what it left.
#[derive(Debug)]
pub(crate) struct Iteration {
    pub(crate) disk: Disk,
    pub(crate) seed: u64,
    pub(crate) synchronous: Synchronous,
    pub(crate) killed: vm::Killed,
    /// What the volatile cache dropped (power cut only).
    pub(crate) cut: Option<Cut>,
    pub(crate) fsck: Fsck,
    pub(crate) verdict: check::Verdict,
    /// The negative control on this run's output.
    pub(crate) planted: check::Planted,
}

/// What a campaign saw.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    pub(crate) disk: Disk,
    pub(crate) first_seed: u64,
    pub(crate) iterations: u64,
    pub(crate) normal: u64,
    pub(crate) full: u64,
    pub(crate) accel: String,
    pub(crate) kernel_package: String,
    pub(crate) kernel_release: String,
    pub(crate) qemu_version: String,
    pub(crate) acked_rows: u64,
    pub(crate) durable_moves: u64,
    pub(crate) shutdowns: u64,
    pub(crate) killed_in_shutdown: u64,
    pub(crate) journal_replays: u64,
    /// Power cuts at which the volatile cache held writes, and dropped them.
    pub(crate) cuts_that_dropped: u64,
    /// Writes dropped by the volatile cache, summed.
    pub(crate) dropped_writes: u64,
    /// Flushes the volatile-cache disk served, summed.
    pub(crate) flushes: u64,
    /// Writes the volatile-cache disk served, summed.
    pub(crate) disk_writes: u64,
    /// Aimed power cuts, and those that found unflushed writes in the cache.
    pub(crate) aimed: u64,
    pub(crate) aimed_hit: u64,
    /// `normal` runs that lost acknowledged rows after the durable point.
    pub(crate) normal_lost_runs: u64,
    /// Acknowledged rows those runs lost, summed.
    pub(crate) normal_lost_rows: u64,
    /// `normal` runs whose survivors stopped exactly at the last durable
    /// point the host saw.
    pub(crate) normal_at_durable: u64,
    /// `normal` runs that kept rows past the durable point.
    pub(crate) normal_past_durable: u64,
    /// `full` runs in which every acknowledged row survived.
    pub(crate) full_kept_all: u64,
    /// The deliberately wrong claim failed in this many `normal` runs.
    pub(crate) wrong_claim_failed: u64,
    /// Runs whose verdict, told one more row was durable than survived,
    /// found the loss (the negative control; every run).
    pub(crate) planted_losses_caught: u64,
    /// Runs with a page overwritten, and those whose verdict found it.
    pub(crate) planted_corruptions: u64,
    pub(crate) planted_corruptions_caught: u64,
    /// Violations of walguard's claims, with their seeds.
    pub(crate) violations: Vec<String>,
    pub(crate) lost_before_durable: u64,
    pub(crate) corruptions: u64,
    /// Failures of the harness (no verdict), with their seeds.
    pub(crate) harness: Vec<String>,
    pub(crate) boot_total: Duration,
    pub(crate) elapsed: Duration,
    pub(crate) jobs: u64,
}

impl Summary {
    fn add(&mut self, it: &Iteration) {
        let t = &it.killed.transcript;
        self.iterations += 1;
        if let Some(release) = &t.kernel {
            self.kernel_release.clone_from(release);
        }
        self.acked_rows += t.acked_rows;
        self.durable_moves += t.durable_moves;
        self.shutdowns += t.shutdowns;
        self.killed_in_shutdown += u64::from(t.in_shutdown);
        self.journal_replays += u64::from(it.fsck == Fsck::Fixed);
        self.boot_total += it.killed.boot;
        if let Some(cut) = it.cut {
            self.cuts_that_dropped += u64::from(cut.lost_writes > 0);
            self.dropped_writes += cut.lost_writes;
            self.flushes += cut.flushes;
            self.disk_writes += cut.writes;
            self.aimed += u64::from(aimed_at_unflushed(it.seed));
            self.aimed_hit += u64::from(it.killed.on_aim);
        }
        let survived = it.verdict.survived;
        if it.synchronous == Synchronous::Full {
            self.full += 1;
            self.full_kept_all += u64::from(survived >= t.max_acked);
        } else {
            self.normal += 1;
            if it.verdict.violation.is_none() {
                if survived < t.max_acked {
                    self.normal_lost_runs += 1;
                    self.normal_lost_rows += t.max_acked - survived;
                }
                if survived == t.durable {
                    self.normal_at_durable += 1;
                } else if survived > t.durable {
                    self.normal_past_durable += 1;
                }
            }
        }
        self.wrong_claim_failed += u64::from(it.verdict.wrong_claim_failed == Some(true));
        self.planted_losses_caught += u64::from(it.planted.loss_caught);
        self.planted_corruptions += u64::from(it.planted.corruption_tried);
        self.planted_corruptions_caught += u64::from(it.planted.corruption_caught);
        if let Some(v) = &it.verdict.violation {
            match v.kind() {
                ViolationKind::LostAcknowledged => self.lost_before_durable += 1,
                _ => self.corruptions += 1,
            }
            self.violations.push(describe(it, v));
        }
    }

    /// The figures as a Markdown table (docs/reliability.md).
    pub(crate) fn table(&self) -> String {
        let mut t = String::from("| figure | value |\n|---|---|\n");
        let mut row = |k: &str, v: String| {
            let _ = writeln!(t, "| {k} | {v} |");
        };
        row(
            "kills, seeds",
            format!(
                "**{}** ({} under `normal`, {} under `full`), seeds {}..={}",
                self.iterations,
                self.normal,
                self.full,
                self.first_seed,
                self.first_seed + self.iterations.saturating_sub(1)
            ),
        );
        row("failure", self.disk.name().to_owned());
        row(
            "guest kernel",
            format!("{} (`{}`)", self.kernel_release, self.kernel_package),
        );
        row(
            "QEMU, accelerator",
            format!("{}, {}", self.qemu_version, self.accel),
        );
        row(
            "wall time",
            format!(
                "{:.0?} ({} VMs at a time; mean boot to the writer's ready line {:.1?})",
                self.elapsed,
                self.jobs,
                self.boot_total / (self.iterations.max(1) as u32)
            ),
        );
        row(
            "rows acknowledged; \"durable through\" moves; clean shutdowns",
            format!(
                "{}; {}; {}",
                self.acked_rows, self.durable_moves, self.shutdowns
            ),
        );
        row(
            "kills during a clean shutdown",
            self.killed_in_shutdown.to_string(),
        );
        row(
            "`e2fsck -fy` exited 1 (it modified the file system: journal recovery, orphans); none exited higher",
            self.journal_replays.to_string(),
        );
        if self.disk == Disk::PowerCut {
            row(
                "cuts aimed at unflushed writes in the cache; that found some",
                format!("{}; {}", self.aimed, self.aimed_hit),
            );
            row(
                "volatile cache: cuts at which it dropped writes; writes dropped / served; flushes served",
                format!(
                    "{}; {} / {}; {}",
                    self.cuts_that_dropped, self.dropped_writes, self.disk_writes, self.flushes
                ),
            );
        }
        row(
            "acknowledged writes lost at or before the durable point (`normal`), or at all (`full`)",
            format!("**{}**", self.lost_before_durable),
        );
        row(
            "corruptions (integrity, gaps, damaged rows, cut transactions)",
            format!("**{}**", self.corruptions),
        );
        row(
            "`normal` runs that lost acknowledged writes after the durable point",
            format!(
                "**{}** of {} ({} rows in all)",
                self.normal_lost_runs, self.normal, self.normal_lost_rows
            ),
        );
        row(
            "`normal` survivors: exactly the durable point / past it",
            format!("{} / {}", self.normal_at_durable, self.normal_past_durable),
        );
        row(
            "`full` runs that kept every acknowledged write",
            format!("{} of {}", self.full_kept_all, self.full),
        );
        row(
            "runs that refute \"under `normal` every acknowledged write is durable\" (a figure: it fails where `normal` lost writes)",
            format!("{} of {}", self.wrong_claim_failed, self.normal),
        );
        row(
            "negative control: planted losses caught / planted corruptions caught",
            format!(
                "**{}** of {} / **{}** of {}",
                self.planted_losses_caught,
                self.iterations,
                self.planted_corruptions_caught,
                self.planted_corruptions
            ),
        );
        row("harness failures", self.harness.len().to_string());
        t
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.table())?;
        for v in &self.violations {
            writeln!(f, "VIOLATION {v}")?;
        }
        for h in &self.harness {
            writeln!(f, "HARNESS {h}")?;
        }
        Ok(())
    }
}

fn describe(it: &Iteration, v: &Violation) -> String {
    let t = &it.killed.transcript;
    format!(
        "seed {} ({:?}): {v}; acknowledged through {}, durable through {}, survived {}; replay: {}",
        it.seed,
        it.synchronous,
        t.max_acked,
        t.durable,
        it.verdict.survived,
        crate::replay(it.seed, it.disk)
    )
}

/// Runs `iterations` kills of `disk` from `first_seed`, `jobs` VMs at a
/// time.
pub(crate) fn campaign(
    lab: &Lab,
    disk: Disk,
    first_seed: u64,
    iterations: u64,
    jobs: u64,
) -> Summary {
    let start = Instant::now();
    let next = AtomicU64::new(0);
    let done = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= iterations {
                        break;
                    }
                    let seed = first_seed.wrapping_add(i);
                    let result = lab.iteration(disk, seed);
                    if let Ok(it) = &result {
                        let t = &it.killed.transcript;
                        eprintln!(
                            "seed {seed} {:?} {:?}: acked {} durable {} survived {} (boot {:.1?}, lived {:.1?}){}",
                            disk,
                            it.synchronous,
                            t.max_acked,
                            t.durable,
                            it.verdict.survived,
                            it.killed.boot,
                            it.killed.lived,
                            it.cut.map(|c| format!(", cache dropped {} writes", c.lost_writes)).unwrap_or_default()
                        );
                    } else if let Err(e) = &result {
                        eprintln!("seed {seed}: harness failure: {e}");
                    }
                    done.lock().unwrap().push((seed, result));
                }
            });
        }
    });
    let mut results = done.into_inner().unwrap();
    results.sort_by_key(|(seed, _)| *seed);
    let mut summary = Summary {
        disk,
        first_seed,
        accel: lab.accel.name().to_owned(),
        kernel_package: lab.kernel.package.clone(),
        qemu_version: lab.qemu_version.clone(),
        jobs: jobs.max(1),
        ..Summary::default()
    };
    for (seed, result) in results {
        match result {
            Ok(it) => summary.add(&it),
            Err(e) => summary.harness.push(format!(
                "seed {seed}: {e}; replay: {}",
                crate::replay(seed, disk)
            )),
        }
    }
    summary.elapsed = start.elapsed();
    summary
}
