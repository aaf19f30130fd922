#!/usr/bin/env bash
# Make a Docker engine reachable for the sandbox and the Molecule targets.
# On a Debian/Ubuntu machine where we are root and no engine answers, install docker.io and start
# dockerd in the background (CI machines have no systemd); anywhere else, say what to install.
set -euo pipefail

log=/var/log/bloomberg-dockerd.log

engine_answers() { docker info >/dev/null 2>&1; }

if engine_answers; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  cat >&2 <<'MSG'
No Docker engine answers. Install Docker Engine (https://docs.docker.com/engine/install/) and start it,
or run this as root on a Debian/Ubuntu machine so that it can install docker.io itself.
MSG
  exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
  echo "ensure-docker: installing docker.io" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi

if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl start docker
else
  echo "ensure-docker: starting dockerd in the background (log: $log)" >&2
  nohup dockerd >"$log" 2>&1 &
fi

for _ in $(seq 1 60); do
  engine_answers && exit 0
  sleep 1
done
echo "ensure-docker: dockerd did not answer within 60 s; see $log" >&2
exit 1
