#!/usr/bin/env bash
# Run every Molecule scenario at once, each with its own log, and fail if any fails.
# The scenarios have their own targets and networks, and most of their time is spent waiting on their
# targets, so side by side they take little more than the longest alone (bench figures in README).
#   scripts/molecule-all.sh [SCENARIO…]     default: every directory of molecule/ with a molecule.yml
set -uo pipefail
cd "$(dirname "$0")/.."

logs=.cache/molecule-logs
mkdir -p "$logs"
if [ $# -gt 0 ]; then
  scenarios=("$@")
else
  mapfile -t scenarios < <(for f in molecule/*/molecule.yml; do basename "$(dirname "$f")"; done)
fi

# Shared by every scenario's prepare: made once here so that they do not race to make them.
ansible-playbook scripts/sandbox-key.yml >/dev/null
python scripts/build-standins.py >/dev/null

declare -A pids
for scenario in "${scenarios[@]}"; do
  (
    start=$SECONDS
    molecule test -s "$scenario" >"$logs/$scenario.log" 2>&1
    rc=$?
    echo $((SECONDS - start)) >"$logs/$scenario.seconds"
    echo "$rc" >"$logs/$scenario.rc"
    exit $rc
  ) &
  pids[$scenario]=$!
  echo "molecule-all: $scenario started (log: $logs/$scenario.log)"
done

failed=()
for scenario in "${scenarios[@]}"; do
  if wait "${pids[$scenario]}"; then
    verdict=passed
  else
    verdict=FAILED
    failed+=("$scenario")
  fi
  echo "molecule-all: $scenario $verdict in $(cat "$logs/$scenario.seconds") s"
done

for scenario in "${scenarios[@]}"; do
  echo "================================ molecule: $scenario ================================"
  cat "$logs/$scenario.log"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "molecule-all: failed: ${failed[*]}" >&2
  exit 1
fi
