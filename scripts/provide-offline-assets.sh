#!/usr/bin/env bash
# Give a local target (the sandbox, a Molecule instance) what it cannot download here: the Compose v2
# plugin (Debian 12 has none; scripts/ensure-docker.sh installed it on this machine) and the stand-in
# images of the official ones, saved in one archive that the docker role loads
# (docker_image_archives in inventory/sandbox/group_vars/all/docker.yml names the same path).
#   scripts/provide-offline-assets.sh CONTAINER
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:?usage: $0 CONTAINER}
plugin=/usr/libexec/docker/cli-plugins/docker-compose
archive_in_target=/var/cache/bloomberg-standins/standins.tar
python=${PYTHON:-.venv/bin/python}

archive=$("$python" scripts/build-standins.py)
docker exec "$target" mkdir -p "$(dirname "$plugin")" "$(dirname "$archive_in_target")"
docker cp "$plugin" "$target:$plugin"
docker cp "$archive" "$target:$archive_in_target"
