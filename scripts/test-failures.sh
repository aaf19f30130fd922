#!/usr/bin/env bash
# After a failed `make test`: the lines that say what failed, gathered from each part's log, so that the end
# of the output names the failure even when it was printed thousands of lines earlier.
set -uo pipefail
cd "$(dirname "$0")/.."

echo "================================ make test failed: what failed ================================"
for log in .cache/pytest-collectors.log .cache/pytest-tests.log; do
  [ -f "$log" ] || continue
  {
    grep -E '^(FAILED|ERROR) |^=+ .*[0-9]+ (failed|passed|errors?)|no tests ran' "$log" | head -30
    grep -E '^E  ' "$log" | head -20
  } | sed "s|^|${log#.cache/}: |"
done
for rc_file in .cache/molecule-logs/*.rc; do
  [ -f "$rc_file" ] || continue
  scenario=$(basename "$rc_file" .rc)
  [ "$(cat "$rc_file")" = 0 ] && continue
  echo "molecule $scenario: FAILED (exit $(cat "$rc_file")); from .cache/molecule-logs/$scenario.log:"
  grep -aE 'FAILED|fatal: |failed=[1-9]|ERROR |^.{0,40}E  +[A-Za-z]|Error:|CRITICAL' \
    ".cache/molecule-logs/$scenario.log" | grep -v 'FAILED - RETRYING' | head -40 | sed 's/^/  /'
done
