# Sourced by the scripts whose steps take minutes (the influxd build, the target image): a step's own
# output goes to a log file, and the terminal gets one line a minute saying how long it has run against
# what it usually takes and what it is doing now, instead of pages of `go: downloading`.
#
#   run_logged "build-influxd: compiling influxd" "20-40 min on 2 cores" "$log" go build ...
#
# On failure: the end of the log, and the step's exit code. PROGRESS_EVERY_S (60) sets the interval.

run_logged() {
  local what=$1 usual=$2 log=$3
  shift 3
  local every=${PROGRESS_EVERY_S:-60} started=$SECONDS next rc=0 pid last
  next=$every
  echo "$what: started, usually $usual (its output: $log)" >&2
  "$@" >"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if [ $((SECONDS - started)) -ge "$next" ] && kill -0 "$pid" 2>/dev/null; then
      next=$((next + every))
      # The last line the step wrote says where it is (the module or the crate it is on).
      last=$(tail -n 1 "$log" 2>/dev/null | tr -d '\r' | cut -c1-100)
      [ -n "$last" ] && last="last output: $last" || last="no output yet"
      echo "$what: $(((SECONDS - started) / 60)) min $(((SECONDS - started) % 60)) s so far; $last" >&2
    fi
  done
  wait "$pid" || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "$what: failed after $((SECONDS - started)) s (exit $rc); the end of $log:" >&2
    tail -n 30 "$log" >&2
    return "$rc"
  fi
  echo "$what: done in $((SECONDS - started)) s" >&2
}
