#!/usr/bin/env bash
# Installs what the kernel crash lab (actors/tests/kernel_crash.rs) needs on
# the host, at the versions pinned in ./versions: QEMU (x86), busybox-static
# (the guest's init and tools), e2fsprogs (mkfs.ext4 -d, e2fsck, debugfs).
# Idempotent: it does nothing when every package is already at its pinned
# version and the guest kernel's package is known to apt. Uses sudo only
# when not root. Called by .ci/run; run it by hand before the on-demand
# campaign.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions
source "$here/versions"

sudo_if_needed() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

wanted=(
  "qemu-system-x86=$QEMU_VERSION"
  "busybox-static=$BUSYBOX_STATIC_VERSION"
  "e2fsprogs=$E2FSPROGS_VERSION"
)
missing=()
for spec in "${wanted[@]}"; do
  name="${spec%%=*}"
  version="${spec#*=}"
  have="$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null || true)"
  if [ "$have" != "install ok installed $version" ]; then
    missing+=("$spec")
  fi
done
kernel_known() {
  apt-cache show "$KERNEL_PACKAGE=$KERNEL_VERSION" >/dev/null 2>&1
}

if [ "${#missing[@]}" -gt 0 ] || ! kernel_known; then
  # Another apt may hold the lock on a shared machine: wait for it.
  sudo_if_needed apt-get -o DPkg::Lock::Timeout=300 update -qq
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    -o DPkg::Lock::Timeout=300 --no-install-recommends --allow-downgrades \
    "${missing[@]}" >/dev/null
fi
kernel_known || {
  echo "apt does not know $KERNEL_PACKAGE=$KERNEL_VERSION: bump it in $here/versions"
  exit 1
}
# sed reads to the end (head would close the pipe early: SIGPIPE under pipefail).
qemu-system-x86_64 --version | sed -n 1p
busybox 2>&1 | sed -n 1p
mkfs.ext4 -V 2>&1 | sed -n 1p
echo "guest kernel: $KERNEL_PACKAGE=$KERNEL_VERSION (fetched by the test)"
