#!/usr/bin/env bash
# Give a local target (the sandbox, a Molecule instance) what it cannot download here: the Compose v2
# plugin (Debian 12 has none; scripts/ensure-docker.sh installed it on this machine) and the stand-in
# images of the official ones, saved in one archive that the docker role loads
# (docker_image_archives in inventory/sandbox/group_vars/all/docker.yml names the same path), copied when
# it changed.
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
# The archive is large (1.7 GB, ~10 s to copy): copied again only when build-standins.py rewrote it, which
# it does only when an image changed. Its size and time stand for its content, kept beside the copy.
identity=$(stat -c '%s %Y' "$archive")
if [ "$(docker exec "$target" cat "$archive_in_target.source" 2>/dev/null)" != "$identity" ]; then
  docker cp "$archive" "$target:$archive_in_target"
  echo "$identity" | docker exec -i "$target" sh -c "cat > '$archive_in_target.source'"
fi
