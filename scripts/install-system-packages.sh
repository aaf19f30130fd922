#!/usr/bin/env bash
# The machine packages that `make test` needs beside the Python toolchain: a Docker engine for the
# Molecule targets, debootstrap to build their image offline, and the real servers the Python tests
# start for themselves (PostgreSQL; victoria-metrics as an InfluxDB v2 write endpoint; promtool;
# InfluxDB 1.x, whose influxd parses the dashboards' InfluxQL), and iproute2 (`ip`: the bridge's address).
# Debian/Ubuntu as root: installs what is missing. Elsewhere: says what to install.
set -euo pipefail

packages=(
  docker.io
  debootstrap
  iproute2
  postgresql
  victoria-metrics
  prometheus
  influxdb
  restic
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system-packages: install these packages and run again: ${missing[*]}" >&2
  exit 1
fi

echo "install-system-packages: installing ${missing[*]}" >&2
apt-get update -qq
# Server packages must not start their own instances: the tests start throwaway ones.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  trap 'rm -f "$policy"' EXIT
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# On a machine with systemd the packages' own services would come up at the next boot, listening on all
# interfaces without authentication: the tests never need them.
if [ -d /run/systemd/system ]; then
  systemctl disable --now influxdb victoria-metrics prometheus postgresql >/dev/null 2>&1 || true
fi
