#!/usr/bin/env bash
# clusterlab test lab: dockerd, virtlogd and libvirtd running inside a private network
# namespace, so that test VMs, containers, their bridges, DHCP servers and iptables rules
# never touch the host's own network.
#
#   lab/lab.sh up [NAME]        create netns NAME (default cl-lab) and start the daemons in it
#   lab/lab.sh exec CMD ARGS... run CMD inside the namespace with the lab environment
#   lab/lab.sh status           show what runs
#   lab/lab.sh down             stop the daemons this script started, delete the netns
#
# Why it looks like this (measured on this kind of machine, see the VM lab notes):
# - There is no systemd: the daemons are started by hand and stopped by their PID files,
#   and only those PIDs are ever signalled.
# - The namespace is entered with `nsenter --net=`, never `ip netns exec`: the latter
#   remounts /sys, which hides the cgroup mounts (dockerd: "Devices cgroup isn't mounted",
#   libvirt stalls at "Creating domain").
# - vagrant must run inside the namespace too: it reaches guests through addresses (libvirt's
#   management network, docker's forwarded SSH port on 127.0.0.1) that exist only there.
# - The lab namespace has no uplink (nothing in it can reach the outside). The one step that
#   needs the network, fetching Debian packages for a box (mmdebstrap), runs in the host's
#   namespace: `up` names it NAME-host (`ip netns attach`, a bind mount of this shell's own
#   namespace) and exports CLUSTERLAB_HOST_NETNS so templates/box/build.sh can enter it.
# - qemu runs as libvirt-qemu and must read box files (kernel, initrd), so VAGRANT_HOME lives
#   under /var/lib, not under /root.
set -euo pipefail

RUN_DIR=/run/clusterlab-lab            # pid files, sockets, logs, env: gone with a reboot
STATE_DIR=/var/lib/clusterlab-lab      # caches (docker images, vagrant boxes): kept by `down`
ENV_FILE=$RUN_DIR/env
NAME_FILE=$RUN_DIR/netns
DOCKER_SOCK=$RUN_DIR/docker.sock
LIBVIRT_URI=qemu:///system
DEFAULT_NAME=cl-lab
POOL_DIR=/var/lib/libvirt/images
WAIT_SECONDS=${CLUSTERLAB_LAB_WAIT:-90}
LIBVIRTD_WAS_UP=0

log() { printf 'lab: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  cat >&2 <<'USAGE'
usage: lab/lab.sh up [NAME] | exec CMD [ARGS...] | status | down
USAGE
  exit 2
}

# The namespace name: the one `up` recorded, else $CLUSTERLAB_NETNS, else the default.
current_name() {
  if [ -s "$NAME_FILE" ]; then
    cat "$NAME_FILE"
  else
    printf '%s\n' "${CLUSTERLAB_NETNS:-$DEFAULT_NAME}"
  fi
}

# alive PIDFILE COMM: true when the PID in PIDFILE runs and is the program COMM. Checking
# the name guards against a stale pid file whose PID now belongs to someone else.
alive() {
  local pidfile=$1 comm=$2 pid
  [ -s "$pidfile" ] || return 1
  pid=$(tr -dc '0-9' <"$pidfile")
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ]
}

pid_of() { tr -dc '0-9' <"$1"; }

in_ns() {
  local name=$1; shift
  nsenter --net="/run/netns/$name" "$@"
}

# wait_for SECONDS DESCRIPTION CMD...: poll CMD until it succeeds.
wait_for() {
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.5
  done
  log "$what answers"
}

write_env() {
  local name=$1 tmp
  tmp=$(mktemp "$RUN_DIR/env.XXXXXX")
  cat >"$tmp" <<ENV
# Written by lab/lab.sh up; source it, or use \`lab/lab.sh exec\`.
export DOCKER_HOST=unix://$DOCKER_SOCK
export VAGRANT_HOME=$STATE_DIR/vagrant.d
export LIBVIRT_DEFAULT_URI=$LIBVIRT_URI
export CLUSTERLAB_NETNS=$name
export CLUSTERLAB_HOST_NETNS=/run/netns/$name-host
ENV
  chmod 0644 "$tmp"
  mv -f "$tmp" "$ENV_FILE"
}

start_dockerd() {
  local name=$1
  if alive "$RUN_DIR/dockerd.pid" dockerd; then
    log "dockerd already running (pid $(pid_of "$RUN_DIR/dockerd.pid"))"
    return 0
  fi
  rm -f "$RUN_DIR/dockerd.pid"
  # Own data root, exec root, pid file and socket: nothing is shared with a system dockerd.
  # dockerd starts its own containerd under the exec root. Its iptables rules and bridges
  # land in the lab namespace, whose tables start empty, so they cannot clash with the
  # host's. setsid detaches it from this shell's session and terminal.
  in_ns "$name" setsid dockerd \
    --data-root "$STATE_DIR/docker" \
    --exec-root "$RUN_DIR/docker-exec" \
    --pidfile "$RUN_DIR/dockerd.pid" \
    --host "unix://$DOCKER_SOCK" \
    </dev/null >>"$RUN_DIR/dockerd.log" 2>&1 &
  log "dockerd started (log $RUN_DIR/dockerd.log)"
}

start_libvirt() {
  local name=$1
  # virtlogd first: without it a domain cannot start (qemu's console log goes through it).
  if alive "$RUN_DIR/virtlogd.pid" virtlogd; then
    log "virtlogd already running (pid $(pid_of "$RUN_DIR/virtlogd.pid"))"
  else
    rm -f "$RUN_DIR/virtlogd.pid"
    in_ns "$name" virtlogd --daemon --pid-file "$RUN_DIR/virtlogd.pid" </dev/null >>"$RUN_DIR/virtlogd.log" 2>&1
    log "virtlogd started"
  fi
  if alive "$RUN_DIR/libvirtd.pid" libvirtd; then
    log "libvirtd already running (pid $(pid_of "$RUN_DIR/libvirtd.pid"))"
    LIBVIRTD_WAS_UP=1
  else
    rm -f "$RUN_DIR/libvirtd.pid"
    in_ns "$name" libvirtd --daemon --pid-file "$RUN_DIR/libvirtd.pid" </dev/null >>"$RUN_DIR/libvirtd.log" 2>&1
    log "libvirtd started"
  fi
}

# vagrant-libvirt uploads box images into the pool `default`; it can create it itself, but
# doing it here makes the lab usable by plain virsh too and fails early if it cannot work.
ensure_pool() {
  if ! virsh -q -c "$LIBVIRT_URI" pool-info default >/dev/null 2>&1; then
    mkdir -p "$POOL_DIR"
    virsh -q -c "$LIBVIRT_URI" pool-define-as default dir --target "$POOL_DIR" >/dev/null
    virsh -q -c "$LIBVIRT_URI" pool-build default >/dev/null 2>&1 || true
    log "storage pool default defined ($POOL_DIR)"
  fi
  local info
  # Captured first: `virsh | grep -q` under pipefail fails when grep exits early (SIGPIPE).
  info=$(virsh -q -c "$LIBVIRT_URI" pool-info default)
  if ! grep -Eq '^State:[[:space:]]+running' <<<"$info"; then
    virsh -q -c "$LIBVIRT_URI" pool-start default >/dev/null
    log "storage pool default started"
  fi
  virsh -q -c "$LIBVIRT_URI" pool-autostart default >/dev/null
}

# libvirt probes qemu's capabilities as root (KVM works then) but checks the cached result
# against what libvirt-qemu:kvm may open. With no udev here /dev/kvm stays root:root 0600, so
# every cache lookup says "KVM was enabled when probing, but it is not available now" and
# probes qemu again, twice: about 4 s on each define/start/version call, minutes per
# `vagrant up`. Give it Debian's usual owner and mode (udev's rule: group kvm) while the lab
# runs; `down` puts the old ones back. Guests still run under TCG (the boxes ask for the
# domain type "qemu"), since KVM guests hang on this kind of machine.
fix_kvm_node() {
  [ -c /dev/kvm ] || return 0
  getent group kvm >/dev/null || return 0
  if [ ! -e "$RUN_DIR/kvm-mode" ]; then
    stat -c '%U:%G %a' /dev/kvm >"$RUN_DIR/kvm-mode"
  fi
  if [ "$(stat -c '%G %a' /dev/kvm)" != "kvm 660" ]; then
    chgrp kvm /dev/kvm
    chmod 0660 /dev/kvm
    log "/dev/kvm set to root:kvm 0660 (was $(cat "$RUN_DIR/kvm-mode")) so libvirt's qemu capability cache holds"
  fi
}

restore_kvm_node() {
  local owner mode
  [ -s "$RUN_DIR/kvm-mode" ] && [ -c /dev/kvm ] || return 0
  read -r owner mode <"$RUN_DIR/kvm-mode"
  chown "$owner" /dev/kvm && chmod "$mode" /dev/kvm
  rm -f "$RUN_DIR/kvm-mode"
  log "/dev/kvm back to $owner $mode"
}

cmd_up() {
  local name=${1:-${CLUSTERLAB_NETNS:-$DEFAULT_NAME}}
  [[ $name =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad namespace name: $name"
  mkdir -p "$RUN_DIR" "$STATE_DIR/docker"
  # Refuse to run two labs at once: the pid files, sockets and libvirt's /run/libvirt are
  # shared by name, so a second lab in another namespace would fight the first.
  if [ -s "$NAME_FILE" ] && [ "$(cat "$NAME_FILE")" != "$name" ]; then
    if alive "$RUN_DIR/dockerd.pid" dockerd || alive "$RUN_DIR/libvirtd.pid" libvirtd \
      || alive "$RUN_DIR/virtlogd.pid" virtlogd; then
      die "a lab already runs in namespace $(cat "$NAME_FILE"); run 'lab/lab.sh down' first"
    fi
  fi
  # /var/lib/clusterlab-lab must be traversable by libvirt-qemu (box kernels and initrds).
  mkdir -p "$STATE_DIR/vagrant.d"
  chmod 0755 "$STATE_DIR" "$STATE_DIR/vagrant.d"

  if [ ! -e "/run/netns/$name" ]; then
    ip netns add "$name"
    log "netns $name created"
  fi
  ip -n "$name" link set lo up
  # `up` runs in the host's namespace (refuse otherwise: the alias would point at the lab).
  if [ "$(stat -L -c %i /proc/self/ns/net)" = "$(stat -L -c %i "/run/netns/$name")" ]; then
    die "run 'up' from the host's network namespace, not from inside the lab"
  fi
  if [ ! -e "/run/netns/$name-host" ]; then
    ip netns attach "$name-host" $$
  fi
  printf '%s\n' "$name" >"$NAME_FILE"

  fix_kvm_node
  start_dockerd "$name"
  start_libvirt "$name"
  write_env "$name"

  wait_for "$WAIT_SECONDS" "docker" docker -H "unix://$DOCKER_SOCK" version \
    || die "dockerd did not answer within ${WAIT_SECONDS}s; see $RUN_DIR/dockerd.log"
  # `virsh version` probes the qemu binary (about 4 s here): only worth it after a start.
  local probe=version
  [ "$LIBVIRTD_WAS_UP" -eq 0 ] || probe=uri
  wait_for "$WAIT_SECONDS" "libvirtd" virsh -c "$LIBVIRT_URI" "$probe" \
    || die "libvirtd did not answer within ${WAIT_SECONDS}s"
  ensure_pool
  log "ready: namespace $name, environment in $ENV_FILE"
}

cmd_exec() {
  [ "$#" -ge 1 ] || usage
  [ -r "$ENV_FILE" ] || die "the lab is not up (no $ENV_FILE); run 'lab/lab.sh up'"
  local name
  name=$(current_name)
  [ -e "/run/netns/$name" ] || die "netns $name does not exist; run 'lab/lab.sh up'"
  # Source the env file in a child shell, then replace it with the command inside the
  # namespace: exec keeps the command's exit code as ours.
  # shellcheck disable=SC2016 # $1 and $@ are expanded by the inner shell on purpose
  exec nsenter --net="/run/netns/$name" bash -c '. "$1"; shift; exec "$@"' lab-exec "$ENV_FILE" "$@"
}

# stop PIDFILE COMM: SIGTERM the daemon named in PIDFILE (only if it is COMM), wait for it to
# exit, SIGKILL it after 30 s.
stop() {
  local pidfile=$1 comm=$2 pid i
  if ! alive "$pidfile" "$comm"; then
    rm -f "$pidfile"
    return 0
  fi
  pid=$(pid_of "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 60; i++)); do
    [ -d "/proc/$pid" ] || break
    sleep 0.5
  done
  if [ -d "/proc/$pid" ]; then
    log "$comm (pid $pid) ignored SIGTERM for 30 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$pidfile"
  log "$comm (pid $pid) stopped"
}

cmd_down() {
  local name dom net
  name=$(current_name)
  if alive "$RUN_DIR/libvirtd.pid" libvirtd; then
    # qemu and libvirt's dnsmasq outlive libvirtd and would keep the deleted namespace alive:
    # stop the lab's domains and networks through libvirt before stopping libvirtd itself.
    # Definitions, volumes and snapshots stay.
    while read -r dom; do
      [ -n "$dom" ] || continue
      virsh -q -c "$LIBVIRT_URI" destroy "$dom" >/dev/null 2>&1 && log "domain $dom stopped"
    done < <(virsh -q -c "$LIBVIRT_URI" list --name --state-running 2>/dev/null || true)
    while read -r net; do
      [ -n "$net" ] || continue
      virsh -q -c "$LIBVIRT_URI" net-destroy "$net" >/dev/null 2>&1 && log "network $net stopped"
    done < <(virsh -q -c "$LIBVIRT_URI" net-list --name 2>/dev/null || true)
  fi
  # dockerd stops its containers and its containerd when it gets SIGTERM.
  stop "$RUN_DIR/dockerd.pid" dockerd
  stop "$RUN_DIR/libvirtd.pid" libvirtd
  stop "$RUN_DIR/virtlogd.pid" virtlogd
  restore_kvm_node
  if [ -e "/run/netns/$name" ]; then
    ip netns delete "$name"
    log "netns $name deleted"
  fi
  # Only the name goes: the host's namespace itself lives on (its processes hold it).
  if [ -e "/run/netns/$name-host" ]; then
    ip netns delete "$name-host"
  fi
  rm -f "$ENV_FILE" "$NAME_FILE"
}

cmd_status() {
  local name rc=0 d
  name=$(current_name)
  if [ -e "/run/netns/$name" ]; then
    echo "netns      $name: present"
  else
    echo "netns      $name: absent"; rc=1
  fi
  for d in dockerd virtlogd libvirtd; do
    if alive "$RUN_DIR/$d.pid" "$d"; then
      printf '%-10s running, pid %s\n' "$d" "$(pid_of "$RUN_DIR/$d.pid")"
    else
      printf '%-10s not running\n' "$d"; rc=1
    fi
  done
  if [ -r "$ENV_FILE" ]; then
    echo "env        $ENV_FILE"
  fi
  if [ "$rc" -eq 0 ]; then
    echo "containers:"
    docker -H "unix://$DOCKER_SOCK" ps --format '  {{.Names}}  {{.Image}}  {{.Status}}' 2>/dev/null || true
    echo "domains:"
    virsh -q -c "$LIBVIRT_URI" list --all 2>/dev/null | sed 's/^/  /' || true
  fi
  return "$rc"
}

[ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces, libvirtd, dockerd)"
[ "$#" -ge 1 ] || usage
cmd=$1; shift
case $cmd in
  up) [ "$#" -le 1 ] || usage; cmd_up "$@" ;;
  exec) cmd_exec "$@" ;;
  down) [ "$#" -eq 0 ] || usage; cmd_down ;;
  status) [ "$#" -eq 0 ] || usage; cmd_status ;;
  -h|--help|help) usage ;;
  *) usage ;;
esac
