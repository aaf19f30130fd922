#!/usr/bin/env bash
# Build the local stand-in for a bare Debian 12 VPS: a systemd image made offline with debootstrap from
# Debian's mirror (no registry image can be pulled here). Cached: rebuilt only when missing or when this
# script changed (its hash is kept as an image label).
set -euo pipefail
source "$(dirname "$0")/progress.sh"

image=${BLOOMBERG_TARGET_IMAGE:-bloomberg-target:debian12}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
recipe=$(sha256sum "$0" | cut -c1-16)

# One build at a time: a concurrent caller (CI starts one early, in the background) waits, then finds
# the image current.
mkdir -p /var/tmp/bloomberg-locks
exec 9>/var/tmp/bloomberg-locks/target-image.lock
flock 9

current=$(docker image inspect -f '{{ index .Config.Labels "org.bloomberg.recipe" }}' "$image" 2>/dev/null || true)
if [ "$current" = "$recipe" ]; then
  exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  else
    echo "build-target-image: install debootstrap (apt-get install debootstrap) and run again" >&2
    exit 1
  fi
fi

root=$(mktemp -d /var/tmp/bloomberg-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT

# What a freshly provisioned cloud VPS has: systemd as PID 1, Python for Ansible, sshd, sudo.
run_logged "build-target-image: debootstrap bookworm into $root" "1-3 min" /var/tmp/bloomberg-debootstrap.log \
  debootstrap --variant=minbase \
  --include=python3,python3-apt,systemd,systemd-sysv,dbus,sudo,iproute2,ca-certificates,openssh-server,gnupg \
  bookworm "$root" "$mirror"

cat >"$root/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
SOURCES
# A VPS has a machine id per host; systemd creates one at first boot when the file is empty.
: >"$root/etc/machine-id"
rm -f "$root"/etc/ssh/ssh_host_*
# Host keys are made per container at first boot, as cloud-init does on a VPS.
mkdir -p "$root/etc/systemd/system/ssh.service.d"
cat >"$root/etc/systemd/system/ssh.service.d/hostkeys.conf" <<'UNIT'
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
UNIT
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/*
# No package index, and an old one as far as apt's age checks go: the first run must refresh it.
touch -d @0 "$root/var/lib/apt/lists"

tar -C "$root" -c . | docker import \
  --change 'CMD ["/lib/systemd/systemd"]' \
  --change "LABEL org.bloomberg.recipe=$recipe" \
  - "$image" >/dev/null
echo "build-target-image: built $image" >&2
