#!/usr/bin/env bash
# The off-site storage of the sandbox and of Molecule: moto's S3 server, run on this machine at the address
# the targets reach it at (the Docker bridge's gateway, their default route), port 9900. Backups kept in
# memory: a restart empties it (the backup role creates a missing repository at its next run).
#   scripts/s3-standin.sh start   start it unless it answers already
#   scripts/s3-standin.sh stop    stop the one this script started
#   scripts/s3-standin.sh empty BUCKET/PREFIX   remove what a previous run left under a prefix (a target's
#                                 repository), for a test that needs an empty one while others use moto
set -euo pipefail
cd "$(dirname "$0")/.."

port=9900
venv=.cache/s3-standin-venv
pidfile=.cache/s3-standin.pid
python=${PYTHON:-python3.11}

# The default bridge's address on this machine. Docker 20.10 (Debian 12's docker.io) leaves the gateway out
# of the bridge's IPAM configuration: it is then read from the bridge's interface.
bridge_address() {
  local gateway interface
  gateway=$(docker network inspect bridge -f '{{range .IPAM.Config}}{{.Gateway}}{{"\n"}}{{end}}' \
    | grep -m1 -E '^[0-9]+(\.[0-9]+){3}$' || true)
  if [ -n "$gateway" ]; then
    echo "$gateway"
    return
  fi
  interface=$(docker network inspect bridge -f '{{index .Options "com.docker.network.bridge.name"}}')
  ip -4 -o addr show dev "${interface:-docker0}" | awk '{ split($4, a, "/"); print a[1]; exit }'
}
address=$(bridge_address)
if [ -z "$address" ]; then
  echo "s3-standin: found no address on Docker's default bridge (docker network inspect bridge)" >&2
  exit 1
fi

answers() {
  "$python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
    "http://$address:$port/" 2>/dev/null
}

# One start or stop at a time (the sandbox and a Molecule run may ask together).
mkdir -p .cache
exec 9>.cache/s3-standin.lock
flock 9

case "${1:-}" in
  start)
    answers && exit 0
    if [ ! -x "$venv/bin/moto_server" ] || ! cmp -s requirements/s3-standin.txt "$venv/.requirements"; then
      echo "s3-standin: installing moto into $venv (about 20 s)" >&2
      rm -rf "$venv"
      "$python" -m venv "$venv"
      "$venv/bin/pip" install -q -r requirements/s3-standin.txt
      cp requirements/s3-standin.txt "$venv/.requirements"
    fi
    # Without the lock's descriptor: the server outlives this script.
    # In a session of its own: no signal meant for the process group of the run that started it reaches it.
    nohup setsid "$venv/bin/moto_server" -H "$address" -p "$port" >.cache/s3-standin.log 2>&1 9>&- &
    echo $! >"$pidfile"
    for _ in $(seq 1 60); do
      answers && { echo "s3-standin: listening on http://$address:$port" >&2; exit 0; }
      sleep 0.5
    done
    echo "s3-standin: moto did not answer on $address:$port; see .cache/s3-standin.log" >&2
    exit 1
    ;;
  stop)
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
    ;;
  empty)
    where=${2:?usage: $0 empty BUCKET/PREFIX}
    answers || exit 0  # not running: it holds nothing
    "$venv/bin/python" - "http://$address:$port" "$where" <<'PY'
import sys

import boto3

endpoint, where = sys.argv[1:]
bucket, _, prefix = where.partition("/")
s3 = boto3.resource(
    "s3", endpoint_url=endpoint, aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1"
)
if s3.Bucket(bucket) in s3.buckets.all():
    s3.Bucket(bucket).objects.filter(Prefix=prefix.rstrip("/") + "/").delete()
PY
    ;;
  *)
    echo "usage: $0 start | stop | empty BUCKET/PREFIX" >&2
    exit 2
    ;;
esac
