#!/usr/bin/env bash
# Wall time of a full converge of site.yml on a fresh sandbox, and of a no-op re-run on it.
# Prints the figures and the changed counts (the re-run must report 0). Destroys any existing sandbox.
#   bench/deploy.sh [runs of the no-op re-run, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PWD/.venv/bin:$PATH ANSIBLE_NOCOLOR=1
reruns=${1:-3}

converge() {
  local log=$1 start
  start=$(date +%s%N)
  if ! scripts/sandbox.sh up >"$log" 2>&1; then
    echo "converge failed; the end of $log:" >&2
    tail -n 30 "$log" >&2
    return 1
  fi
  echo "$(( ($(date +%s%N) - start) / 1000000 )) $(grep -oE 'changed=[0-9]+' "$log" | tail -n1)"
}

scripts/ensure-docker.sh
scripts/build-target-image.sh
scripts/sandbox.sh destroy
logs=$(mktemp -d)

result=$(converge "$logs/first.log")
read -r first first_changed <<<"$result"
seconds() { printf '%d.%03d' $(( $1 / 1000 )) $(( $1 % 1000 )); }
echo "full converge (container creation + site.yml): $(seconds "$first") s  ${first_changed}"
for i in $(seq 1 "$reruns"); do
  result=$(converge "$logs/rerun-$i.log")
  read -r again again_changed <<<"$result"
  echo "no-op re-run $i: $(seconds "$again") s  ${again_changed}  ($(( again * 100 / first ))% of the full converge)"
done
echo "logs: $logs"
