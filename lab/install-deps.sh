#!/usr/bin/env bash
# Installs, from Debian's packages, everything clusterlab's real runs and tests use:
# vagrant with its libvirt and docker providers, libvirtd + qemu (software emulation),
# dockerd, the offline box builder (mmdebstrap), the linters the tests call, and
# headless Chromium with a font for tests/report_browser.rs (the matrix report page).
# Idempotent: a second run only checks.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

pkgs=(vagrant vagrant-libvirt libvirt-daemon-system libvirt-clients qemu-system-x86
      mmdebstrap dnsmasq-base ebtables iptables docker.io rsync shellcheck ruby
      iproute2 openssh-client bc patchelf postgresql-client e2fsprogs
      chromium fonts-dejavu-core)
missing=()
for p in "${pkgs[@]}"; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = 'install ok installed' ] || missing+=("$p")
done
if ! command -v qemu-img >/dev/null; then missing+=(qemu-utils); fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
apt-get update -qq
# qemu-system-x86 conflicts with the backported qemu-utils some images carry: install both
# together, pinning qemu-utils to the suite's own version (see the VM lab notes).
qu=$(apt-cache madison qemu-utils | awk -F'|' '$3 ~ /bookworm\/main|bookworm-security/ {gsub(/ /,"",$2); print $2; exit}')
extra=()
[ -n "$qu" ] && extra=("qemu-utils=$qu")
apt-get install -y -q --allow-downgrades --no-install-recommends "${missing[@]}" "${extra[@]}"
command -v qemu-img >/dev/null
echo "install-deps: done"
