#!/bin/bash
# The official influxdb:2.7 entrypoint's contract (as its documentation and entrypoint describe it), for the stand-in image: the
# setup of DOCKER_INFLUXDB_INIT_* on a temporary server, only while the bolt file is absent, then influxd
# as uid 1000. The setup goes through the HTTP API because this image has no `influx` CLI.
set -Eeo pipefail

log() { echo "entrypoint: $*" >&2; }

# VAR_FILE's content into VAR. A missing file is reported and start-up goes on, as in the real image.
file_env() {
  local var=$1 file_var="${1}_FILE"
  if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
    log "both $var and $file_var are set; set only one"
    exit 1
  fi
  if [ -n "${!file_var:-}" ]; then
    if [ -r "${!file_var}" ]; then
      export "$var"="$(<"${!file_var}")"
    else
      log "cannot read $file_var=${!file_var}"
    fi
  fi
}

config_path() {
  local ext
  for ext in json toml yaml yml; do
    if [ -f "/etc/influxdb2/config.$ext" ]; then
      echo "/etc/influxdb2/config.$ext"
      return
    fi
  done
  echo /etc/defaults/influxdb2/config.yml
}

# A setting of influxd's config file (JSON, TOML or YAML), or $2 when the file does not set it.
config_value() {
  python3 - "$INFLUXD_CONFIG_PATH" "$1" "$2" <<'PY'
import json, pathlib, sys, tomllib, yaml
path, key, default = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
if path.is_dir():
    path = next((path / f"config.{e}" for e in ("json", "toml", "yaml", "yml") if (path / f"config.{e}").exists()), path)
text = path.read_text() if path.is_file() else ""
loaders = {".json": json.loads, ".toml": tomllib.loads}
config = loaders.get(path.suffix, yaml.safe_load)(text) if text else {}
print((config or {}).get(key) or default)
PY
}

# DOCKER_INFLUXDB_INIT_RETENTION as the CLI reads it (1w, 7d, 168h, 1h30m; 0 or empty = infinite).
retention_seconds() {
  python3 - "$1" <<'PY'
import re, sys
value = sys.argv[1].strip()
units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
if value in ("", "0"):
    print(0)
elif not re.fullmatch(r"(\d+(ns|us|µs|ms|s|m|h|d|w))+", value):
    sys.exit(f"DOCKER_INFLUXDB_INIT_RETENTION={value!r}: expected a duration such as 7d, 168h or 1w")
else:
    print(int(sum(int(n) * units[u] for n, u in re.findall(r"(\d+)(ns|us|µs|ms|s|m|h|d|w)", value))))
PY
}

setup_body() {
  python3 - <<'PY'
import json, os
env = os.environ
body = {
    "username": env["DOCKER_INFLUXDB_INIT_USERNAME"],
    "password": env["DOCKER_INFLUXDB_INIT_PASSWORD"],
    "org": env["DOCKER_INFLUXDB_INIT_ORG"],
    "bucket": env["DOCKER_INFLUXDB_INIT_BUCKET"],
    "retentionPeriodSeconds": int(env["INIT_RETENTION_SECONDS"]),
}
if env.get("DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"):
    body["token"] = env["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"]
print(json.dumps(body))
PY
}

init_influxd() {
  local mode=$DOCKER_INFLUXDB_INIT_MODE var
  if [ "$mode" != setup ]; then
    log "DOCKER_INFLUXDB_INIT_MODE=$mode is not supported by this stand-in (only setup)"
    exit 1
  fi
  for var in USERNAME PASSWORD ORG BUCKET RETENTION ADMIN_TOKEN; do
    file_env "DOCKER_INFLUXDB_INIT_$var"
  done
  for var in USERNAME PASSWORD ORG BUCKET; do
    var="DOCKER_INFLUXDB_INIT_$var"
    if [ -z "${!var:-}" ]; then
      log "$var (or ${var}_FILE) is required with DOCKER_INFLUXDB_INIT_MODE=setup"
      exit 1
    fi
  done
  INIT_RETENTION_SECONDS=$(retention_seconds "${DOCKER_INFLUXDB_INIT_RETENTION:-}")
  export INIT_RETENTION_SECONDS

  # A failed setup leaves nothing behind, so the next start tries again from scratch.
  trap 'log "setup failed; removing $BOLT_PATH and $ENGINE_PATH"; kill "$init_pid" 2>/dev/null; rm -rf "$BOLT_PATH" "$ENGINE_PATH"' ERR
  local init_url="http://localhost:$INFLUXD_INIT_PORT" attempt
  INFLUXD_TLS_CERT='' INFLUXD_TLS_KEY='' influxd "$@" --http-bind-address ":$INFLUXD_INIT_PORT" &
  init_pid=$!
  for ((attempt = 0; attempt < INFLUXD_INIT_PING_ATTEMPTS; attempt++)); do
    curl -fsS -o /dev/null "$init_url/health" 2>/dev/null && break
    kill -0 "$init_pid" 2>/dev/null || false
    sleep 1
  done
  curl -fsS -o /dev/null "$init_url/health"

  local response
  response=$(setup_body | curl -fsS -X POST -H 'Content-Type: application/json' --data-binary @- "$init_url/api/v2/setup")
  eval "$(python3 -c '
import json, shlex, sys
r = json.load(sys.stdin)
for name, value in (("USER_ID", r["user"]["id"]), ("ORG_ID", r["org"]["id"]), ("BUCKET_ID", r["bucket"]["id"]),
                    ("ADMIN_TOKEN", r["auth"]["token"])):
    print(f"export DOCKER_INFLUXDB_INIT_{name}={shlex.quote(value)}")
' <<<"$response")"
  log "set up org $DOCKER_INFLUXDB_INIT_ORG, bucket $DOCKER_INFLUXDB_INIT_BUCKET, user $DOCKER_INFLUXDB_INIT_USERNAME"

  if [ -d /docker-entrypoint-initdb.d ]; then
    INFLUX_HOST=$init_url INFLUX_TOKEN=$DOCKER_INFLUXDB_INIT_ADMIN_TOKEN \
      run-parts --regex '.*sh$' --report --exit-on-error /docker-entrypoint-initdb.d
  fi
  kill -TERM "$init_pid"
  wait "$init_pid" || true
  trap - ERR
}

main() {
  # Only `influxd`, `influxd run` or flags start the server; anything else is run as given.
  if [ $# -gt 0 ] && [ "$1" = influxd ]; then
    shift
  elif [ $# -gt 0 ] && [ "$1" != run ] && [ "${1:0:1}" != - ]; then
    exec "$@"
  fi
  [ "${1:-}" = run ] && shift

  export INFLUXD_CONFIG_PATH=${INFLUXD_CONFIG_PATH:-$(config_path)}
  BOLT_PATH=${INFLUXD_BOLT_PATH:-$(config_value bolt-path /var/lib/influxdb2/influxd.bolt)}
  ENGINE_PATH=${INFLUXD_ENGINE_PATH:-$(config_value engine-path /var/lib/influxdb2/engine)}

  if [ "$(id -u)" = 0 ]; then
    find /var/lib/influxdb2 /etc/influxdb2 "$(dirname "$BOLT_PATH")" "$ENGINE_PATH" \! -user influxdb \
      -exec chown influxdb:influxdb {} + 2>/dev/null || true
    exec setpriv --reuid=influxdb --regid=influxdb --init-groups "$0" influxd "$@"
  fi

  if [ -n "${DOCKER_INFLUXDB_INIT_MODE:-}" ] && [ ! -f "$BOLT_PATH" ]; then
    init_influxd "$@"
  fi
  exec influxd "$@"
}

main "$@"
