#!/usr/bin/env bash
# clusterlab's one offline box recipe: a Debian rootfs from mmdebstrap, customised once, then
# shipped either as a docker image or as a vagrant-libvirt box. `clusterlab box build` runs it;
# it can also be run by hand (as root, inside the lab: lab/lab.sh exec env CL_...=... bash
# templates/box/build.sh).
#
# Environment (validated below):
#   CL_RELEASE          Debian suite: bullseye | bookworm | trixie                (required)
#   CL_PG_VERSIONS      space-separated PostgreSQL majors of that suite to preinstall, e.g.
#                       "15" (packages postgresql-V and postgresql-client-V); may be empty
#   CL_PROVIDER         docker | libvirt                                          (required)
#   CL_NAME             image/box name, e.g. clusterlab/bookworm-pg15: docker tag NAME:latest,
#                       or `vagrant box add --force --name NAME`                  (required)
#   CL_CACHE            cache dir, e.g. /var/lib/clusterlab/cache                 (required)
#                       holds rootfs/*.tar (mmdebstrap output keyed by release + package list +
#                       provider flavour), NAME.box (libvirt) and NAME.done (NAME with every
#                       "/" replaced by "_"; one line per provider that was built)
#   CL_VAGRANT_PUBKEY   Vagrant's insecure public key; default: the one shipped with the
#                       vagrant package (found by glob)
#   CL_EXTRA_TARBALL    optional tar(.gz) files of PostgreSQL server binaries (MAJOR/{bin,lib,share}),
#                       space-separated, each unpacked into the image
#   CL_EXTRA_TARBALL_DEST  where they are unpacked inside the image; default /opt/clusterlab/pg
#   CL_EXTRA_MAJORS     space-separated majors that CL_EXTRA_TARBALL holds, e.g. "9.4 18": only
#                       for the image label, the log and the .done line; may be empty
#   CL_EXTRA_PACKAGES   space-separated Debian packages to add, e.g. "postgresql-common
#                       libreadline8 zlib1g" for a server compiled by compile.sh (part of the
#                       rootfs package list, so of its cache key); may be empty
#   CL_MIRROR           Debian mirror; default http://deb.debian.org/debian
#   CL_SECURITY_MIRROR  Debian security mirror; default http://deb.debian.org/debian-security
#   CL_DISK_GB          libvirt disk size in GB; default 4
#   CL_FETCH_NETNS      a network namespace file (e.g. /run/netns/cl-lab-host) to run
#                       mmdebstrap in, because it is the only step that needs Debian's mirror
#                       and the lab's namespace has no uplink; default $CLUSTERLAB_HOST_NETNS
#                       (set by lab/lab.sh), else the current namespace
#   VAGRANT_HOME        (libvirt) where `vagrant box add` puts the box; keep it outside /root,
#                       qemu runs as libvirt-qemu and reads the box's kernel and initrd there
#   DOCKER_HOST         (docker) the daemon to import into, e.g. the lab's
#
# Output: one line per phase with its elapsed seconds on stderr; the tools' own output goes to
# a log that is shown (its tail) only when a phase fails.
#
# lib.sh, beside this file, holds what compile.sh shares with it: log/die, phase, and the
# cached rootfs tarball (its key, mmdebstrap options and sources).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Bump when anything that shapes the cached rootfs changes (mmdebstrap options, lists below).
ROOTFS_RECIPE=1

# ---------------------------------------------------------------- environment
CL_PG_VERSIONS=${CL_PG_VERSIONS:-}
CL_PROVIDER=${CL_PROVIDER:-}
CL_NAME=${CL_NAME:-}
CL_VAGRANT_PUBKEY=${CL_VAGRANT_PUBKEY:-}
CL_EXTRA_TARBALL=${CL_EXTRA_TARBALL:-}
CL_EXTRA_TARBALL_DEST=${CL_EXTRA_TARBALL_DEST:-/opt/clusterlab/pg}
CL_EXTRA_MAJORS=${CL_EXTRA_MAJORS:-}
CL_EXTRA_PACKAGES=${CL_EXTRA_PACKAGES:-}
CL_DISK_GB=${CL_DISK_GB:-4}

[ "$(id -u)" -eq 0 ] || die "must run as root (mmdebstrap root mode, chroot, file ownership)"

check_release
case $CL_PROVIDER in
  docker | libvirt) ;;
  *) die "CL_PROVIDER must be docker or libvirt (got '${CL_PROVIDER}')" ;;
esac
read -r -a pg_versions <<<"$CL_PG_VERSIONS"
for v in "${pg_versions[@]}"; do
  [[ $v =~ ^[0-9]+$ ]] || die "CL_PG_VERSIONS: '$v' is not a PostgreSQL major (e.g. 15)"
done
read -r -a extra_majors <<<"$CL_EXTRA_MAJORS"
for v in "${extra_majors[@]}"; do
  [[ $v =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "CL_EXTRA_MAJORS: '$v' is not a PostgreSQL major (e.g. 9.4)"
done
read -r -a extra_packages <<<"$CL_EXTRA_PACKAGES"
for p in "${extra_packages[@]}"; do
  # Debian Policy's package name syntax; it also keeps mmdebstrap's comma list intact.
  [[ $p =~ ^[a-z0-9][a-z0-9+.-]+$ ]] || die "CL_EXTRA_PACKAGES: '$p' is not a Debian package name"
done
# Docker repository names are lowercase; vagrant accepts the same set. No tag: ":latest" is ours.
[[ $CL_NAME =~ ^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$ ]] \
  || die "CL_NAME must look like clusterlab/bookworm-pg15 (lowercase, no tag; got '${CL_NAME}')"
check_cache
[[ $CL_EXTRA_TARBALL_DEST == /* ]] || die "CL_EXTRA_TARBALL_DEST must be absolute"
[[ $CL_DISK_GB =~ ^[1-9][0-9]*$ ]] || die "CL_DISK_GB must be a whole number of GB"
read -r -a extra_tarballs <<<"$CL_EXTRA_TARBALL"
for t in "${extra_tarballs[@]}"; do
  [ -f "$t" ] || die "CL_EXTRA_TARBALL: no such file: $t"
done
if [ -z "$CL_VAGRANT_PUBKEY" ]; then
  # The Debian vagrant package ships it inside its gem; the version is in the path.
  for k in /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub \
    /opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant.pub \
    /opt/vagrant/embedded/gems/*/gems/vagrant-*/keys/vagrant.pub; do
    if [ -f "$k" ]; then CL_VAGRANT_PUBKEY=$k; fi
  done
fi
if [ -z "$CL_VAGRANT_PUBKEY" ] || [ ! -f "$CL_VAGRANT_PUBKEY" ]; then
  die "Vagrant's insecure public key not found; set CL_VAGRANT_PUBKEY"
fi
grep -q '^ssh-' "$CL_VAGRANT_PUBKEY" || die "CL_VAGRANT_PUBKEY does not look like a public key"

check_fetch_netns
need mmdebstrap; need tar; need chroot; need flock; need sha256sum
if [ "$CL_PROVIDER" = docker ]; then
  need docker
else
  need mkfs.ext4; need qemu-img; need vagrant
  [ -n "${VAGRANT_HOME:-}" ] \
    || log "warning: VAGRANT_HOME unset: the box goes under ~/.vagrant.d, which libvirt-qemu may not read"
fi

SAFE_NAME=${CL_NAME//\//_}
# The work dir holds only plain files (nothing is mounted into the rootfs), so removing it
# is safe.
work_dir work
LOG=$WORK/build.log
T_START=$EPOCHREALTIME

# ---------------------------------------------------------------- package lists
# Shared by both outputs: what vagrant needs (sshd, sudo, ps for its guest checks, rsync for
# synced folders) and what the provisioning scripts use (ip, PostgreSQL). No locales: the
# C.UTF-8 locale is built into libc.
base_pkgs=(openssh-server sudo iproute2 procps rsync ca-certificates netbase)
for v in "${pg_versions[@]}"; do
  base_pkgs+=("postgresql-$v" "postgresql-client-$v")
done
base_pkgs+=("${extra_packages[@]}")
if [ "$CL_PROVIDER" = libvirt ]; then
  # A VM boots it: kernel (+ initramfs-tools by dependency), systemd as init, udev for the
  # virtio devices, ifupdown + dhclient for eth0 (vagrant's Debian guest code writes
  # /etc/network/interfaces for private networks), and the QEMU guest agent (udev starts
  # it when its virtio port appears): a snapshot reset sets the guest clock through it.
  flavour=vm
  extra_pkgs=(linux-image-amd64 systemd-sysv udev ifupdown isc-dhcp-client qemu-guest-agent)
else
  # A container runs sshd as its only process: no init, no kernel.
  flavour=ct
  extra_pkgs=()
fi
mapfile -t all_pkgs < <(printf '%s\n' "${base_pkgs[@]}" "${extra_pkgs[@]}" | sort -u)
# The copyright files stay: this rootfs is shipped, as an image or a box (a build root is not).
rootfs_plan "$ROOTFS_RECIPE" "$flavour" "${all_pkgs[@]}" \
  -- --dpkgopt='path-include=/usr/share/doc/*/copyright'

pg_desc=${CL_PG_VERSIONS:+$CL_PG_VERSIONS (Debian)}
pg_desc=${pg_desc:+$pg_desc${CL_EXTRA_MAJORS:+, }}${CL_EXTRA_MAJORS:+$CL_EXTRA_MAJORS (tarball)}
log "building $CL_NAME ($CL_PROVIDER) from $CL_RELEASE, PostgreSQL: ${pg_desc:-none}"

# ---------------------------------------------------------------- phase: rootfs
ensure_rootfs rootfs "mmdebstrap $CL_RELEASE ($flavour, ${#all_pkgs[@]} packages)"

ROOT=$WORK/root
unpack_rootfs() {
  mkdir "$ROOT"
  tar -xpf "$ROOTFS_TAR" -C "$ROOT" --numeric-owner --xattrs --xattrs-include='*'
}
phase "unpack rootfs" unpack_rootfs

# ---------------------------------------------------------------- phase: customize
# The one customisation both outputs share. Runs the rootfs's own tools through chroot, so
# each release uses its own useradd/ssh-keygen.
customize_rootfs() {
  local root=$1 flavour=$2
  local home=/home/vagrant

  # Vagrant logs in as vagrant with the insecure key, then needs passwordless sudo.
  chroot "$root" useradd --create-home --shell /bin/bash --user-group vagrant
  printf 'vagrant ALL=(ALL) NOPASSWD:ALL\nDefaults:vagrant !requiretty\n' \
    >"$root/etc/sudoers.d/vagrant"
  chmod 0440 "$root/etc/sudoers.d/vagrant"
  install -d -m 0700 "$root$home/.ssh"
  install -m 0600 "$CL_VAGRANT_PUBKEY" "$root$home/.ssh/authorized_keys"
  chroot "$root" chown -R vagrant:vagrant "$home/.ssh"

  # sshd: host keys now (a container has no first-boot step to make them), its privilege
  # separation dir (a container has no systemd RuntimeDirectory), no reverse DNS (guests have
  # no resolver that answers).
  chroot "$root" ssh-keygen -A
  install -d -m 0755 "$root/run/sshd"
  if [ -d "$root/etc/ssh/sshd_config.d" ]; then
    printf 'UseDNS no\nPasswordAuthentication no\n' >"$root/etc/ssh/sshd_config.d/clusterlab.conf"
  fi

  printf 'clusterlab\n' >"$root/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\tclusterlab\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
    >"$root/etc/hosts"

  # PostgreSQL: Debian's package created (and, in the chroot, did not start) the cluster
  # `main` of each version. It stays: the provisioning scripts stop/empty it on followers.
  # On a VM postgresql.service stays enabled so the leader's cluster is up after a boot.

  local t
  for t in "${extra_tarballs[@]}"; do
    install -d -m 0755 "$root$CL_EXTRA_TARBALL_DEST"
    tar -xf "$t" -C "$root$CL_EXTRA_TARBALL_DEST" --no-same-owner
  done

  if [ "$flavour" = vm ]; then
    vm_boot "$root"
    vm_clusters_and_initramfs "$root"
  fi
}

# A VM's boot: its disk, its NICs, a machine-id of its own, and only the units a
# test cluster needs, with the helpers `clusterlab reset` talks to.
vm_boot() {
  local root=$1 unit
  # Direct kernel boot with root=/dev/vda (no partition table, no bootloader).
  printf '/dev/vda\t/\text4\tdefaults,errors=remount-ro\t0\t1\n' >"$root/etc/fstab"
  # eth0 (net.ifnames=0) is vagrant-libvirt's management NIC, on DHCP; vagrant appends the
  # private networks to this file itself.
  cat >"$root/etc/network/interfaces" <<'IFACES'
# Written by clusterlab's box builder. Vagrant appends private networks below.
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback

allow-hotplug eth0
iface eth0 inet dhcp
IFACES
  # Every VM of a box must get its own machine-id (DHCP client ids, journald): systemd
  # makes one at first boot when the file is empty.
  : >"$root/etc/machine-id"
  rm -f "$root/var/lib/dbus/machine-id"
  # Periodic jobs only steal the emulated CPU (and apt has no network to reach anyway).
  # So do, at boot (systemd-analyze blame on a pg15 VM): LVM scrub reaping, gettys on
  # virtual consoles nobody sees (the serial one stays), modules for loop devices,
  # FUSE, device-mapper and EFI, and ifupdown-pre, which waits for udev to settle
  # (6 s) so that `auto` interfaces exist: eth0 and the private NIC are
  # allow-hotplug, brought up by udev when they appear, and sshd does not wait
  # for DHCP.
  for unit in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer \
    fstrim.timer man-db.timer e2scrub_reap.service getty-static.service getty@tty1.service \
    modprobe@loop.service modprobe@fuse.service modprobe@dm_mod.service \
    modprobe@efi_pstore.service ifupdown-pre.service; do
    ln -sfn /dev/null "$root/etc/systemd/system/$unit"
  done
  # Under software emulation (systemd says "qemu"; KVM guests use kvm-clock) the guest
  # reads time from the HPET, not the TSC: qemu's emulated TSC follows the host's, so
  # after `loadvm` it has jumped ahead by the snapshot's age, and every timer due in
  # that span fires at once (PostgreSQL's checkpoint among them): 0.6 s of emulated
  # CPU per guest, measured, against 0.1 s with the HPET, whose count is restored
  # with the snapshot. A clock read costs 1.2 us instead of 0.6 us.
  cat >"$root/etc/systemd/system/clusterlab-clocksource.service" <<'UNIT'
[Unit]
Description=clusterlab: HPET clock source under software emulation
ConditionVirtualization=qemu
DefaultDependencies=no
Before=sysinit.target

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'd=/sys/devices/system/clocksource/clocksource0; if grep -qw hpet $d/available_clocksource; then echo hpet >$d/current_clocksource; fi'

[Install]
WantedBy=sysinit.target
UNIT
  install -d "$root/etc/systemd/system/sysinit.target.wants"
  ln -sfn /etc/systemd/system/clusterlab-clocksource.service \
    "$root/etc/systemd/system/sysinit.target.wants/clusterlab-clocksource.service"
  # After `clusterlab reset` loads a snapshot: the clock and the replication timeouts,
  # at the host's word (settle.pl says why it is not the guest agent).
  install -m 0755 "$(dirname "${BASH_SOURCE[0]}")/settle.pl" "$root/usr/local/sbin/clusterlab-settle"
  cat >"$root/etc/systemd/system/clusterlab-settle.service" <<'UNIT'
[Unit]
Description=clusterlab: guest clock and replication timeouts after a snapshot is loaded
# Perl's start-up takes the emulated CPU for a moment: not while sshd, which
# vagrant waits for, is starting.
After=ssh.service

[Service]
ExecStart=/usr/local/sbin/clusterlab-settle
Restart=on-failure

[Install]
WantedBy=multi-user.target
UNIT
  ln -sfn /etc/systemd/system/clusterlab-settle.service \
    "$root/etc/systemd/system/multi-user.target.wants/clusterlab-settle.service"
}

# A VM's PostgreSQL clusters made now, not at boot, and an initramfs that
# holds only what the root disk needs.
vm_clusters_and_initramfs() {
  local root=$1 unit
  mount -t proc proc "$root/proc"
  # A server from CL_EXTRA_TARBALL gets its cluster `main` here, as Debian's
  # packages make theirs: at native speed, where initdb in a VM under
  # emulation took 17 s of every node's provisioning (9.4).
  local major
  for major in "${extra_majors[@]}"; do
    if [ -x "$root/usr/bin/pg_createcluster" ] && [ ! -d "$root/etc/postgresql/$major/main" ]; then
      chroot "$root" pg_createcluster "$major" main >/dev/null \
        || { umount "$root/proc"; die "pg_createcluster $major main failed in the rootfs"; }
    fi
  done
  # Cluster `main` would start at boot; provisioning configures it and
  # marks it auto again. Until then a boot that starts it spends seconds of
  # emulated CPU (16 s of a 54 s boot) on a server the provisioning
  # restarts or empties.
  local start_conf
  for start_conf in "$root"/etc/postgresql/*/main/start.conf; do
    [ -f "$start_conf" ] && echo manual >"$start_conf"
  done
  # A small initramfs: the root disk's driver and file system only
  # (MODULES=most made 36 MB that the kernel unpacked for 3 s under emulation).
  printf '%s\n' virtio_pci virtio_blk ext4 crc32c_generic >"$root/etc/initramfs-tools/modules"
  sed -i 's/^MODULES=.*/MODULES=list/' "$root/etc/initramfs-tools/initramfs.conf"
  chroot "$root" update-initramfs -u -k all >/dev/null 2>&1 || { umount "$root/proc"; die "update-initramfs failed in the rootfs"; }
  umount "$root/proc"
  # Boot must bring up sshd, networking and PostgreSQL: fail the build, not the boot.
  local wants=$root/etc/systemd/system/multi-user.target.wants
  # (-L: the links are absolute, they point into the rootfs, not into this host.)
  for unit in ssh.service networking.service; do
    [ -L "$wants/$unit" ] || die "$unit is not enabled in the rootfs"
  done
  # postgresql-common ships postgresql.service (a oneshot) and the generator that makes
  # each cluster whose start.conf says auto a dependency of it, so the unit is as useful
  # with a server from CL_EXTRA_TARBALL (clusters made later by pg_createcluster) as with
  # Debian's server packages. Without postgresql-common there is nothing to enable.
  if [ -e "$root/lib/systemd/system/postgresql.service" ]; then
    [ -L "$wants/postgresql.service" ] \
      || ln -sfn /lib/systemd/system/postgresql.service "$wants/postgresql.service"
  elif [ "${#pg_versions[@]}" -gt 0 ]; then
    die "postgresql.service is missing although PostgreSQL packages are installed"
  fi

}
phase "customize rootfs" customize_rootfs "$ROOT" "$flavour"

# A short description of the inputs, for the .done line: a later run (or clusterlab) compares
# it to decide whether a rebuild is needed.
inputs_sha() {
  {
    printf '%s\n' "$ROOTFS_KEY" "$CL_PROVIDER" "$CL_EXTRA_TARBALL_DEST"
    # lib.sh is as much the recipe as this file.
    sha256sum "${BASH_SOURCE[0]}" "$(dirname "${BASH_SOURCE[0]}")/lib.sh" \
      "$(dirname "${BASH_SOURCE[0]}")/settle.pl" "$CL_VAGRANT_PUBKEY" \
      | cut -d' ' -f1
    local t
    for t in "${extra_tarballs[@]}"; do sha256sum "$t" | cut -d' ' -f1; done
  } | sha256sum | cut -c1-16
}

# ---------------------------------------------------------------- output: docker
build_docker() {
  local import_tag="clusterlab-import/$SAFE_NAME:$ROOTFS_KEY"
  import_image() {
    tar -C "$ROOT" --numeric-owner --xattrs -cf - . | docker import - "$import_tag" >/dev/null
  }
  # A plain rootfs has no CMD; the docker provider of vagrant needs a container that keeps
  # running with sshd listening on 22.
  docker_build() {
    local ctx=$WORK/docker
    mkdir -p "$ctx"
    cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $import_tag
ENV LANG=C.UTF-8
EXPOSE 22
STOPSIGNAL SIGTERM
CMD ["/usr/sbin/sshd", "-D", "-e"]
DOCKERFILE
    # The legacy builder: no buildx plugin here, nothing to pull (FROM is local).
    DOCKER_BUILDKIT=0 docker build -q -t "$CL_NAME:latest" \
      --label "org.clusterlab.release=$CL_RELEASE" \
      --label "org.clusterlab.pg-versions=$CL_PG_VERSIONS" \
      --label "org.clusterlab.pg-extra=$CL_EXTRA_MAJORS" \
      --label "org.clusterlab.rootfs=$ROOTFS_KEY" "$ctx"
    # The import tag was only a stepping stone; its layer stays as the image's parent.
    docker rmi "$import_tag" >/dev/null
  }
  local old_id
  old_id=$(docker image inspect --format '{{.Id}}' "$CL_NAME:latest" 2>/dev/null || true)
  phase "docker import" import_image
  phase "docker build $CL_NAME:latest" docker_build
  IMAGE_ID=$(docker image inspect --format '{{.Id}}' "$CL_NAME:latest")
  # A rebuild leaves the previous image untagged (~0.5 GB each time): drop it, unless a
  # container still uses it (then rmi refuses and it stays).
  if [ -n "$old_id" ] && [ "$old_id" != "$IMAGE_ID" ]; then
    docker rmi "$old_id" >/dev/null 2>&1 || log "previous image ${old_id:7:12} still in use; kept"
  fi
  DONE_LINE="provider=docker name=$CL_NAME image=$CL_NAME:latest id=$IMAGE_ID"
}

# ---------------------------------------------------------------- output: libvirt
build_libvirt() {
  local box=$WORK/box
  mkdir -p "$box"
  copy_kernel() {
    # The newest kernel and its initrd. qemu (as libvirt-qemu) reads them from VAGRANT_HOME,
    # so they must be world-readable whatever mode Debian gave them.
    local k i
    k=$(find "$ROOT/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n 1)
    [ -n "$k" ] || { echo "no kernel in /boot"; return 1; }
    i=$ROOT/boot/initrd.img-${k##*/vmlinuz-}
    [ -f "$i" ] || { echo "no initrd for $k"; return 1; }
    install -m 0644 "$k" "$box/vmlinuz"
    install -m 0644 "$i" "$box/initrd.img"
    echo "kernel ${k##*/}"
  }
  # mkfs.ext4 -d fills the file system from the directory: no loop device, no mount.
  make_disk() { mkfs.ext4 -q -F -d "$ROOT" -L root "$WORK/disk.raw" "${CL_DISK_GB}G"; }
  # -W: out-of-order writes; the raw file is sparse, so most of it is skipped.
  make_qcow2() {
    qemu-img convert -W -O qcow2 "$WORK/disk.raw" "$box/box.img"
    rm -f "$WORK/disk.raw"
  }
  write_box_files() {
    printf '{"provider":"libvirt","format":"qcow2","virtual_size":%s}\n' "$CL_DISK_GB" \
      >"$box/metadata.json"
    # The box's Vagrantfile is loaded before the project's: every setting here is a default
    # that the user's Vagrantfile can override (e.g. driver "kvm" where KVM guests boot).
    # qemu + qemu64 because on this kind of machine KVM guests hang; 1 vCPU / 1 GB per node.
    cat >"$box/Vagrantfile" <<'VAGRANTFILE'
# clusterlab box: Debian rootfs on /dev/vda (ext4, no partition table), booted directly
# from the kernel and initrd shipped beside this file.
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |libvirt|
    libvirt.driver = "qemu"
    libvirt.cpu_mode = "custom"
    libvirt.cpu_model = "qemu64"
    libvirt.cpus = 1
    libvirt.memory = 1024
    libvirt.disk_bus = "virtio"
    libvirt.kernel = File.expand_path("vmlinuz", __dir__)
    libvirt.initrd = File.expand_path("initrd.img", __dir__)
    libvirt.cmd_line = "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet"
  end
end
VAGRANTFILE
  }
  pack_box() {
    local out=$CL_CACHE/$SAFE_NAME.box
    # Uncompressed: qcow2 is already compact and gzip would cost minutes of CPU.
    tar -C "$box" -cf "$out.partial" metadata.json Vagrantfile box.img vmlinuz initrd.img
    mv -f "$out.partial" "$out"
    ls -l "$out"
  }
  add_box() { vagrant box add --force --name "$CL_NAME" "$CL_CACHE/$SAFE_NAME.box"; }
  phase "kernel + initrd" copy_kernel
  phase "mkfs.ext4 ${CL_DISK_GB}G" make_disk
  phase "qemu-img convert qcow2" make_qcow2
  phase "box files" write_box_files
  phase "tar box" pack_box
  phase "vagrant box add $CL_NAME" add_box
  # vagrant-libvirt uploads a box into the pool as a volume named after the box and the
  # mtime of its box.img (for unversioned boxes), so each rebuild leaves the previous upload
  # (~1 GB) behind. Remove those that no VM disk is backed by. Best effort: needs libvirtd.
  prune_volumes() {
    local uri=${LIBVIRT_DEFAULT_URI:-qemu:///system} prefix keep img vol path other used info
    local -a paths
    virsh -q -c "$uri" pool-info default >/dev/null 2>&1 || { log "no libvirt pool default: nothing pruned"; return 0; }
    prefix="${CL_NAME//\//-VAGRANTSLASH-}_vagrant_box_image_0_"
    img="${VAGRANT_HOME:-$HOME/.vagrant.d}/boxes/${CL_NAME//\//-VAGRANTSLASH-}/0/libvirt/box.img"
    keep="${prefix}$(stat -c %Y "$img" 2>/dev/null || echo none)_box.img"
    mapfile -t paths < <(virsh -q -c "$uri" vol-list default | awk '{print $NF}')
    for path in "${paths[@]}"; do
      vol=${path##*/}
      [[ $vol == "$prefix"*_box.img && $vol != "$keep" ]] || continue
      used=0
      for other in "${paths[@]}"; do
        [ "$other" != "$path" ] || continue
        # Captured first: `| grep -q` under pipefail could turn "found" into "not found".
        info=$(qemu-img info -U "$other" 2>/dev/null || true)
        if grep -qF "backing file: $path" <<<"$info"; then used=1; fi
      done
      if [ "$used" -eq 0 ]; then
        virsh -q -c "$uri" vol-delete --pool default "$vol" && log "deleted stale volume $vol"
      else
        log "kept $vol: a VM disk is backed by it"
      fi
    done
  }
  phase "prune stale box volumes" prune_volumes
  DONE_LINE="provider=libvirt name=$CL_NAME box=$CL_CACHE/$SAFE_NAME.box vagrant_home=${VAGRANT_HOME:-~/.vagrant.d}"
}

DONE_LINE=
if [ "$CL_PROVIDER" = docker ]; then build_docker; else build_libvirt; fi

# ---------------------------------------------------------------- record
# One line per provider (the same name can exist as image and as box): replace ours, keep
# the other's.
DONE_FILE=$CL_CACHE/$SAFE_NAME.done
DONE_LINE="$DONE_LINE release=$CL_RELEASE pg=${CL_PG_VERSIONS// /,} extra=${CL_EXTRA_MAJORS// /,} rootfs=$ROOTFS_KEY inputs=$(inputs_sha) built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
{
  if [ -f "$DONE_FILE" ]; then grep -v "^provider=$CL_PROVIDER " "$DONE_FILE" || true; fi
  printf '%s\n' "$DONE_LINE"
} >"$DONE_FILE.partial"
mv -f "$DONE_FILE.partial" "$DONE_FILE"
log "built $CL_NAME ($CL_PROVIDER) in $(elapsed "$T_START")s; recorded in $DONE_FILE"
