#!/usr/bin/env bash
# Prints `kvm` when a KVM guest really boots on this host, else `qemu`
# (software emulation). /dev/kvm existing is not enough: on some hosts guests
# hang under KVM before the kernel prints its first line. So boot the box's
# own kernel under KVM for a few seconds and look for that line.
#
#   lab/kvm-check.sh KERNEL
set -uo pipefail
kernel=${1:?usage: kvm-check.sh KERNEL}
if [ ! -e /dev/kvm ]; then
  echo qemu
  exit 0
fi
out=$(mktemp)
( timeout 20 qemu-system-x86_64 -accel kvm -cpu host -m 256 -smp 1 -nographic -no-reboot \
  -kernel "$kernel" -append "console=ttyS0 panic=-1" >"$out" 2>&1 ) 2>/dev/null
if grep -q "Linux version" "$out"; then echo kvm; else echo qemu; fi
rm -f "$out"
