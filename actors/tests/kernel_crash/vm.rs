//! QEMU: the accelerator probe, and one VM run that ends in a SIGKILL.
//!
//! The VM has one CPU, the Debian kernel with the lab's initramfs, the
//! data disk and the read-only program disk on virtio, and its serial
//! console on QEMU's stdout. The data disk runs with `cache=unsafe`: QEMU
//! then never fsyncs the image on the host. That changes nothing here, since
//! the host does not crash: every write the guest's disk completed is in
//! the host's page cache and survives QEMU's death, exactly like a disk
//! without a volatile cache. What dies with QEMU is the guest's own memory,
//! its page cache included: an OS crash of the guest.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::host::Tools;
use crate::protocol::{Line, Transcript};

/// Set to echo every console line on stderr.
const ECHO_ENV: &str = "WALGUARD_KERNEL_LAB_ECHO";

/// Guest memory: 512 MiB.
const MEMORY_MIB: u32 = 512;

/// How long a KVM boot may take to reach the init script before the probe
/// gives up on KVM: 8 s (a working KVM gets there in about a second).
const KVM_PROBE_TIMEOUT: Duration = Duration::from_secs(8);

/// Kernel command line: serial console, quiet, and no reboot on panic.
const KERNEL_ARGS: &str = "console=ttyS0 quiet loglevel=3 panic=-1 oops=panic";

/// An accelerator QEMU runs the guest with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accel {
    /// Hardware virtualization.
    Kvm,
    /// Software emulation.
    Tcg,
}

impl Accel {
    fn args(self) -> [&'static str; 4] {
        match self {
            Self::Kvm => ["-accel", "kvm", "-cpu", "host"],
            Self::Tcg => ["-accel", "tcg", "-cpu", "max"],
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Kvm => "KVM",
            Self::Tcg => "TCG",
        }
    }
}

/// The files a VM boots from.
#[derive(Debug, Clone)]
pub(crate) struct Boot<'a> {
    pub(crate) tools: &'a Tools,
    pub(crate) accel: Accel,
    pub(crate) vmlinuz: &'a Path,
    pub(crate) initramfs: &'a Path,
    pub(crate) program_disk: &'a Path,
}

/// A QEMU child that is killed (SIGKILL) and reaped when dropped.
struct Qemu(Child);

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `-drive` argument of a data disk image on the host: QEMU writes it
/// with `pwrite` and never fsyncs it (`cache=unsafe`; see the module docs).
pub(crate) fn image_drive(image: &Path) -> String {
    format!("file={},format=raw,if=virtio,cache=unsafe", image.display())
}

fn spawn(boot: &Boot<'_>, data_drive: Option<&str>, env: &str) -> Result<Qemu, String> {
    let mut cmd = Command::new(&boot.tools.qemu);
    cmd.args(boot.accel.args())
        .args(["-m", &MEMORY_MIB.to_string(), "-smp", "1"])
        .args(["-nodefaults", "-display", "none", "-no-reboot"])
        .args(["-serial", "stdio"])
        .arg("-kernel")
        .arg(boot.vmlinuz)
        .arg("-initrd")
        .arg(boot.initramfs)
        .args(["-append", &format!("{KERNEL_ARGS} {env}")]);
    if let Some(drive) = data_drive {
        cmd.arg("-drive").arg(drive);
    }
    cmd.arg("-drive").arg(format!(
        "file={},format=raw,if=virtio,readonly=on",
        boot.program_disk.display()
    ));
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        // QEMU writes to stderr only when it cannot start: let it show.
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", boot.tools.qemu.display()))?;
    Ok(Qemu(child))
}

/// Forwards the child's stdout lines (the serial console) to a channel.
fn console(
    qemu: &mut Qemu,
) -> Result<(mpsc::Receiver<String>, std::thread::JoinHandle<()>), String> {
    let stdout = qemu.0.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel();
    let echo = std::env::var_os(ECHO_ENV).is_some();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n') {
            let Ok(line) = line else { break };
            if echo {
                eprintln!("console: {}", String::from_utf8_lossy(&line).trim_end());
            }
            if tx
                .send(String::from_utf8_lossy(&line).into_owned())
                .is_err()
            {
                break;
            }
        }
    });
    Ok((rx, reader))
}

/// Whether KVM boots the guest to its init script within
/// [`KVM_PROBE_TIMEOUT`]. On these machines `/dev/kvm` exists but a KVM
/// boot has been seen to hang, hence a real boot as the probe.
pub(crate) fn kvm_works(boot: &Boot<'_>) -> bool {
    if !Path::new("/dev/kvm").exists() {
        return false;
    }
    let probe = Boot {
        accel: Accel::Kvm,
        ..boot.clone()
    };
    let Ok(mut qemu) = spawn(&probe, None, "WALGUARD_KERNEL_LAB_PROBE=1") else {
        return false;
    };
    let Ok((rx, _reader)) = console(&mut qemu) else {
        return false;
    };
    let deadline = Instant::now() + KVM_PROBE_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if Line::parse(&line) == Some(Line::ProbeOk) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}

/// How long an aimed kill waits for its moment after its delay: 2 s.
const AIM_WINDOW: Duration = Duration::from_secs(2);

/// When the host kills the VM.
#[derive(Clone, Copy)]
pub(crate) struct KillPlan<'a> {
    /// How long the writer may take to say it is ready.
    pub(crate) ready_timeout: Duration,
    /// The kill comes this long after the writer said it was ready.
    pub(crate) after_ready: Duration,
    /// If set, after the delay the kill waits (at most [`AIM_WINDOW`],
    /// polling every millisecond) until this says the moment has come.
    pub(crate) aim: Option<&'a dyn Fn() -> bool>,
}

/// What one VM run showed before it was killed.
#[derive(Debug, Clone)]
pub(crate) struct Killed {
    pub(crate) transcript: Transcript,
    /// From QEMU's start to the kill.
    pub(crate) lived: Duration,
    /// From QEMU's start to the writer's ready line.
    pub(crate) boot: Duration,
    /// An aimed kill found its moment.
    pub(crate) on_aim: bool,
    /// The console's last lines, for a failure's message.
    pub(crate) tail: Vec<String>,
}

/// Boots the VM with the data disk `data_drive` (a `-drive` argument) and
/// `env` on the kernel command line, waits
/// for the writer's ready line, lets it write for `plan.after_ready`, and
/// kills QEMU with SIGKILL.
pub(crate) fn run_and_kill(
    boot: &Boot<'_>,
    data_drive: &str,
    env: &str,
    plan: KillPlan<'_>,
) -> Result<Killed, String> {
    let start = Instant::now();
    let mut qemu = spawn(boot, Some(data_drive), env)?;
    let (rx, reader) = console(&mut qemu)?;
    let mut transcript = Transcript::default();
    let mut tail: Vec<String> = Vec::new();
    let mut take = |line: String, transcript: &mut Transcript| {
        if let Some(parsed) = Line::parse(&line) {
            transcript.take(&parsed);
        }
        if tail.len() == 20 {
            tail.remove(0);
        }
        tail.push(line);
    };
    let mut ready_at = None;
    let mut deadline = start + plan.ready_timeout;
    let mut exited = false;
    loop {
        // A console that never pauses must not hold the kill back.
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match rx.recv_timeout(left) {
            Ok(line) => {
                take(line, &mut transcript);
                if ready_at.is_none() && transcript.ready {
                    let now = Instant::now();
                    ready_at = Some(now - start);
                    deadline = now + plan.after_ready;
                }
                if !transcript.failures.is_empty() {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => break,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                exited = true;
                break;
            }
        }
    }
    let mut on_aim = false;
    if let (Some(aim), Some(_), false) = (plan.aim, ready_at, exited) {
        let until = Instant::now() + AIM_WINDOW;
        while Instant::now() < until {
            if aim() {
                on_aim = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let lived = start.elapsed();
    let status = qemu.0.try_wait().ok().flatten();
    drop(qemu); // SIGKILL, then reap
    let _ = reader.join();
    for line in rx.try_iter() {
        take(line, &mut transcript);
    }
    let mut stderr = String::new();
    if exited || status.is_some() {
        stderr = format!("QEMU exited by itself ({status:?})");
    }
    let Some(boot_time) = ready_at else {
        return Err(format!(
            "the writer never got ready within {:?} ({stderr}); console tail:\n{}",
            plan.ready_timeout,
            tail.join("\n")
        ));
    };
    if !stderr.is_empty() {
        transcript.failures.push(stderr);
    }
    Ok(Killed {
        transcript,
        lived,
        boot: boot_time,
        on_aim,
        tail,
    })
}
