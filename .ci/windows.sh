#!/usr/bin/env bash
# walguard on Windows: cross-build for x86_64-pc-windows-gnu, lint that
# build, and run the core and actor tests under Wine. Called by .ci/run
# after the Linux checks; runs on its own too (`bash .ci/windows.sh`).
#
# The toolchain is Debian's (rustup cannot fetch a Windows std here):
# rustc-web, cargo-web and rust-web-src 1.96, installed in ONE apt command
# so that their versions match, called by full path while rustup's
# toolchain stays first on PATH for the Linux side. Debian ships no std for
# Windows, so std is built from rust-web-src with -Zbuild-std, which is
# unstable: RUSTC_BOOTSTRAP=1 goes on those cargo commands only. std's own
# dependencies come from crates.io on the first build. Everything lands in
# target/windows, so the two compilers never rebuild each other's files.
#
# Wine 8 has no bcryptprimitives.dll, which Rust's std imports
# (ProcessPrng): without it a test binary exits 53 and prints nothing. This
# script builds a one-function stand-in with MinGW
# (.ci/windows/bcryptprimitives.c) into the Wine prefix.
#
# Wine runs on Linux's file system, so this proves walguard's Windows code
# paths (the console events, LockFileEx, the Windows VFS of SQLite, the
# share modes that keep the open database in place), not NTFS's durability;
# docs/reliability.md says so.
#
# Run under Wine (every test in these binaries, except the Unix-only ones
# named in the tests themselves):
#   walguard           --lib, --test tests     (core unit and integration)
#   walguard-actors    --lib, --test tests
#   walguard-cli       --bins (the command's unit tests), --test windows
# Not run under Wine, and why:
#   tests/power_loss.rs, actors/tests/crash_lab.rs
#       power-loss and kill campaigns: the kill campaign freezes children
#       with SIGSTOP and reads /proc/locks (Linux only); the power cuts run
#       SQLite's I/O through walguard's VFS shim, which is the same on every
#       platform and costs minutes under Wine. tests/windows.rs holds the
#       Windows kill (TerminateProcess).
#   actors/tests/kernel_crash.rs
#       Linux only (`#![cfg(target_os = "linux")]`, empty elsewhere): it
#       boots a Linux guest in QEMU to crash ext4 under the actors.
#   cli/tests/cli.rs, cli_safety.rs, cli_bench.rs, cli_replication.rs
#       process tests of the binary written for Unix: SIGTERM/SIGINT by
#       `kill`, a second signal, /proc/locks, Unix file modes, Litestream.
#       The Windows process tests (console close) are in cli/tests/windows.rs.
#   walguard-bench
#       the benchmark harness (not a default member): Linux figures only
#       (/proc/self/task for CPU time); clippy above still builds it.
#   actors/tests/hostile.rs
#       built on Unix only: mode-0555 directories, /sys, a child process
#       holding POSIX locks, /proc for memory.
#   doctests
#       cross-compiled doctests need -Zdoctest-xcompile; the same examples
#       run on Linux.
#   inside the binaries that run, `#[cfg(unix)]`: the database file
#       deleted, renamed or replaced while open (Windows refuses that; see
#       the_open_database_cannot_be_deleted_renamed_or_replaced), and the
#       0600 mode of new files.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned: Debian 12 (bookworm, bookworm-security) package versions.
RUST_WEB_VERSION="1.96.0+dfsg1-1~deb12u2"
MINGW_VERSION="12.2.0-14+25.2"
WINE_VERSION="8.0~repack-4"
PACKAGES=(
  "rustc-web=$RUST_WEB_VERSION"
  "cargo-web=$RUST_WEB_VERSION"
  "rust-web-src=$RUST_WEB_VERSION"
  "rust-web-clippy=$RUST_WEB_VERSION"
  "gcc-mingw-w64-x86-64=$MINGW_VERSION"
  "wine64=$WINE_VERSION"
  "wine=$WINE_VERSION"
)
TARGET=x86_64-pc-windows-gnu
ROOT="$(pwd)"
WIN_TARGET_DIR="$ROOT/target/windows"

step() { printf '\n== windows: %s\n' "$*"; }

step "toolchain (Debian packages, pinned)"
installed() {
  local spec name version
  for spec in "${PACKAGES[@]}"; do
    name="${spec%%=*}" version="${spec#*=}"
    [ "$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null)" = "install ok installed $version" ] || return 1
  done
}
if ! installed; then
  apt-get update -qq
  # One command, so that rustc-web, cargo-web and rust-web-src match.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
fi
# Debian's tools by full path; /usr/bin first so that `cargo clippy` finds
# Debian's cargo-clippy, not rustup's.
export PATH="/usr/bin:$PATH"
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
/usr/bin/cargo --version
/usr/bin/rustc --version
x86_64-w64-mingw32-gcc --version | head -1
wine --version

export CARGO_TARGET_DIR="$WIN_TARGET_DIR"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine
export WINEPREFIX="$WIN_TARGET_DIR/wineprefix"
export WINEDEBUG=-all
# Headless: no X server, and no dialogs asking to install Mono or Gecko.
unset DISPLAY
export WINEDLLOVERRIDES="mscoree,mshtml="
# The Linux side's flags are not meant for this build.
unset RUSTFLAGS CARGO_BUILD_TARGET

WINE_STARTED=0
stop_wine() { if [ "$WINE_STARTED" = 1 ]; then wineserver -k 2>/dev/null || true; fi; }
trap stop_wine EXIT

step "lint (clippy, $TARGET)"
RUSTC_BOOTSTRAP=1 /usr/bin/cargo clippy -Zbuild-std --target "$TARGET" --locked \
  --workspace --all-targets --all-features -- -D warnings

step "rustdoc ($TARGET): the Windows-only docs (walguard_actors::console)"
RUSTC_BOOTSTRAP=1 RUSTDOCFLAGS=-Dwarnings /usr/bin/cargo doc -Zbuild-std --target "$TARGET" --locked \
  -p walguard -p walguard-actors --all-features --no-deps

step "build the tests ($TARGET)"
TESTS=(-p walguard -p walguard-actors -p walguard-cli --all-features --lib --bins --test tests --test windows)
RUSTC_BOOTSTRAP=1 /usr/bin/cargo test -Zbuild-std --target "$TARGET" --locked --no-run "${TESTS[@]}"

step "Wine prefix"
WINE_STARTED=1
wineboot --init 2>/dev/null
# One wineserver for the whole run: by default it exits a few seconds after
# its last client, and a test binary starting just then loses it
# ("recvmsg: Connection reset by peer"). The one wineboot left is replaced
# by a persistent one; `wineserver -k` ends it at exit.
wineserver -k 2>/dev/null || true
wineserver -w 2>/dev/null || true
wineserver -p
x86_64-w64-mingw32-gcc -shared -O2 -s -o "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" \
  .ci/windows/bcryptprimitives.c -ladvapi32

step "tests under Wine"
RUSTC_BOOTSTRAP=1 /usr/bin/cargo test -Zbuild-std --target "$TARGET" --locked "${TESTS[@]}"
