//! What the VM boots and writes to: the initramfs (busybox-static, the
//! kernel modules, the init script), the read-only program disk (this test
//! binary and the shared libraries `ldd` lists), and the data disk, a fresh
//! ext4 file system per iteration. All made on the host without root:
//! the initramfs is a `newc` cpio archive written here, the disks are
//! `mkfs.ext4 -d` images.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::host::{Kernel, Tools, run};
use crate::protocol::PREFIX;

/// File system label of the program disk.
const PROGRAM_LABEL: &str = "wgprog";
/// File system label of the data disk.
const DATA_LABEL: &str = "wgdata";
/// Size of the data disk: 64 MiB.
const DATA_DISK_MIB: u64 = 64;
/// Free room on the program disk past its files: 16 MiB.
const PROGRAM_SLACK_MIB: u64 = 16;
/// Where the writer runs, inside the program disk (chroot).
pub(crate) const GUEST_WRITER: &str = "/bin/writer";
/// Where the data disk is mounted, inside the chroot.
pub(crate) const GUEST_DATA_DIR: &str = "/data";

/// The guest's init, a busybox shell script. The kernel passes the
/// `NAME=value` words of its command line to init as environment
/// variables, so the seed and `synchronous` reach the writer that way.
fn init_script() -> String {
    format!(
        r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
say() {{ echo "{PREFIX} $*"; }}
fail() {{ say "fail $*"; poweroff -f; }}
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
if [ -n "$WALGUARD_KERNEL_LAB_PROBE" ]; then say probe-ok; poweroff -f; fi
for m in $(cat /modules); do insmod "/lib/modules/$m" || fail "insmod $m"; done
prog=$(findfs LABEL={PROGRAM_LABEL}) || fail "no disk labelled {PROGRAM_LABEL}"
data=$(findfs LABEL={DATA_LABEL}) || fail "no disk labelled {DATA_LABEL}"
mount -t ext4 -o ro,noload "$prog" /prog || fail "mount $prog"
mount -t ext4 "$data" /prog{GUEST_DATA_DIR} || fail "mount $data"
mount -t proc proc /prog/proc; mount -t devtmpfs devtmpfs /prog/dev
say "boot $(uname -r)"
chroot /prog {GUEST_WRITER} --exact guest_writer --ignored --nocapture --test-threads=1
say "writer-exit $?"
umount /prog{GUEST_DATA_DIR}
poweroff -f
"#
    )
}

/// A `newc` cpio archive, built in memory.
struct Cpio {
    bytes: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn new() -> Self {
        Self {
            bytes: Vec::new(),
            ino: 1,
        }
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }

    /// One entry; `rdev` is (major, minor) of a device node.
    fn entry(&mut self, name: &str, mode: u32, data: &[u8], rdev: (u32, u32)) {
        let fields = [
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        self.ino += 1;
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            self.bytes
                .extend_from_slice(format!("{field:08X}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn dir(&mut self, name: &str) {
        self.entry(name, 0o040_755, &[], (0, 0));
    }

    fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, 0o100_000 | mode, data, (0, 0));
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[], (0, 0));
        self.bytes
    }
}

/// Writes the initramfs to `out`.
pub(crate) fn initramfs(tools: &Tools, kernel: &Kernel, out: &Path) -> Result<(), String> {
    let mut cpio = Cpio::new();
    for dir in ["bin", "dev", "proc", "sys", "prog", "lib", "lib/modules"] {
        cpio.dir(dir);
    }
    // The console, for init's first output.
    cpio.entry("dev/console", 0o020_600, &[], (5, 1));
    let busybox = std::fs::read(&tools.busybox).map_err(|e| e.to_string())?;
    cpio.file("bin/busybox", 0o755, &busybox);
    cpio.file("init", 0o755, init_script().as_bytes());
    let mut order = String::new();
    for module in &kernel.modules {
        let name = module
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or("module name")?;
        let bytes = std::fs::read(module).map_err(|e| format!("{}: {e}", module.display()))?;
        cpio.file(&format!("lib/modules/{name}"), 0o644, &bytes);
        order.push_str(name);
        order.push('\n');
    }
    cpio.file("modules", 0o644, order.as_bytes());
    std::fs::write(out, cpio.finish()).map_err(|e| format!("{}: {e}", out.display()))
}

/// The shared libraries `exe` loads, and its ELF interpreter, as `ldd`
/// lists them.
fn shared_libraries(exe: &Path) -> Result<Vec<PathBuf>, String> {
    let out = run(Command::new("ldd").arg(exe))?;
    let mut libs = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)",
        // "/lib64/ld-linux-x86-64.so.2 (0x...)", "linux-vdso.so.1 (0x...)"
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(path));
        }
    }
    if libs.is_empty() {
        return Err(format!("ldd listed no library for {}", exe.display()));
    }
    Ok(libs)
}

/// Builds the program disk at `out`: `exe` as [`GUEST_WRITER`], its
/// libraries at their own paths, and the mount points the init script uses.
pub(crate) fn program_disk(tools: &Tools, exe: &Path, out: &Path) -> Result<(), String> {
    let root = out.with_extension("root");
    let _ = std::fs::remove_dir_all(&root);
    for dir in [
        "bin",
        "proc",
        "dev",
        "tmp",
        GUEST_DATA_DIR.trim_start_matches('/'),
    ] {
        std::fs::create_dir_all(root.join(dir)).map_err(|e| e.to_string())?;
    }
    let mut bytes = 0;
    let mut copy = |from: &Path, to: &Path| -> Result<(), String> {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        bytes += std::fs::copy(from, to).map_err(|e| format!("{}: {e}", from.display()))?;
        Ok(())
    };
    copy(exe, &root.join(GUEST_WRITER.trim_start_matches('/')))?;
    for lib in shared_libraries(exe)? {
        let target = root.join(lib.strip_prefix("/").map_err(|e| e.to_string())?);
        // The real file, not the symlink: the path is what the loader asks for.
        let real = std::fs::canonicalize(&lib).map_err(|e| format!("{}: {e}", lib.display()))?;
        copy(&real, &target)?;
    }
    let mib = bytes / (1 << 20) + PROGRAM_SLACK_MIB;
    let _ = std::fs::remove_file(out);
    run(Command::new(&tools.mkfs)
        .args(["-q", "-F", "-b", "4096", "-L", PROGRAM_LABEL, "-d"])
        .arg(&root)
        .arg(out)
        .arg(format!("{mib}M")))?;
    std::fs::remove_dir_all(&root).map_err(|e| e.to_string())?;
    Ok(())
}

/// A fresh, empty data disk at `out`: ext4 with the defaults of Debian's
/// `mke2fs.conf` (journal, `metadata_csum`), 4 KiB blocks, initialized in
/// full so that the guest's lazy init thread does not write behind the
/// workload.
pub(crate) fn data_disk(tools: &Tools, out: &Path) -> Result<(), String> {
    let _ = std::fs::remove_file(out);
    run(Command::new(&tools.mkfs)
        .args([
            "-q",
            "-F",
            "-b",
            "4096",
            "-L",
            DATA_LABEL,
            "-E",
            "lazy_itable_init=0,lazy_journal_init=0",
        ])
        .arg(out)
        .arg(format!("{DATA_DISK_MIB}M")))?;
    Ok(())
}
