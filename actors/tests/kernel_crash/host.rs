//! The host's side of the lab: the tools it needs, the pinned guest kernel
//! (fetched with `apt-get download`, unpacked with `dpkg-deb -x`, cached
//! under cargo's target tmp dir), and the kernel modules the guest loads.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The pins, one home for them: `scripts/kernel-lab/versions`.
const VERSIONS: &str = include_str!("../../../scripts/kernel-lab/versions");

/// The modules the guest needs for a virtio disk holding ext4. Their
/// `depends=` are resolved from the modules themselves; `crc32c_generic`
/// stands for the `crypto-crc32c` that ext4 and jbd2 name as a soft
/// dependency (a crypto alias, not a `depends=`).
const WANTED_MODULES: &[&str] = &["virtio_pci", "virtio_blk", "crc32c_generic", "ext4"];

/// The host programs the lab runs, and the package that brings each.
const TOOLS: &[(&str, &str)] = &[
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("busybox", "busybox-static"),
    ("mkfs.ext4", "e2fsprogs"),
    ("e2fsck", "e2fsprogs"),
    ("debugfs", "e2fsprogs"),
    ("apt-get", "apt"),
    ("dpkg-deb", "dpkg"),
    ("ldd", "libc-bin"),
];

/// A pinned value of `scripts/kernel-lab/versions`.
pub(crate) fn pin(key: &str) -> &'static str {
    VERSIONS
        .lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map_or_else(
            || panic!("scripts/kernel-lab/versions has no {key}"),
            |(_, v)| v.trim(),
        )
}

/// Finds `name` on PATH (and in the sbin directories, where e2fsprogs
/// lives).
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The host tools, found.
#[derive(Debug, Clone)]
pub(crate) struct Tools {
    pub(crate) qemu: PathBuf,
    pub(crate) busybox: PathBuf,
    pub(crate) mkfs: PathBuf,
    pub(crate) e2fsck: PathBuf,
    pub(crate) debugfs: PathBuf,
}

impl Tools {
    /// Every tool, or what is missing (each with its package).
    pub(crate) fn find() -> Result<Self, String> {
        let missing: BTreeSet<String> = TOOLS
            .iter()
            .filter(|(name, _)| which(name).is_none())
            .map(|(name, package)| format!("{name} ({package})"))
            .collect();
        if !missing.is_empty() {
            return Err(missing.into_iter().collect::<Vec<_>>().join(", "));
        }
        let found = |name: &str| which(name).expect("checked above");
        let busybox = found("busybox");
        // The initramfs has no libc: the busybox must be static.
        let bytes = std::fs::read(&busybox).map_err(|e| format!("{}: {e}", busybox.display()))?;
        if has_interpreter(&bytes) {
            return Err(format!(
                "{} is linked dynamically, not busybox-static",
                busybox.display()
            ));
        }
        Ok(Self {
            qemu: found("qemu-system-x86_64"),
            busybox,
            mkfs: found("mkfs.ext4"),
            e2fsck: found("e2fsck"),
            debugfs: found("debugfs"),
        })
    }

    /// `qemu-system-x86_64 --version`'s first line.
    pub(crate) fn qemu_version(&self) -> String {
        match Command::new(&self.qemu).arg("--version").output() {
            Ok(o) => String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
            Err(e) => format!("unknown ({e})"),
        }
    }
}

/// Whether the 64-bit ELF file `elf` names a program interpreter
/// (`PT_INTERP`): a dynamically linked program. Not an ELF: `true`.
fn has_interpreter(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let u16_at = |at: usize| {
        elf.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        elf.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |at: usize| {
        elf.get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    if !elf.starts_with(b"\x7fELF") {
        return true;
    }
    let (Some(phoff), Some(size), Some(count)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else {
        return true;
    };
    (0..usize::from(count))
        .any(|i| u32_at(phoff as usize + i * usize::from(size)) == Some(PT_INTERP))
}

/// Runs `cmd`; its stderr in the error.
pub(crate) fn run(cmd: &mut Command) -> Result<std::process::Output, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "{cmd:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The unpacked guest kernel: its image and the modules to load, in order.
#[derive(Debug, Clone)]
pub(crate) struct Kernel {
    /// `apt` spelling: `package=version`.
    pub(crate) package: String,
    pub(crate) vmlinuz: PathBuf,
    /// Module files, dependencies first.
    pub(crate) modules: Vec<PathBuf>,
}

/// Where the kernel is cached: cargo's tmp dir for integration tests.
fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("kernel-lab")
}

/// The pinned kernel, fetched and unpacked once, then cached.
pub(crate) fn kernel() -> Result<Kernel, String> {
    let (package, version) = (pin("KERNEL_PACKAGE"), pin("KERNEL_VERSION"));
    let dir = cache_dir().join(format!("{package}_{version}"));
    if !dir.join("done").exists() {
        let scratch = cache_dir().join(format!("fetch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
        let spec = format!("{package}={version}");
        run(Command::new("apt-get")
            .args(["download", "-q", &spec])
            .current_dir(&scratch))
        .map_err(|e| {
            format!("{e} (is apt's package list current? scripts/kernel-lab/install.sh)")
        })?;
        let deb = std::fs::read_dir(&scratch)
            .map_err(|e| e.to_string())?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .ok_or("apt-get download left no .deb")?;
        run(Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(scratch.join("x")))?;
        std::fs::remove_file(&deb).map_err(|e| e.to_string())?;
        std::fs::write(scratch.join("done"), &spec).map_err(|e| e.to_string())?;
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&scratch, &dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let root = dir.join("x");
    let release = package
        .strip_prefix("linux-image-")
        .ok_or_else(|| format!("{package}: not a linux-image package"))?;
    let vmlinuz = root.join("boot").join(format!("vmlinuz-{release}"));
    if !vmlinuz.is_file() {
        return Err(format!("{}: missing from {package}", vmlinuz.display()));
    }
    let modules = load_order(&root.join("lib/modules").join(release))?;
    Ok(Kernel {
        package: format!("{package}={version}"),
        vmlinuz,
        modules,
    })
}

/// The `depends=` of a module file, from its `.modinfo` strings.
fn depends(module: &Path) -> Result<Vec<String>, String> {
    let bytes = std::fs::read(module).map_err(|e| format!("{}: {e}", module.display()))?;
    let key = b"depends=";
    let Some(at) = bytes.windows(key.len()).position(|w| w == key) else {
        return Ok(Vec::new());
    };
    let rest = &bytes[at + key.len()..];
    let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
    Ok(String::from_utf8_lossy(&rest[..end])
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Puts module `name` in `order` after its dependencies.
fn visit(
    name: &str,
    files: &std::collections::HashMap<String, PathBuf>,
    order: &mut Vec<PathBuf>,
    seen: &mut BTreeSet<String>,
) -> Result<(), String> {
    let name = name.replace('-', "_");
    if !seen.insert(name.clone()) {
        return Ok(());
    }
    let path = files
        .get(&name)
        .ok_or_else(|| format!("module {name} is not in the kernel package"))?;
    for dep in depends(path)? {
        visit(&dep, files, order, seen)?;
    }
    order.push(path.clone());
    Ok(())
}

/// [`WANTED_MODULES`] and everything they depend on, dependencies first.
fn load_order(modules_dir: &Path) -> Result<Vec<PathBuf>, String> {
    // Every module file of the kernel, by module name (`-` and `_` are one).
    let mut files = std::collections::HashMap::new();
    let mut stack = vec![modules_dir.join("kernel")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Some(name) = path.file_name().and_then(|n| n.to_str())
                && let Some(stem) = name.strip_suffix(".ko")
            {
                files.insert(stem.replace('-', "_"), path.clone());
            }
        }
    }
    let (mut order, mut seen) = (Vec::new(), BTreeSet::new());
    for name in WANTED_MODULES {
        visit(name, &files, &mut order, &mut seen)?;
    }
    Ok(order)
}
